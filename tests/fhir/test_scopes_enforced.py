"""OAuth scopes are enforced on FHIR interactions (issue #9, SMART Backend Services): a token narrowed to
reading and searching cannot deposit; the refusal is a 403 OperationOutcome naming the missing scope."""

from __future__ import annotations

from fastapi.testclient import TestClient

from carnet.bootstrap import Services
from carnet.identity.service.clients import create_client
from tests.support.actors import Feeders
from tests.support.documents import document_entry, make_pdf, provide_bundle

FHIR = {"Content-Type": "application/fhir+json"}


def _token(client: TestClient, client_id: str, secret: str, scope: str) -> dict[str, str]:
    response = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret, "scope": scope},
    )
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == scope
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _lab(demo: Services) -> tuple[str, str]:
    with demo.db.unit_of_work() as db:
        lab = create_client(db, "LBM CH Bastia (lecture seule)", finess="2B0000020")
    return lab.client_id, lab.client_secret


def test_a_read_only_token_cannot_deposit_with_iti65(demo: Services, feeders: Feeders) -> None:
    headers = _token(feeders.client, *_lab(demo), "system/DocumentReference.rs")
    bundle = provide_bundle(document_entry(feeders.ins, make_pdf("Bilan")))
    response = feeders.client.post("/fhir", json=bundle, headers={**headers, **FHIR})
    assert response.status_code == 403
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "forbidden"
    assert "system/DocumentReference.c" in outcome["issue"][0]["diagnostics"]


def test_the_same_client_with_the_create_scope_deposits(demo: Services, feeders: Feeders) -> None:
    headers = _token(feeders.client, *_lab(demo), "system/DocumentReference.c")
    bundle = provide_bundle(document_entry(feeders.ins, make_pdf("Bilan")))
    assert feeders.client.post("/fhir", json=bundle, headers={**headers, **FHIR}).status_code == 200


def test_a_deposit_only_token_cannot_search(demo: Services, feeders: Feeders) -> None:
    headers = _token(feeders.client, *_lab(demo), "system/DocumentReference.c")
    response = feeders.client.get(
        "/fhir/DocumentReference",
        params={"patient.identifier": f"urn:oid:1.2.250.1.213.1.4.8|{feeders.ins}"},
        headers=headers,
    )
    assert response.status_code == 403
    assert "system/DocumentReference.s" in response.json()["issue"][0]["diagnostics"]


def test_an_unknown_scope_is_an_invalid_scope_error(demo: Services, feeders: Feeders) -> None:
    client_id, secret = _lab(demo)
    response = feeders.client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret, "scope": "tout"},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


def test_an_expired_token_or_a_revoked_client_is_a_login_outcome(demo: Services, feeders: Feeders) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from carnet.identity.tables import AccessToken, ApiClient
    from carnet.storage.types import utcnow

    search = {"patient.identifier": f"urn:oid:1.2.250.1.213.1.4.8|{feeders.ins}"}
    client_id, secret = _lab(demo)
    headers = _token(feeders.client, client_id, secret, "system/DocumentReference.s")
    assert feeders.client.get("/fhir/DocumentReference", params=search, headers=headers).status_code == 200
    with demo.db.unit_of_work() as db:
        db.execute(update(ApiClient).where(ApiClient.client_id == client_id).values(revoked_at=utcnow()))
    revoked = feeders.client.get("/fhir/DocumentReference", params=search, headers=headers)
    assert revoked.status_code == 401 and revoked.json()["issue"][0]["code"] == "login"
    with demo.db.unit_of_work() as db:
        db.execute(update(AccessToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    expired = feeders.client.get("/fhir/DocumentReference", params=search, headers=feeders.gp)
    assert expired.status_code == 401 and expired.headers["WWW-Authenticate"].startswith("Bearer")
