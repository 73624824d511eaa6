"""PRF-1, PRF-2 through the profile's use cases: sealed at rest, single sections, one personne de confiance,
who entered what, the history, erasure with the space (ENR-6), and the demo data set."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from carnet.bootstrap import Services
from carnet.demo import DEMO_PASSWORD, load_profile_demo
from carnet.enrolment.service import lifecycle
from carnet.hall.actors import Actor, ActorKind
from carnet.hall.guard import AccessDenied
from carnet.hall.tables import AuditEntry
from carnet.people.tables import Account, Professional
from carnet.profile.model.measures import ImplausibleValue
from carnet.profile.service import portal
from carnet.profile.service.entries import EntryNotFound
from carnet.profile.tables import ProfileEntry


def _person(services: Services, login: str) -> Actor:
    with services.db.unit_of_work() as db:
        account = db.scalar(select(Account).where(Account.login == login))
        assert account is not None and account.patient_id
        return Actor(ActorKind.PATIENT, account.id, account.display_name, patient_id=account.patient_id)


def _professional(services: Services, login: str) -> Actor:
    with services.db.unit_of_work() as db:
        account = db.scalar(select(Account).where(Account.login == login))
        assert account is not None and account.professional_id
        pro = db.get(Professional, account.professional_id)
        assert pro is not None
        return Actor(
            ActorKind.PROFESSIONAL,
            account.id,
            account.display_name,
            professional_id=pro.id,
            rpps=pro.rpps,
            profession_code=pro.profession_code,
        )


@pytest.fixture
def marie(demo: Services) -> Actor:
    return _person(demo, "marie-ange.santoni")


def test_what_is_typed_is_sealed_at_rest_not_in_clear(demo: Services, marie: Actor) -> None:
    assert marie.patient_id
    entry_id = portal.add_item(demo, marie, marie.patient_id, "allergies", {"label": "Arachide", "reaction": "Œdème"})
    with demo.db.unit_of_work() as db:
        row = db.get(ProfileEntry, entry_id)
        assert row is not None
        assert b"Arachide" not in row.sealed and "Œdème".encode() not in row.sealed
        assert row.source == "patient" and row.author_label == marie.label
    page = portal.section_page(demo, marie, marie.patient_id, "allergies")
    assert [i.fields["label"] for i in page.items] == ["Arachide"]


def test_a_single_section_is_corrected_not_doubled(demo: Services, marie: Actor) -> None:
    assert marie.patient_id
    first = portal.add_item(demo, marie, marie.patient_id, "blood_group", {"label": "A+"})
    second = portal.add_item(demo, marie, marie.patient_id, "blood_group", {"label": "O−"})
    assert first == second
    items = portal.section_page(demo, marie, marie.patient_id, "blood_group").items
    assert [(i.fields["label"], i.version) for i in items] == [("O−", 2)]


def test_one_personne_de_confiance(demo: Services, marie: Actor) -> None:
    """PRF-1: one personne de confiance; emergency contacts as many as wanted."""
    assert marie.patient_id
    trusted = {"role": "Personne de confiance", "label": "Jean Santoni"}
    portal.add_item(demo, marie, marie.patient_id, "entourage", trusted)
    portal.add_item(
        demo, marie, marie.patient_id, "entourage", {"role": "Personne à prévenir en cas d'urgence", "label": "A"}
    )
    with pytest.raises(portal.ProfileError, match="déjà désigné une personne de confiance"):
        portal.add_item(demo, marie, marie.patient_id, "entourage", {**trusted, "label": "Paul"})
    assert len(portal.section_page(demo, marie, marie.patient_id, "entourage").items) == 2


def test_an_implausible_measure_is_refused_and_nothing_is_stored(demo: Services, marie: Actor) -> None:
    assert marie.patient_id
    with pytest.raises(ImplausibleValue, match="comprise entre"):
        portal.add_measure(demo, marie, marie.patient_id, "weight", portal.MeasureInput("900"))
    with pytest.raises(portal.ProfileError, match="futur"):
        when = datetime.now(UTC) + timedelta(days=2)
        portal.add_measure(demo, marie, marie.patient_id, "weight", portal.MeasureInput("70", when=when))
    assert portal.measure_page(demo, marie, marie.patient_id, "weight", "tout").total == 0


def test_a_professionals_item_is_masked_not_edited_and_the_history_says_who(demo: Services, marie: Actor) -> None:
    """PRF-1: « items entered by a professional can be masked like documents, not edited »."""
    assert marie.patient_id
    doctor = _professional(demo, "dr.ferracci")  # her médecin traitant
    dentist = _professional(demo, "dominique.orsini")  # never authorised
    entry_id = portal.add_item(demo, doctor, marie.patient_id, "conditions", {"label": "Hypertension artérielle"})
    with pytest.raises(AccessDenied, match="masquer"):
        portal.update_item(demo, marie, marie.patient_id, entry_id, {"label": "Autre chose"})
    with pytest.raises(AccessDenied):
        portal.delete_entry(demo, marie, marie.patient_id, entry_id)
    portal.set_masked(demo, marie, marie.patient_id, entry_id, True)
    # the médecin traitant still sees it (ACC-2); a stranger professional never did
    assert [i.id for i in portal.section_page(demo, doctor, marie.patient_id, "conditions").items] == [entry_id]
    with pytest.raises(EntryNotFound):
        portal.delete_entry(demo, dentist, marie.patient_id, entry_id)
    with demo.db.unit_of_work() as db:
        actions = [
            (e.actor_label, e.action, e.outcome)
            for e in db.scalars(select(AuditEntry).where(AuditEntry.patient_id == marie.patient_id))
        ]
    assert (doctor.label, "profile.write", "allow") in actions
    assert (marie.label, "profile.write", "deny") in actions
    assert (marie.label, "profile.mask", "allow") in actions


def test_deleting_the_space_erases_the_profile(demo: Services, marie: Actor) -> None:
    """ENR-6: the space's deletion leaves no profile row."""
    assert marie.patient_id
    portal.add_item(demo, marie, marie.patient_id, "allergies", {"label": "Latex"})
    portal.add_measure(demo, marie, marie.patient_id, "weight", portal.MeasureInput("61,5"))
    done = lifecycle.delete_own_space(
        demo, marie, "marie-ange.santoni", DEMO_PASSWORD, "test", marie.patient_id, lifecycle.CONFIRM_WORD
    )
    assert done.error is None
    with demo.db.unit_of_work() as db:
        assert db.scalars(select(ProfileEntry).where(ProfileEntry.patient_id == marie.patient_id)).all() == []


def test_the_demo_profile_is_loaded_once(demo: Services, marie: Actor) -> None:
    assert marie.patient_id
    load_profile_demo(demo)
    load_profile_demo(demo)
    overview = portal.overview(demo, marie, marie.patient_id)
    assert [i.fields["label"] for i in overview.sections[0].items] == ["Asthme"]
    weight = next(m for m in overview.measures if m.measure.key == "weight")
    assert weight.text == "63,6 kg"
    bmi = next(m for m in overview.measures if m.measure.key == "bmi")
    assert bmi.text == "23,4 kg/m²"  # 63.6 / 1.65² = 23.36
