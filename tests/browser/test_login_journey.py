"""Journeys in a real Chromium: log in with the e-mailed code, move around, log out — axe-core on every page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from carnet.bootstrap import Services
from carnet.demo import DEMO_PASSWORD
from carnet.people.model.identifiers import nir_from_body
from tests.browser.conftest import PageProblems, assert_accessible, assert_no_csp_refusal, check_page, watch
from tests.conftest import last_code_for

pytestmark = pytest.mark.browser

PATIENT = "marie-ange.santoni"
PROFESSIONAL = "dr.ferracci"
SECTIONS = ["Documents", "Profil médical", "Agenda", "Messagerie", "Historique", "Paramètres"]


def log_in(page: Page, services: Services, login: str, *, check_accessibility: bool = True) -> None:
    """Password, then the 6-digit code read from the outbox — typed into the fields by their French labels."""
    page.goto("/connexion")
    expect(page.get_by_role("heading", name="Se connecter à Carnet", level=1)).to_be_visible()
    if check_accessibility:
        assert_accessible(page)
    page.get_by_label("Identifiant").fill(login)
    page.get_by_label("Mot de passe").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Continuer").click()
    page.wait_for_url(re.compile(r"/connexion/verification"))
    expect(page.get_by_role("heading", name="Vérification en deux étapes", level=1)).to_be_visible()
    if check_accessibility:
        assert_accessible(page)
    page.get_by_label("Code").fill(last_code_for(services, f"{login}@exemple.fr"))
    page.get_by_role("button", name="Valider").click()
    page.wait_for_url(lambda url: "/connexion" not in url)


def test_a_patient_logs_in_reads_her_history_and_logs_out(
    page: Page, demo: Services, page_problems: PageProblems
) -> None:
    log_in(page, demo, PATIENT)

    expect(page).to_have_url(re.compile(r"/espace/[^/]+$"))
    expect(page.get_by_role("heading", name="Bonjour Marie-Ange", level=1)).to_be_visible()
    for section in SECTIONS:
        expect(page.get_by_role("heading", name=section, level=3, exact=True)).to_be_visible()
    assert page.evaluate("() => typeof window.htmx") == "object", "htmx (script du site) n'a pas été chargé"
    assert_accessible(page)

    menu = page.get_by_role("navigation", name="Menu de l'espace santé")
    menu.get_by_role("link", name="Historique").click()
    expect(page.get_by_role("heading", name="Historique", level=1)).to_be_visible()
    expect(page.get_by_role("row").filter(has_text="Vous vous êtes connecté(e) à l'espace").first).to_be_visible()
    assert_accessible(page)

    menu.get_by_role("link", name="Paramètres").click()
    expect(page.get_by_role("heading", name="Paramètres", level=1)).to_be_visible()
    expect(page.get_by_text("marie-ange.santoni@exemple.fr")).to_be_visible()
    assert_accessible(page)

    page.get_by_role("button", name="Se déconnecter").click()
    expect(page).to_have_url(re.compile(r"/connexion\?deconnecte=1$"))
    expect(page.get_by_role("status")).to_have_text("Vous êtes déconnecté(e).")
    expect(page.get_by_role("button", name="Se déconnecter")).to_have_count(0)
    assert_accessible(page)

    assert_no_csp_refusal(page_problems)


def test_a_professional_logs_in_to_the_professional_home(
    page: Page, demo: Services, page_problems: PageProblems
) -> None:
    """The search, the status and the documents are in test_pro_journey.py."""
    log_in(page, demo, PROFESSIONAL)

    expect(page).to_have_url(re.compile(r"/pro$"))
    expect(page.get_by_role("heading", name="Espace professionnel", level=1)).to_be_visible()
    expect(page.get_by_text("RPPS 10001234567")).to_be_visible()
    assert_accessible(page)

    ins = nir_from_body("1840699123456")  # nobody's
    page.get_by_label("Matricule INS").fill(ins)
    page.get_by_label("Nom de naissance").fill("INCONNU")
    page.get_by_label("Premier prénom").fill("Personne")
    page.get_by_label("Date de naissance").fill("1984-06-01")
    page.get_by_role("button", name="Rechercher").click()
    expect(page.get_by_role("alert")).to_contain_text("Aucun espace santé ouvert ne correspond à cet INS.")
    assert_accessible(page)

    assert_no_csp_refusal(page_problems)


def test_the_patient_home_fits_a_phone_screen(
    browser: Browser, live_server: str, demo: Services, page_problems: PageProblems
) -> None:
    context = browser.new_context(
        base_url=live_server, locale="fr-FR", viewport={"width": 375, "height": 812}, is_mobile=True, has_touch=True
    )
    context.set_default_timeout(10_000)
    try:
        phone = watch(context.new_page(), page_problems)
        log_in(phone, demo, PATIENT, check_accessibility=False)
        expect(phone.get_by_role("heading", name="Bonjour Marie-Ange", level=1)).to_be_visible()
        bullets = phone.evaluate(
            """() => [...document.querySelectorAll('main .fr-grid-row > li')]
            .filter(item => getComputedStyle(item).listStyleType !== 'none').length"""
        )
        assert bullets == 0, "des puces s'affichent à côté des cartes de l'accueil (issue #15-12)"
        assert phone.locator("main .fr-grid-row > li").count() >= 6
        check_page(phone, (375,), where="l'accueil sur mobile")
        assert_no_csp_refusal(page_problems)
    finally:
        context.close()


def test_the_csp_refusal_detector_is_not_blind(page: Page, page_problems: PageProblems) -> None:
    """The CSP forbids inline scripts, and such a refusal does reach the console errors we check."""
    page.goto("/connexion")
    with page.expect_console_message(lambda message: message.type == "error"):
        page.evaluate(
            """() => {
            const script = document.createElement("script");
            script.textContent = "window.inlineRan = true";
            document.body.appendChild(script);
        }"""
        )
    assert page.evaluate("() => window.inlineRan === undefined"), "un script en ligne a pu s'exécuter"
    assert page_problems.csp_refusals(), "le refus CSP n'a pas été vu dans la console"


def test_the_accessibility_check_is_not_blind(page: Page) -> None:
    """A field without a label must make `assert_accessible` fail, naming the axe rule."""
    page.goto("/connexion")
    page.evaluate("() => document.querySelector('form').appendChild(document.createElement('input'))")
    with pytest.raises(pytest.fail.Exception, match=r"- label \[critical\]"):
        assert_accessible(page)
