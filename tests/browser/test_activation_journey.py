"""ENR-4 in a real Chromium: a person activates their space from the invitation, axe-core on every step."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from carnet.bootstrap import Services
from tests.browser.conftest import PageProblems, assert_accessible, assert_no_csp_refusal
from tests.conftest import last_code_for
from tests.enrolment.test_activation_pages import PARENT_NIR, Invited, invited  # noqa: F401 — fixture

pytestmark = pytest.mark.browser


def test_a_person_activates_her_space_in_the_browser(
    page: Page,
    demo: Services,
    invited: Invited,  # noqa: F811 — the fixture imported above
    page_problems: PageProblems,
) -> None:
    page.goto("/connexion")
    page.get_by_role("link", name="Activer mon espace santé").click()
    expect(page.get_by_role("heading", name="Activer mon espace santé", level=1)).to_be_visible()
    assert_accessible(page)
    page.get_by_label("Code d'activation").fill("abcd 2345 efgh")
    page.get_by_label("Date de naissance de la personne invitée").fill("1979-05-03")
    page.get_by_label("Numéro de sécurité sociale").fill(PARENT_NIR)
    page.get_by_label("Numéro de série de la carte Vitale").fill("000000000")
    page.get_by_role("button", name="Continuer").click()
    expect(page.get_by_role("alert")).to_contain_text("carte Vitale ne correspond pas")
    assert_accessible(page)
    page.get_by_label("Numéro de série de la carte Vitale").fill("123456789")
    page.get_by_role("button", name="Continuer").click()
    page.wait_for_url(re.compile(r"/activation/contact"))
    assert_accessible(page)
    page.get_by_role("button", name="Recevoir le code").click()
    page.wait_for_url(re.compile(r"/activation/verification"))
    assert_accessible(page)
    page.get_by_label("Code reçu").fill(last_code_for(demo, "santa.paoli@exemple.fr"))
    page.get_by_role("button", name="Valider").click()
    page.wait_for_url(re.compile(r"/activation/compte"))
    assert_accessible(page)
    page.get_by_label("Identifiant").fill("santa.paoli")
    page.get_by_label("Mot de passe", exact=False).first.fill("Bastia-2026!")
    page.get_by_label("Confirmer le mot de passe").fill("Bastia-2026!")
    page.get_by_role("button", name="Activer mon espace").click()
    page.wait_for_url(re.compile(r"/connexion\?active=1"))
    expect(page.get_by_role("status")).to_contain_text("Votre espace santé est activé")
    assert_accessible(page)
    assert_no_csp_refusal(page_problems)
