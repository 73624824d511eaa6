"""The vault in a real Chromium: upload a PDF, find it by a word, preview it in the portal, mask it, delete it —
axe-core on every page, and no Content-Security-Policy refusal."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from carnet.bootstrap import Services
from tests.browser.conftest import PageProblems, assert_accessible, assert_no_csp_refusal
from tests.browser.test_login_journey import PATIENT, log_in
from tests.support.documents import make_pdf

pytestmark = pytest.mark.browser

TITLE = "Bilan sanguin de mars"


def test_a_patient_uploads_finds_previews_masks_and_deletes_a_document(
    page: Page, demo: Services, page_problems: PageProblems
) -> None:
    log_in(page, demo, PATIENT, check_accessibility=False)
    page.get_by_role("navigation", name="Menu de l'espace santé").get_by_role("link", name="Documents").click()
    expect(page.get_by_role("heading", name="Mes documents", level=1)).to_be_visible()
    expect(page.get_by_role("link", name="Tous les documents (0)")).to_have_attribute("aria-current", "page")
    assert_accessible(page)

    page.get_by_role("link", name="Ajouter un document").click()
    expect(page.get_by_role("heading", name="Ajouter un document", level=1)).to_be_visible()
    assert_accessible(page)
    pdf = make_pdf("Hémoglobine glyquée 6,5 % — contrôle dans trois mois")
    page.get_by_label(re.compile(r"^Fichier")).set_input_files(
        {"name": "bilan.pdf", "mimeType": "application/pdf", "buffer": pdf}
    )
    page.get_by_label("Type de document").select_option(label="Résultat de biologie (document personnel)")
    page.get_by_label(re.compile(r"^Titre")).fill(TITLE)
    page.get_by_role("button", name="Ajouter le document").click()
    expect(page.get_by_role("status")).to_have_text("Votre document a été ajouté.")
    expect(page.get_by_role("link", name="Résultats de biologie (1)")).to_be_visible()

    page.get_by_label("Rechercher dans mes documents").fill("hemoglobine")
    page.get_by_role("button", name="Rechercher", exact=True).click()
    expect(page).to_have_url(re.compile(r"q=hemoglobine"))
    card = page.get_by_role("listitem").filter(has=page.get_by_role("heading", name=TITLE, level=3))
    expect(card).to_have_count(1)
    expect(card.get_by_text("Déposé par vous")).to_be_visible()
    assert_accessible(page)

    card.get_by_role("link", name=re.compile(r"^Ouvrir")).click()
    expect(page.get_by_role("heading", name=TITLE, level=1)).to_be_visible()
    frame = page.locator("iframe.carnet-preview-frame")
    expect(frame).to_have_count(1)
    expect(frame).to_have_attribute("title", f"Aperçu du document « {TITLE} »")
    source = frame.get_attribute("src")
    assert source and source.endswith("/apercu")
    preview = page.request.get(source)
    assert preview.status == 200 and preview.headers["content-type"] == "application/pdf"
    assert preview.body() == pdf
    assert "frame-ancestors 'self'" in preview.headers["content-security-policy"]
    framed = frame.element_handle().content_frame()  # a frame refused by the browser shows chrome-error://
    assert framed is not None
    framed.wait_for_load_state()
    assert framed.url.endswith(source), f"le PDF n'a pas été affiché dans le cadre : {framed.url}"
    assert_accessible(page)

    page.get_by_role("button", name="Masquer aux professionnels").click()
    expect(page.get_by_role("status")).to_have_text("Le document est maintenant masqué aux professionnels.")
    expect(page.get_by_text("Masqué aux professionnels", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Ne plus masquer")).to_be_visible()

    page.get_by_role("link", name="Mes documents").first.click()
    card = page.get_by_role("listitem").filter(has=page.get_by_role("heading", name=TITLE, level=3))
    expect(card.get_by_text("Masqué aux professionnels", exact=True)).to_be_visible()
    card.get_by_label(re.compile("Sélectionner pour la suppression")).check()
    page.get_by_role("button", name="Supprimer la sélection").click()
    expect(page.get_by_role("heading", name="Supprimer un document", level=1)).to_be_visible()
    expect(page.get_by_role("main").get_by_role("listitem").filter(has_text=TITLE)).to_have_count(1)
    assert_accessible(page)
    page.get_by_role("button", name="Supprimer définitivement").click()
    expect(page.get_by_role("status")).to_have_text("Le document a été supprimé définitivement.")
    expect(page.get_by_role("heading", name=TITLE)).to_have_count(0)
    expect(page.get_by_text("Vous n'avez encore aucun document.")).to_be_visible()
    assert_accessible(page)

    assert_no_csp_refusal(page_problems)
