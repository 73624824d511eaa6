"""Real-browser journeys: the app served by uvicorn, driven by Debian's Chromium, checked by axe-core.

Chromium is launched once per session (per xdist worker); each test gets its own browser context
(fresh cookies) and its own live server on a free port over the `demo` data of its database backend.
Without Chromium or axe-core the journeys are skipped loudly; with CI=true it is an error.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, sync_playwright

from carnet.bootstrap import Services
from carnet.web.app import create_app
from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
AXE_JS = ROOT / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
SKIP_REASON = "Chromium absent : parcours navigateur NON exécuté — lancez scripts/test qui l'installe"


def _require_browser_tools() -> None:
    missing = [str(path) for path in (CHROMIUM, AXE_JS) if not path.is_file()]
    if not missing:
        return
    detail = f"{SKIP_REASON} (manquant : {', '.join(missing)})"
    if IN_CI:
        pytest.fail(f"CI=true mais outils du navigateur absents — {detail}", pytrace=False)
    pytest.skip(detail)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Loud banner when the journeys were skipped (read from the reports, so it also works under xdist)."""
    skipped = [str(report.longrepr) for report in terminalreporter.stats.get("skipped", [])]
    reasons = [reason for reason in skipped if SKIP_REASON in reason]
    if reasons:
        terminalreporter.write_sep("!", "PARCOURS NAVIGATEUR NON EXÉCUTÉS", red=True, bold=True)
        terminalreporter.write_line(f"{len(reasons)} test(s) navigateur sautés : {SKIP_REASON}")
        terminalreporter.write_line(
            "Ni Chromium ni axe-core n'ont vérifié les pages. En CI (CI=true) c'est une erreur."
        )


@cache
def axe_source() -> str:
    return AXE_JS.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[Playwright]:
    _require_browser_tools()
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    chromium = playwright_driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


@pytest.fixture
def live_server(demo: Services) -> Iterator[str]:
    """`create_app(services=demo)` served by uvicorn on 127.0.0.1, on a port that is free (already bound)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    host, port = sock.getsockname()
    config = uvicorn.Config(create_app(services=demo), host=host, port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="carnet-live-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            pytest.fail("le serveur uvicorn de test n'a pas démarré", pytrace=False)
        time.sleep(0.01)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@dataclass
class PageProblems:
    """What the browser complained about while the test ran."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def csp_refusals(self) -> list[str]:
        return [text for text in self.console_errors if "Content Security Policy" in text or "Refused" in text]


@pytest.fixture
def page_problems() -> PageProblems:
    return PageProblems()


def watch(page: Page, problems: PageProblems) -> Page:
    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.console_errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.page_errors.append(str(error)))
    return page


@pytest.fixture
def page(browser: Browser, live_server: str, page_problems: PageProblems) -> Iterator[Page]:
    """A fresh context (no cookies) per test, desktop size, French locale, pointed at the live server."""
    context = browser.new_context(base_url=live_server, locale="fr-FR")
    context.set_default_timeout(10_000)
    try:
        yield watch(context.new_page(), page_problems)
    finally:
        context.close()


def assert_no_csp_refusal(problems: PageProblems) -> None:
    refusals = problems.csp_refusals()
    assert not refusals, "la CSP a bloqué des ressources du site :\n" + "\n".join(refusals)
    assert not problems.page_errors, "erreurs JavaScript dans la page :\n" + "\n".join(problems.page_errors)


_RUN_AXE = """
async (tags) => {
  const results = await axe.run(document, {runOnly: {type: "tag", values: tags}});
  return results.violations.map((v) => ({
    id: v.id,
    impact: v.impact,
    help: v.help,
    helpUrl: v.helpUrl,
    count: v.nodes.length,
    target: v.nodes.length ? v.nodes[0].target : null,
    html: v.nodes.length ? v.nodes[0].html : null,
  }));
}
"""


def assert_accessible(page: Page) -> None:
    """Run axe-core (WCAG 2.0/2.1/2.2 A+AA and best practices) on the current page; fail on any violation.

    axe is injected through `page.evaluate` (DevTools protocol evaluation), which the page's CSP
    (`script-src 'self'`, no inline script) does not govern — unlike a `<script>` tag.
    """
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(axe_source())
    violations: list[dict[str, Any]] = page.evaluate(_RUN_AXE, AXE_TAGS)
    if violations:
        lines = [f"{len(violations)} violation(s) axe-core sur {page.url} :"]
        for v in violations:
            lines.append(f"- {v['id']} [{v['impact']}] {v['help']} ({v['count']} élément(s)) — {v['helpUrl']}")
            if v["target"] is not None:
                lines.append(f"    cible : {v['target']}")
                lines.append(f"    html  : {v['html']}")
        pytest.fail("\n".join(lines), pytrace=False)


SCREEN_WIDTHS = (375, 1280)  # a phone, a laptop (issue #16-1)

_WIDTHS = "() => ({scroll: document.documentElement.scrollWidth, inner: window.innerWidth})"
_CUT_TABLES = """() => [...document.querySelectorAll('.fr-table')]
    .filter(box => box.scrollWidth > box.clientWidth + 1)
    .map(box => `« ${(box.querySelector('caption')?.textContent || 'tableau sans titre').trim()} » : `
        + `${box.scrollWidth} px pour ${box.clientWidth} px`)"""


def check_page(page: Page, widths: tuple[int, ...] = SCREEN_WIDTHS, *, where: str | None = None) -> None:
    """The page as it is now, at each width in turn (the viewport is resized, the page is not reloaded, and is left
    at the last width): no horizontal scrolling, no table whose columns are pushed out of its box, and axe-core
    finds no violation (issue #16-1)."""
    shown = where or page.url
    for width in widths:
        if (page.viewport_size or {}).get("width") != width:
            page.set_viewport_size({"width": width, "height": 812 if width < 600 else 900})
        sizes = page.evaluate(_WIDTHS)
        assert sizes["scroll"] <= sizes["inner"], (
            f"défilement horizontal sur {shown} : la page fait {sizes['scroll']} px de large pour {width} px"
        )
        cut = page.evaluate(_CUT_TABLES)
        assert not cut, f"colonnes hors de la vue sur {shown} à {width} px : " + " ; ".join(cut)
        assert_accessible(page)
