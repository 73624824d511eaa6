"""The use cases of AGD-2 (``carnet.agenda.service.prevention``) and the profile's vaccinations read for them: what
counts as done (the profile's vaccinations by name, the person's answers), the three actors on reading and
answering, masked vaccinations, sealed answers — on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from carnet.agenda.model.prevention import load_calendar
from carnet.agenda.service import prevention
from carnet.agenda.service.prevention import Answer, AnswerError, PreventionNotFound
from carnet.agenda.tables import PreventionAnswers
from carnet.bootstrap import Services
from carnet.hall.actors import Actor, ActorKind
from carnet.hall.guard import AccessDenied
from carnet.hall.tables import AuditEntry
from carnet.people.tables import Account, Patient, Professional
from carnet.profile.service import portal
from carnet.profile.service.vaccinations import vaccinations_in_range, vaccinations_of
from carnet.storage import keyring

PATIENT = "marie-ange.santoni"
GP = "dr.ferracci"  # her médecin traitant: everything, masked items included
PHARMACIST = "anna-maria.peretti"  # authorised by her (reader): not what she masked
DENTIST = "dominique.orsini"  # never authorised
STRANGER = "pierre-paul.luciani"  # another patient


def actor(services: Services, login: str) -> Actor:
    with services.db.unit_of_work() as db:
        account = db.scalar(select(Account).where(Account.login == login))
        assert account is not None
        if account.professional_id is None:
            return Actor(ActorKind.PATIENT, account.id, account.display_name, patient_id=account.patient_id)
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
def marie(demo: Services) -> str:
    with demo.db.unit_of_work() as db:
        patient_id = db.scalar(select(Patient.id).where(Patient.first_names == "Marie-Ange"))
    assert patient_id
    return patient_id


def status_of(view: prevention.Statuses, code: str) -> str:
    return next(line.status.status for line in view.lines if line.code == code)


# ------------------------------------------------------------------ the calculation


def test_profile_vaccinations_by_name_and_answers_make_the_statuses() -> None:
    calendar = load_calendar()
    birth, today = date(2025, 1, 10), date(2025, 12, 1)  # a boy of 10 months
    vaccinations = [
        ("Infanrix Hexa", date(2025, 3, 12)),
        ("Vaxelis", date(2025, 5, 15)),
        ("Prevenar 20", date(2025, 3, 12)),
    ]
    answers = {"VAC-MENB-1": Answer("fait", date(2025, 4, 14)), "VAC-MENB-2": Answer("non_fait", date(2025, 11, 2))}
    lines = {line.code: line for line in prevention.person_statuses(calendar, birth, "M", today, vaccinations, answers)}
    assert (lines["VAC-HEXA-1"].status.status, lines["VAC-HEXA-1"].from_profile) == ("realise", True)
    assert lines["VAC-HEXA-2"].status.last_done == date(2025, 5, 15)
    assert lines["VAC-PNEUMO-1"].status.status == "realise"
    assert lines["VAC-PNEUMO-2"].status.status == "en_retard"  # due at 4 months, tolerated until 2 years
    assert (lines["VAC-MENB-1"].status.status, lines["VAC-MENB-1"].from_profile) == ("realise", False)
    assert lines["VAC-MENB-1"].answer == Answer("fait", date(2025, 4, 14))
    assert lines["VAC-MENB-2"].status.status == "non_realise"
    assert lines["VAC-HEXA-1"].source.id == "VACCINATIONS-2025"


def test_a_dose_both_in_the_profile_and_answered_on_the_same_day_counts_once() -> None:
    calendar = load_calendar()
    birth, today = date(1990, 1, 10), date(2025, 12, 1)
    same = prevention.person_statuses(
        calendar, birth, "F", today, [("ROR", date(2024, 5, 2))], {"VAC-ROR-1": Answer("fait", date(2024, 5, 2))}
    )
    lines = {line.code: line for line in same}
    assert lines["VAC-ROR-1"].status.status == "realise" and not lines["VAC-ROR-1"].from_profile
    assert lines["VAC-ROR-2"].status.status == "en_retard"
    other_day = prevention.person_statuses(
        calendar, birth, "F", today, [("ROR", date(2024, 9, 2))], {"VAC-ROR-1": Answer("fait", date(2024, 5, 2))}
    )
    lines = {line.code: line for line in other_day}
    assert lines["VAC-ROR-2"].status.status == "realise" and lines["VAC-ROR-2"].from_profile


def test_stored_answers_of_codes_the_calendar_no_longer_knows_are_left_aside() -> None:
    raw = {
        "VAC-ROR-1": {"answer": "fait", "date": "2000-01-01"},
        "VAC-RETIRE-1": {"answer": "fait", "date": "2000-01-01"},
        "DEP-SEIN": {"answer": "fait"},
        "DEP-COLORECTAL": "oui",
    }
    assert prevention.parse_answers(raw, load_calendar()) == {"VAC-ROR-1": Answer("fait", date(2000, 1, 1))}


def test_an_unknown_sex_gives_no_item() -> None:
    assert prevention.person_statuses(load_calendar(), date(1980, 1, 1), "X", date(2025, 6, 1), [], {}) == []


@pytest.mark.parametrize(
    ("typed", "expected"),
    [("2024-03-05", date(2024, 3, 5)), ("5/3/2024", date(2024, 3, 5)), (" 05/03/2024 ", date(2024, 3, 5))],
)
def test_dates_are_read_the_french_way_or_iso(typed: str, expected: date) -> None:
    assert prevention.parse_day(typed) == expected


# ------------------------------------------------------------------ the use cases and the three actors


def test_the_patient_answers_and_reads_the_new_status(demo: Services, marie: str) -> None:
    me = actor(demo, PATIENT)
    assert status_of(prevention.statuses(demo, me, marie), "DEP-COL-UTERUS-HPV") == "non_renseigne"
    done_on = (prevention.today_in_paris() - timedelta(days=100)).isoformat()
    assert prevention.answer(demo, me, marie, "DEP-COL-UTERUS-HPV", "fait", done_on) == "fait"
    view = prevention.statuses(demo, me, marie)
    assert status_of(view, "DEP-COL-UTERUS-HPV") == "realise" and view.people_of_space
    assert [g.kind for g in view.groups] == ["vaccination", "depistage"]
    assert [s.id for s in view.sources] == ["VACCINATIONS-2025", "INCA-COL-UTERUS"]
    with demo.db.unit_of_work() as db:  # sealed under her key, with her id as associated data
        row = db.get(PreventionAnswers, marie)
        assert row is not None and row.version == 1
        key = keyring.data_key(db, demo.keyring, marie, create=False)
        opened = prevention.open_answers(key, marie, row.sealed, load_calendar())
    assert opened == {"DEP-COL-UTERUS-HPV": Answer("fait", date.fromisoformat(done_on))}
    with pytest.raises(keyring.DecryptionError):
        prevention.open_answers(key, "autre-espace", row.sealed, load_calendar())


def test_bad_choices_codes_and_dates(demo: Services, marie: str) -> None:
    me = actor(demo, PATIENT)
    with pytest.raises(AnswerError):
        prevention.answer(demo, me, marie, "VAC-ROR-1", "peut-etre")
    with pytest.raises(PreventionNotFound):
        prevention.answer(demo, me, marie, "VAC-INCONNU", "fait", "2020-01-01")
    with pytest.raises(PreventionNotFound):  # the calendar knows it, but not for her today
        prevention.answer(demo, me, marie, "VAC-GRIPPE", "non_fait")
    with pytest.raises(AnswerError, match="futur"):
        prevention.answer(demo, me, marie, "VAC-ROR-1", "fait", (date.today() + timedelta(days=2)).isoformat())
    assert prevention.answer(demo, me, marie, "VAC-ROR-1", "effacer") == "effacer"  # nothing to clear: no write
    with demo.db.unit_of_work() as db:
        assert db.get(PreventionAnswers, marie) is None
        writes = db.scalars(select(AuditEntry).where(AuditEntry.action == "prevention.write")).all()
    assert writes == []


def test_professionals_read_with_a_standing_and_never_answer(demo: Services, marie: str) -> None:
    for login in (GP, PHARMACIST):
        view = prevention.statuses(demo, actor(demo, login), marie)
        assert status_of(view, "VAC-ROR-1") == "en_retard" and not view.people_of_space
        with pytest.raises(AccessDenied) as refused:
            prevention.answer(demo, actor(demo, login), marie, "VAC-ROR-1", "non_fait")
        assert "Seule la personne" in refused.value.decision.reason
    with pytest.raises(AccessDenied) as refused:
        prevention.statuses(demo, actor(demo, DENTIST), marie)
    assert refused.value.decision.rule == "no_consent"
    for login in (DENTIST, STRANGER):
        with pytest.raises(AccessDenied):
            prevention.answer(demo, actor(demo, login), marie, "VAC-ROR-1", "non_fait")
    with pytest.raises(AccessDenied):
        prevention.statuses(demo, actor(demo, STRANGER), marie)
    with demo.db.unit_of_work() as db:
        assert db.get(PreventionAnswers, marie) is None
        denied = db.scalars(
            select(AuditEntry).where(AuditEntry.patient_id == marie, AuditEntry.outcome == "deny")
        ).all()
    assert {d.action for d in denied} == {"prevention.read", "prevention.write"}


def test_a_vaccination_she_masked_counts_only_for_those_who_see_masked_items(demo: Services, marie: str) -> None:
    gp, me = actor(demo, GP), actor(demo, PATIENT)
    entry_id = portal.add_item(demo, gp, marie, "vaccinations", {"label": "M-M-RVaxPro", "date": "1986-06-01"})
    portal.set_masked(demo, me, marie, entry_id, True)
    assert status_of(prevention.statuses(demo, me, marie), "VAC-ROR-1") == "realise"
    assert status_of(prevention.statuses(demo, gp, marie), "VAC-ROR-1") == "realise"  # médecin traitant
    assert status_of(prevention.statuses(demo, actor(demo, PHARMACIST), marie), "VAC-ROR-1") == "en_retard"


def test_the_profile_gives_its_vaccinations_one_space_or_a_range(demo: Services, marie: str) -> None:
    me = actor(demo, PATIENT)
    portal.add_item(demo, me, marie, "vaccinations", {"label": "Boostrix Tetra", "date": "2010-05-12"})
    portal.add_item(demo, me, marie, "vaccinations", {"label": "ROR", "date": "1986-06-01"})
    portal.add_item(demo, me, marie, "allergies", {"label": "Pollen"})
    with demo.db.unit_of_work() as db:
        mine = vaccinations_of(demo, db, marie)
        key = keyring.data_key(db, demo.keyring, marie, create=False)
        ranged = vaccinations_in_range(db, marie, marie, lambda _: key)
        nobody = vaccinations_in_range(db, "0", "00", lambda _: key)
    assert mine == [("ROR", date(1986, 6, 1)), ("Boostrix Tetra", date(2010, 5, 12))]
    assert ranged == {marie: mine} and nobody == {}
