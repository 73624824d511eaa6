"""The portal as an installable application (issue #16-2): the web app manifest, the service worker and the offline
page. The worker keeps the static shell only (see templates/pwa/sw.js and docs/deployment.md); these three answers
carry no personal data and read no session."""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates

HERE = Path(__file__).parent
STATIC = HERE / "static"
WORKER = HERE / "templates" / "pwa" / "sw.js"
THEME_COLOUR = "#000091"
OFFLINE_PAGE = "/hors-ligne"

# What the worker keeps: the files the offline page needs, and the icons. Only /static/ files and the offline page —
# the worker's own rule (`mayKeep`) refuses anything else.
SHELL_FILES = (
    "carnet.css",
    "carnet.js",
    "favicon.svg",
    "vendor/htmx/htmx.min.js",
    "icons/icon-192.png",
    "icons/icon-512.png",
    "icons/icon-maskable-512.png",
    "icons/apple-touch-icon.png",
)

router = APIRouter()

MANIFEST = {
    "id": "/",
    "name": "Carnet — votre espace santé",
    "short_name": "Carnet",
    "description": "Vos documents, votre profil médical, votre agenda et vos messages de santé, en sécurité.",
    "lang": "fr",
    "dir": "ltr",
    "start_url": "/",
    "scope": "/",
    "display": "standalone",
    "orientation": "any",
    "background_color": "#ffffff",
    "theme_color": THEME_COLOUR,
    "categories": ["health", "medical"],
    "icons": [
        {"src": "/static/icons/icon-192.png", "sizes": "192x192", "type": "image/png", "purpose": "any"},
        {"src": "/static/icons/icon-512.png", "sizes": "512x512", "type": "image/png", "purpose": "any"},
        {"src": "/static/icons/icon-maskable-512.png", "sizes": "512x512", "type": "image/png", "purpose": "maskable"},
        {"src": "/static/icons/apple-touch-icon.png", "sizes": "180x180", "type": "image/png", "purpose": "any"},
    ],
}


@cache
def worker_source() -> str:
    """sw.js with its shell list and its cache version: a hash of the worker and of every shell file, so that a
    deployment changing any of them renews the cache (the old one is deleted when the new worker activates)."""
    digest = hashlib.sha256(WORKER.read_bytes())
    for name in SHELL_FILES:
        digest.update(name.encode())
        digest.update((STATIC / name).read_bytes())
    shell = [OFFLINE_PAGE, *(f"/static/{name}" for name in SHELL_FILES)]
    return (
        WORKER.read_text(encoding="utf-8")
        .replace("__CARNET_VERSION__", digest.hexdigest()[:12])
        .replace("__CARNET_SHELL__", json.dumps(shell))
    )


@router.get("/manifest.webmanifest", include_in_schema=False)
def manifest() -> Response:
    return Response(
        json.dumps(MANIFEST, ensure_ascii=False),
        media_type="application/manifest+json",
        headers={"Cache-Control": "no-cache"},
    )


@router.get("/sw.js", include_in_schema=False)
def service_worker() -> Response:
    # no-cache: the browser checks for a new worker at each visit; served at the root, its scope may be "/"
    headers = {"Cache-Control": "no-cache", "Service-Worker-Allowed": "/"}
    return Response(worker_source(), media_type="text/javascript", headers=headers)


@router.get(OFFLINE_PAGE, response_class=HTMLResponse, include_in_schema=False)
def offline_page(request: Request) -> Response:
    """The page the worker shows when the network cannot be reached — the same for everyone (no session read), so
    that the copy kept on the device holds no personal data."""
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(request, "pwa/offline.html", {"title": "Hors ligne"})
