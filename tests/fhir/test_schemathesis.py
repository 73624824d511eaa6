"""No 500 on any input, whoever calls (issue #15-2): schemathesis over the JSON API (``/api``, ``/oauth``) and the
FHIR surface (``/fhir``), in-process, as each actor — anonymous, the patient (her session cookie), an authorised
professional (the software of Dr Ferracci, her médecin traitant) and a stranger professional (the dentist's
software, never authorised) — on SQLite and PostgreSQL.

The schema is the app's own ``/api/openapi.json``. The FHIR routes read their query string and body themselves, so
the schema names neither: before generating, each FHIR operation is given what the server advertises — the search
parameters of its CapabilityStatement (``/fhir/metadata``) and a body for the interactions that read one. Random
values alone stop at the first check (no patient designated: 400; an unknown id: 404), so half of the cases are then
steered into the space: a real id in the path, the patient's INS in the search with the other parameters drawn from
tricky values, and a resource as real software sends it with one element replaced by anything or removed. Bodies of
hostile bytes (nesting, encodings, sizes) are ``test_hostile_bodies.py``'s corpus.

Every case must answer below 500, and every refusal in its surface's format: an OperationOutcome under ``/fhir``,
RFC 7807 problem+json under ``/api``. The run is bounded and reproducible: ``EXAMPLES`` derandomized cases per
operation and actor, no Hypothesis database, one fresh demo space per actor and backend (emptied by the fixtures).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.result import Ok
from schemathesis.python.asgi import ASGIClient
from sqlalchemy import select

from carnet.access.tables import AccessGrant
from carnet.agenda.tables import AgendaEvent
from carnet.bootstrap import Services
from carnet.profile.model.fhir_map import SECTION_OF
from carnet.profile.tables import ProfileEntry
from carnet.vault.tables import Document
from carnet.web.app import create_app
from tests.conftest import log_in
from tests.support.actors import PATIENT, Feeders
from tests.support.documents import INS_SYSTEM, document_entry, make_pdf, provide_bundle

SURFACE = ("/api/", "/fhir", "/oauth/")
SEARCH_FORM = ["status", "type", "date", "event", "author.identifier", "security-label", "_count", "_summary"]
# Cases per operation: the two professionals get past the token, so their cases go deeper and are worth more.
EXAMPLES = {"anonymous": 4, "patient": 4, "professional": 30, "stranger": 15}
GP_RPPS = "10001234567"  # Dr Ferracci, whose software is the authorised professional
TEST_INS_SYSTEM = "urn:oid:1.2.250.1.213.1.4.10"
CONTAINED = {"resourceType": "Practitioner", "id": "auteur", "name": [{"family": "Ferracci"}]}
TRICKY = [  # strings that have broken parsers before: dates, numbers, references, encodings
    "",
    " ",
    "0",
    "-1",
    "1e309",
    "99999999999999999999",
    "NaN",
    "2024-02-30",
    "2024-13",
    "2024-00-10",
    "0000-01-01",
    "9999-12-31T23:59:59+14:00",
    "2024-01-01T25:00:00Z",
    "2024-01-01T10:00:00+99:99",
    "2024-01-01T10:00",
    "ge",
    "gt9999-12-31",
    "lt0001-01-01",
    "ge0001-01-01T00:00:00+14:00",
    "le9999-12-31T23:59:59-12:00",
    "0001-01-01T00:00:00+14:00",
    "Patient/",
    "Patient/../x",
    "Patient?identifier=urn:oid:1.2.250.1.213.1.4.8|",
    "urn:oid:1.2.250.1.213.1.4.8|",
    "|",
    "a|b|c",
    "x" * 300,
    "é",
    "\x00",
    "\ud7ff",
    "%00",
    "🩺",
]


TRICKY_IDS = ["0", "\x00", "a\x00b", "x" * 65, "..", "é", "prevention-", "prevention-\x00", "1e309"]


@dataclass
class Known:
    """Real values of the demo space, so cases reach past the first check."""

    ins: str
    patient_id: str
    ids: dict[str, list[str]] = field(default_factory=dict)  # FHIR type → ids of that type

    @property
    def ins_token(self) -> str:
        return f"{INS_SYSTEM}|{self.ins}"


# ------------------------------------------------------------------ what the schema does not say


def search_values(name: str, known: Known) -> list[str]:
    return {
        "patient.identifier": [known.ins_token, f"{TEST_INS_SYSTEM}|{known.ins}", f"{INS_SYSTEM}|{known.ins.lower()}"],
        "identifier": [known.ins_token, f"{INS_SYSTEM}|185032A00411777"],
        "patient": [f"Patient/{known.patient_id}", known.patient_id],
        "date": ["ge2020-01-01", "lt2031", "2024-03-05T10:00:00+01:00", "sa2024", "eb2030-06", "ne2024", "ap2024"],
        "status": ["current", "superseded", "entered-in-error", "active", "inactive", "booked", "cancelled,booked"],
        "code": ["http://loinc.org|29463-7", "29463-7", "http://loinc.org|", "|29463-7", "85354-9,29463-7"],
        "type": ["http://loinc.org|11502-2", "11502-2"],
        "category": ["11502-2", "urn:oid:1.3.6.1.4.1.19376.1.2.6.1|11502-2"],
        "author.identifier": [GP_RPPS, f"urn:oid:1.2.250.1.71.4.2.1|8{GP_RPPS}"],
        "_count": ["1", "0", "100", "101", "-1", "99999999"],
        "_offset": ["0", "1", "9999999", "-5"],
        "_format": ["json", "application/fhir+json", "xml"],
        # ITI-67 (issue #14): every token and date parameter MHD lists
        "format": ["urn:ihe:iti:xds-sd:pdf:2008", "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode|"],
        "event": ["http://snomed.info/sct|252150008", "252150008,x"],
        "facility": ["SA29", "|SA29"],
        "setting": ["SM05"],
        "security-label": ["N", "urn:oid:1.2.250.1.213.1.1.4.13|MASQUE_PS", "http://x|N"],
        "period": ["2024", "ap2024-03-04T08:30", "ne2024-13"],
        "creation": ["ge2024-03-05", "eq2024-03-05T25:00"],
        "_lastUpdated": ["ge2020", "sa2999"],
        "_summary": ["count", "true", "peu"],
        "_total": ["accurate", "none", "exact"],
    }.get(name, [])


def examples(known: Known) -> dict[str, Any]:
    """One resource of each type, as the tests of each capability send it."""
    patient = {"identifier": {"system": INS_SYSTEM, "value": known.ins}}
    resources: dict[str, dict[str, Any]] = {
        "Observation": {
            "resourceType": "Observation",
            "status": "final",
            "category": [
                {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}
                    ]
                }
            ],
            "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
            "subject": patient,
            "effectiveDateTime": "2025-01-15T12:00:00+00:00",
            "component": [
                {
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                    "valueQuantity": {"value": 128, "unit": "mmHg", "system": "http://unitsofmeasure.org"},
                },
                {
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                    "valueQuantity": {"value": 82, "unit": "mmHg", "system": "http://unitsofmeasure.org"},
                },
            ],
        },
        "Condition": {
            "resourceType": "Condition",
            "clinicalStatus": {
                "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]
            },
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I10"}], "text": "HTA"},
            "subject": patient,
            "onsetDateTime": "2019-04-01",
        },
        "MedicationStatement": {
            "resourceType": "MedicationStatement",
            "status": "active",
            "medicationCodeableConcept": {"coding": [{"system": "http://www.whocc.no/atc", "code": "C09AA05"}]},
            "subject": patient,
            "effectivePeriod": {"start": "2020-01-01"},
            "dosage": [{"text": "1 comprimé le matin"}],
        },
        "AllergyIntolerance": {
            "resourceType": "AllergyIntolerance",
            "clinicalStatus": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active"}
                ]
            },
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "373270004"}], "text": "Pénicilline"},
            "patient": patient,
            "onsetDateTime": "2015-06-01",
            "reaction": [{"manifestation": [{"text": "Urticaire"}], "severity": "moderate"}],
        },
        "FamilyMemberHistory": {
            "resourceType": "FamilyMemberHistory",
            "status": "completed",
            "patient": patient,
            "relationship": {
                "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "FTH"}]
            },
            "condition": [{"code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I21"}]}}],
            "date": "2023-05-02",
        },
        "Immunization": {
            "resourceType": "Immunization",
            "status": "completed",
            "vaccineCode": {"coding": [{"system": "http://snomed.info/sct", "code": "871751006"}], "text": "Grippe"},
            "patient": patient,
            "occurrenceDateTime": "2024-10-15",
            "lotNumber": "AB123",
        },
        "Appointment": {
            "resourceType": "Appointment",
            "status": "booked",
            "description": "Consultation de suivi",
            "start": "2031-03-10T13:30:00+00:00",
            "end": "2031-03-10T14:00:00+00:00",
            "participant": [
                {"actor": {"identifier": {"system": INS_SYSTEM, "value": known.ins}}, "status": "accepted"},
                {"actor": {"reference": f"Practitioner/{GP_RPPS}"}, "status": "accepted"},
            ],
        },
        "Consent": {  # for Dr Ferracci: the dentist's software may not record it for him (403)
            "resourceType": "Consent",
            "status": "active",
            "scope": {
                "coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]
            },
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": patient,
            "dateTime": "2026-11-26T09:00:00+01:00",
            "provision": {
                "type": "permit",
                "actor": [
                    {
                        "role": {
                            "coding": [
                                {"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "PRCP"}
                            ]
                        },
                        "reference": {"identifier": {"system": "urn:oid:1.2.250.1.71.4.2.1", "value": f"8{GP_RPPS}"}},
                    }
                ],
            },
        },
    }
    bundle = provide_bundle(document_entry(known.ins, make_pdf("Compte rendu de consultation")))
    del bundle["entry"][1]["resource"]["masterIdentifier"]  # so that it is not a duplicate when sent again
    return {
        **{kind: {**resource, "contained": [CONTAINED]} for kind, resource in resources.items()},
        "Bundle": bundle,
        "Patch": [{"op": "replace", "path": "/securityLabel", "value": [{"coding": [{"code": "N"}]}]}],
    }


def loose_resource(kind: str) -> dict[str, Any]:
    """What schemathesis generates a body from: a resource of ``kind`` whose elements may be anything."""
    anything: dict[str, Any] = {}
    return {
        "type": "object",
        "required": ["resourceType"],
        "properties": {
            "resourceType": {"enum": [kind, "Bundle", "Patient"]},
            "status": {"type": "string"},
            "subject": anything,
            "patient": anything,
            "code": anything,
            "entry": {"type": "array", "items": {"type": "object"}},
            "participant": anything,
            "provision": anything,
        },
    }


PATCH_SCHEMA: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {"op": {"type": "string"}, "path": {"type": "string"}, "value": {}},
        "required": ["op", "path"],
    },
}


def resource_type_of(path: str) -> str:
    """``/fhir/Observation/{entry_id}`` → ``Observation``; ``/fhir`` (ITI-65) → ``Bundle``."""
    return path.removeprefix("/fhir").strip("/").split("/")[0] or "Bundle"


def fuzzable(openapi: dict[str, Any], metadata: dict[str, Any]) -> dict[str, Any]:
    """The app's schema, reduced to the JSON API and FHIR surfaces, with what each FHIR route reads itself."""
    search = {r["type"]: [p["name"] for p in r.get("searchParam", [])] for r in metadata["rest"][0]["resource"]}
    schema = copy.deepcopy(openapi)
    schema["paths"] = {path: ops for path, ops in schema["paths"].items() if path.startswith(SURFACE)}
    for path, operations in schema["paths"].items():
        kind = resource_type_of(path)
        for method, operation in operations.items():
            if not path.startswith("/fhir"):
                continue
            if method == "get" and "{" not in path and kind in search:
                operation["parameters"] = [
                    {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
                    for name in [*search[kind], "_count", "_offset"]
                ]
            elif method == "post" and path.endswith("/_search"):  # ITI-67 by POST: a form of search parameters
                form = {"type": "object", "properties": {n: {"type": "string"} for n in [*search[kind], "_count"]}}
                operation["requestBody"] = {
                    "required": True,
                    "content": {"application/x-www-form-urlencoded": {"schema": form}},
                }
            elif method == "post":
                schema_ = loose_resource(kind)
                operation["requestBody"] = {"required": True, "content": {"application/fhir+json": {"schema": schema_}}}
            elif method == "patch":
                operation["requestBody"] = {
                    "required": True,
                    "content": {"application/json-patch+json": {"schema": PATCH_SCHEMA}},
                }
    return schema


# ------------------------------------------------------------------ steering cases into the space


def json_values() -> st.SearchStrategy[Any]:
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**70), max_value=2**70)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.sampled_from(TRICKY)
        | st.text(max_size=12)
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
        max_leaves=6,
    )


def element_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every element of a JSON value, as a path of keys and indexes (the root excluded)."""
    found: list[tuple[Any, ...]] = [prefix] if prefix else []
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    for key, child in children:
        if key != "data":  # a Binary's base64 payload: replaced whole, never walked
            found += element_paths(child, (*prefix, key))
    return found


def mutate(example: Any, path: tuple[Any, ...], how: str, value: Any) -> Any:
    """The example with the element at ``path`` replaced by ``value``, removed, or kept (``how``)."""
    copied = copy.deepcopy(example)
    if how == "keep" or not path:
        return copied
    parent = copied
    for key in path[:-1]:
        parent = parent[key]
    if how == "remove":
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return copied


def mutants(example: Any) -> st.SearchStrategy[Any]:
    """The example as sent, or with one element (however deep) replaced by anything or removed."""
    paths = element_paths(example)
    return st.builds(
        mutate,
        st.just(example),
        st.sampled_from(paths),
        st.sampled_from(["replace", "replace", "remove", "keep"]),
        json_values(),
    )


def queries(names: list[str], known: Known) -> st.SearchStrategy[dict[str, str]]:
    """A search as a real software writes it, the patient designated, each other parameter real or tricky."""
    designation = st.sampled_from(
        [{"patient.identifier": known.ins_token}, {"patient": f"Patient/{known.patient_id}"}, {}]
    )
    optional = {name: st.sampled_from(search_values(name, known) + TRICKY) for name in names}
    others = st.fixed_dictionaries({}, optional=optional)
    if "identifier" in names:  # TD0.2 designates the patient by ``identifier``
        designation = st.sampled_from([{"identifier": known.ins_token}, {}])
    return st.builds(lambda d, o: {**o, **d}, designation, others)


def steering(operation: Any, known: Known, bodies: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """What replaces the generated parts of a case so it reaches the space: real ids, searches, resources."""
    kind = resource_type_of(operation.path)
    parts: dict[str, st.SearchStrategy[Any]] = {}
    path_names = [p.name for p in operation.path_parameters]
    if path_names:
        ids = known.ids.get(kind, []) + TRICKY_IDS
        parts["path_parameters"] = st.builds(lambda i: {path_names[0]: i}, st.sampled_from(ids))
    names = [p.name for p in operation.query]
    if names:
        parts["query"] = queries(names, known)
    if operation.path.endswith("/_search"):  # the form of a POST search: as a query string is steered
        parts["body"] = queries(SEARCH_FORM, known)
    elif operation.path.startswith("/fhir") and operation.method.upper() in {"POST", "PATCH"}:
        parts["body"] = mutants(bodies["Patch" if operation.method.upper() == "PATCH" else kind])
    if operation.path == "/oauth/token":
        tricky = st.sampled_from(TRICKY)
        form = {
            "grant_type": st.sampled_from(["client_credentials", *TRICKY]),
            "client_id": tricky,
            "client_secret": tricky,
            "scope": st.sampled_from(["system/*.rs", "system/DocumentReference.c", "patient/*.*", *TRICKY]),
        }
        parts["body"] = st.fixed_dictionaries({}, optional=form)
    return st.fixed_dictionaries(parts)


# ------------------------------------------------------------------ the space, the actors, the checks


def known_values(services: Services, feeders: Feeders, bodies: dict[str, Any]) -> Known:
    """Ids of the space: one resource of each type the authorised professional's software created (so it reads them
    back), the lab's and his documents, and what the demo holds."""
    known = Known(feeders.ins, feeders.patient_id)
    for headers in (feeders.gp, feeders.lab):
        deposit = provide_bundle(document_entry(feeders.ins, make_pdf("Compte rendu de biologie")))
        assert feeders.client.post("/fhir", json=deposit, headers=headers).status_code == 200
    for kind, body in bodies.items():
        if kind not in {"Bundle", "Patch"}:
            created = feeders.client.post(f"/fhir/{kind}", json=body, headers=feeders.gp)
            assert created.status_code in {200, 201}, (kind, created.text)
            known.ids[kind] = [created.json()["id"]]
    with services.db.unit_of_work() as db:
        known.ids["DocumentReference"] = list(db.scalars(select(Document.id)))
        for kind, section in SECTION_OF.items():
            known.ids[kind] += list(db.scalars(select(ProfileEntry.id).where(ProfileEntry.section == section)))[:2]
        known.ids["Appointment"] += list(db.scalars(select(AgendaEvent.id)))[:2]
        known.ids["Consent"] += list(db.scalars(select(AccessGrant.id)))[:2]
    known.ids["Binary"] = known.ids["DocumentReference"]
    with services.db.unit_of_work() as db:  # the SubmissionSets of the deposits above (ITI-65's List locations)
        known.ids["List"] = sorted(
            set(db.scalars(select(Document.submission_set_id).where(Document.submission_set_id.is_not(None))))
        )
    known.ids["Patient"] = [feeders.patient_id]
    known.ids["ImmunizationRecommendation"] = [f"prevention-{feeders.patient_id}"]
    return known


def session_for(
    actor: str, app: Any, services: Services, feeders: Feeders, new_client: Callable[[], TestClient]
) -> ASGIClient:
    """A requests session that reaches the app in-process, with the actor's credentials."""
    session = ASGIClient(app)
    if actor == "patient":
        browser = new_client()
        log_in(browser, services, PATIENT)
        for cookie in browser.cookies.jar:
            session.cookies.set(cookie.name, cookie.value or "", domain=cookie.domain, path=cookie.path)
        home = session.get("/espace", allow_redirects=False)  # her space, not the login page: the cookie is sent
        assert home.headers["location"] == f"/espace/{feeders.patient_id}", home.headers
    elif actor == "professional":
        session.headers.update(feeders.gp)
    elif actor == "stranger":
        session.headers.update(feeders.dentist)
    return session


def wrong_format(path: str, response: Any) -> str | None:
    """A refusal not in its surface's format (OperationOutcome under /fhir, problem+json under /api), or None."""
    if response.status_code < 400:
        return None
    media = (response.headers.get("content-type") or [""])[0]
    if path.startswith("/fhir"):
        try:
            body = response.json()
        except ValueError:
            body = None
        if "application/fhir+json" not in media or not isinstance(body, dict):
            return f"pas du FHIR JSON ({media})"
        if body.get("resourceType") != "OperationOutcome":
            return "pas un OperationOutcome"
    elif path.startswith("/api/") and "application/problem+json" not in media:
        return f"pas du problem+json ({media})"
    return None


Failures = dict[tuple[str, str], str]


def run_operation(
    operation: Any, session: ASGIClient, steer: Any, examples: int, failures: Failures, reached: set[str]
) -> None:
    generated = st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=generated, steered=st.booleans(), parts=steer)
    def one_case(case: Any, steered: bool, parts: dict[str, Any]) -> None:
        if steered:
            for name, value in parts.items():
                setattr(case, name, value)
        try:
            response = case.call(session=session, base_url="http://testserver")
        except Exception as exc:  # the in-process transport re-raises what the app answered with a 500
            failures.setdefault((operation.label, type(exc).__name__), f"{exc!r:.200} — {case.as_curl_command():.500}")
            return
        if response.status_code < 300:
            reached.add(operation.label)
        problem = "erreur serveur" if response.status_code >= 500 else wrong_format(operation.path, response)
        if problem:
            failures.setdefault((operation.label, problem), f"{response.status_code} — {case.as_curl_command():.500}")

    one_case()


@pytest.mark.parametrize("actor", list(EXAMPLES))
def test_no_operation_answers_a_server_error_whoever_calls(
    actor: str, demo: Services, feeders: Feeders, new_client: Callable[[], TestClient]
) -> None:
    """Issue #15-2: schemathesis over /api, /oauth and /fhir as anonymous, the patient, an authorised and a stranger
    professional — 0 server errors, every refusal an OperationOutcome (FHIR) or problem+json (JSON API)."""
    openapi = feeders.client.get("/api/openapi.json").json()
    metadata = feeders.client.get("/fhir/metadata").json()
    bodies = examples(Known(feeders.ins, feeders.patient_id))
    known = known_values(demo, feeders, bodies)
    schema = schemathesis.openapi.from_dict(fuzzable(openapi, metadata))
    results = list(schema.get_all_operations())
    assert all(isinstance(result, Ok) for result in results), [r for r in results if not isinstance(r, Ok)]
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) >= 30 and all(op.path.startswith(SURFACE) for op in operations)
    session = session_for(actor, create_app(services=demo), demo, feeders, new_client)
    failures: Failures = {}
    reached: set[str] = set()
    for operation in operations:
        steer = steering(operation, known, bodies)
        run_operation(operation, session, steer, EXAMPLES[actor], failures, reached)
    assert not failures, "\n".join(f"{label} [{kind}]: {example}" for (label, kind), example in failures.items())
    if actor == "professional":  # the cases went past the first check: every FHIR interaction succeeded at least once
        deep = {op.label for op in operations if op.path.startswith("/fhir") and op.method.upper() != "PATCH"}
        assert deep <= reached, sorted(deep - reached)
