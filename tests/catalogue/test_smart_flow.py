"""CAT-2, CAT-3 end to end, driven by a real OAuth 2 client library (authlib's ``OAuth2Session``, PKCE S256)
against the app served by uvicorn, as an app and a patient would: the patient logs in and consents, the app gets
a token, writes an Observation and reads documents, its acts are in the history (« Services synchronisés »), the
patient disconnects it and its next call is refused (401); discovery tells where each endpoint is."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from fastapi.testclient import TestClient

from carnet.bootstrap import Services
from carnet.catalogue.service import apps
from tests.catalogue.conftest import OPERATOR, REDIRECT, SCOPE, ReferencedApp, consent
from tests.conftest import csrf_of, text_of
from tests.support.actors import Feeders
from tests.support.documents import document_entry, make_pdf, provide_bundle

LOINC = "http://loinc.org"


def weight(patient_id: str, kg: float = 71.2) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}
                ]
            }
        ],
        "code": {"coding": [{"system": LOINC, "code": "29463-7", "display": "Body weight"}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0).isoformat(),
        "valueQuantity": {"value": kg, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"},
    }


def connect(
    live: str, app: ReferencedApp, browser: TestClient, scope: str = SCOPE
) -> tuple[OAuth2Session, dict[str, Any]]:
    """The whole authorisation-code flow: the app's link, the person's yes, the code exchanged with the verifier."""
    session = OAuth2Session(
        app.client_id,
        scope=scope,
        redirect_uri=REDIRECT,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    )
    verifier = generate_token(64)
    url, state = session.create_authorization_url(f"{live}/oauth/authorize", code_verifier=verifier)
    back = consent(browser, url)
    assert back.startswith(REDIRECT + "?") and parse_qs(urlsplit(back).query)["state"] == [state]
    token = session.fetch_token(f"{live}/oauth/token", authorization_response=back, code_verifier=verifier)
    return session, token


FHIR = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


def test_cat2_cat3_an_app_connects_with_pkce_writes_a_measure_reads_documents_and_is_cut_when_disconnected(
    live_server: str, demo: Services, app: ReferencedApp, patient_browser: TestClient, feeders: Feeders
) -> None:
    pdf = make_pdf("Bilan sanguin de Marie-Ange")
    deposited = feeders.client.post(
        "/fhir", json=provide_bundle(document_entry(feeders.ins, pdf)), headers={**feeders.lab, **FHIR}
    )
    assert deposited.status_code == 200, deposited.text
    session, token = connect(live_server, app, patient_browser)
    patient_id = token["patient"]
    assert token["token_type"] == "Bearer" and token["refresh_token"]
    assert set(token["scope"].split()) == set(SCOPE.split())

    created = session.post(f"{live_server}/fhir/Observation", json=weight(patient_id), headers=FHIR)
    assert created.status_code == 201, created.text
    documents = session.get(
        f"{live_server}/fhir/DocumentReference", params={"patient": f"Patient/{patient_id}"}, headers=FHIR
    )
    assert documents.status_code == 200, documents.text
    assert documents.json()["resourceType"] == "Bundle" and documents.json()["total"] == 1
    url = documents.json()["entry"][0]["resource"]["content"][0]["attachment"]["url"]
    content = session.get(live_server + url.removeprefix(demo.settings.base_url))
    assert content.status_code == 200 and content.content == pdf  # ITI-68

    # the patient sees the measure and the app's acts in « Services synchronisés »
    history = patient_browser.get(f"/espace/{patient_id}/historique?onglet=services")
    assert history.status_code == 200 and "Balance connectée Tensio" in text_of(history)
    listed = patient_browser.get(f"/espace/{patient_id}/applications/connectees")
    assert "Balance connectée Tensio" in text_of(listed) and "Lire, rechercher et ajouter vos mesures" in text_of(
        listed
    )

    # « Déconnecter »: the next call is refused
    gone = patient_browser.post(
        f"/espace/{patient_id}/applications/{app.id}/deconnecter", data={"csrf_token": csrf_of(listed.text)}
    )
    assert gone.status_code == 303
    refused = session.get(f"{live_server}/fhir/Observation", params={"patient": f"Patient/{patient_id}"}, headers=FHIR)
    assert refused.status_code == 401 and refused.json()["resourceType"] == "OperationOutcome"
    assert "Aucune application" in text_of(patient_browser.get(f"/espace/{patient_id}/applications/connectees"))


def test_cat3_a_scope_not_granted_gets_403_naming_it(
    live_server: str, demo: Services, app: ReferencedApp, patient_browser: TestClient
) -> None:
    session, token = connect(live_server, app, patient_browser, "launch/patient patient/Observation.rs")
    answer = session.post(f"{live_server}/fhir/Observation", json=weight(token["patient"]), headers=FHIR)
    assert answer.status_code == 403
    assert "patient/Observation.c" in answer.json()["issue"][0]["diagnostics"]
    documents = session.get(
        f"{live_server}/fhir/DocumentReference", params={"patient": f"Patient/{token['patient']}"}, headers=FHIR
    )
    assert documents.status_code == 403 and "patient/DocumentReference.s" in documents.text


def test_cat3_an_app_acts_only_in_the_space_that_consented(
    live_server: str, demo: Services, app: ReferencedApp, patient_browser: TestClient
) -> None:
    from sqlalchemy import select

    from carnet.people.tables import Patient

    session, token = connect(live_server, app, patient_browser)
    with demo.db.unit_of_work() as db:
        other = db.scalar(select(Patient.id).where(Patient.email == "pierre-paul.luciani@exemple.fr"))
    assert other and other != token["patient"]
    answer = session.post(f"{live_server}/fhir/Observation", json=weight(other), headers=FHIR)
    assert answer.status_code == 403, answer.text
    search = session.get(f"{live_server}/fhir/DocumentReference", params={"patient": f"Patient/{other}"}, headers=FHIR)
    assert search.status_code in {403, 404}


@pytest.mark.parametrize("decision", ["suspend", "dereference"])
def test_cat1_suspending_or_dereferencing_an_app_cuts_its_tokens_at_the_next_request(
    live_server: str, demo: Services, app: ReferencedApp, patient_browser: TestClient, decision: str
) -> None:
    session, token = connect(live_server, app, patient_browser)
    params = {"patient": f"Patient/{token['patient']}"}
    assert session.get(f"{live_server}/fhir/Observation", params=params, headers=FHIR).status_code == 200
    apps.decide(demo, OPERATOR, app.id, decision)
    assert session.get(f"{live_server}/fhir/Observation", params=params, headers=FHIR).status_code == 401
    refreshed = session.post(
        f"{live_server}/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"], "client_id": app.client_id},
    )
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"


def test_cat2_discovery_names_the_authorisation_token_revocation_and_introspection_endpoints(
    live_server: str, demo: Services
) -> None:
    import requests

    smart = requests.get(f"{live_server}/fhir/.well-known/smart-configuration", timeout=10).json()
    base = demo.settings.base_url
    assert smart["authorization_endpoint"] == f"{base}/oauth/authorize"
    assert smart["revocation_endpoint"] == f"{base}/oauth/revoke"
    assert smart["introspection_endpoint"] == f"{base}/oauth/introspect"
    assert smart["code_challenge_methods_supported"] == ["S256"]
    assert {"authorization_code", "refresh_token"} <= set(smart["grant_types_supported"])
    assert {"launch-standalone", "client-public", "context-standalone-patient", "permission-patient"} <= set(
        smart["capabilities"]
    )
    assert "patient/Observation.crus" in smart["scopes_supported"]
    statement = requests.get(f"{live_server}/fhir/metadata", timeout=10).json()
    (uris,) = [e for e in statement["rest"][0]["security"]["extension"] if e["url"].endswith("oauth-uris")]
    assert {e["url"] for e in uris["extension"]} == {"authorize", "token", "revoke", "introspect"}
