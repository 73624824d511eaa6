"""The app catalogue in a real Chromium (CAT-2): the patient browses and searches the catalogue, opens the demo app's
page, then follows an app's link to the consent screen, reads each scope in French and says yes — Chromium is
sent back to the app's redirect URI with the code and the state (the page's Content-Security-Policy lets its form
lead there); the app is listed among the connected ones and she disconnects it. axe-core on every page, on a phone
and a desktop screen, and no Content-Security-Policy refusal."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from playwright.sync_api import Page, Route, expect

from carnet.bootstrap import Services
from carnet.catalogue.model.pkce import s256
from carnet.demo import DEMO_APP_CLIENT_ID
from tests.browser.conftest import PageProblems, assert_no_csp_refusal, check_page
from tests.browser.test_login_journey import PATIENT, log_in

pytestmark = pytest.mark.browser

RETURN = "http://127.0.0.1:8765/retour"  # the demo app's redirect URI (answered here by the test)


def test_the_patient_browses_the_catalogue_consents_to_an_app_and_disconnects_it(
    page: Page, demo: Services, page_problems: PageProblems
) -> None:
    log_in(page, demo, PATIENT, check_accessibility=False)
    space = re.search(r"/espace/([^/?]+)", page.url).group(1)  # type: ignore[union-attr]
    page.goto(f"/espace/{space}/applications")
    expect(page.get_by_role("heading", name="Catalogue d'applications", level=1)).to_be_visible()
    check_page(page)
    page.get_by_label("Rechercher une application").fill("tensio")
    page.get_by_role("button", name="Rechercher").click()
    page.get_by_role("link", name="Tensio Maison").click()
    expect(page.get_by_role("heading", name="Tensio Maison", level=1)).to_be_visible()
    expect(page.get_by_text("Lire, rechercher et ajouter vos mesures")).to_be_visible()
    check_page(page)

    landed: list[str] = []

    def app_side(route: Route) -> None:
        landed.append(route.request.url)
        route.fulfill(status=200, content_type="text/html", body="<!doctype html><title>Tensio</title><p>Connecté</p>")

    page.route(re.compile(r"^http://127\.0\.0\.1:8765/"), app_side)
    query = {
        "response_type": "code",
        "client_id": DEMO_APP_CLIENT_ID,
        "redirect_uri": RETURN,
        "scope": "launch/patient patient/Observation.cr",
        "state": "etat-navigateur",
        "code_challenge": s256("v" * 50),
        "code_challenge_method": "S256",
    }
    page.goto("/oauth/authorize?" + urlencode(query))
    expect(page.get_by_role("heading", name=re.compile("Connecter « Tensio Maison »"), level=1)).to_be_visible()
    expect(page.get_by_text("Lire et ajouter vos mesures (poids, tension, glycémie, pas…)")).to_be_visible()
    check_page(page)
    page.get_by_role("button", name="Autoriser").click()
    page.wait_for_url(re.compile(r"^http://127\.0\.0\.1:8765/retour"))
    back = parse_qs(urlsplit(landed[-1]).query)
    assert back["state"] == ["etat-navigateur"] and back["code"][0]

    page.goto(f"/espace/{space}/applications/connectees")
    expect(page.get_by_role("heading", name="Tensio Maison", level=2)).to_be_visible()
    check_page(page)
    page.get_by_role("button", name="Déconnecter Tensio Maison").click()
    expect(page.get_by_role("status")).to_have_text(re.compile("L'application a été déconnectée"))
    check_page(page)
    assert_no_csp_refusal(page_problems)
