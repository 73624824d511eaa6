"""A parent in a real Chromium (FAM-1): Laetitia Casanova opens « Mes espaces et mes proches », enters her son
Lisandru's space — the banner says whose space she is acting in — and invites his second legal representative;
axe-core on every page, and no Content-Security-Policy refusal."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from carnet.bootstrap import Services
from carnet.family.tables import SpaceInvitation
from carnet.people.model.identifiers import format_nir, nir_from_body
from tests.browser.conftest import PageProblems, assert_accessible, assert_no_csp_refusal
from tests.browser.test_login_journey import log_in

pytestmark = pytest.mark.browser

PARENT = "laetitia.casanova"
SECOND_PARENT_NIR = nir_from_body("186042B033077")


def test_a_parent_enters_her_sons_space_and_invites_the_second_legal_representative(
    page: Page, demo: Services, page_problems: PageProblems
) -> None:
    log_in(page, demo, PARENT, check_accessibility=False)
    expect(page.get_by_role("heading", name="Bonjour Laetitia", level=1)).to_be_visible()

    page.get_by_role("link", name="Mes espaces et mes proches").click()
    expect(page.get_by_role("heading", name="Mes espaces et mes proches", level=1)).to_be_visible()
    expect(page.get_by_role("link", name="Mon espace santé")).to_be_visible()
    assert_accessible(page)

    page.get_by_role("link", name="Espace de Lisandru CASANOVA").click()
    expect(page.get_by_role("heading", name="Bonjour Lisandru", level=1)).to_be_visible()
    banner = page.get_by_role("region", name="Espace dans lequel vous agissez")
    expect(banner).to_contain_text("Vous agissez dans l'espace de Lisandru CASANOVA (en tant que représentant légal)")
    assert_accessible(page)

    banner.get_by_role("link", name="Représentants légaux et aidants de Lisandru").click()
    expect(page.get_by_role("heading", name="Proches : représentants légaux et aidants", level=1)).to_be_visible()
    expect(page.get_by_role("main").get_by_role("listitem").filter(has_text="Laetitia CASANOVA")).to_have_count(1)
    assert_accessible(page)

    page.get_by_label(re.compile(r"^Numéro de sécurité sociale du second représentant légal")).fill(
        format_nir(SECOND_PARENT_NIR)
    )
    page.get_by_label("Son adresse e-mail").fill("ghjuvanni.casanova@exemple.fr")
    page.get_by_role("button", name="Envoyer l'invitation").click()
    expect(page.get_by_role("status")).to_contain_text("L'invitation a été envoyée par e-mail")
    expect(
        page.get_by_role("button", name="Annuler l'invitation envoyée à ghjuvanni.casanova@exemple.fr")
    ).to_be_visible()
    expect(page.get_by_role("region", name="Espace dans lequel vous agissez")).to_be_visible()
    assert_accessible(page)

    with demo.db.unit_of_work() as db:
        invitation = db.scalar(select(SpaceInvitation))
        assert invitation is not None and invitation.nir == SECOND_PARENT_NIR and invitation.kind == "representative"
    assert_no_csp_refusal(page_problems)
