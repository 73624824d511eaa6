"""ENR-5 / issue #16-3 in a real Chromium with its virtual authenticator (DevTools protocol, WebAuthn domain):
register a passkey in « Paramètres », log out, log in with it (without and after the password); an answer made
on another origin (a phishing page) and a cloned credential (its counter behind) are refused; removal; axe-core.

The service is served at http://localhost:<port>: browsers refuse passkeys on an IP address."""

from __future__ import annotations

import base64
import html
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, CDPSession, Page, expect
from sqlalchemy import select

from carnet.bootstrap import Services
from carnet.config import Settings
from carnet.demo import DEMO_PASSWORD
from carnet.hall.tables import AuditEntry
from carnet.identity.service import passkeys
from carnet.web.app import create_app
from tests.browser.conftest import PageProblems, assert_accessible, assert_no_csp_refusal, check_page, watch
from tests.conftest import last_code_for, make_settings

pytestmark = pytest.mark.browser

PATIENT = "marie-ange.santoni"
AUTHENTICATOR = {
    "protocol": "ctap2",
    "transport": "internal",
    "hasResidentKey": True,
    "hasUserVerification": True,
    "isUserVerified": True,
    "automaticPresenceSimulation": True,
}


@pytest.fixture
def bound_socket() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    yield sock
    sock.close()


@pytest.fixture
def settings(tmp_path: Path, database_url: str, bound_socket: socket.socket) -> Settings:
    return make_settings(tmp_path / "data", database_url, base_url=f"http://localhost:{bound_socket.getsockname()[1]}")


@pytest.fixture
def live_server(demo: Services, bound_socket: socket.socket) -> Iterator[str]:
    """The app served on the socket whose port the settings' base URL names, reached as « localhost »."""
    config = uvicorn.Config(create_app(services=demo), log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [bound_socket]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            pytest.fail("le serveur uvicorn de test n'a pas démarré", pytrace=False)
        time.sleep(0.01)
    try:
        yield demo.settings.base_url
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def authenticator(page: Page) -> tuple[CDPSession, str]:
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    found = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": AUTHENTICATOR})
    return cdp, found["authenticatorId"]


def new_page(browser: Browser, base_url: str, problems: PageProblems) -> tuple[BrowserContext, Page]:
    context = browser.new_context(base_url=base_url, locale="fr-FR")
    context.set_default_timeout(10_000)
    return context, watch(context.new_page(), problems)


def log_in_with_code(page: Page, services: Services) -> None:
    page.goto("/connexion")
    page.get_by_label("Identifiant").fill(PATIENT)
    page.get_by_label("Mot de passe").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Continuer").click()
    page.wait_for_url(re.compile(r"/connexion/verification"))
    page.get_by_label("Code").fill(last_code_for(services, f"{PATIENT}@exemple.fr"))
    page.get_by_role("button", name="Valider").click()
    page.wait_for_url(re.compile(r"/espace/[^/]+$"))


def log_out(page: Page) -> None:
    page.get_by_role("button", name="Se déconnecter").click()
    page.wait_for_url(re.compile(r"/connexion\?deconnecte=1$"))


def history(services: Services, action: str) -> list[AuditEntry]:
    with services.db.unit_of_work() as db:
        return list(db.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def register_passkey(page: Page, name: str) -> None:
    menu = page.get_by_role("navigation", name="Menu de l'espace santé")
    menu.get_by_role("link", name="Paramètres").click()
    page.get_by_role("link", name="Gérer mes clés d'accès").click()
    expect(page.get_by_role("heading", name="Clés d'accès", level=1)).to_be_visible()
    expect(page.get_by_text("Aucune clé d'accès n'est enregistrée pour votre compte.")).to_be_visible()
    check_page(page)
    page.get_by_role("button", name="Ajouter une clé d'accès").click()  # no name: said, nothing asked of the key
    expect(page.get_by_role("alert")).to_contain_text("Donnez un nom à cette clé d'accès")
    page.get_by_label("Nom de la clé d'accès").fill(name)
    page.get_by_role("button", name="Ajouter une clé d'accès").click()
    page.wait_for_url(re.compile(r"cles-acces\?ajoutee=1$"))
    expect(page.get_by_role("status")).to_contain_text("Votre clé d'accès est ajoutée")
    expect(page.get_by_text(name, exact=True)).to_be_visible()
    expect(page.get_by_text("Jamais utilisée")).to_be_visible()
    check_page(page)


def test_enr5_a_patient_registers_a_passkey_then_logs_in_with_it_alone_and_after_her_password(
    page: Page, demo: Services, page_problems: PageProblems
) -> None:
    cdp, authenticator_id = authenticator(page)
    log_in_with_code(page, demo)
    register_passkey(page, "Ordinateur du salon")
    [credential] = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})["credentials"]
    assert credential["isResidentCredential"]
    log_out(page)

    assert_accessible(page)
    page.get_by_role("button", name="Se connecter avec une clé d'accès").click()
    page.wait_for_url(re.compile(r"/espace/[^/]+$"))
    expect(page.get_by_role("heading", name="Bonjour Marie-Ange", level=1)).to_be_visible()
    page.goto(page.url + "/parametres/cles-acces")
    expect(page.get_by_text(re.compile(r"Dernière utilisation le \d\d/\d\d/\d{4}"))).to_be_visible()
    log_out(page)

    # after the password, instead of the code
    page.get_by_label("Identifiant").fill(PATIENT)
    page.get_by_label("Mot de passe").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Continuer").click()
    page.wait_for_url(re.compile(r"/connexion/verification"))
    assert_accessible(page)
    page.get_by_role("button", name="Utiliser plutôt ma clé d'accès").click()
    page.wait_for_url(re.compile(r"/espace/[^/]+$"))
    expect(page.get_by_role("heading", name="Bonjour Marie-Ange", level=1)).to_be_visible()
    assert len([e for e in history(demo, "auth.login") if e.outcome == "allow"]) == 3
    assert_no_csp_refusal(page_problems)


def test_enr5_an_answer_made_on_another_origin_is_refused(
    page: Page, live_server: str, demo: Services, page_problems: PageProblems
) -> None:
    """A phishing page on another origin of the same host name (here another port of localhost, which the RP id
    does not tell apart) relays the real server's challenge: the authenticator signs, but the answer names the
    phishing page's origin, and the server refuses it."""
    authenticator(page)
    log_in_with_code(page, demo)
    register_passkey(page, "Téléphone")
    log_out(page)

    login = page.request.get(f"{live_server}/connexion")
    token = re.search(r'name="csrf_token" value="([^"]+)"', login.text())
    assert token
    options = page.request.post(f"{live_server}/connexion/cle-acces/options", headers={"X-CSRF-Token": token[1]})
    assert options.ok, options.text()
    port = int(live_server.rsplit(":", 1)[1])
    phishing = f"http://localhost:{port + 1 if port < 65535 else port - 1}/connexion"
    page.route(
        phishing, lambda route: route.fulfill(status=200, content_type="text/html", body="<title>Carnet</title>")
    )
    page.goto(phishing)
    answer: str = page.evaluate(
        """async (json) => {
            const options = PublicKeyCredential.parseRequestOptionsFromJSON(JSON.parse(json));
            const credential = await navigator.credentials.get({publicKey: options});
            return JSON.stringify(credential.toJSON());
        }""",
        options.text(),
    )
    assert f'"origin":"{phishing.rsplit("/", 1)[0]}"' in _client_data(answer)
    refused = page.request.post(
        f"{live_server}/connexion/cle-acces", form={"reponse": answer, "csrf_token": token[1]}, max_redirects=0
    )
    assert refused.status == 400
    assert passkeys.REFUSED_LOGIN in html.unescape(refused.text())
    [failed] = history(demo, "auth.passkey_failed")
    assert failed.outcome == "deny"
    page.goto(f"{live_server}/espace")
    expect(page).to_have_url(re.compile(r"/connexion$"))
    assert_no_csp_refusal(page_problems)


def _client_data(answer: str) -> str:
    encoded = json.loads(answer)["response"]["clientDataJSON"]
    return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode().replace(" ", "")


def test_enr5_a_cloned_passkey_is_refused_then_the_passkey_is_removed(
    page: Page, browser: Browser, live_server: str, demo: Services, page_problems: PageProblems
) -> None:
    cdp, authenticator_id = authenticator(page)
    log_in_with_code(page, demo)
    register_passkey(page, "Clé de sécurité")
    log_out(page)
    page.get_by_role("button", name="Se connecter avec une clé d'accès").click()
    page.wait_for_url(re.compile(r"/espace/[^/]+$"))
    [credential] = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})["credentials"]
    assert credential["signCount"] >= 1

    # the same private key copied into another device, whose counter is behind the original's
    context, thief = new_page(browser, live_server, page_problems)
    try:
        thief_cdp, thief_id = authenticator(thief)
        copy: dict[str, Any] = {**credential, "signCount": 0}
        thief_cdp.send("WebAuthn.addCredential", {"authenticatorId": thief_id, "credential": copy})
        thief.goto("/connexion")
        thief.get_by_role("button", name="Se connecter avec une clé d'accès").click()
        expect(thief.get_by_role("alert")).to_contain_text("Cette clé d'accès n'a pas permis de vous connecter")
        expect(thief).to_have_url(re.compile(r"/connexion/cle-acces$"))
        assert_accessible(thief)
        thief.goto("/espace")
        expect(thief).to_have_url(re.compile(r"/connexion$"))
    finally:
        context.close()
    [failed] = history(demo, "auth.passkey_failed")
    assert "copiée" in failed.reason

    # removal, by the person, in « Paramètres »
    page.goto(page.url + "/parametres/cles-acces")
    page.get_by_role("button", name="Retirer la clé d'accès « Clé de sécurité »").click()
    expect(page.get_by_role("status")).to_contain_text("La clé d'accès est retirée")
    expect(page.get_by_text("Aucune clé d'accès n'est enregistrée pour votre compte.")).to_be_visible()
    check_page(page)
    assert len(history(demo, "auth.passkey_removed")) == 1
    log_out(page)
    page.get_by_role("button", name="Se connecter avec une clé d'accès").click()
    expect(page.get_by_role("alert")).to_contain_text("Cette clé d'accès n'a pas permis de vous connecter")
    assert passkeys.REFUSED_LOGIN in html.unescape(page.content())
    assert_no_csp_refusal(page_problems)
