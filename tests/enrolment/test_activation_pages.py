"""ENR-4: activation through the pages — code, date of birth, NIR, carte Vitale, contact code, account."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from carnet.bootstrap import Services
from carnet.enrolment.tables import Campaign, Invitation
from carnet.hall.tables import AuditEntry
from carnet.people.model.identifiers import nir_from_body
from carnet.people.tables import Account, Patient
from carnet.storage.types import utcnow
from tests.conftest import csrf_of, last_code_for, log_in, outbox_messages, text_of

CODE = "ABCD2345EFGH"
PARENT_NIR = nir_from_body("279052B033123")
CHILD_NIR = nir_from_body("119032B033456")


@dataclass
class Invited:
    parent_id: str
    child_id: str


def _invite(db: object, services: Services, campaign: Campaign, patient: Patient, code: str, days: int = 90) -> None:
    db.add(
        Invitation(
            patient_id=patient.id,
            campaign_id=campaign.id,
            channel="email",
            status="sent",  # type: ignore[attr-defined]
            code_hash=services.keys.mac("activation", code),
            code_sealed=services.keys.seal(code, "activation-code"),
            code_expires_at=utcnow() + timedelta(days=days),
            sent_at=utcnow(),
            objection_deadline=utcnow() + timedelta(days=42),
        )
    )


@pytest.fixture
def invited(demo: Services) -> Invited:
    with demo.db.unit_of_work() as db:
        parent = Patient(
            ins=PARENT_NIR,
            birth_name="PAOLI",
            first_names="Santa",
            birth_date=date(1979, 5, 3),
            sex="F",
            birth_place="2B033",
            email="santa.paoli@exemple.fr",
            departement="2B",
            vitale_serial="123456789",
            status="registered",
        )
        db.add(parent)
        db.flush()
        child = Patient(
            ins=CHILD_NIR,
            birth_name="PAOLI",
            first_names="Ghjuvan",
            birth_date=date(2019, 3, 1),
            sex="M",
            birth_place="2B033",
            departement="2B",
            vitale_serial="123456789",
            status="registered",
            attached_to_id=parent.id,
            ouvrant_droit_ins=PARENT_NIR,
        )
        db.add(child)
        campaign = Campaign(departements=["2B"], started_by="test")
        db.add(campaign)
        db.flush()
        _invite(db, demo, campaign, parent, CODE)
        _invite(db, demo, campaign, child, "JKMN6789PQRS")
        return Invited(parent.id, child.id)


def step(client: TestClient, url: str, **data: str) -> object:
    page = client.get(url)
    return client.post(url, data={**data, "csrf_token": csrf_of(page.text)})


def identity(
    client: TestClient, code: str = CODE, born: str = "1979-05-03", nir: str = PARENT_NIR, vitale: str = "123456789"
) -> object:
    return step(client, "/activation", code=code, date_naissance=born, nir=nir, vitale=vitale)


def test_a_person_activates_their_space_end_to_end(client: TestClient, demo: Services, invited: Invited) -> None:
    response = identity(client, code="abcd-2345-efgh")  # typed as printed, lower case with dashes
    assert response.status_code == 303 and response.headers["location"] == "/activation/contact"  # type: ignore[attr-defined]
    response = step(client, "/activation/contact", email="santa.paoli@exemple.fr")
    assert response.headers["location"] == "/activation/verification"  # type: ignore[attr-defined]
    response = step(client, "/activation/verification", code=last_code_for(demo, "santa.paoli@exemple.fr"))
    assert response.headers["location"] == "/activation/compte"  # type: ignore[attr-defined]
    response = step(
        client,
        "/activation/compte",
        identifiant="santa.paoli",
        mot_de_passe="Bastia-2026!",
        confirmation="Bastia-2026!",
    )
    assert response.headers["location"] == "/connexion?active=1"  # type: ignore[attr-defined]
    with demo.db.unit_of_work() as db:
        parent, child = db.get(Patient, invited.parent_id), db.get(Patient, invited.child_id)
        assert parent.status == "active" and child.status == "active"  # type: ignore[union-attr]
        assert db.scalar(select(Account.patient_id).where(Account.login == "santa.paoli")) == invited.parent_id
        actions = list(db.scalars(select(AuditEntry.action).where(AuditEntry.patient_id == invited.child_id)))
        assert "space.activated" in actions
    log_in(client, demo, "santa.paoli", "Bastia-2026!")
    home = client.get("/espace", follow_redirects=True)
    assert "Bonjour Santa" in text_of(home) and "Ghjuvan" in text_of(home)
    again = identity(TestClient(client.app))
    assert "a déjà servi" in text_of(again)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"code": "ABC"}, "12 lettres ou chiffres"),
        ({"code": "ZZZZ2345EFGH"}, "inconnu ou a déjà servi"),
        ({"born": "1979-05-04"}, "La date de naissance ne correspond pas"),
        ({"born": ""}, "Indiquez votre date de naissance"),
        ({"nir": "279052B03312300"}, "la clé est invalide"),
        ({"nir": nir_from_body("279052B033124")}, "Le numéro de sécurité sociale ne correspond pas"),
        ({"vitale": "12"}, "8 à 13 chiffres"),
        ({"vitale": "987654321"}, "carte Vitale ne correspond pas"),
        ({"vitale": ""}, "Saisissez le numéro de série de votre carte Vitale"),
    ],
)
def test_each_failure_says_what_to_fix(
    client: TestClient, invited: Invited, changes: dict[str, str], message: str
) -> None:
    response = identity(client, **changes)
    assert response.status_code == 400  # type: ignore[attr-defined]
    assert message in text_of(response)
    assert client.get("/activation/contact").headers["location"] == "/activation"


def test_a_child_is_activated_with_the_nir_of_the_person_who_received_the_letter(
    client: TestClient, invited: Invited
) -> None:
    response = identity(client, code="JKMN6789PQRS", born="2019-03-01", nir=PARENT_NIR)
    assert response.headers["location"] == "/activation/contact"  # type: ignore[attr-defined]


def test_without_a_vitale_serial_on_record_the_code_birth_date_and_nir_suffice(
    new_client: object, demo: Services, invited: Invited
) -> None:
    """Issue #15-9: a registry line without numero_serie_vitale no longer makes activation impossible; an empty
    field where a serial is on record is a missing field, not a try burnt."""
    for _ in range(6):  # more than the five tries of a code
        assert identity(new_client(), vitale="").status_code == 400  # type: ignore[operator,attr-defined]
    with demo.db.unit_of_work() as db:
        db.get(Patient, invited.parent_id).vitale_serial = None  # type: ignore[union-attr]
    answer = identity(new_client(), vitale="")  # type: ignore[operator]
    assert answer.headers["location"] == "/activation/contact"  # type: ignore[attr-defined]


def test_five_failures_lock_the_code(new_client: object, invited: Invited) -> None:
    for _ in range(5):
        client = new_client()  # type: ignore[operator]
        identity(client, born="2000-01-01")
    response = identity(new_client())  # type: ignore[operator]
    assert response.status_code == 400 and "ce code est bloqué" in text_of(response)  # type: ignore[attr-defined]


def test_an_expired_code_is_refused(client: TestClient, demo: Services, invited: Invited) -> None:
    with demo.db.unit_of_work() as db:
        for invitation in db.scalars(select(Invitation)):
            invitation.code_expires_at = utcnow() - timedelta(minutes=1)
    assert "a expiré" in text_of(identity(client))


def test_a_wrong_contact_code_and_weak_passwords_are_explained(
    client: TestClient, demo: Services, invited: Invited
) -> None:
    identity(client)
    step(client, "/activation/contact", email="santa.paoli@exemple.fr")
    wrong = step(
        client,
        "/activation/verification",
        code="000000" if last_code_for(demo, "santa.paoli@exemple.fr") != "000000" else "111111",
    )
    assert wrong.status_code == 400 and "Code incorrect" in text_of(wrong)  # type: ignore[attr-defined]
    step(client, "/activation/verification", code=last_code_for(demo, "santa.paoli@exemple.fr"))
    weak = step(client, "/activation/compte", identifiant="santa.paoli", mot_de_passe="court", confirmation="court")
    assert "au moins 9 caractères" in text_of(weak) and "un caractère spécial" in text_of(weak)
    taken = step(
        client,
        "/activation/compte",
        identifiant="marie-ange.santoni",
        mot_de_passe="Bastia-2026!",
        confirmation="Bastia-2026!",
    )
    assert "déjà pris" in text_of(taken)
    different = step(
        client, "/activation/compte", identifiant="santa.p", mot_de_passe="Bastia-2026!", confirmation="Bastia-2026?"
    )
    assert "pas identiques" in text_of(different)


def test_a_forged_step_cookie_leads_back_to_the_start(client: TestClient, invited: Invited) -> None:
    client.cookies.set("carnet_activation", "forged", path="/activation")
    assert client.get("/activation/compte").headers["location"] == "/activation"


def test_guessing_is_rate_limited_per_address(client: TestClient, invited: Invited) -> None:
    statuses = [identity(client, code=f"ZZZZ2345EF{i:02d}").status_code for i in range(21)]  # type: ignore[attr-defined]
    assert statuses[-1] == 429 and set(statuses[:20]) == {400}


def test_a_new_code_replaces_the_old_one_without_revealing_who_exists(
    client: TestClient, demo: Services, invited: Invited
) -> None:
    unknown = step(client, "/activation/nouveau-code", nir=nir_from_body("1840699123456"), date_naissance="1984-06-01")
    known = step(client, "/activation/nouveau-code", nir=PARENT_NIR, date_naissance="1979-05-03")
    assert unknown.status_code == known.status_code == 200  # type: ignore[attr-defined]
    assert "Si ces informations correspondent" in text_of(known) and "Si ces informations correspondent" in text_of(
        unknown
    )
    mail = [m for m in outbox_messages(demo) if m["To"] == "santa.paoli@exemple.fr"][-1]  # type: ignore[index]
    new = re.search(r"([2-9A-Z]{4}-[2-9A-Z]{4}-[2-9A-Z]{4})", mail.get_body(preferencelist=("plain",)).get_content())  # type: ignore[attr-defined]
    assert new
    assert "inconnu ou a déjà servi" in text_of(identity(client))  # the old code no longer works
    assert (
        identity(TestClient(client.app, follow_redirects=False), code=new.group(1)).headers["location"]
        == "/activation/contact"
    )  # type: ignore[attr-defined]


def test_the_code_of_a_campaign_e_mail_activates_the_space(client: TestClient, demo: Services) -> None:
    """ENR-2 → ENR-4 end to end: the campaign e-mail's code, read from the mail, opens the space through the pages."""
    from carnet.enrolment.service import campaigns
    from carnet.hall.actors import Actor
    from tests.support.enrolment import add_registered, code_in

    (person,) = add_registered(demo, 1, departement="2A", with_email=True, start=7)
    with demo.db.unit_of_work() as db:
        db.get(Patient, person.id).vitale_serial = "11223344"  # type: ignore[union-attr]
    campaigns.start_campaign(demo, "2A", Actor.system("Conseiller"))
    campaigns.send_pending(demo)
    mail = [m for m in outbox_messages(demo) if m["To"] == person.email][-1]  # type: ignore[index]
    response = identity(
        client, code=code_in(mail), born=person.birth_date.isoformat(), nir=person.ins, vitale="11223344"
    )
    assert response.headers["location"] == "/activation/contact"  # type: ignore[attr-defined]
    step(client, "/activation/contact", email=str(person.email))
    step(client, "/activation/verification", code=last_code_for(demo, str(person.email)))
    done = step(
        client,
        "/activation/compte",
        identifiant="anna.nom7",
        mot_de_passe="Ajaccio-2026!",
        confirmation="Ajaccio-2026!",
    )
    assert done.headers["location"] == "/connexion?active=1"  # type: ignore[attr-defined]
    with demo.db.unit_of_work() as db:
        assert db.get(Patient, person.id).status == "active"  # type: ignore[union-attr]
