"""FHIR R4 base at ``/fhir``: the CapabilityStatement of everything served (MHD, TD0.2 and Consent, the medical
profile), FhirResponse, OperationOutcome."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from carnet import __version__

FHIR_JSON = "application/fhir+json"
router = APIRouter(prefix="/fhir")


class FhirResponse(JSONResponse):
    media_type = FHIR_JSON

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def operation_outcome(status: int, code: str, diagnostics: str) -> FhirResponse:
    severity = "error" if status < 500 else "fatal"
    body = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}],
    }
    return FhirResponse(body, status_code=status)


FHIR_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    409: "conflict",
    413: "too-costly",
    415: "not-supported",
    422: "processing",
    429: "throttled",
}


def capability_statement(base_url: str) -> dict[str, Any]:
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-25",
        "publisher": "Carnet",
        "kind": "instance",
        "software": {"name": "Carnet", "version": __version__},
        "implementation": {"description": "Carnet — espace numérique de santé", "url": f"{base_url}/fhir"},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "cors": False,
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                    "code": "OAuth",
                                    "display": "OAuth",
                                }
                            ]
                        }
                    ],
                    "description": "OAuth 2 client credentials (établissements, logiciels de professionnels).",
                },
                "resource": [
                    _resource("DocumentReference", ["search-type", "read", "patch"], SEARCH_DOCUMENTS),
                    _resource("Binary", ["read"], []),
                    _resource("Patient", ["search-type", "read"], [("identifier", "token")]),
                    _resource(
                        "Consent",
                        ["create", "read", "search-type"],
                        [("patient.identifier", "token"), ("status", "token")],
                    ),
                    *(
                        {
                            **_resource(kind, ["create", "read", "search-type"], SEARCH_PROFILE),
                            **({"supportedProfile": [VITAL_SIGNS]} if kind == "Observation" else {}),
                        }
                        for kind in PROFILE_TYPES
                    ),
                    # AGD-1 (carnet.agenda.fhir.appointments): appointments given to the patient
                    _resource(
                        "Appointment",
                        ["create", "read", "search-type"],
                        [
                            ("patient.identifier", "token"),
                            ("patient", "reference"),
                            ("date", "date"),
                            ("status", "token"),
                        ],
                    ),
                    # AGD-2 (carnet.agenda.fhir.recommendations): the vaccines of the prevention calendar
                    _resource(
                        "ImmunizationRecommendation",
                        ["read", "search-type"],
                        [("patient.identifier", "token"), ("patient", "reference")],
                    ),
                ],
                "interaction": [{"code": "transaction"}],
            }
        ],
    }


SEARCH_DOCUMENTS = [
    ("patient.identifier", "token"),
    ("status", "token"),
    ("type", "token"),
    ("category", "token"),
    ("date", "date"),
    ("author.identifier", "token"),
]


# The medical profile (PRF-3, carnet.profile.fhir): the same interactions and search parameters for each type.
PROFILE_TYPES = (
    "Observation",
    "AllergyIntolerance",
    "Condition",
    "FamilyMemberHistory",
    "MedicationStatement",
    "Immunization",
)
SEARCH_PROFILE = [("patient.identifier", "token"), ("patient", "reference"), ("code", "token"), ("date", "date")]
VITAL_SIGNS = "http://hl7.org/fhir/StructureDefinition/vitalsigns"


def _resource(kind: str, interactions: list[str], params: list[tuple[str, str]]) -> dict[str, object]:
    return {
        "type": kind,
        "interaction": [{"code": code} for code in interactions],
        "searchParam": [{"name": name, "type": kind_} for name, kind_ in params],
    }


@router.get("/metadata")
def metadata(request: Request) -> FhirResponse:
    base_url: str = request.app.state.services.settings.base_url
    return FhirResponse(capability_statement(base_url))
