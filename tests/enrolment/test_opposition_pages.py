"""ENR-3 online, without an account: object with code + NIR + date of birth, get a receipt, change one's mind."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader
from sqlalchemy import select, update

from carnet.bootstrap import Services
from carnet.enrolment.pages.opposition import ATTEMPTS, GENERIC_ERROR
from carnet.enrolment.service import campaigns, opposition
from carnet.enrolment.tables import Invitation, Objection
from carnet.hall.actors import Actor, ActorKind
from carnet.hall.tables import AuditEntry
from carnet.people.model.identifiers import format_nir
from carnet.people.tables import Patient
from carnet.storage.types import utcnow
from tests.conftest import csrf_of, outbox_messages, text_of
from tests.support.enrolment import Person, add_registered, code_in

OPERATOR = Actor(ActorKind.OPERATOR, None, "Conseiller de test")


def invited(services: Services, count: int = 2) -> list[tuple[Person, str]]:
    people = add_registered(services, count, "2A", with_email=True, start=300)
    campaigns.start_campaign(services, "2A", OPERATOR)
    campaigns.send_pending(services)
    mails = {str(m["To"]): m for m in outbox_messages(services)}  # type: ignore[index]
    return [(p, code_in(mails[p.email or ""])) for p in people]  # type: ignore[arg-type]


def submit(client: TestClient, path: str, code: str, nir: str, birth: str) -> object:
    page = client.get(path)
    assert page.status_code == 200
    return client.post(path, data={"code": code, "nir": nir, "naissance": birth, "csrf_token": csrf_of(page.text)})


def patient_status(services: Services, patient_id: str) -> str:
    with services.db.unit_of_work() as db:
        return str(db.scalar(select(Patient.status).where(Patient.id == patient_id)))


def test_the_right_code_and_identity_record_the_objection_and_give_a_receipt(
    client: TestClient, demo: Services
) -> None:
    (person, code), _ = invited(demo)
    before = len(outbox_messages(demo))

    response = submit(client, "/opposition", code.lower(), format_nir(person.ins), "14/03/1985")

    assert response.status_code == 200, text_of(response)
    page = text_of(response)
    assert "Votre opposition est enregistrée" in page and "Aucun espace santé ne sera créé" in page
    assert patient_status(demo, person.id) == "opposed"
    with demo.db.unit_of_work() as db:
        objection = db.scalar(select(Objection).where(Objection.patient_id == person.id))
        assert objection is not None and objection.channel == "online" and objection.withdrawn_at is None
        entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "enrolment.objection"))
        assert entry is not None and entry.patient_id == person.id and entry.actor_kind == "patient"
        receipt_number, objection_id = objection.receipt_number, objection.id
    assert receipt_number in page
    link = page.split('href="/opposition/recepisse/', 1)[1].split('"', 1)[0]
    url = f"/opposition/recepisse/{link}"
    name = person.name.split()[-1]  # "NOM<n>": checked as a path segment, a random token may contain it
    for secret in (person.id, objection_id, person.ins, receipt_number, person.email or "?"):
        assert secret not in url
    assert name not in url.split("/") and name.lower() not in url.lower().split("/")
    pdf = client.get(url)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert "attachment" in pdf.headers["content-disposition"] and "no-store" in pdf.headers["cache-control"]
    text = " ".join(PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text().split())
    for expected in (receipt_number, person.name, "14 mars 1985", "Changer d'avis", "/opposition/annuler", "en ligne"):
        assert expected in text
    # a confirmation e-mail, without health data
    confirmation = outbox_messages(demo)[before:]
    assert [m["To"] for m in confirmation] == [person.email]  # type: ignore[index]
    assert receipt_number in confirmation[0].get_body().get_content()  # type: ignore[attr-defined]
    # objecting again gives the same objection back, not a second one
    again = submit(client, "/opposition", code, person.ins, "14031985")
    assert "déjà enregistrée" in text_of(again)
    with demo.db.unit_of_work() as db:
        assert len(db.scalars(select(Objection)).all()) == 1


def test_a_tampered_or_expired_receipt_link_gives_nothing(client: TestClient, demo: Services) -> None:
    (person, code), _ = invited(demo)
    outcome = opposition.object_online(demo, code, person.ins, "14/03/1985")
    assert outcome.objection_id
    token = opposition.receipt_token(demo, outcome.objection_id)
    assert client.get(f"/opposition/recepisse/{token}").status_code == 200
    assert opposition.objection_from_token(demo, token, utcnow() + timedelta(minutes=31)) is None
    tampered = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    response = client.get(f"/opposition/recepisse/{tampered}")
    assert response.status_code == 404 and "expiré" in text_of(response)


@pytest.mark.parametrize("wrong", ["nir", "birth", "code"])
def test_a_wrong_field_gives_one_generic_error_and_records_nothing(
    client: TestClient, demo: Services, wrong: str
) -> None:
    (person, code), (other, other_code) = invited(demo)
    values = {"code": code, "nir": person.ins, "birth": "14/03/1985"}
    values[wrong] = {"nir": other.ins, "birth": "15/03/1985", "code": other_code}[wrong]

    response = submit(client, "/opposition", values["code"], values["nir"], values["birth"])

    assert response.status_code == 400
    page = text_of(response)
    assert GENERIC_ERROR in page
    assert person.ins not in page and other.ins not in page  # the NIR typed is not echoed back
    assert "Anna" not in page
    with demo.db.unit_of_work() as db:
        assert db.scalar(select(Objection)) is None
        assert db.scalar(select(AuditEntry).where(AuditEntry.action.like("enrolment.%"))) is None
    assert {patient_status(demo, p.id) for p in (person, other)} == {"registered"}


def test_a_malformed_field_is_named(client: TestClient, demo: Services) -> None:
    (person, code), _ = invited(demo)
    response = submit(client, "/opposition", code, person.ins[:-2] + "00", "14/03/1985")
    assert response.status_code == 400 and "clé" in text_of(response).lower()
    response = submit(client, "/opposition", "ABC", person.ins, "14/03/1985")
    assert response.status_code == 400 and "12 caractères" in text_of(response)


def test_attempts_are_limited_per_client_address(client: TestClient, demo: Services) -> None:
    (person, code), (other, _) = invited(demo)
    for _ in range(ATTEMPTS):
        assert submit(client, "/opposition", code, other.ins, "14/03/1985").status_code == 400
    blocked = submit(client, "/opposition", code, person.ins, "14/03/1985")  # even the right answer
    assert blocked.status_code == 429 and "Trop de tentatives" in text_of(blocked)
    assert patient_status(demo, person.id) == "registered"


def test_changing_ones_mind_withdraws_the_objection(client: TestClient, demo: Services) -> None:
    (person, code), _ = invited(demo)
    submit(client, "/opposition", code, person.ins, "14/03/1985")
    assert patient_status(demo, person.id) == "opposed"

    response = submit(client, "/opposition/annuler", code, person.ins, "14/03/1985")

    assert response.status_code == 200 and "Votre opposition est retirée" in text_of(response)
    assert patient_status(demo, person.id) == "registered"
    with demo.db.unit_of_work() as db:
        objection = db.scalar(select(Objection))
        assert objection is not None and objection.withdrawn_at is not None
        entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "enrolment.objection_withdrawn"))
        assert entry is not None and entry.patient_id == person.id
    nothing = submit(client, "/opposition/annuler", code, person.ins, "14/03/1985")
    assert "Aucune opposition en cours" in text_of(nothing)
    assert "Votre opposition est enregistrée" in text_of(submit(client, "/opposition", code, person.ins, "14/03/1985"))


def test_after_six_weeks_the_page_explains_how_to_close_instead(client: TestClient, demo: Services) -> None:
    (person, code), _ = invited(demo)
    with demo.db.unit_of_work() as db:
        db.execute(update(Invitation).values(objection_deadline=utcnow() - timedelta(minutes=1)))
    response = submit(client, "/opposition", code, person.ins, "14/03/1985")
    page = text_of(response)
    assert "Le délai d'opposition est passé" in page and "fermer" in page
    assert patient_status(demo, person.id) == "registered"


def test_a_legal_representative_objects_for_a_child_with_their_own_nir(client: TestClient, demo: Services) -> None:
    with demo.db.unit_of_work() as db:
        parent = db.scalar(select(Patient).where(Patient.email == "laetitia.casanova@exemple.fr"))
        assert parent is not None
        parent_id, parent_ins = parent.id, parent.ins
    child = add_registered(demo, 1, "2B", with_email=True, start=700, attached_to=parent_id)[0]
    campaigns.start_campaign(demo, "2B", OPERATOR)
    campaigns.send_pending(demo)
    code = code_in(next(m for m in outbox_messages(demo) if m["To"] == child.email))  # type: ignore[index]

    response = submit(client, "/opposition", code, parent_ins, "14/03/1985")

    assert response.status_code == 200 and "Votre opposition est enregistrée" in text_of(response)
    with demo.db.unit_of_work() as db:
        entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "enrolment.objection"))
        assert entry is not None and entry.patient_id == child.id
        assert entry.actor_kind == "representative" and "CASANOVA" in entry.actor_label
        objection = db.scalar(select(Objection))
        assert objection is not None and "Représentant légal" in objection.recorded_by
