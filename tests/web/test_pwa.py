"""The installable portal (issue #16-2, « web portal … mobile-friendly, installable »): the manifest, the service
worker's rule of what it keeps, the offline page without personal data, the CSP allowing them."""

from __future__ import annotations

import io
import json
import re

from fastapi.testclient import TestClient
from PIL import Image

from carnet.bootstrap import Services
from carnet.web import pwa
from tests.conftest import log_in, text_of

HEALTH_PATHS = ("/espace", "/pro", "/operateur", "/fhir", "/api", "/oauth", "/connexion", "/agenda")


def shell_of(source: str) -> list[str]:
    match = re.search(r"^const SHELL = (\[.*\]);$", source, re.MULTILINE)
    assert match, "la liste SHELL du service worker est introuvable"
    shell: list[str] = json.loads(match.group(1))
    return shell


def test_the_manifest_names_carnet_in_french_and_opens_standalone_at_the_root(client: TestClient) -> None:
    response = client.get("/manifest.webmanifest")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/manifest+json")
    manifest = response.json()
    assert manifest["name"] == "Carnet — votre espace santé"
    assert manifest["short_name"] == "Carnet"
    assert manifest["lang"] == "fr"
    assert (manifest["display"], manifest["start_url"], manifest["scope"]) == ("standalone", "/", "/")
    assert manifest["theme_color"] == "#000091"


def test_every_icon_of_the_manifest_is_a_png_of_the_size_it_declares(client: TestClient) -> None:
    icons = client.get("/manifest.webmanifest").json()["icons"]
    declared = {(icon["sizes"], icon["purpose"]) for icon in icons}
    assert {("192x192", "any"), ("512x512", "any"), ("512x512", "maskable"), ("180x180", "any")} <= declared
    for icon in icons:
        response = client.get(icon["src"])
        assert response.status_code == 200, icon["src"]
        assert response.headers["content-type"] == icon["type"] == "image/png"
        with Image.open(io.BytesIO(response.content)) as image:
            assert image.format == "PNG"
            assert f"{image.width}x{image.height}" == icon["sizes"], icon["src"]


def test_the_base_layout_links_the_manifest_the_theme_colour_and_the_apple_icon(client: TestClient) -> None:
    page = client.get("/connexion").text
    assert '<link rel="manifest" href="/manifest.webmanifest">' in page
    assert '<meta name="theme-color" content="#000091">' in page
    assert 'rel="apple-touch-icon"' in page
    assert "/static/carnet.js" in page


def test_the_service_worker_is_served_from_the_root_and_keeps_only_static_files_and_the_offline_page(
    client: TestClient,
) -> None:
    response = client.get("/sw.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.headers["cache-control"] == "no-cache"  # a new worker is seen at the next visit
    source = response.text
    assert "__CARNET" not in source
    shell = shell_of(source)
    assert "/hors-ligne" in shell
    assert all(path == "/hors-ligne" or path.startswith("/static/") for path in shell)
    assert not [path for path in shell if path.startswith(HEALTH_PATHS)]
    for path in shell:
        assert client.get(path).status_code == 200, f"{path} manque : l'installation du service worker échouerait"
    # the worker's own rule, applied to what it puts in the cache
    assert 'address.pathname === OFFLINE || address.pathname.startsWith("/static/")' in source
    assert "SHELL.filter(mayKeep)" in source
    assert ".put(" not in source  # nothing is added to the cache at run time


def test_the_cache_version_follows_the_shell_so_that_a_new_deployment_renews_it() -> None:
    source = pwa.worker_source()
    version = re.search(r'const CACHE = "carnet-shell-([0-9a-f]{12})";', source)
    assert version, "le nom du cache doit porter une version"


def test_the_offline_page_is_in_french_and_shows_nobody_s_data_even_to_a_logged_in_patient(
    client: TestClient, demo: Services
) -> None:
    anonymous = client.get("/hors-ligne")
    assert anonymous.status_code == 200
    assert "Vous êtes hors ligne" in text_of(anonymous)
    log_in(client, demo, "marie-ange.santoni")
    assert client.get("/espace", follow_redirects=True).status_code == 200
    logged_in = text_of(client.get("/hors-ligne"))
    assert "Vous êtes hors ligne" in logged_in
    assert "SANTONI" not in logged_in and "Marie-Ange" not in logged_in and "Connecté" not in logged_in
    assert "csrf_token" not in logged_in and "/espace/" not in logged_in


def test_the_content_security_policy_allows_the_worker_and_the_manifest_from_carnet_only(client: TestClient) -> None:
    csp = client.get("/connexion").headers["content-security-policy"]
    assert "worker-src 'self'" in csp
    assert "manifest-src 'self'" in csp
