"""ENR-5: password + second factor, lockout, CSRF, sessions, logout, inactivity expiry."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from carnet.bootstrap import Services
from carnet.identity.tables import WebSession
from carnet.people.tables import Account
from tests.conftest import csrf_of, last_code_for, log_in, outbox_messages

LOGIN = "marie-ange.santoni"
EMAIL = f"{LOGIN}@exemple.fr"


def _post_password(client: TestClient, login: str, password: str) -> object:
    page = client.get("/connexion")
    return client.post(
        "/connexion", data={"identifiant": login, "mot_de_passe": password, "csrf_token": csrf_of(page.text)}
    )


def test_password_then_emailed_code_opens_the_patient_home(client: TestClient, demo: Services) -> None:
    log_in(client, demo, LOGIN)
    home = client.get("/", follow_redirects=True)
    assert home.status_code == 200
    assert "Bonjour Marie-Ange" in home.text
    for section in ("Documents", "Profil médical", "Agenda", "Messagerie", "Historique", "Paramètres"):
        assert section in home.text


def test_the_password_alone_does_not_open_the_space(client: TestClient, demo: Services) -> None:
    response = _post_password(client, LOGIN, "Carnet-Demo-2026!")
    assert response.status_code == 303
    assert client.get("/espace").status_code == 303
    assert client.get("/espace").headers["location"] == "/connexion"


def test_the_code_email_carries_only_the_code(client: TestClient, demo: Services) -> None:
    _post_password(client, LOGIN, "Carnet-Demo-2026!")
    message = outbox_messages(demo)[-1]
    body = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[attr-defined]
    assert message["To"] == EMAIL  # type: ignore[index]
    assert "Marie-Ange" not in body and "SANTONI" not in body


def test_a_wrong_password_gets_one_generic_french_message(client: TestClient, demo: Services) -> None:
    wrong = _post_password(client, LOGIN, "pas-le-bon")
    unknown = _post_password(client, "personne.inconnue", "pas-le-bon")
    assert wrong.status_code == unknown.status_code == 400
    assert "Identifiant ou mot de passe incorrect." in wrong.text
    assert "Identifiant ou mot de passe incorrect." in unknown.text


def test_five_failures_lock_the_login_even_with_the_right_password(client: TestClient, demo: Services) -> None:
    for _ in range(5):
        response = _post_password(client, LOGIN, "pas-le-bon")
    assert response.status_code == 429
    assert "réessayez dans 15 minutes" in response.text
    response = _post_password(client, LOGIN, "Carnet-Demo-2026!")
    assert response.status_code == 429


def test_unknown_logins_lock_the_same_way_so_accounts_cannot_be_enumerated(client: TestClient, demo: Services) -> None:
    for _ in range(5):
        response = _post_password(client, "personne.inconnue", "x")
    assert response.status_code == 429


def test_one_client_address_is_rate_limited(new_client: object, demo: Services) -> None:
    client = new_client()  # type: ignore[operator]
    statuses = [_post_password(client, f"inconnu{i}", "x").status_code for i in range(21)]
    assert statuses[:20] == [400] * 20
    assert statuses[20] == 429


def test_a_wrong_second_factor_code_is_refused(client: TestClient, demo: Services) -> None:
    _post_password(client, LOGIN, "Carnet-Demo-2026!")
    page = client.get("/connexion/verification?methode=email")
    good = last_code_for(demo, EMAIL)
    bad = f"{(int(good) + 1) % 1_000_000:06d}"
    response = client.post(
        "/connexion/verification", data={"code": bad, "methode": "email", "csrf_token": csrf_of(page.text)}
    )
    assert response.status_code == 400
    assert "Code incorrect ou expiré" in response.text


def test_an_emailed_code_works_once(new_client: object, demo: Services) -> None:
    first = new_client()  # type: ignore[operator]
    log_in(first, demo, LOGIN)
    code = last_code_for(demo, EMAIL)
    second = new_client()  # type: ignore[operator]
    _post_password(second, LOGIN, "Carnet-Demo-2026!")
    # a new code was sent; the old one is void
    page = second.get("/connexion/verification")
    response = second.post(
        "/connexion/verification", data={"code": code, "methode": "email", "csrf_token": csrf_of(page.text)}
    )
    assert response.status_code == 400


def test_a_form_without_its_csrf_token_is_refused(client: TestClient, demo: Services) -> None:
    client.get("/connexion")
    response = client.post("/connexion", data={"identifiant": LOGIN, "mot_de_passe": "Carnet-Demo-2026!"})
    assert response.status_code == 403
    assert "Formulaire expiré" in response.text
    forged = client.post(
        "/connexion", data={"identifiant": LOGIN, "mot_de_passe": "Carnet-Demo-2026!", "csrf_token": "0" * 64}
    )
    assert forged.status_code == 403


def test_session_cookie_is_httponly_and_samesite(client: TestClient, demo: Services) -> None:
    response = _post_password(client, LOGIN, "Carnet-Demo-2026!")
    cookie = response.headers["set-cookie"]  # type: ignore[attr-defined]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "carnet_session=" in cookie


def test_logout_ends_the_session(client: TestClient, demo: Services) -> None:
    log_in(client, demo, LOGIN)
    page = client.get("/espace", follow_redirects=True)
    response = client.post("/deconnexion", data={"csrf_token": csrf_of(page.text)})
    assert response.status_code == 303
    assert client.get("/espace").headers["location"] == "/connexion"


def test_an_idle_session_expires(client: TestClient, demo: Services) -> None:
    log_in(client, demo, LOGIN)
    with demo.db.unit_of_work() as db:
        for row in db.scalars(select(WebSession)):
            row.last_seen_at = row.last_seen_at - timedelta(minutes=16)
    response = client.get("/espace")
    assert response.headers["location"] == "/connexion"


def test_totp_can_be_enabled_then_used_to_log_in(new_client: object, demo: Services) -> None:
    client = new_client()  # type: ignore[operator]
    log_in(client, demo, LOGIN)
    settings_page = client.get("/espace", follow_redirects=True)
    patient_path = str(settings_page.url.path)
    page = client.get(f"{patient_path}/parametres")
    setup = client.post(
        f"{patient_path}/parametres/totp", data={"etape": "commencer", "csrf_token": csrf_of(page.text)}
    )
    assert setup.status_code == 200 and "<svg" in setup.text
    secret = setup.text.split('id="cle-totp">')[1].split("<")[0]
    sealed = setup.text.split('name="secret_scelle" value="')[1].split('"')[0]
    done = client.post(
        f"{patient_path}/parametres/totp",
        data={
            "etape": "confirmer",
            "secret_scelle": sealed,
            "code": pyotp.TOTP(secret).now(),
            "csrf_token": csrf_of(setup.text),
        },
    )
    assert done.status_code == 303

    other = new_client()  # type: ignore[operator]
    response = _post_password(other, LOGIN, "Carnet-Demo-2026!")
    assert response.headers["location"].endswith("methode=totp")  # type: ignore[attr-defined]
    page = other.get(response.headers["location"])  # type: ignore[attr-defined]
    code = pyotp.TOTP(secret).now()
    # the code used to confirm the setup cannot be replayed within the same 30 s step
    with demo.db.unit_of_work() as db:
        db.execute(update(Account).where(Account.login == LOGIN).values(totp_last_step=None))
    ok = other.post("/connexion/verification", data={"code": code, "methode": "totp", "csrf_token": csrf_of(page.text)})
    assert ok.status_code == 303
    third = new_client()  # type: ignore[operator]
    response = _post_password(third, LOGIN, "Carnet-Demo-2026!")
    page = third.get(response.headers["location"])  # type: ignore[attr-defined]
    replay = third.post(
        "/connexion/verification", data={"code": code, "methode": "totp", "csrf_token": csrf_of(page.text)}
    )
    assert replay.status_code == 400


@pytest.mark.parametrize("suite", ["//evil.example/x", "https://evil.example/", "/connexion", "/\\evil.example"])
def test_the_login_only_returns_to_a_page_of_this_site(demo: Services, new_client: Any, suite: str) -> None:
    """After logging in, a person comes back to the local page they were sent from (an invitation link),
    never to another site nor to the login pages."""
    client = new_client()
    client.get("/connexion", params={"suite": suite})
    landed = log_in(client, demo, "marie-ange.santoni")
    assert landed.headers["location"].startswith("/espace/")
    client = new_client()
    client.get("/connexion", params={"suite": "/famille"})
    assert log_in(client, demo, "marie-ange.santoni").headers["location"] == "/famille"


@pytest.mark.parametrize(
    ("login", "password", "said"),
    [
        ("", "", "Saisissez votre identifiant et votre mot de passe."),
        (LOGIN, "", "Saisissez votre mot de passe."),
        ("  ", "x", "Saisissez votre identifiant."),
    ],
)
def test_empty_fields_say_what_is_missing_and_count_nothing(
    client: TestClient, demo: Services, login: str, password: str, said: str
) -> None:
    """Issue #15-12: nothing typed is not « incorrect »."""
    for _ in range(6):  # more than the five failures that lock a login
        answer = _post_password(client, login, password)
        assert answer.status_code == 400 and said in answer.text  # type: ignore[attr-defined]
        assert "incorrect" not in answer.text  # type: ignore[attr-defined]
    assert _post_password(client, LOGIN, "Carnet-Demo-2026!").status_code == 303  # type: ignore[attr-defined]
