"""The professional's side in a real Chromium: Dr Ferracci logs in, finds Marie-Ange by INS and identity
traits, opens her documents, searches a word, opens a document and the history of the space — axe-core on
every page, no CSP refusal."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from carnet.bootstrap import Services
from carnet.hall.actors import Actor, ActorKind
from carnet.people.model.identifiers import nir_from_body
from carnet.people.tables import Establishment, Patient
from carnet.vault.service import documents as vault
from tests.browser.conftest import PageProblems, assert_accessible, assert_no_csp_refusal
from tests.browser.test_login_journey import PROFESSIONAL, log_in
from tests.support.documents import make_pdf

pytestmark = pytest.mark.browser

TITLE = "Bilan d'hémoglobine glyquée"


def lab_documents(demo: Services) -> None:
    """Two results from the hospital lab in Marie-Ange's space."""
    with demo.db.unit_of_work() as db:
        lab = db.scalar(select(Establishment))
        patient_id = db.scalar(select(Patient.id).where(Patient.email == "marie-ange.santoni@exemple.fr"))
        assert lab is not None and patient_id is not None
        actor = Actor(ActorKind.ESTABLISHMENT, None, lab.name, finess=lab.finess, establishment_id=lab.id)
    batch = [
        vault.NewDocument(patient_id, "http://loinc.org", "11502-2", TITLE, "application/pdf", make_pdf("HbA1c 6,5 %")),
        vault.NewDocument(
            patient_id, "http://loinc.org", "18748-4", "Radio du thorax", "application/pdf", make_pdf("Normale")
        ),
    ]
    vault.deposit_many(demo, actor, batch)


def test_a_doctor_finds_a_patient_and_reads_her_documents(
    page: Page, demo: Services, page_problems: PageProblems
) -> None:
    lab_documents(demo)
    log_in(page, demo, PROFESSIONAL, check_accessibility=False)
    expect(page).to_have_url(re.compile(r"/pro$"))
    expect(page.get_by_role("heading", name="Espace professionnel", level=1)).to_be_visible()
    expect(page.get_by_text("RPPS 10001234567")).to_be_visible()
    assert_accessible(page)

    page.get_by_label("Matricule INS").fill(nir_from_body("285032A004117"))
    page.get_by_label("Nom de naissance").fill("Santoni")
    page.get_by_label("Premier prénom").fill("marie-ange")
    page.get_by_label("Date de naissance").fill("1985-03-14")
    page.get_by_role("button", name="Rechercher").click()
    expect(page).to_have_url(re.compile(r"/pro/patients/[0-9a-f-]{36}$"))
    expect(page.get_by_role("heading", name="Accès à l'espace santé", level=1)).to_be_visible()
    expect(page.get_by_role("heading", name="Votre accès : Médecin traitant")).to_be_visible()
    assert_accessible(page)

    page.get_by_role("link", name="Accéder à l'espace").click()
    expect(page.get_by_role("heading", name="Documents de Marie-Ange SANTONI", level=1)).to_be_visible()
    expect(page.get_by_role("heading", name=re.compile(r"2 documents"), level=2)).to_be_visible()
    assert_accessible(page)

    page.get_by_label("Rechercher dans les documents").fill("hemoglobine")
    page.get_by_role("button", name="Rechercher", exact=True).click()
    expect(page).to_have_url(re.compile(r"q=hemoglobine"))
    expect(page.get_by_role("heading", name=re.compile(r"1 document$"), level=2)).to_be_visible()
    assert_accessible(page)

    page.get_by_role("heading", name=TITLE, level=3).get_by_role("link").click()
    expect(page.get_by_role("heading", name=TITLE, level=1)).to_be_visible()
    frame = page.locator("iframe.carnet-preview-frame")
    expect(frame).to_have_attribute("title", f"Aperçu du document « {TITLE} »")
    source = frame.get_attribute("src")
    assert source and source.endswith("/apercu")
    preview = page.request.get(source)
    assert preview.status == 200 and preview.headers["content-type"] == "application/pdf"
    assert_accessible(page)

    page.get_by_role("link", name="Historique", exact=True).click()  # TRC-2: the médecin traitant's history
    expect(page.get_by_role("heading", name="Historique de l'espace", level=1)).to_be_visible()
    expect(page.get_by_role("cell", name="avez consulté la liste des documents", exact=True).first).to_be_visible()
    assert_accessible(page)

    assert_no_csp_refusal(page_problems)


def test_a_dentist_breaks_the_glass_and_deposits_a_document(
    page: Page, demo: Services, page_problems: PageProblems
) -> None:
    lab_documents(demo)
    log_in(page, demo, "dominique.orsini", check_accessibility=False)
    page.get_by_label("Matricule INS").fill(nir_from_body("285032A004117"))
    page.get_by_label("Nom de naissance").fill("SANTONI")
    page.get_by_label("Premier prénom").fill("Marie-Ange")
    page.get_by_label("Date de naissance").fill("1985-03-14")
    page.get_by_role("button", name="Rechercher").click()
    expect(page.get_by_role("heading", name="Votre accès : Non autorisé")).to_be_visible()
    expect(page.get_by_text("SANTONI")).to_have_count(0)
    assert_accessible(page)

    page.get_by_role("link", name="Déposer un document").first.click()
    expect(page.get_by_role("heading", name="Déposer un document", level=1)).to_be_visible()
    assert_accessible(page)
    page.get_by_label(re.compile(r"^Fichier")).set_input_files(
        {"name": "soins.pdf", "mimeType": "application/pdf", "buffer": make_pdf("Détartrage")}
    )
    page.get_by_label("Type de document").select_option(label="Compte rendu de consultation (Comptes rendus)")
    page.get_by_label(re.compile(r"^Titre")).fill("Soins dentaires du 3 mars")
    page.get_by_role("button", name="Déposer le document").click()
    expect(page.get_by_role("status")).to_have_text("Votre document a été déposé dans l'espace santé de la personne.")

    page.get_by_label("Motif de l'accès").fill("Hémorragie après extraction, patiente confuse")
    page.get_by_label("Je confirme que la personne n'est pas en état de donner son accord").check()
    page.get_by_role("button", name="Accès en urgence (bris de glace)").click()
    expect(page.get_by_role("heading", name="Documents de Marie-Ange SANTONI", level=1)).to_be_visible()
    expect(page.get_by_text(re.compile(r"Accès en urgence jusqu'à \d\d:\d\d"))).to_be_visible()
    expect(page.get_by_role("heading", name="Soins dentaires du 3 mars", level=3)).to_be_visible()
    assert_accessible(page)

    assert_no_csp_refusal(page_problems)
