"""PRF-3: the medical profile over FHIR R4 with client-credentials tokens — create, read and search of the six
resource types, with the three actors: the patient's authorised professional (the GP's software: Dr Ferracci is
Marie-Ange's médecin traitant), a stranger professional (the dentist's software: never authorised), and the
patient, who sees in her portal what the professional sent."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from carnet.bootstrap import Services
from carnet.hall.actors import Actor, ActorKind
from carnet.hall.tables import AuditEntry
from carnet.identity.service.clients import create_client
from carnet.people.tables import Account
from carnet.profile.service import portal
from carnet.profile.tables import ProfileEntry
from tests.support.actors import Feeders, bearer

INS_SYSTEM = "urn:oid:1.2.250.1.213.1.4.8"
FHIR = {"Content-Type": "application/fhir+json"}
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
ATC = "http://www.whocc.no/atc"
ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
PATIENT_ELEMENT = {
    "Observation": "subject",
    "Condition": "subject",
    "MedicationStatement": "subject",
    "AllergyIntolerance": "patient",
    "FamilyMemberHistory": "patient",
    "Immunization": "patient",
}


def _recent(days: int = 1) -> str:
    """Noon (UTC) ``days`` ago: the same day in Paris and in UTC."""
    return (datetime.now(UTC) - timedelta(days=days)).replace(hour=12, minute=0, second=0, microsecond=0).isoformat()


def make(kind: str, ins: str, **overrides: Any) -> dict[str, Any]:
    """One resource of each type as a professional's software sends it."""
    patient = {"identifier": {"system": INS_SYSTEM, "value": ins}}
    resources: dict[str, dict[str, Any]] = {
        "Observation": {
            "status": "final",
            "category": [
                {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}
                    ]
                }
            ],
            "code": {"coding": [{"system": LOINC, "code": "29463-7", "display": "Body weight"}]},
            "effectiveDateTime": _recent(),
            "valueQuantity": {"value": 72.5, "unit": "kg", "system": UCUM, "code": "kg"},
        },
        "AllergyIntolerance": {
            "clinicalStatus": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active"}
                ]
            },
            "code": {"coding": [{"system": SNOMED, "code": "373270004", "display": "Pénicilline"}]},
            "onsetDateTime": "2015-06-01",
            "reaction": [{"manifestation": [{"text": "Urticaire"}], "severity": "moderate"}],
        },
        "Condition": {
            "clinicalStatus": {
                "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]
            },
            "code": {"coding": [{"system": ICD10, "code": "I10", "display": "Hypertension artérielle"}]},
            "onsetDateTime": "2019-04-12",
        },
        "FamilyMemberHistory": {
            "status": "completed",
            "relationship": {"coding": [{"system": ROLE_CODE, "code": "MTH"}]},
            "condition": [{"code": {"coding": [{"system": ICD10, "code": "E11", "display": "Diabète de type 2"}]}}],
            "date": "2023-01-10",
        },
        "MedicationStatement": {
            "status": "active",
            "medicationCodeableConcept": {
                "coding": [{"system": ATC, "code": "C08CA01", "display": "Amlodipine"}],
                "text": "Amlodipine 5 mg",
            },
            "effectivePeriod": {"start": "2019-05-01"},
            "dosage": [{"text": "1 comprimé le matin"}],
        },
        "Immunization": {
            "status": "completed",
            "vaccineCode": {"coding": [{"system": ATC, "code": "J07CA01", "display": "Revaxis"}]},
            "occurrenceDateTime": "2021-09-15",
            "lotNumber": "X123",
            "protocolApplied": [{"doseNumberPositiveInt": 2}],
        },
    }
    return {"resourceType": kind, PATIENT_ELEMENT[kind]: patient, **resources[kind], **overrides}


# What each sample is filed under (its code and its day) and what the patient reads of it in her portal.
SAMPLES = {
    "Observation": (f"{LOINC}|29463-7", None, "Poids"),
    "AllergyIntolerance": (f"{SNOMED}|373270004", "2015-06-01", "Pénicilline"),
    "Condition": (f"{ICD10}|I10", "2019-04-12", "Hypertension artérielle"),
    "FamilyMemberHistory": (f"{ICD10}|E11", "2023-01-10", "Diabète de type 2"),
    "MedicationStatement": (f"{ATC}|C08CA01", "2019-05-01", "Amlodipine 5 mg"),
    "Immunization": (f"{ATC}|J07CA01", "2021-09-15", "Revaxis"),
}
SECTIONS = {
    "AllergyIntolerance": "allergies",
    "Condition": "conditions",
    "FamilyMemberHistory": "family_history",
    "MedicationStatement": "treatments",
    "Immunization": "vaccinations",
}


def post(f: Feeders, headers: dict[str, str], resource: dict[str, Any]) -> Any:
    return f.client.post(f"/fhir/{resource['resourceType']}", json=resource, headers={**headers, **FHIR})


def created(f: Feeders, headers: dict[str, str], resource: dict[str, Any]) -> dict[str, Any]:
    response = post(f, headers, resource)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def search(f: Feeders, headers: dict[str, str], kind: str, **params: str) -> dict[str, Any]:
    response = f.client.get(
        f"/fhir/{kind}", params={"patient.identifier": f"{INS_SYSTEM}|{f.ins}", **params}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def ids(bundle: dict[str, Any]) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", [])]


def outcome(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    return body["issue"][0]  # type: ignore[no-any-return]


def marie(services: Services) -> Actor:
    with services.db.unit_of_work() as db:
        account = db.scalar(select(Account).where(Account.login == "marie-ange.santoni"))
        assert account is not None and account.patient_id
        return Actor(ActorKind.PATIENT, account.id, account.display_name, patient_id=account.patient_id)


def count(services: Services, model: type) -> int:
    with services.db.unit_of_work() as db:
        return int(db.scalar(select(func.count()).select_from(model)) or 0)


def token(client: TestClient, client_id: str, secret: str, scope: str | None = None) -> dict[str, str]:
    data = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    response = client.post("/oauth/token", data={**data, **({"scope": scope} if scope else {})})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture
def pharmacist(demo: Services, feeders: Feeders) -> dict[str, str]:
    """The software of Marie-Ange's pharmacist: authorised (consent), but a pharmacist's row of the matrix has no
    family history."""
    with demo.db.unit_of_work() as db:
        app = create_client(db, "Logiciel de la pharmacie Peretti", rpps="10002345678")
    return bearer(feeders.client, app.client_id, app.client_secret)


@pytest.fixture
def scoped(demo: Services, feeders: Feeders) -> Callable[[str], dict[str, str]]:
    """Tokens of the GP's software narrowed to some scopes."""
    with demo.db.unit_of_work() as db:
        app = create_client(db, "Logiciel du Dr Ferracci (portées réduites)", rpps="10001234567")

    def make_token(scope: str) -> dict[str, str]:
        return token(feeders.client, app.client_id, app.client_secret, scope)

    return make_token


# ------------------------------------------------------------------ round trips, three actors


@pytest.mark.parametrize("kind", list(SAMPLES))
def test_each_type_round_trips_for_the_authorised_professional(kind: str, feeders: Feeders, demo: Services) -> None:
    response = post(feeders, feeders.gp, make(kind, feeders.ins))
    assert response.status_code == 201, response.text
    body = response.json()
    entry_id = body["id"]
    assert body["resourceType"] == kind and body["meta"]["versionId"] == "1" and body["meta"]["lastUpdated"]
    assert body[PATIENT_ELEMENT[kind]]["identifier"] == {"system": INS_SYSTEM, "value": feeders.ins}
    assert response.headers["ETag"] == 'W/"1"'
    assert response.headers["Location"].endswith(f"/fhir/{kind}/{entry_id}/_history/1")
    assert response.headers["content-type"].startswith("application/fhir+json")

    read = feeders.client.get(f"/fhir/{kind}/{entry_id}", headers=feeders.gp)
    assert read.status_code == 200 and read.headers["ETag"] == 'W/"1"'
    assert read.json() == body

    code, day, _ = SAMPLES[kind]
    day = day or body["effectiveDateTime"][:10]
    assert ids(search(feeders, feeders.gp, kind)) == [entry_id]
    found = search(feeders, feeders.gp, kind, code=code, date=day)
    assert found["total"] == 1 and ids(found) == [entry_id]
    assert found["entry"][0]["fullUrl"].endswith(f"/fhir/{kind}/{entry_id}")
    assert found["entry"][0]["search"] == {"mode": "match"}
    assert found["entry"][0]["resource"] == body
    system, _, bare = code.partition("|")
    assert search(feeders, feeders.gp, kind, code=bare)["total"] == 1
    assert search(feeders, feeders.gp, kind, code=f"|{bare}")["total"] == 1
    assert search(feeders, feeders.gp, kind, code=f"{system}|0000-0,{code}")["total"] == 1  # OR
    assert search(feeders, feeders.gp, kind, code=f"http://autre.example|{bare}")["total"] == 0
    assert search(feeders, feeders.gp, kind, date=f"lt{day}")["total"] == 0
    assert search(feeders, feeders.gp, kind, date=f"ge{day[:4]}")["total"] == 1
    by_reference = feeders.client.get(
        f"/fhir/{kind}", params={"patient": f"Patient/{feeders.patient_id}"}, headers=feeders.gp
    )
    assert ids(by_reference.json()) == [entry_id]
    # history: the write and the reads, in the patient's chain
    with demo.db.unit_of_work() as db:
        rows = db.scalars(select(AuditEntry).where(AuditEntry.patient_id == feeders.patient_id)).all()
        written = [r for r in rows if r.action == "profile.write"]
        assert [(r.resource_id, r.details, r.outcome) for r in written] == [
            (entry_id, {"fhir": kind, "op": "add"}, "allow")
        ]
        assert any(r.action == "profile.read" and r.resource_id == entry_id for r in rows)
        assert any(r.action == "profile.read" and r.resource_id is None and r.details == {"fhir": kind} for r in rows)


@pytest.mark.parametrize("kind", list(SAMPLES))
def test_a_stranger_professional_neither_reads_nor_finds_nor_counts(kind: str, feeders: Feeders) -> None:
    entry_id = created(feeders, feeders.gp, make(kind, feeders.ins))["id"]
    unknown = feeders.client.get(f"/fhir/{kind}/00000000-0000-0000-0000-000000000000", headers=feeders.dentist)
    read = feeders.client.get(f"/fhir/{kind}/{entry_id}", headers=feeders.dentist)
    outcome(read, 404)
    assert read.json() == unknown.json()  # the same answer as an entry that does not exist
    code, _, _ = SAMPLES[kind]
    for params in ({}, {"code": code}):
        found = search(feeders, feeders.dentist, kind, **params)
        assert found["total"] == 0 and "entry" not in found
    # what the stranger sends is kept (professionals feed any open space) and they find that only
    own = created(feeders, feeders.dentist, make(kind, feeders.ins))["id"]
    assert ids(search(feeders, feeders.dentist, kind)) == [own]
    assert sorted(ids(search(feeders, feeders.gp, kind))) == sorted([entry_id, own])


@pytest.mark.parametrize("kind", list(SAMPLES))
def test_the_patient_sees_in_her_portal_what_the_professional_sent(kind: str, feeders: Feeders, demo: Services) -> None:
    entry_id = created(feeders, feeders.gp, make(kind, feeders.ins))["id"]
    person = marie(demo)
    assert person.patient_id == feeders.patient_id
    _, _, label = SAMPLES[kind]
    if kind == "Observation":
        page = portal.measure_page(demo, person, feeders.patient_id, "weight")
        assert [(p.id, p.value, p.source) for p in page.points] == [(entry_id, 72.5, "professional")]
        latest = {m.measure.key: m for m in portal.overview(demo, person, feeders.patient_id).measures}
        assert latest["weight"].text == "72,5 kg"
        return
    overview = portal.overview(demo, person, feeders.patient_id)
    section = next(s for s in overview.sections if s.section.key == SECTIONS[kind])
    assert [(i.id, i.fields["label"], i.source, i.author_label) for i in section.items] == [
        (entry_id, label, "professional", "Dr Jean-Baptiste FERRACCI")
    ]


def test_what_the_patient_typed_is_served_as_a_valid_resource(feeders: Feeders, demo: Services) -> None:
    from fhir.resources.R4B.condition import Condition
    from fhir.resources.R4B.observation import Observation

    person = marie(demo)
    portal.add_item(demo, person, feeders.patient_id, "conditions", {"label": "Asthme", "since": "2010-02-03"})
    portal.add_measure(
        demo, person, feeders.patient_id, "blood_pressure", portal.MeasureInput(systolic="131", diastolic="85")
    )
    condition = search(feeders, feeders.gp, "Condition")["entry"][0]["resource"]
    Condition.model_validate(condition)
    assert condition["code"]["text"] == "Asthme" and condition["onsetDateTime"] == "2010-02-03"
    assert search(feeders, feeders.gp, "Condition", date="2010-02")["total"] == 1
    pressure = search(feeders, feeders.gp, "Observation", code="85354-9")["entry"][0]["resource"]
    Observation.model_validate(pressure)
    assert [(c["code"]["coding"][0]["code"], c["valueQuantity"]["value"]) for c in pressure["component"]] == [
        ("8480-6", 131.0),
        ("8462-4", 85.0),
    ]


def test_a_professional_whose_profession_does_not_read_the_section_counts_nothing(
    feeders: Feeders, pharmacist: dict[str, str], demo: Services
) -> None:
    """The pharmacist is authorised, but family history is not in a pharmacist's row of the matrix; the weight is.
    A masked item is hidden from her too, not from the médecin traitant."""
    history = created(feeders, feeders.gp, make("FamilyMemberHistory", feeders.ins))["id"]
    weight = created(feeders, feeders.gp, make("Observation", feeders.ins))["id"]
    condition = created(feeders, feeders.gp, make("Condition", feeders.ins))["id"]
    assert search(feeders, pharmacist, "FamilyMemberHistory") == {
        **search(feeders, pharmacist, "FamilyMemberHistory"),
        "total": 0,
    }
    assert "entry" not in search(feeders, pharmacist, "FamilyMemberHistory")
    outcome(feeders.client.get(f"/fhir/FamilyMemberHistory/{history}", headers=pharmacist), 404)
    assert ids(search(feeders, pharmacist, "Observation")) == [weight]
    assert ids(search(feeders, pharmacist, "Condition")) == [condition]
    portal.set_masked(demo, marie(demo), feeders.patient_id, condition, True)
    assert search(feeders, pharmacist, "Condition")["total"] == 0
    outcome(feeders.client.get(f"/fhir/Condition/{condition}", headers=pharmacist), 404)
    assert ids(search(feeders, feeders.gp, "Condition")) == [condition]


def test_read_of_another_type_or_an_odd_id_is_the_same_404(feeders: Feeders) -> None:
    weight = created(feeders, feeders.gp, make("Observation", feeders.ins))["id"]
    other_type = feeders.client.get(f"/fhir/Condition/{weight}", headers=feeders.gp)
    issue = outcome(other_type, 404)
    assert issue["code"] == "not-found"
    for odd in ("x" * 300, "inexistant", "%00"):
        assert feeders.client.get(f"/fhir/Observation/{odd}", headers=feeders.gp).json() == other_type.json()


# ------------------------------------------------------------------ measures: units, ranges, the panel


def test_an_implausible_value_is_422_with_the_range_and_nothing_is_written(feeders: Feeders, demo: Services) -> None:
    audit_before = count(demo, AuditEntry)
    response = post(
        feeders,
        feeders.gp,
        make("Observation", feeders.ins, valueQuantity={"value": 720, "unit": "kg", "system": UCUM, "code": "kg"}),
    )
    issue = outcome(response, 422)
    assert issue["diagnostics"] == "Poids : la valeur doit être comprise entre 0,2 et 650 kg."
    assert issue["expression"] == ["Observation.valueQuantity.value"]
    assert "720" not in response.text
    assert count(demo, ProfileEntry) == 0 and count(demo, AuditEntry) == audit_before


def test_unknown_codes_and_units_are_400(feeders: Feeders, demo: Services) -> None:
    unknown_code = make("Observation", feeders.ins, code={"coding": [{"system": LOINC, "code": "1234-5"}]})
    issue = outcome(post(feeders, feeders.gp, unknown_code), 400)
    assert (
        issue["code"] == "code-invalid"
        and "1234-5" in issue["diagnostics"]
        and "29463-7 (Poids)" in issue["diagnostics"]
    )
    not_loinc = make("Observation", feeders.ins, code={"coding": [{"system": SNOMED, "code": "27113001"}]})
    assert outcome(post(feeders, feeders.gp, not_loinc), 400)["code"] == "required"
    pounds = make(
        "Observation", feeders.ins, valueQuantity={"value": 160, "unit": "lb", "system": UCUM, "code": "[lb_av]"}
    )
    issue = outcome(post(feeders, feeders.gp, pounds), 400)
    assert issue["diagnostics"] == "Poids : unité inconnue ; unités acceptées : kg, g."
    assert issue["expression"] == ["Observation.valueQuantity.code"]
    bmi = make("Observation", feeders.ins, code={"coding": [{"system": LOINC, "code": "39156-5"}]})
    assert outcome(post(feeders, feeders.gp, bmi), 422)["code"] == "business-rule"
    assert count(demo, ProfileEntry) == 0


def test_glucose_in_mg_per_dl_is_stored_in_g_per_l(feeders: Feeders, demo: Services) -> None:
    glucose = make(
        "Observation",
        feeders.ins,
        code={"coding": [{"system": LOINC, "code": "2345-7"}]},
        category=[
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}
        ],
        valueQuantity={"value": 180, "unit": "mg/dL", "system": UCUM, "code": "mg/dL"},
    )
    body = created(feeders, feeders.lab, glucose)
    assert body["valueQuantity"] == {"value": 180, "unit": "mg/dL", "system": UCUM, "code": "mg/dL"}  # as sent
    page = portal.measure_page(demo, marie(demo), feeders.patient_id, "glucose")
    assert [(p.value, p.unit_entered, p.source) for p in page.points] == [(1.8, "mg/dL", "establishment")]
    mmol = {**glucose, "valueQuantity": {"value": 5.5, "unit": "mmol/L", "system": UCUM, "code": "mmol/L"}}
    created(feeders, feeders.lab, mmol)
    values = sorted(p.value or 0 for p in portal.measure_page(demo, marie(demo), feeders.patient_id, "glucose").points)
    assert values == [0.9909, 1.8]
    found = search(feeders, feeders.lab, "Observation", code=f"{LOINC}|2345-7")
    assert found["total"] == 2


def _pressure(ins: str, systolic: float, diastolic: float, *, unit: str = "mm[Hg]") -> dict[str, Any]:
    def component(code: str, value: float) -> dict[str, Any]:
        return {
            "code": {"coding": [{"system": LOINC, "code": code}]},
            "valueQuantity": {"value": value, "unit": "mmHg", "system": UCUM, "code": unit},
        }

    resource = make(
        "Observation",
        ins,
        code={"coding": [{"system": LOINC, "code": "85354-9", "display": "Blood pressure panel"}]},
        component=[component("8480-6", systolic), component("8462-4", diastolic)],
    )
    del resource["valueQuantity"]
    return resource


def test_blood_pressure_is_one_panel_with_two_components(feeders: Feeders, demo: Services) -> None:
    body = created(feeders, feeders.gp, _pressure(feeders.ins, 128, 82))
    read = feeders.client.get(f"/fhir/Observation/{body['id']}", headers=feeders.gp).json()
    assert [(c["code"]["coding"][0]["code"], c["valueQuantity"]["value"]) for c in read["component"]] == [
        ("8480-6", 128),
        ("8462-4", 82),
    ]
    page = portal.measure_page(demo, marie(demo), feeders.patient_id, "blood_pressure")
    assert [p.components for p in page.points] == [{"systolic": 128.0, "diastolic": 82.0}]
    assert search(feeders, feeders.gp, "Observation", code="85354-9")["total"] == 1
    assert search(feeders, feeders.gp, "Observation", code="29463-7")["total"] == 0
    upside_down = _pressure(feeders.ins, 80, 120)
    assert "systolique" in outcome(post(feeders, feeders.gp, upside_down), 422)["diagnostics"]
    one_missing = {**upside_down, "component": upside_down["component"][:1]}
    assert outcome(post(feeders, feeders.gp, one_missing), 400)["expression"] == ["Observation.component"]
    too_high = _pressure(feeders.ins, 400, 80)
    issue = outcome(post(feeders, feeders.gp, too_high), 422)
    assert issue["diagnostics"].startswith("Tension artérielle (") and "entre" in issue["diagnostics"]
    assert count(demo, ProfileEntry) == 1


# ------------------------------------------------------------------ search: dates, paging, parameters


def test_date_prefixes_and_partial_dates_in_french_time(feeders: Feeders) -> None:
    moments = {
        "new_year": "2024-01-01T00:30:00+01:00",  # 2024 in Paris, still 2023 in UTC
        "last_year": "2023-12-31T12:00:00Z",
        "march": "2024-03-05T10:00:00Z",
        "july": "2024-07-20T08:00:00+02:00",
    }
    made = {
        name: created(feeders, feeders.gp, make("Observation", feeders.ins, effectiveDateTime=when))["id"]
        for name, when in moments.items()
    }

    def found(*dates: str) -> set[str]:
        params = [("patient.identifier", f"{INS_SYSTEM}|{feeders.ins}"), *(("date", d) for d in dates)]
        response = feeders.client.get("/fhir/Observation", params=params, headers=feeders.gp)
        assert response.status_code == 200, response.text
        return {name for name, id_ in made.items() if id_ in ids(response.json())}

    assert found("2024") == {"new_year", "march", "july"}
    assert found("eq2023") == {"last_year"}
    assert found("2024-03") == {"march"}
    assert found("2024-03-05") == {"march"}
    assert found("2024-01-01") == {"new_year"}
    assert found("gt2024-03") == {"july"}
    assert found("sa2024-03-05") == {"july"}
    assert found("ge2024-03-05") == {"march", "july"}
    assert found("lt2024") == {"last_year"}
    assert found("eb2024-01-01") == {"last_year"}
    assert found("le2024-03-05") == {"last_year", "new_year", "march"}
    assert found("ge2024", "lt2024-07") == {"new_year", "march"}
    assert found("2024-03-05T10:00:00Z") == {"march"}
    assert found("2024-03-05T11:00:00+01:00") == {"march"}  # the « + » encoded by the client
    assert found("ge2024-03-05T10:00:01Z") == {"july"}
    assert found("ge2024-07", "lt2024-03") == set()
    for unsupported in ("ne2024", "ap2024"):
        response = feeders.client.get(
            "/fhir/Observation",
            params={"patient.identifier": f"{INS_SYSTEM}|{feeders.ins}", "date": unsupported},
            headers=feeders.gp,
        )
        issue = outcome(response, 400)
        assert issue["code"] == "not-supported" and "n'est pas pris en charge" in issue["diagnostics"]


def test_paging_follows_next_and_previous_links(feeders: Feeders) -> None:
    made = [
        created(feeders, feeders.gp, make("Observation", feeders.ins, effectiveDateTime=_recent(days)))["id"]
        for days in range(1, 6)
    ]  # newest first
    first = search(feeders, feeders.gp, "Observation", _count="2")
    assert first["total"] == 5 and ids(first) == made[:2]
    relations = {link["relation"]: link["url"] for link in first["link"]}
    assert set(relations) == {"self", "next"}
    assert relations["self"].startswith("http://") and "_offset=0" in relations["self"]
    second = feeders.client.get(relations["next"].split("8000", 1)[-1], headers=feeders.gp).json()
    assert ids(second) == made[2:4]
    relations = {link["relation"]: link["url"] for link in second["link"]}
    assert set(relations) == {"self", "next", "previous"} and "_offset=0" in relations["previous"]
    last = feeders.client.get(relations["next"].split("8000", 1)[-1], headers=feeders.gp).json()
    assert ids(last) == made[4:] and {link["relation"] for link in last["link"]} == {"self", "previous"}
    only_total = search(feeders, feeders.gp, "Observation", _count="0")
    assert only_total["total"] == 5 and "entry" not in only_total
    assert [link["relation"] for link in only_total["link"]] == ["self"]
    beyond = search(feeders, feeders.gp, "Observation", _offset="10")
    assert beyond["total"] == 5 and "entry" not in beyond


@pytest.mark.parametrize(
    "params",
    [
        {"inconnu": "1"},
        {"_count": "101"},
        {"_count": "-1"},
        {"_count": "beaucoup"},
        {"_offset": "-1"},
        {"_offset": "100001"},
        {"date": "2024-13"},
        {"date": "xx2024"},
        {"date": "2024-02-30"},
        {"date": ""},
        {"code": ""},
        {"code": "a,,b"},
        {"_sort": "date"},
    ],
)
def test_search_parameters_it_does_not_understand_are_400(params: dict[str, str], feeders: Feeders) -> None:
    response = feeders.client.get(
        "/fhir/Observation", params={"patient.identifier": f"{INS_SYSTEM}|{feeders.ins}", **params}, headers=feeders.gp
    )
    assert outcome(response, 400)["diagnostics"]


def test_the_patient_must_be_designated_once_by_ins_or_reference(feeders: Feeders) -> None:
    for params in (
        [],
        [("patient.identifier", "urn:oid:1.2.3|123")],
        [("patient.identifier", feeders.ins)],
        [("patient.identifier", f"{INS_SYSTEM}|{feeders.ins}"), ("patient.identifier", f"{INS_SYSTEM}|{feeders.ins}")],
        [("patient", "Practitioner/1")],
    ):
        assert outcome(feeders.client.get("/fhir/Condition", params=params, headers=feeders.gp), 400)
    issue = outcome(
        feeders.client.get(
            "/fhir/Condition", params={"patient.identifier": f"{INS_SYSTEM}|299999999999999"}, headers=feeders.gp
        ),
        404,
    )
    assert issue["code"] == "not-found" and issue["expression"] == ["patient.identifier"]
    unknown = outcome(feeders.client.get("/fhir/Condition", params={"patient": "inconnu"}, headers=feeders.gp), 404)
    assert unknown["expression"] == ["patient"]


# ------------------------------------------------------------------ creating: what is refused


def test_a_resource_for_a_patient_without_an_open_space_is_404(feeders: Feeders, demo: Services) -> None:
    for kind in SAMPLES:
        issue = outcome(post(feeders, feeders.gp, make(kind, "299999999999999")), 404)
        assert issue["expression"] == [f"{kind}.{PATIENT_ELEMENT[kind]}"]
    no_patient = make("Condition", feeders.ins)
    del no_patient["subject"]
    assert outcome(post(feeders, feeders.gp, no_patient), 400)["expression"] == ["Condition.subject"]
    for odd in (
        {"identifier": {"system": INS_SYSTEM, "value": "\u0000"}},
        {"reference": "Patient/\u0000"},
    ):  # issue #15-2: a control character in any string of a FHIR body is refused before anything reads it
        issue = outcome(post(feeders, feeders.gp, make("Condition", feeders.ins, subject=odd)), 400)
        assert issue["code"] == "invalid" and "caractère de contrôle" in issue["diagnostics"]
    no_designation = make("Condition", feeders.ins, subject={"display": "x"})
    assert outcome(post(feeders, feeders.gp, no_designation), 400)["code"] == "required"
    odd_search = {"patient.identifier": f"{INS_SYSTEM}|\u0000"}
    assert outcome(feeders.client.get("/fhir/Condition", params=odd_search, headers=feeders.gp), 400)
    assert outcome(feeders.client.get("/fhir/Condition", params={"patient": "\u0000"}, headers=feeders.gp), 400)
    assert count(demo, ProfileEntry) == 0


def test_the_patient_may_be_a_reference_or_a_conditional_reference(feeders: Feeders) -> None:
    for subject in (
        {"reference": f"Patient/{feeders.patient_id}"},
        {"reference": f"Patient?identifier={INS_SYSTEM}|{feeders.ins}"},
    ):
        body = created(feeders, feeders.gp, make("Condition", feeders.ins, subject=subject))
        assert body["subject"] == {
            "reference": f"Patient/{feeders.patient_id}",
            "identifier": {"system": INS_SYSTEM, "value": feeders.ins},
        }
    assert search(feeders, feeders.gp, "Condition")["total"] == 2


def test_bodies_that_are_not_the_resource_are_400_never_500(feeders: Feeders, demo: Services) -> None:
    def send(body: bytes, kind: str = "Observation") -> Any:
        return feeders.client.post(f"/fhir/{kind}", content=body, headers={**feeders.gp, **FHIR})

    assert outcome(send(b"pas du json"), 400)["diagnostics"] == "Le corps de la requête n'est pas un JSON valide."
    assert outcome(send(b"[1, 2]"), 400)["code"] == "structure"
    assert outcome(send(b"\xff\xfe"), 400)["code"] == "structure"
    assert outcome(send(b'{"resourceType": "Observation", "valueQuantity": {"value": 1e400}}'), 400)
    assert outcome(send(b"[" * 5000 + b"]" * 5000), 400)
    deep: dict[str, Any] = {"url": "http://exemple.fr", "valueString": "x"}
    for _ in range(150):
        deep = {"url": "http://exemple.fr", "extension": [deep]}
    nested = json.dumps(make("Observation", feeders.ins, extension=[deep])).encode()
    assert outcome(send(nested), 400)["diagnostics"] == "Le corps de la requête est imbriqué trop profondément."
    wrong_type = json.dumps(make("Condition", feeders.ins)).encode()
    assert outcome(send(wrong_type), 400)["expression"] == ["resourceType"]
    unknown_element = json.dumps(make("Condition", feeders.ins, couleur="bleu")).encode()
    issue = outcome(send(unknown_element, "Condition"), 400)
    assert issue["code"] == "structure" and issue["expression"] == ["Condition.couleur"]
    bad_date = json.dumps(make("Immunization", feeders.ins, occurrenceDateTime="15/09/2021")).encode()
    assert outcome(send(bad_date, "Immunization"), 400)["expression"] == ["Immunization.occurrenceDateTime"]
    not_done = json.dumps(make("Immunization", feeders.ins, status="not-done")).encode()
    assert outcome(send(not_done, "Immunization"), 400)["expression"] == ["Immunization.status"]
    future = json.dumps(
        make("Observation", feeders.ins, effectiveDateTime=(datetime.now(UTC) + timedelta(days=2)).isoformat())
    ).encode()
    assert outcome(send(future), 422)["diagnostics"] == "La date de la mesure ne peut pas être dans le futur."
    too_long = json.dumps(make("Condition", feeders.ins, code={"text": "x" * 300})).encode()
    issue = outcome(send(too_long, "Condition"), 422)
    assert "200 caractères" in issue["diagnostics"] and issue["expression"] == ["Condition.code"]
    assert count(demo, ProfileEntry) == 0


def test_the_body_is_bounded_and_the_token_is_checked_before_it(feeders: Feeders) -> None:
    resource = make("Observation", feeders.ins, note=[{"text": "x" * 1000} for _ in range(1100)])
    big = json.dumps(resource).encode()
    assert len(big) > 1024 * 1024
    assert (
        outcome(feeders.client.post("/fhir/Observation", content=big, headers={**feeders.gp, **FHIR}), 413)["code"]
        == "too-costly"
    )
    without_token = feeders.client.post("/fhir/Observation", content=big, headers=FHIR)
    assert outcome(without_token, 401)["code"] == "login"
    assert without_token.headers["WWW-Authenticate"].startswith("Bearer")


def test_scopes_are_enforced_per_type_and_interaction(
    feeders: Feeders, scoped: Callable[[str], dict[str, str]]
) -> None:
    readonly = scoped("system/Observation.rs")
    issue = outcome(post(feeders, readonly, make("Observation", feeders.ins)), 403)
    assert issue["code"] == "forbidden" and "system/Observation.c" in issue["diagnostics"]
    create_only = scoped("system/Observation.c")
    entry_id = created(feeders, create_only, make("Observation", feeders.ins))["id"]
    response = feeders.client.get(
        "/fhir/Observation", params={"patient.identifier": f"{INS_SYSTEM}|{feeders.ins}"}, headers=create_only
    )
    assert "system/Observation.s" in outcome(response, 403)["diagnostics"]
    assert (
        "system/Observation.r"
        in outcome(feeders.client.get(f"/fhir/Observation/{entry_id}", headers=create_only), 403)["diagnostics"]
    )
    conditions = scoped("system/Condition.crs")
    assert (
        "system/Observation.r"
        in outcome(feeders.client.get(f"/fhir/Observation/{entry_id}", headers=conditions), 403)["diagnostics"]
    )
    assert feeders.client.get(f"/fhir/Observation/{entry_id}", headers=readonly).status_code == 200
    assert outcome(feeders.client.get(f"/fhir/Observation/{entry_id}"), 401)["code"] == "login"


def test_the_capability_statement_lists_the_profile(client: TestClient) -> None:
    from fhir.resources.R4B.capabilitystatement import CapabilityStatement

    body = client.get("/fhir/metadata").json()
    CapabilityStatement.model_validate(body)
    resources = {r["type"]: r for r in body["rest"][0]["resource"]}
    for kind in SAMPLES:
        assert {i["code"] for i in resources[kind]["interaction"]} == {"create", "read", "search-type"}
        assert {p["name"]: p["type"] for p in resources[kind]["searchParam"]} == {
            "patient.identifier": "token",
            "patient": "reference",
            "code": "token",
            "date": "date",
        }
    others = {"DocumentReference", "Binary", "List", "Patient", "Consent", "Appointment", "ImmunizationRecommendation"}
    assert set(resources) == set(SAMPLES) | others  # exactly what is served
