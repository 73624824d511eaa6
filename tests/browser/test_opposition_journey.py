"""ENR-3 in a real Chromium: a person objects online without an account, after a first mistake — axe-core on
every page, no CSP refusal."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from carnet.bootstrap import Services
from carnet.enrolment.service import campaigns
from carnet.hall.actors import Actor, ActorKind
from carnet.people.model.identifiers import format_nir
from tests.browser.conftest import PageProblems, assert_accessible, assert_no_csp_refusal
from tests.browser.test_login_journey import log_in
from tests.conftest import outbox_messages
from tests.support.enrolment import add_registered, code_in

pytestmark = pytest.mark.browser


def test_a_person_objects_online_and_downloads_the_receipt(
    page: Page, demo: Services, page_problems: PageProblems
) -> None:
    person = add_registered(demo, 1, "2A", with_email=True, start=900)[0]
    campaigns.start_campaign(demo, "2A", Actor(ActorKind.OPERATOR, None, "Opérateur de test"))
    campaigns.send_pending(demo)
    code = code_in(next(m for m in outbox_messages(demo) if m["To"] == person.email))  # type: ignore[index]

    page.goto("/opposition")
    expect(page.get_by_role("heading", name="S'opposer à la création de l'espace santé", level=1)).to_be_visible()
    assert_accessible(page)

    page.get_by_label("Code d'activation").fill(code)
    page.get_by_label("Numéro de sécurité sociale").fill(format_nir(person.ins)[:-2] + "00")  # a wrong key
    page.get_by_label("Date de naissance").fill("14/03/1985")
    page.get_by_role("button", name="Je m'oppose à la création de l'espace santé").click()
    expect(page.get_by_role("alert")).to_contain_text("clé")
    assert_accessible(page)

    page.get_by_label("Numéro de sécurité sociale").fill(format_nir(person.ins))
    page.get_by_role("button", name="Je m'oppose à la création de l'espace santé").click()
    expect(page.get_by_role("heading", name="Votre opposition est enregistrée", level=1)).to_be_visible()
    assert_accessible(page)
    with page.expect_download() as download:
        page.get_by_role("link", name=re.compile("Télécharger le récépissé")).click()
    assert download.value.suggested_filename == "recepisse-opposition.pdf"

    page.get_by_role("link", name="la page de retrait").click()
    expect(page.get_by_role("heading", name="Retirer une opposition à l'espace santé", level=1)).to_be_visible()
    assert_accessible(page)
    assert_no_csp_refusal(page_problems)


def test_the_operator_console_is_accessible(page: Page, demo: Services, page_problems: PageProblems) -> None:
    add_registered(demo, 3, "2B", with_email=False, start=950)
    log_in(page, demo, "operateur.cpam", check_accessibility=False)
    expect(page.get_by_role("heading", name="Console des conseillers", level=1)).to_be_visible()
    page.get_by_label("Départements").fill("2B")
    page.get_by_role("button", name="Lancer la campagne").click()
    expect(page.get_by_role("heading", name="Campagne 2B", level=1)).to_be_visible()
    assert_accessible(page)
    page.get_by_role("button", name=re.compile("Produire les courriers")).click()
    expect(page.get_by_role("link", name=re.compile("Télécharger le lot"))).to_be_visible()
    assert_accessible(page)
    page.get_by_role("link", name="Retour à la console").click()
    expect(page.get_by_role("table")).to_contain_text("2B")
    assert_accessible(page)
    assert_no_csp_refusal(page_problems)
