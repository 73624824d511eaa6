"""The agenda in a real Chromium (AGD-1): the demo patient adds an appointment, finds it in the list and in the
month; axe-core on the agenda's pages on a phone and a desktop screen, no horizontal scrolling on the phone, no
Content-Security-Policy refusal; the médecin traitant gives an appointment from his page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Browser, Page, expect

from carnet.bootstrap import Services
from carnet.demo import load_agenda_demo
from carnet.hall.vocabulary import PARIS
from tests.browser.conftest import PageProblems, assert_accessible, assert_no_csp_refusal, check_page, watch
from tests.browser.test_login_journey import PATIENT, PROFESSIONAL, log_in

pytestmark = pytest.mark.browser

DAY = datetime.now(UTC).astimezone(PARIS).date() + timedelta(days=9)


@pytest.fixture
def agenda_demo(demo: Services) -> Services:
    load_agenda_demo(demo)
    return demo


def test_a_patient_adds_an_appointment_and_finds_it_in_the_list_and_the_month(
    page: Page, agenda_demo: Services, page_problems: PageProblems
) -> None:
    log_in(page, agenda_demo, PATIENT, check_accessibility=False)
    page.get_by_role("navigation", name="Menu de l'espace santé").get_by_role("link", name="Agenda").click()
    expect(page.get_by_role("heading", name="Agenda", level=1)).to_be_visible()
    expect(page.get_by_text("Consultation de suivi du diabète")).to_be_visible()  # given by her doctor
    expect(page.get_by_role("link", name="Examens recommandés")).to_be_visible()
    assert_accessible(page)

    page.get_by_role("link", name="Ajouter un rendez-vous").click()
    expect(page.get_by_role("heading", name="Ajouter un rendez-vous", level=1)).to_be_visible()
    page.get_by_label(re.compile(r"^Titre")).fill("Dermatologue")
    page.get_by_label(re.compile(r"^Date")).fill(DAY.isoformat())
    page.get_by_label(re.compile(r"^Heure de début")).fill("16:15")
    page.get_by_label(re.compile(r"^Heure de fin")).fill("16:45")
    page.get_by_label(re.compile(r"^Lieu")).fill("Cabinet du Diamant, Ajaccio")
    page.get_by_label(re.compile(r"^Avec qui")).fill("Dr Paoli, dermatologue")
    assert_accessible(page)
    page.get_by_role("button", name="Enregistrer").click()

    expect(page.get_by_role("status")).to_have_text("Le rendez-vous a été ajouté à l'agenda.")
    line = page.locator(".carnet-event").filter(has_text="Dermatologue")
    expect(line).to_contain_text("16:15 – 16:45")
    expect(line).to_contain_text("Avec Dr Paoli, dermatologue")
    assert_accessible(page)

    page.get_by_role("navigation", name="Affichage de l'agenda").get_by_role("link", name="Mois").click()
    if DAY.month != datetime.now(UTC).astimezone(PARIS).month:
        page.get_by_role("link", name="Mois suivant").click()
    month = page.locator("ol.carnet-month")
    expect(month.get_by_role("link", name="Dermatologue")).to_be_visible()
    assert_accessible(page)
    month.get_by_role("link", name="Dermatologue").click()
    expect(page.get_by_role("heading", name="Dermatologue", level=1)).to_be_visible()
    expect(page.get_by_text("Lieu : Cabinet du Diamant, Ajaccio")).to_be_visible()
    assert_accessible(page)

    page.get_by_role("link", name="Modifier").click()
    expect(page.get_by_label(re.compile(r"^Titre"))).to_have_value("Dermatologue")
    page.get_by_label(re.compile(r"^Heure de fin")).fill("16:00")  # before the start
    page.get_by_role("button", name="Enregistrer").click()
    expect(page.get_by_role("alert")).to_contain_text("« Heure de fin » : elle doit être après l'heure de début.")
    expect(page.get_by_label(re.compile(r"^Heure de fin"))).to_have_attribute("aria-invalid", "true")
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


def test_the_agenda_pages_are_accessible_and_fit_the_screen(
    screen: tuple[Page, int], agenda_demo: Services, page_problems: PageProblems
) -> None:
    page, width = screen
    watch(page, page_problems)
    log_in(page, agenda_demo, PATIENT, check_accessibility=False)
    home = page.url.rstrip("/")
    month = DAY.isoformat()
    for path, heading in (
        ("/agenda", "Agenda"),
        (f"/agenda?vue=mois&date={month}", "Agenda"),
        (f"/agenda?vue=semaine&date={month}", "Agenda"),
        ("/agenda/nouveau?type=rendez_vous", "Ajouter un rendez-vous"),
        ("/agenda/nouveau?type=rappel", "Ajouter un rappel"),
    ):
        page.goto(home + path)
        expect(page.get_by_role("heading", name=heading, level=1)).to_be_visible()
        check_page(page, (width,), where=path)
    page.goto(home + "/agenda")
    page.get_by_label("Montrer les détails dans le calendrier").check()
    page.get_by_role("button", name="Créer un lien d'abonnement").click()
    expect(page.get_by_role("heading", name="Votre lien d'abonnement", level=1)).to_be_visible()
    expect(page.get_by_label(re.compile(r"^Adresse du calendrier"))).to_have_value(
        re.compile(r"/agenda/abonnement/[A-Za-z0-9_\-]{43}\.ics$")
    )
    check_page(page, (width,), where="le lien d'abonnement")
    assert_no_csp_refusal(page_problems)


def test_the_medecin_traitant_gives_an_appointment(
    page: Page, agenda_demo: Services, page_problems: PageProblems
) -> None:
    log_in(page, agenda_demo, PROFESSIONAL, check_accessibility=False)
    page.get_by_role("link", name=re.compile(r"Marie-Ange SANTONI")).first.click()
    page.get_by_role("navigation", name="Menu de l'espace du patient").get_by_role("link", name="Agenda").click()
    expect(page.get_by_role("heading", name=re.compile(r"^Agenda de Marie-Ange"), level=1)).to_be_visible()
    expect(page.get_by_text("Consultation de suivi du diabète", exact=True)).to_be_visible()
    expect(page.get_by_text("Bilan sanguin")).to_have_count(0)  # her own appointments are not shown to him
    assert_accessible(page)
    page.get_by_label(re.compile(r"^Titre")).fill("Contrôle de la tension")
    page.get_by_label(re.compile(r"^Date")).fill(DAY.isoformat())
    page.get_by_label(re.compile(r"^Heure de début")).fill("09:00")
    page.get_by_role("button", name="Donner le rendez-vous").click()
    expect(page.get_by_role("status")).to_have_text("Le rendez-vous a été ajouté à l'agenda.")
    expect(page.get_by_text("Contrôle de la tension", exact=True)).to_be_visible()
    assert_accessible(page)
    assert_no_csp_refusal(page_problems)
