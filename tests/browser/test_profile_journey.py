"""The medical profile in a real Chromium (PRF-1, PRF-2): add a blood-pressure reading, see it drawn by uPlot and
in the table; axe-core on the overview, a section and a measure page on a phone and a desktop screen, no
horizontal scrolling on the phone, no Content-Security-Policy refusal; the professional's read-only view."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from carnet.bootstrap import Services
from carnet.demo import load_profile_demo
from tests.browser.conftest import PageProblems, assert_accessible, assert_no_csp_refusal, watch
from tests.browser.test_login_journey import PATIENT, PROFESSIONAL, log_in

pytestmark = pytest.mark.browser

DRAWN = 'figure.carnet-chart[data-carnet-chart="drawn"]'


@pytest.fixture
def profile_demo(demo: Services) -> Services:
    load_profile_demo(demo)
    return demo


def expect_chart_drawn(page: Page) -> None:
    """uPlot drew the figure: its canvas is in the figure's plot, hidden from screen readers (the table says it)."""
    expect(page.locator(DRAWN)).to_have_count(1)
    canvas = page.locator(f"{DRAWN} .carnet-chart__plot canvas")
    expect(canvas).to_have_count(1)
    box = canvas.bounding_box()
    assert box is not None and box["width"] > 100 and box["height"] > 100, box
    expect(page.locator(f"{DRAWN} .carnet-chart__plot")).to_have_attribute("aria-hidden", "true")


def test_a_patient_adds_a_blood_pressure_reading_and_sees_it_drawn_and_in_the_table(
    page: Page, profile_demo: Services, page_problems: PageProblems
) -> None:
    log_in(page, profile_demo, PATIENT, check_accessibility=False)
    page.get_by_role("link", name="Profil médical", exact=True).first.click()
    expect(page.get_by_role("heading", name="Profil médical", level=1)).to_be_visible()
    expect(page.get_by_text("131 / 85 mmHg")).to_be_visible()

    page.get_by_role("link", name="Tension artérielle", exact=True).click()
    expect(page.get_by_role("heading", name="Tension artérielle", level=1)).to_be_visible()
    expect_chart_drawn(page)
    page.get_by_label(re.compile(r"^Pression systolique")).fill("142")
    page.get_by_label(re.compile(r"^Pression diastolique")).fill("91")
    page.get_by_role("button", name="Enregistrer la mesure").click()

    expect(page.get_by_role("status")).to_have_text("La mesure a été enregistrée.")
    table = page.get_by_role("table", name=re.compile(r"^Tension artérielle : les valeurs"))
    row = table.get_by_role("row").filter(has_text="142 mmHg")
    expect(row).to_have_count(1)
    expect(row.get_by_role("cell", name="91 mmHg")).to_be_visible()
    expect(table.get_by_role("row")).to_have_count(5)  # the header and four readings
    expect_chart_drawn(page)
    drawn = page.evaluate(
        """() => JSON.parse(document.querySelector("figure.carnet-chart script.carnet-chart__data").textContent)
        .series.map((s) => s.points.map((p) => p[1]))"""
    )
    assert 142 in drawn[0] and 91 in drawn[1]
    assert_accessible(page)

    page.get_by_role("link", name="Profil médical").first.click()
    page.get_by_role("link", name="Allergies", exact=True).click()
    expect(page.get_by_role("heading", name="Allergies", level=1)).to_be_visible()
    page.get_by_label("Allergie à").fill("Arachide")
    page.get_by_label("Gravité").select_option("Sévère")
    page.get_by_role("button", name="Enregistrer").click()
    expect(page.get_by_role("status")).to_have_text("L'élément a été ajouté à votre profil.")
    expect(page.get_by_role("heading", name="Arachide", level=3)).to_be_visible()
    assert_accessible(page)
    page.get_by_role("button", name="Enregistrer").click()  # nothing typed: the French message on the field
    expect(page.get_by_role("alert")).to_contain_text("« Allergie à » : ce champ est obligatoire.")
    expect(page.get_by_label("Allergie à")).to_have_attribute("aria-invalid", "true")
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


def test_the_profile_pages_are_accessible_and_fit_the_screen(
    screen: tuple[Page, int], profile_demo: Services, page_problems: PageProblems
) -> None:
    page, width = screen
    watch(page, page_problems)
    log_in(page, profile_demo, PATIENT, check_accessibility=False)
    home = page.url.rstrip("/")
    for path, heading in (
        ("/profil", "Profil médical"),
        ("/profil/conditions", "Maladies et sujets de santé"),
        ("/profil/mesures/blood_pressure", "Tension artérielle"),
        ("/profil/mesures/weight?periode=tout", "Poids"),
    ):
        page.goto(home + path)
        expect(page.get_by_role("heading", name=heading, level=1)).to_be_visible()
        if "/mesures/" in path:
            expect_chart_drawn(page)
        scroll = page.evaluate("() => document.documentElement.scrollWidth")
        assert scroll <= width, f"défilement horizontal sur {path} : la page fait {scroll} px pour {width} px"
        assert_accessible(page)
    assert_no_csp_refusal(page_problems)


def test_the_medecin_traitant_reads_the_profile_and_its_charts(
    page: Page, profile_demo: Services, page_problems: PageProblems
) -> None:
    log_in(page, profile_demo, PROFESSIONAL, check_accessibility=False)
    page.get_by_role("link", name=re.compile(r"Marie-Ange SANTONI")).first.click()
    menu = page.get_by_role("navigation", name="Menu de l'espace du patient")
    menu.get_by_role("link", name="Profil médical").click()
    expect(page.get_by_role("heading", name="Profil médical de Marie-Ange SANTONI", level=1)).to_be_visible()
    expect(page.get_by_text("Asthme")).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("Masquer|Supprimer|Modifier"))).to_have_count(0)
    assert_accessible(page)
    page.get_by_role("link", name="Poids", exact=True).click()
    expect(page.get_by_role("heading", name=re.compile(r"^Poids"), level=1)).to_be_visible()
    page.get_by_role("link", name="Tout", exact=True).click()
    expect_chart_drawn(page)
    expect(page.get_by_role("table").get_by_role("row")).to_have_count(7)  # the header and six weights
    expect(page.get_by_role("textbox")).to_have_count(0)  # read only
    assert_accessible(page)
    assert_no_csp_refusal(page_problems)
