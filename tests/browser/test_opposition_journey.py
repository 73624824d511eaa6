"""ENR-3 in a real Chromium: a person objects online without an account, after a first mistake — axe-core on
every page, no CSP refusal."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from carnet.bootstrap import Services
from carnet.enrolment.service import campaigns
from carnet.hall.actors import Actor, ActorKind
from carnet.people.model.identifiers import format_nir
from tests.browser.conftest import PageProblems, assert_accessible, assert_no_csp_refusal, check_page, watch
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


EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "registre-exemple.csv"


def test_the_operator_console_fits_the_screen(
    screen: tuple[Page, int], demo: Services, page_problems: PageProblems
) -> None:
    """Issue #15-13: every column of the campaign table shows at 1280 px; at 375 px the rows stack, nothing scrolls
    sideways — the console, a campaign's page and the registry import's report."""
    page, width = screen
    watch(page, page_problems)
    add_registered(demo, 3, "2B", with_email=False, start=960)
    campaign = campaigns.start_campaign(demo, "2A,2B", Actor(ActorKind.OPERATOR, None, "Opérateur de test"))
    log_in(page, demo, "operateur.cpam", check_accessibility=False)
    for path, heading in (("/operateur", "Console des conseillers"), (f"/operateur/campagnes/{campaign.id}", None)):
        page.goto(path)
        if heading:
            expect(page.get_by_role("heading", name=heading, level=1)).to_be_visible()
        check_page(page, (width,), where=path)  # no horizontal scrolling, no hidden column, axe
    page.goto("/operateur")
    page.get_by_label("Fichier du registre (CSV)").set_input_files(str(EXAMPLE))
    page.get_by_role("button", name="Importer le registre").click()
    expect(page.get_by_role("status")).to_contain_text("5 lignes lues, 5 ajoutées, 0 mises à jour, 0 rejetées.")
    check_page(page, (width,), where="l'import du registre")
    table = page.get_by_role("table", name=re.compile("Avancement des campagnes"))
    for column in ("Départements", "Invités", "Courriers à produire", "Oppositions", "Activations", "Espaces créés"):
        expect(table.get_by_role("columnheader", name=column)).to_be_attached()
    if width >= 1280:
        expect(table.get_by_role("columnheader", name="Espaces créés")).to_be_in_viewport()
    else:
        label = page.evaluate(
            """() => getComputedStyle(document.querySelector('td[data-label="Courriers à produire"]'), '::before')
            .content"""
        )
        assert label == '"Courriers à produire : "', "chaque cellule empilée doit nommer sa colonne"
    assert_no_csp_refusal(page_problems)
