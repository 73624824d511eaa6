"""Issue #16-2 in a real Chromium: the portal is installable (no installability error over http://127.0.0.1, a
secure context), the service worker takes the scope "/", keeps nothing but static files and the offline page after
a patient's visit of her pages, and shows the French offline page when the network is gone."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, Playwright, expect

from carnet.bootstrap import Services
from tests.browser.conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PageProblems,
    assert_no_csp_refusal,
    check_page,
    watch,
)
from tests.browser.test_login_journey import PATIENT, log_in

pytestmark = pytest.mark.browser

_READY = "async () => (await navigator.serviceWorker.ready).scope"
_KEPT = """async () => {
  const kept = [];
  for (const name of await caches.keys()) {
    const cache = await caches.open(name);
    for (const request of await cache.keys()) kept.push(request.url);
  }
  return kept;
}"""


def test_chromium_finds_the_portal_installable_with_its_french_manifest(
    playwright_driver: Playwright, live_server: str, tmp_path: Path, page_problems: PageProblems
) -> None:
    """A browser profile of its own (Playwright's usual contexts are private windows, where Chromium never offers
    to install): no installability error, the manifest read without error."""
    context = playwright_driver.chromium.launch_persistent_context(
        str(tmp_path / "profil"), executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, base_url=live_server
    )
    try:
        page = watch(context.new_page(), page_problems)
        page.goto("/connexion")
        assert page.evaluate(_READY) == live_server + "/"
        cdp = context.new_cdp_session(page)
        assert cdp.send("Page.getInstallabilityErrors")["installabilityErrors"] == []
        manifest = cdp.send("Page.getAppManifest")
        assert manifest["url"] == live_server + "/manifest.webmanifest"
        assert manifest["errors"] == []
        assert '"short_name": "Carnet"' in manifest["data"]
        assert_no_csp_refusal(page_problems)
    finally:
        context.close()


def test_after_a_patients_visit_the_worker_has_kept_only_static_files_and_the_offline_page(
    page: Page, demo: Services, live_server: str, page_problems: PageProblems
) -> None:
    """Never a page, a document or a response carrying health data (issue #16-2)."""
    watch(page, page_problems)
    log_in(page, demo, PATIENT, check_accessibility=False)
    page.evaluate(_READY)
    home = urlsplit(page.url).path.rstrip("/")
    for path in ("", "/documents", "/profil", "/agenda", "/messages", "/acces", "/historique", "/parametres"):
        page.goto(home + path)  # now under the worker's control
    page.goto("/manifest.webmanifest")
    page.goto("/fhir/metadata")
    page.goto(home)
    kept = page.evaluate(_KEPT)
    paths = sorted(urlsplit(url).path for url in kept)
    assert "/hors-ligne" in paths and "/static/carnet.css" in paths
    outside = [path for path in paths if path != "/hors-ligne" and not path.startswith("/static/")]
    assert outside == [], f"le service worker a gardé des réponses hors de /static/ : {outside}"
    assert all(urlsplit(url).netloc == urlsplit(live_server).netloc for url in kept)
    assert_no_csp_refusal(page_problems)


def test_without_network_a_page_of_the_space_gives_way_to_the_french_offline_page(
    page: Page, demo: Services, page_problems: PageProblems
) -> None:
    watch(page, page_problems)
    log_in(page, demo, PATIENT, check_accessibility=False)
    page.evaluate(_READY)
    home = urlsplit(page.url).path.rstrip("/")
    page.reload()  # the page is now controlled by the worker
    page.context.set_offline(True)
    try:
        page.goto(home + "/documents")
        expect(page.get_by_role("heading", name="Vous êtes hors ligne", level=1)).to_be_visible()
        expect(page.get_by_text("SANTONI")).to_have_count(0)
        check_page(page, where="la page hors ligne")
    finally:
        page.context.set_offline(False)
