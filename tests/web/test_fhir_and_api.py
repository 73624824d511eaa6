"""FHIR base (CapabilityStatement, OperationOutcome) and JSON API problem details (RFC 7807)."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_fhir_metadata_is_an_r4_capability_statement(client: TestClient) -> None:
    response = client.get("/fhir/metadata")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
    body = response.json()
    assert body["resourceType"] == "CapabilityStatement"
    assert body["fhirVersion"] == "4.0.1"
    assert body["kind"] == "instance" and body["rest"][0]["mode"] == "server"
    from fhir.resources.R4B.capabilitystatement import CapabilityStatement

    statement = CapabilityStatement.model_validate(body)
    declared = {r.type: {i.code for i in r.interaction or []} for r in statement.rest[0].resource or []}
    assert declared["Consent"] == {"create", "read", "search-type"}  # ACC-1 over FHIR
    assert "search-type" in declared["Patient"] and "search-type" in declared["DocumentReference"]


def test_fhir_errors_are_operation_outcomes(client: TestClient) -> None:
    response = client.get("/fhir/Nothing/here")
    assert response.status_code == 404
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == "not-found"
    assert body["issue"][0]["severity"] == "error"


def test_api_errors_are_problem_details_in_french(client: TestClient) -> None:
    response = client.get("/api/v1/inconnu")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 404 and body["title"] == "Ressource introuvable" and body["type"] == "about:blank"


def test_api_health_answers(client: TestClient) -> None:
    assert client.get("/api/v1/sante").json()["statut"] == "ok"


def test_an_unknown_page_is_a_french_404_page(client: TestClient) -> None:
    response = client.get("/nulle-part")
    assert response.status_code == 404
    assert "Page introuvable" in response.text and '<html lang="fr"' in response.text


def test_a_wrong_method_is_not_a_server_error(client: TestClient) -> None:
    response = client.put("/fhir/metadata")
    assert response.status_code == 405
    assert response.json()["resourceType"] == "OperationOutcome"


def test_an_oversized_form_field_is_refused_without_a_crash(client: TestClient) -> None:
    page = client.get("/connexion")
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    response = client.post("/connexion", data={"identifiant": "x" * 5000, "mot_de_passe": "y", "csrf_token": token})
    assert response.status_code == 400
    assert "Données invalides" in response.text
