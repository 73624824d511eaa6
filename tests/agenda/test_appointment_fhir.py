"""AGD-1 over FHIR R4: ``Appointment`` create, read and search with client-credentials tokens, with the three
actors — the GP's software (Dr Ferracci, Marie-Ange's médecin traitant), the dentist's software (a stranger, never
authorised: it may still give an appointment, and reads back only its own), and the patient, who sees in her
agenda what the professional sent; bad dates, an end before the start, scopes, the CapabilityStatement."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from carnet.agenda.model import events as rules
from carnet.agenda.service import portal
from carnet.agenda.tables import AgendaEvent
from carnet.bootstrap import Services
from carnet.hall.actors import Actor, ActorKind
from carnet.hall.tables import AuditEntry
from carnet.identity.service.clients import create_client
from carnet.people.tables import Account
from tests.support.actors import Actors, Feeders, bearer

INS_SYSTEM = "urn:oid:1.2.250.1.213.1.4.8"
FHIR = {"Content-Type": "application/fhir+json"}
START = datetime(2031, 3, 10, 13, 30, tzinfo=UTC)  # 14:30 in Paris


def appointment(ins: str, **overrides: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Appointment",
        "status": "booked",
        "description": "Consultation de suivi du diabète",
        "start": START.isoformat(),
        "end": (START + timedelta(minutes=30)).isoformat(),
        "comment": "Apporter le carnet de glycémie.",
        "participant": [
            {"actor": {"identifier": {"system": INS_SYSTEM, "value": ins}}, "status": "accepted"},
            {
                "actor": {"reference": "Practitioner/10001234567", "display": "Dr Jean-Baptiste FERRACCI"},
                "status": "accepted",
            },
            {"actor": {"reference": "Location/cabinet", "display": "12 cours Napoléon, Ajaccio"}, "status": "accepted"},
        ],
    }
    resource.update(overrides)
    return resource


def outcome(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    return body["issue"][0]  # type: ignore[no-any-return]


def count(services: Services) -> int:
    with services.db.unit_of_work() as db:
        return int(db.scalar(select(func.count()).select_from(AgendaEvent)) or 0)


def marie(services: Services) -> Actor:
    with services.db.unit_of_work() as db:
        account = db.scalar(select(Account).where(Account.login == "marie-ange.santoni"))
        assert account is not None and account.patient_id
        return Actor(ActorKind.PATIENT, account.id, account.display_name, patient_id=account.patient_id)


def create(feeders: Feeders, headers: dict[str, str], **overrides: Any) -> Any:
    return feeders.client.post(
        "/fhir/Appointment", json=appointment(feeders.ins, **overrides), headers={**headers, **FHIR}
    )


def search(feeders: Feeders, headers: dict[str, str], query: str = "") -> Any:
    return feeders.client.get(
        f"/fhir/Appointment?patient.identifier={INS_SYSTEM}|{feeders.ins}{query}", headers=headers
    )


def test_the_gps_software_round_trips_an_appointment(feeders: Feeders, demo: Services) -> None:
    created = create(feeders, feeders.gp)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["resourceType"] == "Appointment" and body["status"] == "booked"
    assert created.headers["location"].endswith(f"/fhir/Appointment/{body['id']}/_history/1")
    assert created.headers["etag"] == 'W/"1"' and body["meta"]["versionId"] == "1"
    patient = body["participant"][0]["actor"]
    assert patient["reference"] == f"Patient/{feeders.patient_id}" and patient["identifier"]["value"] == feeders.ins
    read = feeders.client.get(f"/fhir/Appointment/{body['id']}", headers=feeders.gp)
    assert read.status_code == 200 and read.json()["description"] == "Consultation de suivi du diabète"
    assert read.json()["start"] == START.isoformat()
    found = search(feeders, feeders.gp).json()
    assert found["resourceType"] == "Bundle" and found["total"] == 1
    assert found["entry"][0]["resource"]["id"] == body["id"]
    # what the patient reads in her agenda
    view = portal.event_page(demo, marie(demo), feeders.patient_id, body["id"]).event
    assert view.title == "Consultation de suivi du diabète" and view.with_whom == "Dr Jean-Baptiste FERRACCI"
    assert view.place == "12 cours Napoléon, Ajaccio" and view.comment == "Apporter le carnet de glycémie."
    assert view.source == "professional" and view.hours == "14:30 – 15:00"
    with demo.db.unit_of_work() as db:
        actions = set(db.scalars(select(AuditEntry.action).where(AuditEntry.patient_id == feeders.patient_id)))
    assert {"agenda.write", "agenda.read"} <= actions


def test_a_stranger_professional_sees_nothing_of_the_patients_own_appointments(
    feeders: Feeders, demo: Services
) -> None:
    portal.add(demo, marie(demo), feeders.patient_id, rules.TypedEvent(title="Privé", day="2031-03-11", start="09:00"))
    mine = create(feeders, feeders.gp).json()["id"]
    assert search(feeders, feeders.dentist).json()["total"] == 0  # neither hers nor the GP's
    assert search(feeders, feeders.gp).json()["total"] == 1  # the GP: only what he gave
    refused = feeders.client.get(f"/fhir/Appointment/{mine}", headers=feeders.dentist)
    assert outcome(refused, 404)["code"] == "not-found"
    # the stranger may give an appointment (any open space) and reads back only its own
    given = create(feeders, feeders.dentist, description="Détartrage")
    assert given.status_code == 201
    found = search(feeders, feeders.dentist).json()
    assert found["total"] == 1 and found["entry"][0]["resource"]["description"] == "Détartrage"
    with demo.db.unit_of_work() as db:
        own = db.scalar(select(AgendaEvent.id).where(AgendaEvent.source == "patient"))
    assert outcome(feeders.client.get(f"/fhir/Appointment/{own}", headers=feeders.gp), 404)["code"] == "not-found"


def test_search_by_date_prefixes_partial_dates_status_and_pages(feeders: Feeders) -> None:
    for days in (0, 40, 400):
        start = START + timedelta(days=days)
        response = create(feeders, feeders.gp, start=start.isoformat(), end=(start + timedelta(hours=1)).isoformat())
        assert response.status_code == 201
    create(feeders, feeders.gp, status="cancelled")

    def total(query: str) -> int:
        response = search(feeders, feeders.gp, query)
        assert response.status_code == 200, response.text
        return int(response.json()["total"])

    assert total("") == 4
    assert total("&date=2031-03") == 2  # a partial date: the month (the booked one and the cancelled one)
    assert total("&date=ge2031-04-01") == 2
    assert total("&date=lt2031-04-01") == 2
    assert total("&date=gt2031-03-10&date=le2031-12-31") == 1
    assert total("&date=eq2031-03-10T13:30:00Z") == 2
    assert total("&date=2032") == 1
    assert total("&status=cancelled") == 1 and total("&status=booked,proposed") == 3
    page = search(feeders, feeders.gp, "&_count=2&_offset=1").json()
    assert page["total"] == 4 and len(page["entry"]) == 2
    assert {link["relation"] for link in page["link"]} == {"self", "next", "previous"}
    cancelled = search(feeders, feeders.gp, "&status=cancelled").json()["entry"][0]["resource"]
    assert cancelled["status"] == "cancelled"
    by_reference = feeders.client.get(f"/fhir/Appointment?patient={feeders.patient_id}", headers=feeders.gp)
    assert by_reference.json()["total"] == 4


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("&date=2031-13", "invalid"),
        ("&date=xx2031", "invalid"),
        ("&date=ne2031", "not-supported"),
        ("&date=demain", "invalid"),
        ("&status=peut-etre", "invalid"),
        ("&_count=1000", "invalid"),
        ("&inconnu=1", "not-supported"),
    ],
)
def test_bad_search_parameters_are_400(feeders: Feeders, query: str, code: str) -> None:
    assert outcome(search(feeders, feeders.gp, query), 400)["code"] == code
    missing = feeders.client.get("/fhir/Appointment", headers=feeders.gp)
    assert outcome(missing, 400)["expression"] == ["patient.identifier"]


@pytest.mark.parametrize(
    ("overrides", "status", "where"),
    [
        ({"start": "2031-03-10"}, 400, "Appointment.start"),  # not an instant
        ({"start": "pas une date"}, 400, "Appointment.start"),
        ({"start": None}, 400, "Appointment.start"),
        ({"end": (START - timedelta(hours=1)).isoformat()}, 422, "Appointment.end"),
        ({"end": START.isoformat()}, 422, "Appointment.end"),
        ({"start": "1850-01-01T10:00:00Z", "end": None}, 422, "Appointment.start"),
        ({"status": "entered-in-error"}, 400, "Appointment.status"),
        ({"description": "x" * 300}, 422, "Appointment.description"),
        ({"participant": [{"actor": {"display": "Dr X"}, "status": "accepted"}]}, 400, "Appointment.participant.actor"),
    ],
)
def test_what_cannot_be_kept_is_an_operation_outcome(
    feeders: Feeders, demo: Services, overrides: dict[str, Any], status: int, where: str
) -> None:
    resource = appointment(feeders.ins, **overrides)
    resource = {k: v for k, v in resource.items() if v is not None}
    response = feeders.client.post("/fhir/Appointment", json=resource, headers={**feeders.gp, **FHIR})
    issue = outcome(response, status)
    assert any(where in path for path in issue.get("expression", [where])), issue
    assert issue["diagnostics"] and count(demo) == 0


def test_the_body_is_checked_before_anything_is_kept(feeders: Feeders, demo: Services) -> None:
    send = feeders.client.post
    assert outcome(send("/fhir/Appointment", content=b"pas du json", headers={**feeders.gp, **FHIR}), 400)
    wrong = send("/fhir/Appointment", json={"resourceType": "Patient"}, headers={**feeders.gp, **FHIR})
    assert outcome(wrong, 400)["expression"] == ["resourceType"]
    unknown = appointment("999999999999999")
    assert outcome(send("/fhir/Appointment", json=unknown, headers={**feeders.gp, **FHIR}), 404)["code"] == "not-found"
    huge = b'{"resourceType":"Appointment","comment":"' + b"x" * (1024 * 1024 + 10) + b'"}'
    assert outcome(send("/fhir/Appointment", content=huge, headers={**feeders.gp, **FHIR}), 413)
    assert count(demo) == 0


def test_tokens_and_scopes(feeders: Feeders, demo: Services) -> None:
    assert outcome(feeders.client.get("/fhir/Appointment/x"), 401)["code"] == "login"
    with demo.db.unit_of_work() as db:
        app = create_client(db, "Logiciel en lecture seule", rpps="10001234567")
    response = feeders.client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": app.client_id,
            "client_secret": app.client_secret,
            "scope": "system/Appointment.rs",
        },
    )
    readonly = {"Authorization": f"Bearer {response.json()['access_token']}"}
    assert outcome(create(feeders, readonly), 403)["code"] == "forbidden"
    assert search(feeders, readonly).status_code == 200
    assert count(demo) == 0
    statement = feeders.client.get("/fhir/metadata").json()
    [kind] = [r for r in statement["rest"][0]["resource"] if r["type"] == "Appointment"]
    assert {i["code"] for i in kind["interaction"]} == {"create", "read", "search-type"}
    assert {p["name"] for p in kind["searchParam"]} >= {"patient.identifier", "date", "status"}


def test_the_patient_cancels_and_the_software_reads_it_cancelled(
    feeders: Feeders, demo: Services, new_client: Callable[[], TestClient]
) -> None:
    created = create(feeders, feeders.gp).json()
    portal.cancel(demo, marie(demo), feeders.patient_id, created["id"])
    read = feeders.client.get(f"/fhir/Appointment/{created['id']}", headers=feeders.gp).json()
    assert read["status"] == "cancelled" and read["meta"]["versionId"] == "2"
    assert date.fromisoformat(read["meta"]["lastUpdated"][:10]) >= date(2026, 1, 1)
    assert new_client is not None


def test_the_portal_and_fhir_tell_the_same_appointment(actors: Actors, demo: Services) -> None:
    """An appointment typed in the professional's portal reads the same over FHIR (built from what was typed)."""
    with demo.db.unit_of_work() as db:
        gp = create_client(db, "Logiciel du Dr Ferracci", rpps="10001234567")
    headers = bearer(actors.professional, gp.client_id, gp.client_secret)
    doctor_page = actors.professional.get(f"/pro/patients/{actors.patient_id}/agenda")
    token = doctor_page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    typed = {
        "titre": "Vaccin",
        "date": "2031-05-02",
        "debut": "",
        "journee": "oui",
        "avec": "",
        "lieu": "",
        "csrf_token": token,
    }
    assert actors.professional.post(f"/pro/patients/{actors.patient_id}/agenda", data=typed).status_code == 303
    found = actors.professional.get(f"/fhir/Appointment?patient={actors.patient_id}", headers=headers).json()
    [resource] = [e["resource"] for e in found["entry"]]
    assert resource["description"] == "Vaccin" and resource["status"] == "booked"
    assert resource["start"] == "2031-05-01T22:00:00+00:00" and resource["end"] == "2031-05-02T22:00:00+00:00"
