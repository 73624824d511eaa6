"""FHIR R4 base at ``/fhir``: the CapabilityStatement of everything served (MHD, TD0.2 and Consent, the medical
profile, the agenda) with its security (SMART ``oauth-uris``: authorisation, token, revocation and introspection
endpoints), the SMART configuration of the backend-services flow and of the catalogue's apps
(``/fhir/.well-known/smart-configuration``), FhirResponse, OperationOutcome."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from carnet import __version__
from carnet.catalogue.model import scopes as app_scopes
from carnet.identity.model import CLIENT_SCOPES

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


SMART_OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
SECURITY_SERVICE = "http://terminology.hl7.org/CodeSystem/restful-security-service"
MHD = "https://profiles.ihe.net/ITI/MHD/CapabilityStatement"


def token_endpoint(base_url: str) -> str:
    return f"{base_url}/oauth/token"


def app_endpoints(base_url: str) -> dict[str, str]:
    """CAT-2: the SMART App Launch endpoints of the catalogue's authorisation server."""
    return {
        "authorize": f"{base_url}/oauth/authorize",
        "token": token_endpoint(base_url),
        "revoke": f"{base_url}/oauth/revoke",
        "introspect": f"{base_url}/oauth/introspect",
    }


def scopes_supported() -> list[str]:
    """Every SMART v2 scope a client may be granted, one per resource type (``system/DocumentReference.crus``…)."""
    systems = [f"system/{resource}.{permissions}" for resource, permissions in sorted(CLIENT_SCOPES.items())]
    patients = [f"patient/{resource}.{permissions}" for resource, permissions in sorted(app_scopes.APP_SCOPES.items())]
    return [*systems, *patients, app_scopes.LAUNCH_PATIENT, app_scopes.OFFLINE]


def capability_statement(base_url: str) -> dict[str, Any]:
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-25",
        "publisher": "Carnet",
        "kind": "instance",
        "software": {"name": "Carnet", "version": __version__},
        "implementation": {"description": "Carnet — espace numérique de santé", "url": f"{base_url}/fhir"},
        "instantiates": [f"{MHD}/IHE.MHD.DocumentRecipient", f"{MHD}/IHE.MHD.DocumentResponder"],
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [
            {
                "mode": "server",
                "security": _security(base_url),
                "resource": [
                    _resource("DocumentReference", ["search-type", "read", "patch"], SEARCH_DOCUMENTS),
                    _resource("Binary", ["read"], []),
                    _resource("List", ["read"], []),  # the SubmissionSet of an ITI-65 deposit
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


def _security(base_url: str) -> dict[str, Any]:
    """OAuth 2 client credentials as SMART Backend Services, and the apps of the catalogue (CAT-2: authorisation
    code + PKCE S256): the endpoints in the SMART ``oauth-uris`` extension."""
    uris = [{"url": name, "valueUri": uri} for name, uri in app_endpoints(base_url).items()]
    return {
        "extension": [{"url": SMART_OAUTH_URIS, "extension": uris}],
        "cors": False,
        "service": [
            {"coding": [{"system": SECURITY_SERVICE, "code": "SMART-on-FHIR", "display": "SMART-on-FHIR"}]},
            {"coding": [{"system": SECURITY_SERVICE, "code": "OAuth", "display": "OAuth"}]},
        ],
        "description": (
            "OAuth 2 client credentials (SMART Backend Services, secret du client) : jeton à "
            f"{token_endpoint(base_url)}, portées SMART v2 system/<Ressource>.<cruds> ; applications du catalogue : "
            f"code d'autorisation + PKCE S256 à {base_url}/oauth/authorize, portées patient/<Ressource>.<cruds> ; voir "
            f"{base_url}/fhir/.well-known/smart-configuration."
        ),
    }


# ITI-67 (carnet.vault.model.mhd_search): MHD's parameters, and _lastUpdated (the deposit or the last change)
SEARCH_DOCUMENTS = [
    ("patient", "reference"),
    ("patient.identifier", "token"),
    ("status", "token"),
    ("type", "token"),
    ("category", "token"),
    ("format", "token"),
    ("event", "token"),
    ("facility", "token"),
    ("setting", "token"),
    ("security-label", "token"),
    ("identifier", "token"),
    ("author.identifier", "token"),
    ("date", "date"),
    ("period", "date"),
    ("creation", "date"),
    ("_lastUpdated", "date"),
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
def metadata(request: Request) -> Response:
    from carnet.fhir.formats import check_json  # formats answers with problems, which answer with FhirResponse
    from carnet.fhir.problems import Problem

    try:
        check_json(request)
    except Problem as problem:
        return problem.response()
    base_url: str = request.app.state.services.settings.base_url
    return FhirResponse(capability_statement(base_url))


def smart_configuration(base_url: str) -> dict[str, Any]:
    """SMART App Launch 2 discovery: the backend-services flow (client credentials, a client secret) and the apps
    of the catalogue (standalone patient launch: authorisation code + PKCE S256, refresh, revocation, introspection)."""
    endpoints = app_endpoints(base_url)
    return {
        "authorization_endpoint": endpoints["authorize"],
        "token_endpoint": endpoints["token"],
        "revocation_endpoint": endpoints["revoke"],
        "introspection_endpoint": endpoints["introspect"],
        "grant_types_supported": ["client_credentials", "authorization_code", "refresh_token"],
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "scopes_supported": scopes_supported(),
        "capabilities": [
            "launch-standalone",
            "client-public",
            "client-confidential-symmetric",
            "context-standalone-patient",
            "permission-patient",
            "permission-offline",
            "permission-v2",
            "permission-v1",
        ],
    }


@router.get("/.well-known/smart-configuration")
def smart_configuration_document(request: Request) -> JSONResponse:
    """Public, like the CapabilityStatement: where and how a system gets a token."""
    base_url: str = request.app.state.services.settings.base_url
    return JSONResponse(smart_configuration(base_url), headers={"Cache-Control": "max-age=3600"})
