"""CAT-2 point 4: bad input gets a clear error and changes nothing — unknown client, a redirect URI not registered
(never redirected to), PKCE missing, ``plain`` or a wrong verifier, a code reused or expired, a scope escalation at
refresh, a reused refresh token; and what works beside them: refresh rotation, revocation (RFC 7009), introspection
(RFC 7662), a refused consent. The portal and the app run in-process (TestClient) over the same demo data."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from carnet.bootstrap import Services
from carnet.catalogue.model.pkce import s256
from carnet.catalogue.service import oauth
from carnet.catalogue.tables import AuthorizationCode
from carnet.storage.types import utcnow
from tests.catalogue.conftest import REDIRECT, SCOPE, ReferencedApp, consent, reference
from tests.conftest import log_in, text_of
from tests.support.actors import PATIENT

VERIFIER = "verificateur-pkce-" + "x" * 40


def authorize_url(app: ReferencedApp, **changes: str) -> str:
    params = {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": REDIRECT,
        "scope": SCOPE,
        "state": "etat-123",
        "code_challenge": s256(VERIFIER),
        "code_challenge_method": "S256",
        **changes,
    }
    return "/oauth/authorize?" + urlencode({k: v for k, v in params.items() if v is not None})


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def code_for(browser: TestClient, app: ReferencedApp) -> str:
    return query_of(consent(browser, authorize_url(app)))["code"]


def exchange(client: TestClient, app: ReferencedApp, code: str, verifier: str = VERIFIER, **more: str) -> Any:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "client_id": app.client_id}
    return client.post("/oauth/token", data={**data, "code_verifier": verifier, **more})


def fhir_get(client: TestClient, token: str, patient_id: str) -> int:
    answer = client.get(
        "/fhir/Observation", params={"patient": f"Patient/{patient_id}"}, headers={"Authorization": f"Bearer {token}"}
    )
    return answer.status_code


@pytest.fixture
def browser(patient_browser: TestClient) -> TestClient:
    return patient_browser


def test_cat2_an_unknown_client_is_told_in_french_and_never_redirected(browser: TestClient, app: ReferencedApp) -> None:
    answer = browser.get(authorize_url(app, client_id="app-inconnue"))
    assert answer.status_code == 400 and "location" not in answer.headers
    assert "inconnue ou n'est pas référencée" in text_of(answer)


def test_cat2_a_redirect_uri_not_registered_exactly_is_never_redirected_to(
    browser: TestClient, app: ReferencedApp
) -> None:
    for wrong in (REDIRECT + "/autre", REDIRECT + "?x=1", "https://pirate.exemple.fr/retour", REDIRECT.upper()):
        answer = browser.get(authorize_url(app, redirect_uri=wrong))
        assert answer.status_code == 400 and "location" not in answer.headers, wrong
        assert "adresse de retour" in text_of(answer)


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"code_challenge_method": "plain", "code_challenge": VERIFIER}, "invalid_request"),
        ({"code_challenge_method": ""}, "invalid_request"),
        ({"code_challenge": ""}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "patient/Immunization.rs"}, "invalid_scope"),
        ({"scope": "patient/Observation.crs patient/Consent.r"}, "invalid_scope"),
    ],
)
def test_cat2_a_wrong_authorisation_request_goes_back_to_the_app_with_the_error_and_the_state(
    browser: TestClient, app: ReferencedApp, changes: dict[str, str], error: str
) -> None:
    answer = browser.get(authorize_url(app, **changes))
    assert answer.status_code == 303 and answer.headers["location"].startswith(REDIRECT + "?")
    back = query_of(answer.headers["location"])
    assert back["error"] == error and back["state"] == "etat-123" and back["error_description"]


def test_cat2_a_refused_consent_sends_access_denied_and_gives_no_code(browser: TestClient, app: ReferencedApp) -> None:
    back = query_of(consent(browser, authorize_url(app), decision="refuser"))
    assert back == {"error": "access_denied", "state": "etat-123"}


def test_cat2_the_consent_screen_lists_each_scope_in_french(browser: TestClient, app: ReferencedApp) -> None:
    page = text_of(browser.get(authorize_url(app)))
    assert "Connecter « Balance connectée Tensio »" in page
    assert "Lire, rechercher et ajouter vos mesures (poids, tension, glycémie, pas…)" in page
    assert "Lire et rechercher vos documents de santé" in page
    assert "Rester connectée quand vous n'utilisez pas Carnet" in page


def test_cat2_a_missing_or_wrong_verifier_is_refused_and_the_code_still_works_after(
    browser: TestClient, client: TestClient, app: ReferencedApp
) -> None:
    code = code_for(browser, app)
    for verifier in ("", "mauvais-" + "y" * 40):
        refused = exchange(client, app, code, verifier)
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
        assert "code_verifier" in refused.json()["error_description"]
    wrong_uri = exchange(client, app, code, redirect_uri=REDIRECT + "/autre")
    assert wrong_uri.status_code == 400 and wrong_uri.json()["error"] == "invalid_grant"
    assert exchange(client, app, code).status_code == 200


def test_cat2_a_reused_code_is_refused_and_revokes_what_it_gave(
    browser: TestClient, client: TestClient, app: ReferencedApp
) -> None:
    code = code_for(browser, app)
    first = exchange(client, app, code).json()
    assert fhir_get(client, first["access_token"], first["patient"]) == 200
    again = exchange(client, app, code)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert fhir_get(client, first["access_token"], first["patient"]) == 401


def test_cat2_an_expired_code_is_refused(
    browser: TestClient, client: TestClient, app: ReferencedApp, demo: Services
) -> None:
    code = code_for(browser, app)
    with demo.db.unit_of_work() as db:
        db.execute(update(AuthorizationCode).values(expires_at=utcnow()))
    answer = exchange(client, app, code)
    assert answer.status_code == 400 and "expiré" in answer.json()["error_description"]


def test_cat2_a_malformed_token_request_is_an_invalid_request_and_spends_nothing(
    browser: TestClient, client: TestClient, app: ReferencedApp
) -> None:
    """RFC 6749 §5.2: a field too long, a field given twice or a body that is not a form is ``invalid_request``;
    the code is not spent by it."""
    code = code_for(browser, app)
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "client_id": app.client_id}
    too_long = client.post("/oauth/token", data={**data, "code_verifier": "v" * 201})
    twice = client.post("/oauth/token", content=urlencode({**data, "code_verifier": VERIFIER}) + "&code=autre",
                        headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    not_a_form = client.post("/oauth/token", json={**data, "code_verifier": VERIFIER})
    for answer, field in ((too_long, "code_verifier"), (twice, "code"), (not_a_form, "grant_type")):
        assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"
        assert answer.headers["cache-control"] == "no-store"
        if answer is not not_a_form:
            assert f"« {field} »" in answer.json()["error_description"]
    assert exchange(client, app, code).status_code == 200


def test_cat2_a_code_of_another_app_is_refused(
    browser: TestClient, client: TestClient, app: ReferencedApp, demo: Services
) -> None:
    other = reference(demo, "Podomètre")
    code = code_for(browser, app)
    answer = exchange(client, other, code)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"
    assert exchange(client, app, code).status_code == 200


def test_cat2_refresh_tokens_rotate_and_a_reused_one_revokes_the_whole_series(
    browser: TestClient, client: TestClient, app: ReferencedApp
) -> None:
    first = exchange(client, app, code_for(browser, app)).json()
    data = {"grant_type": "refresh_token", "client_id": app.client_id}
    second = client.post("/oauth/token", data={**data, "refresh_token": first["refresh_token"]}).json()
    assert (
        second["refresh_token"] != first["refresh_token"]
        and fhir_get(client, second["access_token"], second["patient"]) == 200
    )
    replay = client.post("/oauth/token", data={**data, "refresh_token": first["refresh_token"]})
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert fhir_get(client, second["access_token"], second["patient"]) == 401
    dead = client.post("/oauth/token", data={**data, "refresh_token": second["refresh_token"]})
    assert dead.status_code == 400


def test_cat2_a_refresh_may_narrow_the_scopes_but_an_escalation_is_refused_and_changes_nothing(
    client: TestClient, app: ReferencedApp, browser: TestClient
) -> None:
    narrow = "launch/patient offline_access patient/Observation.rs"
    code = query_of(consent(browser, authorize_url(app, scope=narrow)))["code"]
    first = exchange(client, app, code).json()
    data = {"grant_type": "refresh_token", "client_id": app.client_id, "refresh_token": first["refresh_token"]}
    wider = client.post("/oauth/token", data={**data, "scope": narrow + " patient/Observation.c"})
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"
    narrower = client.post("/oauth/token", data={**data, "scope": "offline_access patient/Observation.r"})
    assert narrower.status_code == 200 and narrower.json()["scope"] == "offline_access patient/Observation.r"


def test_cat2_revocation_rfc7009_stops_a_token_and_a_refresh_token_takes_its_series(
    browser: TestClient, client: TestClient, app: ReferencedApp
) -> None:
    first = exchange(client, app, code_for(browser, app)).json()
    assert (
        client.post("/oauth/revoke", data={"token": first["access_token"], "client_id": app.client_id}).status_code
        == 200
    )
    assert fhir_get(client, first["access_token"], first["patient"]) == 401
    second = exchange(client, app, code_for(browser, app)).json()
    assert (
        client.post("/oauth/revoke", data={"token": second["refresh_token"], "client_id": app.client_id}).status_code
        == 200
    )
    assert fhir_get(client, second["access_token"], second["patient"]) == 401
    unknown = client.post("/oauth/revoke", data={"token": "inconnu", "client_id": app.client_id})
    assert unknown.status_code == 200  # RFC 7009 §2.2
    assert client.post("/oauth/revoke", data={"token": "x", "client_id": "app-inconnue"}).status_code == 401


def test_cat2_introspection_rfc7662_tells_the_app_whether_its_token_is_live(
    browser: TestClient, client: TestClient, app: ReferencedApp, demo: Services
) -> None:
    first = exchange(client, app, code_for(browser, app)).json()
    live = client.post("/oauth/introspect", data={"token": first["access_token"], "client_id": app.client_id}).json()
    assert live["active"] is True and live["patient"] == first["patient"] and "patient/Observation.crs" in live["scope"]
    other = reference(demo, "Podomètre")
    foreign = client.post("/oauth/introspect", data={"token": first["access_token"], "client_id": other.client_id})
    assert foreign.json() == {"active": False}
    client.post("/oauth/revoke", data={"token": first["access_token"], "client_id": app.client_id})
    gone = client.post("/oauth/introspect", data={"token": first["access_token"], "client_id": app.client_id})
    assert gone.json() == {"active": False}


def test_cat2_a_confidential_client_must_give_its_secret(
    browser: TestClient, client: TestClient, demo: Services
) -> None:
    secret_app = reference(demo, "Portail patient Corsica", confidential=True)
    assert secret_app.client_secret
    code = code_for(browser, secret_app)
    refused = exchange(client, secret_app, code)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    wrong = exchange(client, secret_app, code, client_secret="faux")
    assert wrong.status_code == 401
    assert exchange(client, secret_app, code, client_secret=secret_app.client_secret).status_code == 200


def test_cat2_the_consent_screen_asks_to_log_in_first_then_comes_back(
    new_client: Callable[[], TestClient], app: ReferencedApp, demo: Services
) -> None:
    anonymous = new_client()
    asked = authorize_url(app)
    answer = anonymous.get(asked)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/connexion?suite=")
    assert anonymous.get(answer.headers["location"]).status_code == 200  # the login page keeps where to go back
    landed = log_in(anonymous, demo, PATIENT)
    assert landed.headers["location"] == asked  # the consent screen again, with the app's whole request
    assert "Autoriser" in anonymous.get(landed.headers["location"]).text


def test_cat2_when_the_apps_scopes_change_its_tokens_stop_and_the_person_consents_again(
    browser: TestClient, client: TestClient, app: ReferencedApp, demo: Services
) -> None:
    from carnet.catalogue.service import apps
    from tests.catalogue.conftest import OPERATOR

    first = exchange(client, app, code_for(browser, app)).json()
    assert fhir_get(client, first["access_token"], first["patient"]) == 200
    apps.change_scopes(demo, OPERATOR, app.id, "patient/Observation.crs patient/Appointment.crs")
    assert fhir_get(client, first["access_token"], first["patient"]) == 401
    page = text_of(browser.get(authorize_url(app, scope="launch/patient patient/Appointment.c")))
    assert "a changé ses demandes depuis votre dernier accord" in page
    second = exchange(
        client, app, query_of(consent(browser, authorize_url(app, scope="patient/Observation.rs")))["code"]
    )
    assert fhir_get(client, second.json()["access_token"], first["patient"]) == 200


def test_cat3_an_app_adds_an_appointment_and_reads_the_agenda_of_the_space(
    browser: TestClient, client: TestClient, demo: Services
) -> None:
    from tests.agenda.test_appointment_fhir import appointment

    agenda_app = reference(demo, "Agenda Corsica", scope="patient/Appointment.crs")
    code = query_of(consent(browser, authorize_url(agenda_app, scope="patient/Appointment.cs")))["code"]
    token = exchange(client, agenda_app, code).json()
    headers = {"Authorization": f"Bearer {token['access_token']}", "Content-Type": "application/fhir+json"}
    body = appointment("-")
    body["participant"][0]["actor"] = {"reference": f"Patient/{token['patient']}"}
    created = client.post("/fhir/Appointment", json=body, headers=headers)
    assert created.status_code == 201, created.text
    found = client.get("/fhir/Appointment", params={"patient": f"Patient/{token['patient']}"}, headers=headers)
    assert found.status_code == 200 and found.json()["total"] >= 1
    read = client.get(f"/fhir/Appointment/{created.json()['id']}", headers=headers)
    assert read.status_code == 403 and "patient/Appointment.r" in read.text  # .r was not asked for


def test_cat2_tokens_and_codes_a_day_past_their_expiry_are_deleted_and_live_ones_kept(
    browser: TestClient, client: TestClient, app: ReferencedApp, demo: Services
) -> None:
    """The ``apps.tokens`` job: an expired token or code is gone a day later; a live token still works."""
    issued = exchange(client, app, code_for(browser, app)).json()
    assert oauth.purge_expired(demo) == 0  # nothing expired: the access and refresh tokens and the used code stay
    assert fhir_get(client, issued["access_token"], issued["patient"]) == 200
    later = utcnow() + oauth.ACCESS_LIFETIME + oauth.PURGE_GRACE + timedelta(minutes=1)
    assert oauth.purge_expired(demo, now=later) == 2  # the access token and the code; the refresh token lives on
    data = {"grant_type": "refresh_token", "client_id": app.client_id, "refresh_token": issued["refresh_token"]}
    assert client.post("/oauth/token", data=data).status_code == 200
