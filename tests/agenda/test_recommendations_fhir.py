"""AGD-2 over FHIR R4: ``ImmunizationRecommendation`` — the vaccines of the prevention calendar for one patient,
searched by INS (or ``Patient/<id>``) and read by id, with the three actors: the authorised professional (the GP's
software: Dr Ferracci is Marie-Ange's médecin traitant), the stranger professional (the dentist's software, never
authorised) and an establishment (the lab: no standing in a space), plus tokens, scopes and bad requests."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.immunizationrecommendation import ImmunizationRecommendation
from sqlalchemy import select

from carnet.agenda.model.prevention import evaluate, load_calendar
from carnet.bootstrap import Services
from carnet.hall.tables import AuditEntry
from carnet.hall.vocabulary import PARIS
from carnet.identity.service.clients import create_client
from carnet.storage.types import utcnow
from tests.support.actors import Feeders

INS_SYSTEM = "urn:oid:1.2.250.1.213.1.4.8"
URL = "/fhir/ImmunizationRecommendation"
STATUS_SYSTEM = "http://terminology.hl7.org/CodeSystem/immunization-recommendation-status"
MARIE_BIRTH = date(1985, 3, 14)


def today() -> date:
    return utcnow().astimezone(PARIS).date()


def search(feeders: Feeders, headers: dict[str, str], **params: str) -> Any:
    query = params or {"patient.identifier": f"{INS_SYSTEM}|{feeders.ins}"}
    return feeders.client.get(URL, params=query, headers=headers)


def outcome(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["resourceType"] == "OperationOutcome"
    issue: dict[str, Any] = body["issue"][0]
    return issue


def recommendations(response: Any) -> dict[str, dict[str, Any]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    bundle = response.json()
    Bundle.model_validate(bundle)
    assert bundle["type"] == "searchset" and bundle["total"] == 1
    resource = bundle["entry"][0]["resource"]
    ImmunizationRecommendation.model_validate(resource)
    return {r["vaccineCode"][0]["coding"][0]["code"]: r for r in resource["recommendation"]}


def immunization(ins: str, label: str, day: str) -> dict[str, Any]:
    return {
        "resourceType": "Immunization",
        "status": "completed",
        "patient": {"identifier": {"system": INS_SYSTEM, "value": ins}},
        "vaccineCode": {"text": label},
        "occurrenceDateTime": day,
    }


@pytest.fixture
def scoped(demo: Services, feeders: Feeders) -> Callable[[str], dict[str, str]]:
    """Tokens of the GP's software narrowed to some scopes."""
    with demo.db.unit_of_work() as db:
        app = create_client(db, "Logiciel du Dr Ferracci (portées réduites)", rpps="10001234567")

    def make(scope: str) -> dict[str, str]:
        data = {"grant_type": "client_credentials", "client_id": app.client_id, "client_secret": app.client_secret}
        response = feeders.client.post("/oauth/token", data={**data, "scope": scope})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    return make


def test_the_authorised_professional_gets_one_recommendation_per_vaccine(feeders: Feeders, demo: Services) -> None:
    found = recommendations(search(feeders, feeders.gp))
    expected = [s for s in evaluate(load_calendar(), MARIE_BIRTH, "F", today()) if s.kind == "vaccination"]
    assert list(found) == [s.code for s in expected] == ["VAC-ROR-1", "VAC-ROR-2"]
    ror = found["VAC-ROR-1"]
    assert ror["vaccineCode"][0]["text"] == "Rougeole, oreillons, rubéole (ROR) — 1re dose, à 12 mois"
    assert ror["vaccineCode"][0]["coding"][0]["system"] == "urn:carnet:prevention:2025"
    assert ror["forecastStatus"]["coding"][0] == {"system": STATUS_SYSTEM, "code": "overdue", "display": "Overdue"}
    assert ror["forecastStatus"]["text"] == "en retard"
    [criterion] = ror["dateCriterion"]
    assert (
        criterion["code"]["coding"][0]["code"] == "30980-7"
        and criterion["code"]["coding"][0]["system"] == "http://loinc.org"
    )
    assert criterion["value"] == "1986-03-14"
    assert (ror["doseNumberPositiveInt"], ror["seriesDosesPositiveInt"], ror["series"]) == (1, 2, "ROR")
    assert ror["description"].startswith("Rougeole") and "en retard (rattrapage), dose 1 sur 2" in ror["description"]
    assert "DEP-COL-UTERUS-HPV" not in found  # screenings are not vaccines
    bundle = search(feeders, feeders.gp).json()
    resource = bundle["entry"][0]["resource"]
    assert resource["patient"] == {
        "reference": f"Patient/{feeders.patient_id}",
        "identifier": {"system": INS_SYSTEM, "value": feeders.ins},
    }
    assert bundle["entry"][0]["fullUrl"].endswith(f"{URL}/prevention-{feeders.patient_id}")
    with demo.db.unit_of_work() as db:
        reads = db.scalars(
            select(AuditEntry).where(
                AuditEntry.patient_id == feeders.patient_id, AuditEntry.action == "prevention.read"
            )
        ).all()
    assert len(reads) == 2 and reads[-1].details == {"fhir": "ImmunizationRecommendation"}
    assert reads[-1].actor_kind == "professional"


def test_an_immunization_recorded_over_fhir_completes_its_dose(feeders: Feeders) -> None:
    created = feeders.client.post(
        "/fhir/Immunization",
        content=json.dumps(immunization(feeders.ins, "ROR VaxPro", "1986-05-20")),
        headers={**feeders.gp, "Content-Type": "application/fhir+json"},
    )
    assert created.status_code == 201, created.text
    found = recommendations(search(feeders, feeders.gp))
    assert found["VAC-ROR-1"]["forecastStatus"]["coding"][0]["code"] == "complete"
    assert "fait le 20/05/1986 (profil médical)" in found["VAC-ROR-1"]["description"]
    assert "dateCriterion" not in found["VAC-ROR-1"]
    assert found["VAC-ROR-2"]["forecastStatus"]["coding"][0]["code"] == "overdue"


def test_the_patient_reference_and_the_read_give_the_same_resource(feeders: Feeders) -> None:
    by_ins = recommendations(search(feeders, feeders.gp))
    by_id = recommendations(search(feeders, feeders.gp, patient=feeders.patient_id))
    assert by_ins == by_id
    by_reference = recommendations(search(feeders, feeders.gp, patient=f"Patient/{feeders.patient_id}"))
    assert by_reference == by_id
    read = feeders.client.get(f"{URL}/prevention-{feeders.patient_id}", headers=feeders.gp)
    assert read.status_code == 200, read.text
    ImmunizationRecommendation.model_validate(read.json())
    assert [r["vaccineCode"][0]["coding"][0]["code"] for r in read.json()["recommendation"]] == list(by_id)


def test_the_stranger_professional_and_the_establishment_are_refused(feeders: Feeders) -> None:
    issue = outcome(search(feeders, feeders.dentist), 403)
    assert issue["code"] == "forbidden" and "ne vous a pas autorisé" in issue["diagnostics"]
    assert issue["expression"] == ["patient.identifier"]
    assert outcome(search(feeders, feeders.lab), 403)["code"] == "forbidden"
    for headers in (feeders.dentist, feeders.lab):  # reading by id: the same 404 as an unknown id
        read = feeders.client.get(f"{URL}/prevention-{feeders.patient_id}", headers=headers)
        assert outcome(read, 404)["code"] == "not-found"
        assert "Rougeole" not in read.text


def test_tokens_and_scopes(feeders: Feeders, scoped: Callable[[str], dict[str, str]]) -> None:
    assert outcome(search(feeders, {}), 401)["code"] == "login"
    assert outcome(search(feeders, {"Authorization": "Bearer faux"}), 401)["code"] == "login"
    other = scoped("system/Immunization.rs")
    issue = outcome(search(feeders, other), 403)
    assert "system/ImmunizationRecommendation.s" in issue["diagnostics"]
    read_only = scoped("system/ImmunizationRecommendation.r")
    assert outcome(search(feeders, read_only), 403)["code"] == "forbidden"
    assert feeders.client.get(f"{URL}/prevention-{feeders.patient_id}", headers=read_only).status_code == 200
    assert recommendations(search(feeders, scoped("system/ImmunizationRecommendation.s")))


@pytest.mark.parametrize(
    ("params", "status", "code", "where"),
    [
        ({}, 400, "required", "patient.identifier"),
        ({"patient.identifier": "123"}, 400, "required", "patient.identifier"),
        ({"patient.identifier": "urn:oid:1.2.3|123"}, 400, "required", "patient.identifier"),
        ({"patient.identifier": f"{INS_SYSTEM}|999999999999999"}, 404, "not-found", "patient.identifier"),
        ({"patient": "Patient/inconnu"}, 404, "not-found", "patient"),
        ({"patient": "Observation/1"}, 400, "invalid", "patient"),
        ({"vaccine-type": "ROR"}, 400, "not-supported", "vaccine-type"),
    ],
)
def test_bad_searches_are_operation_outcomes_in_french(
    feeders: Feeders, params: dict[str, str], status: int, code: str, where: str
) -> None:
    query = params or {"_format": "json"}
    issue = outcome(feeders.client.get(URL, params=query, headers=feeders.gp), status)
    assert issue["code"] == code and issue.get("expression", [where]) == [where]
    assert issue["diagnostics"][:1].isupper()


def test_unknown_ids_are_404(feeders: Feeders) -> None:
    for resource_id in ("inconnu", "prevention-00000000-0000-0000-0000-000000000000", "prevention-é", "x" * 70):
        response = feeders.client.get(f"{URL}/{resource_id}", headers=feeders.gp)
        assert outcome(response, 404)["code"] == "not-found"


def test_vaccinations_entered_by_the_patient_count_too(feeders: Feeders, demo: Services) -> None:
    """Both ROR doses written in the portal by the patient (« ROR », « Priorix »): both complete."""
    from carnet.hall.actors import Actor, ActorKind
    from carnet.people.tables import Account
    from carnet.profile.service import portal

    with demo.db.unit_of_work() as db:
        account = db.scalar(select(Account).where(Account.patient_id == feeders.patient_id))
        assert account is not None
        me = Actor(ActorKind.PATIENT, account.id, account.display_name, patient_id=feeders.patient_id)
    for label, dose in (("ROR", "1986-04-01"), ("Priorix", "1986-08-01")):
        portal.add_item(demo, me, feeders.patient_id, "vaccinations", {"label": label, "date": dose})
    found = recommendations(search(feeders, feeders.gp))
    assert {code: r["forecastStatus"]["coding"][0]["code"] for code, r in found.items()} == {
        "VAC-ROR-1": "complete",
        "VAC-ROR-2": "complete",
    }


def test_the_capability_statement_lists_the_recommendation(feeders: Feeders) -> None:
    body = feeders.client.get("/fhir/metadata").json()
    resources = {r["type"]: r for r in body["rest"][0]["resource"]}
    declared = resources["ImmunizationRecommendation"]
    assert {i["code"] for i in declared["interaction"]} == {"read", "search-type"}
    assert {p["name"] for p in declared["searchParam"]} == {"patient.identifier", "patient"}
