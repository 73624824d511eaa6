"""Issue #16-1: every page of the patient's portal (/espace/…), the professional's (/pro/…) and the operator's console
(/operateur/…), on a phone (375 px) and a laptop (1280 px): no horizontal scrolling, no table cut, axe-core clean.

The pages are not listed by hand: they are the GET routes of the application. Each actor logs in, and the sweep
follows the links of its pages from its home (the first address found for each route, path parameters filled by
the demo data), checking each page at both widths. At the end every page route of the actor must have been
visited: a new HTML route nobody links to, or that returns something else than a page, fails here until it is
linked, seeded below, or listed in NOT_PAGES with the reason."""

from __future__ import annotations

import re
from collections import deque
from urllib.parse import urlsplit

import pytest
from fastapi.routing import iter_route_contexts
from playwright.sync_api import Page, expect
from starlette.routing import compile_path

from carnet.bootstrap import Services
from carnet.demo import load_agenda_demo, load_messaging_demo, load_profile_demo
from carnet.enrolment.service import campaigns
from carnet.hall.actors import Actor, ActorKind
from carnet.vault.service import portal
from carnet.web.app import create_app
from tests.browser.conftest import PageProblems, assert_no_csp_refusal, check_page, watch
from tests.browser.test_login_journey import PATIENT, PROFESSIONAL, log_in
from tests.browser.test_pro_journey import lab_documents
from tests.history.test_history_tabs import actor_of
from tests.messaging.test_pages import space_of
from tests.support.documents import make_pdf
from tests.support.enrolment import add_registered

pytestmark = pytest.mark.browser

OPERATOR = "operateur.cpam"
AREAS = {PATIENT: "/espace", PROFESSIONAL: "/pro", OPERATOR: "/operateur"}

# GET routes of those areas that answer with something else than a page — each with its reason.
NOT_PAGES = {
    "/espace": "redirige vers l'espace de la personne connectée",
    "/espace/{patient_id}/documents/{document_id}/apercu": "le fichier lui-même, affiché dans un cadre",
    "/espace/{patient_id}/documents/{document_id}/telecharger": "le fichier à télécharger",
    "/espace/{patient_id}/agenda.ics": "le calendrier iCalendar à télécharger",
    "/espace/{patient_id}/messages/pieces/{attachment_id}": "la pièce jointe à télécharger",
    "/pro/messages/pieces/{attachment_id}": "la pièce jointe à télécharger",
    "/pro/patients/{patient_id}/documents/{document_id}/apercu": "le fichier lui-même, affiché dans un cadre",
    "/pro/patients/{patient_id}/documents/{document_id}/telecharger": "le fichier à télécharger",
    "/operateur/campagnes/{campaign_id}/courriers/{batch}.pdf": "les courriers en PDF",
    "/operateur/oppositions/{objection_id}/recepisse": "le récépissé en PDF",
}


def page_routes() -> dict[str, re.Pattern[str]]:
    """Every GET route of the portal, /pro and /operateur that answers with a page: its path template → its regex."""
    app = create_app()
    routes: dict[str, re.Pattern[str]] = {}
    for route in iter_route_contexts(app.routes):
        path = getattr(route, "path", "")
        if "GET" not in (getattr(route, "methods", None) or ()) or path in NOT_PAGES:
            continue
        if any(path == area or path.startswith(area + "/") for area in AREAS.values()):
            routes[path] = compile_path(path)[0]
    return routes


ROUTES = page_routes()


def route_of(path: str) -> str | None:
    for template, regex in ROUTES.items():
        if regex.match(path):
            return template
    return None


def routes_of(login: str) -> set[str]:
    area = AREAS[login]
    return {template for template in ROUTES if template == area or template.startswith(area + "/")}


_LINKS = "() => [...document.querySelectorAll('a[href]')].map(a => a.href)"


def sweep(page: Page, login: str, starts: list[str]) -> dict[str, str]:
    """Breadth-first over the links of the actor's pages: the first address of each page route, checked at both
    widths; every problem found, and every page route never reached, is reported at the end, all at once. Returns
    route template → the address visited."""
    wanted = routes_of(login)
    origin = urlsplit(page.url).netloc
    visited: dict[str, str] = {}
    problems: list[str] = []
    queue = deque(starts)
    while queue:
        address = queue.popleft()
        parts = urlsplit(address)
        if parts.netloc and parts.netloc != origin:
            continue
        template = route_of(parts.path)
        if template is None or template not in wanted or template in visited:
            continue
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        visited[template] = target
        response = page.goto(target)
        assert response is not None and response.status == 200, f"{target} répond {response and response.status}"
        assert "text/html" in response.headers.get("content-type", ""), f"{target} n'est pas une page"
        try:  # loaded at 1280 px, its folded sections open (carnet.js): at 375 px the longest form of the page
            check_page(page, where=target)
        except (AssertionError, pytest.fail.Exception) as problem:
            problems.append(str(problem))
        queue.extend(page.evaluate(_LINKS))
        page.set_viewport_size({"width": 1280, "height": 900})
    missing = sorted(wanted - visited.keys())
    if missing:
        problems.append(
            f"pages de {AREAS[login]} jamais visitées (aucun lien n'y mène) : {missing} — ajoutez un lien, une "
            "adresse de départ dans test_every_page.py, ou la route à NOT_PAGES avec la raison"
        )
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)
    return visited


@pytest.fixture
def full_demo(demo: Services) -> Services:
    """The data `carnet demo` loads (profile, agenda, messaging), two lab results and a document of her own (the
    newest: the one whose page offers « Supprimer »): every page has something to show."""
    lab_documents(demo)
    marie = actor_of(demo, PATIENT)
    assert marie.patient_id
    own = portal.Upload("ordonnance-kine.pdf", "application/pdf", make_pdf("Kinésithérapie"), "DOCPAT05", "Ordonnance")
    portal.upload(demo, marie, marie.patient_id, own)
    load_profile_demo(demo)
    load_agenda_demo(demo)
    load_messaging_demo(demo)
    return demo


def test_every_route_of_the_sweep_is_a_known_page_or_named_as_not_one() -> None:
    """Issue #16-1: the sweep's list comes from the application's routes — NOT_PAGES names only routes that exist."""
    app = create_app()
    paths = {getattr(route, "path", "") for route in iter_route_contexts(app.routes)}
    assert set(NOT_PAGES) <= paths, f"NOT_PAGES nomme des routes disparues : {sorted(set(NOT_PAGES) - paths)}"
    assert {"/espace/{patient_id}/acces", "/espace/{patient_id}/historique", "/pro", "/operateur"} <= ROUTES.keys()


def test_every_page_of_the_patients_portal_fits_a_phone_and_a_laptop_and_is_accessible(
    page: Page, full_demo: Services, page_problems: PageProblems
) -> None:
    """Issue #16-1 (ACC-1, DOC, PRF, AGD, MSG, HIS pages of the space): Marie-Ange's every page at 375 and 1280 px."""
    watch(page, page_problems)
    log_in(page, full_demo, PATIENT, check_accessibility=False)
    home = urlsplit(page.url).path.rstrip("/")
    page.goto(home + "/messages")  # the doctor's letter: the thread whose attachment can be filed
    letter = page.locator("main a", has_text="Résultats de votre bilan sanguin").first.get_attribute("href")
    assert letter
    sweep(page, PATIENT, [home, letter])
    assert_no_csp_refusal(page_problems)


def test_every_page_of_the_professional_portal_fits_a_phone_and_a_laptop_and_is_accessible(
    page: Page, full_demo: Services, page_problems: PageProblems
) -> None:
    """Issue #16-1: the médecin traitant's every page of /pro, her patient's pages included, at 375 and 1280 px."""
    watch(page, page_problems)
    log_in(page, full_demo, PROFESSIONAL, check_accessibility=False)
    patient = space_of(full_demo, "Marie-Ange")
    sweep(page, PROFESSIONAL, ["/pro", f"/pro/patients/{patient}"])
    assert_no_csp_refusal(page_problems)


def test_every_page_of_the_operator_console_fits_a_phone_and_a_laptop_and_is_accessible(
    page: Page, demo: Services, page_problems: PageProblems
) -> None:
    """Issue #16-1 (ENR-2, ENR-3): the console and a campaign's page at 375 and 1280 px."""
    watch(page, page_problems)
    add_registered(demo, 3, "2B", with_email=False, start=960)
    campaigns.start_campaign(demo, "2A,2B", Actor(ActorKind.OPERATOR, None, "Opérateur de test"))
    log_in(page, demo, OPERATOR, check_accessibility=False)
    sweep(page, OPERATOR, ["/operateur"])
    assert_no_csp_refusal(page_problems)


def test_on_a_phone_the_menu_and_the_filters_are_folded_and_the_first_document_shows_on_the_first_screen(
    page: Page, full_demo: Services, page_problems: PageProblems
) -> None:
    """Issue #16-1: the main content first — on a 375 px screen the space's menu, the categories and folders and the
    search fields wait behind a button each, and the first document is on the first screen; at 1280 px all of it
    shows unfolded, as before."""
    watch(page, page_problems)
    log_in(page, full_demo, PATIENT, check_accessibility=False)
    home = urlsplit(page.url).path.rstrip("/")
    page.set_viewport_size({"width": 375, "height": 812})
    page.goto(home + "/documents")
    menu = page.get_by_role("navigation", name="Menu de l'espace santé")
    expect(menu.get_by_role("link", name="Agenda")).to_be_hidden()
    expect(page.get_by_role("heading", name="Catégories")).to_be_hidden()
    expect(page.get_by_label("Rechercher dans mes documents")).to_be_hidden()
    first = page.locator(".carnet-doc").first.bounding_box()
    assert first is not None and first["y"] < 812, "le premier document n'est pas sur le premier écran"
    menu.locator("summary").click()
    expect(menu.get_by_role("link", name="Agenda")).to_be_visible()
    page.locator("summary", has_text="Rechercher et filtrer").click()
    expect(page.get_by_label("Rechercher dans mes documents")).to_be_visible()
    check_page(page, (375,), where="les documents, menu et filtres dépliés")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.reload()
    expect(menu.get_by_role("link", name="Agenda")).to_be_visible()
    expect(page.get_by_role("heading", name="Catégories")).to_be_visible()
    expect(page.get_by_label("Rechercher dans mes documents")).to_be_visible()
    expect(page.locator("summary", has_text="Rechercher et filtrer")).to_be_hidden()
    assert_no_csp_refusal(page_problems)


@pytest.mark.parametrize(
    ("path", "heading"),
    [
        ("/connexion", "Se connecter à Carnet"),
        ("/activation", None),
        ("/opposition", None),
        ("/opposition/annuler", None),
        ("/hors-ligne", "Vous êtes hors ligne"),
    ],
)
def test_the_pages_open_to_everyone_fit_a_phone_and_a_laptop_and_are_accessible(
    page: Page, page_problems: PageProblems, path: str, heading: str | None
) -> None:
    """Issue #16-1: the entry pages, before any login, at 375 and 1280 px."""
    watch(page, page_problems)
    response = page.goto(path)
    assert response is not None and response.status == 200
    if heading:
        expect(page.get_by_role("heading", name=heading, level=1)).to_be_visible()
    check_page(page, where=path)
    assert_no_csp_refusal(page_problems)
