"""The messaging in a real Chromium (MSG-1, MSG-2): the médecin traitant writes from /pro with a PDF attached, the
patient sees the unread count on her home page, opens the conversation, answers, and files the attachment into her
documents; axe-core on every page, on a phone (375 px) and a desktop screen (1280 px) with no horizontal scrolling,
and no Content-Security-Policy refusal."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from carnet.bootstrap import Services
from carnet.messaging.model.messages import SentFile
from carnet.messaging.service import conversations
from tests.browser.conftest import PageProblems, assert_accessible, assert_no_csp_refusal, check_page, watch
from tests.browser.test_login_journey import PATIENT, PROFESSIONAL, log_in
from tests.messaging.test_pages import pro_actor, space_of
from tests.support.documents import make_pdf

pytestmark = pytest.mark.browser

SUBJECT = "Résultats de votre échographie"
FILE_NAME = "compte-rendu-echographie-abdominale-du-12-mars-2026-cabinet-de-radiologie-du-diamant.pdf"


def test_the_doctor_writes_the_patient_reads_answers_and_files_the_attachment(
    page: Page, browser: Browser, live_server: str, demo: Services, page_problems: PageProblems
) -> None:
    log_in(page, demo, PROFESSIONAL, check_accessibility=False)
    page.get_by_role("link", name=re.compile(r"Marie-Ange SANTONI")).first.click()
    page.get_by_role("navigation", name="Menu de l'espace du patient").get_by_role(
        "link", name="Écrire au patient"
    ).click()
    expect(page.get_by_role("heading", name="Écrire à Marie-Ange SANTONI", level=1)).to_be_visible()
    assert_accessible(page)
    page.get_by_label("Objet").fill(SUBJECT)
    page.get_by_label("Votre message").fill("Bonjour,\nL'échographie est normale.\nBien cordialement.")
    page.get_by_label(re.compile(r"^Pièces jointes")).set_input_files(
        {"name": FILE_NAME, "mimeType": "application/pdf", "buffer": make_pdf("Echographie abdominale normale")}
    )
    page.get_by_role("button", name="Envoyer le message").click()
    expect(page.get_by_role("status")).to_have_text("Votre message a été envoyé à la personne.")
    expect(page.get_by_role("heading", name=SUBJECT, level=1)).to_be_visible()
    expect(page.locator(".carnet-attachment__name", has_text=FILE_NAME)).to_be_visible()
    assert_accessible(page)
    page.get_by_role("navigation", name="Menu professionnel").get_by_role("link", name="Messagerie").click()
    expect(page.get_by_role("heading", name="Messagerie", level=1)).to_be_visible()
    expect(page.get_by_role("link", name=SUBJECT)).to_be_visible()
    assert_accessible(page)

    context = browser.new_context(base_url=live_server, locale="fr-FR")
    context.set_default_timeout(10_000)
    try:
        patient = watch(context.new_page(), page_problems)
        log_in(patient, demo, PATIENT, check_accessibility=False)
        card = patient.get_by_role("listitem").filter(has=patient.get_by_role("heading", name="Messagerie", level=3))
        expect(card.get_by_text("1 message non lu")).to_be_visible()
        assert_accessible(patient)
        card.get_by_role("link", name="Messagerie").click()
        expect(patient.get_by_role("heading", name="Messagerie", level=1)).to_be_visible()
        expect(patient.get_by_text("1 non lu", exact=True)).to_be_visible()
        assert_accessible(patient)

        patient.get_by_role("link", name=SUBJECT).click()
        expect(patient.get_by_role("heading", name=SUBJECT, level=1)).to_be_visible()
        expect(patient.get_by_text("L'échographie est normale.")).to_be_visible()
        assert_accessible(patient)
        patient.get_by_label("Votre message").fill("Merci docteur, bonne journée.")
        patient.get_by_role("button", name="Envoyer la réponse").click()
        expect(patient.get_by_role("status")).to_have_text("Votre message a été envoyé.")
        expect(patient.get_by_text("Merci docteur, bonne journée.")).to_be_visible()
        assert_accessible(patient)

        patient.get_by_role("link", name=re.compile(r"^Ajouter à mes documents")).click()
        expect(patient.get_by_role("heading", name="Ajouter à mes documents", level=1)).to_be_visible()
        assert_accessible(patient)
        patient.get_by_label("Type de document").select_option(index=1)
        patient.get_by_label(re.compile(r"^Titre")).fill("Échographie abdominale")
        patient.get_by_role("button", name="Ajouter à mes documents").click()
        expect(patient.get_by_role("heading", name="Échographie abdominale", level=1)).to_be_visible()
        expect(patient.get_by_role("status")).to_have_text("Votre document a été ajouté.")
        patient.get_by_role("navigation", name="Menu de l'espace santé").get_by_role("link", name="Documents").click()
        expect(patient.get_by_role("heading", name="Échographie abdominale", level=3)).to_be_visible()

        patient.get_by_role("navigation", name="Menu de l'espace santé").get_by_role("link", name="Messagerie").click()
        patient.get_by_role("link", name=SUBJECT).click()
        expect(patient.get_by_text("Déjà dans vos documents")).to_be_visible()
        assert_no_csp_refusal(page_problems)
    finally:
        context.close()

    page.get_by_role("link", name=SUBJECT).click()
    expect(page.get_by_text("Merci docteur, bonne journée.")).to_be_visible()


@pytest.fixture(params=[375, 1280], ids=["375px", "1280px"])
def screen(request: pytest.FixtureRequest, browser: Browser, live_server: str) -> Iterator[tuple[Page, int]]:
    width = request.param
    phone = width < 600
    context = browser.new_context(
        base_url=live_server,
        locale="fr-FR",
        viewport={"width": width, "height": 812 if phone else 900},
        is_mobile=phone,
        has_touch=phone,
    )
    context.set_default_timeout(10_000)
    try:
        yield context.new_page(), width
    finally:
        context.close()


def test_the_messaging_pages_are_accessible_and_fit_the_screen(
    screen: tuple[Page, int], demo: Services, page_problems: PageProblems
) -> None:
    page, width = screen
    watch(page, page_problems)
    space = space_of(demo, "Marie-Ange")
    long_text = "Bonjour,\n" + "Voici une très longue ligne sans coupure " * 8 + "\n" + "x" * 120
    pdf = SentFile(FILE_NAME, "application/pdf", make_pdf("Compte rendu"))
    thread_id = conversations.start(demo, pro_actor(demo), space, SUBJECT, long_text, [pdf])
    conversations.start(demo, pro_actor(demo), space, "Vaccin contre la grippe", "La campagne commence.")
    log_in(page, demo, PATIENT, check_accessibility=False)
    home = page.url.rstrip("/")
    (piece,) = [
        a.id for m in conversations.conversation(demo, pro_actor(demo), thread_id).messages for a in m.attachments
    ]
    for path, heading in (
        ("/messages", "Messagerie"),
        ("/messages?q=grippe", "Messagerie"),
        (f"/messages/{thread_id}", SUBJECT),
        (f"/messages/{thread_id}/supprimer", "Supprimer l'échange ?"),
        (f"/messages/pieces/{piece}/classer", "Ajouter à mes documents"),
    ):
        page.goto(home + path)
        expect(page.get_by_role("heading", name=heading, level=1)).to_be_visible()
        check_page(page, (width,), where=path)
    page.goto(home + f"/messages/{thread_id}")
    page.get_by_role("button", name="Envoyer la réponse").click()  # empty: refused, the form says why
    expect(page.get_by_role("alert")).to_contain_text("Le message est vide")
    check_page(page, (width,), where="la réponse refusée")
    assert_no_csp_refusal(page_problems)


def test_the_professional_messaging_pages_are_accessible_and_fit_the_screen(
    screen: tuple[Page, int], demo: Services, page_problems: PageProblems
) -> None:
    page, width = screen
    watch(page, page_problems)
    space = space_of(demo, "Marie-Ange")
    thread_id = conversations.start(
        demo, pro_actor(demo), space, SUBJECT, "Bonjour", [SentFile(FILE_NAME, "application/pdf", make_pdf("x"))]
    )
    log_in(page, demo, PROFESSIONAL, check_accessibility=False)
    for path, heading in (
        ("/pro/messages", "Messagerie"),
        (f"/pro/messages/{thread_id}", SUBJECT),
        (f"/pro/messages/{thread_id}/terminer", "Mettre fin à l'échange ?"),
        (f"/pro/patients/{space}/messages/nouveau", "Écrire à Marie-Ange SANTONI"),
    ):
        page.goto(path)
        expect(page.get_by_role("heading", name=heading, level=1)).to_be_visible()
        check_page(page, (width,), where=path)
    page.get_by_role("button", name="Envoyer le message").click()  # no subject: refused, the form says why
    expect(page.get_by_role("alert")).to_contain_text("Indiquez l'objet du message.")
    assert_accessible(page)
    page.goto(f"/pro/messages/{thread_id}/terminer")
    page.get_by_role("button", name="Mettre fin à l'échange").click()
    expect(page.get_by_role("status")).to_contain_text("L'échange est terminé")
    check_page(page, (width,), where="l'échange terminé")
    assert_no_csp_refusal(page_problems)
