"""CAT-2 for the person: ``/espace/{id}/applications`` (the catalogue, searchable), one app's page (what it reads
and writes, in plain French, « Signaler »), ``/espace/{id}/applications/connectees`` (« Déconnecter »).

Each route parses, calls one use case of ``carnet.catalogue.service`` (which asks the policy — ``APP_CONNECT``:
the person or a minor's legal representative — and writes the history) and renders.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from carnet.bootstrap import Services
from carnet.catalogue.service import apps, connections
from carnet.catalogue.service.common import AppNotFound, CatalogueError
from carnet.web.deps import ServicesDep, Viewer, csrf_protect, render, require_viewer

router = APIRouter(dependencies=[Depends(csrf_protect)])
NOTICES = {
    "deconnectee": "L'application a été déconnectée : elle n'a plus accès à votre espace santé.",
    "signalee": "Votre signalement a été transmis aux conseillers de Carnet. Merci.",
}
STYLE = "catalogue.css"


def _base(patient_id: str) -> str:
    return f"/espace/{quote(patient_id, safe='')}/applications"


def _not_found(request: Request, services: Services, viewer: Viewer) -> HTMLResponse:
    return render(
        request, services, "error.html", status_code=404, title="Application introuvable",
        message="Cette application n'est pas (ou plus) dans le catalogue.", viewer=viewer,
    )  # fmt: skip


@router.get("/espace/{patient_id}/applications", response_class=HTMLResponse)
def catalogue_page(
    request: Request, services: ServicesDep, patient_id: str, q: Annotated[str, Query(max_length=100)] = ""
) -> Response:
    viewer = require_viewer(request, services)
    found = apps.browse(services, viewer.actor, patient_id, q)
    return render(
        request, services, "catalogue/list.html", title="Catalogue d'applications", viewer=viewer,
        patient=found.patient, catalogue=found, base=_base(patient_id), current="applications",
    )  # fmt: skip


@router.get("/espace/{patient_id}/applications/connectees", response_class=HTMLResponse)
def connected_page(
    request: Request, services: ServicesDep, patient_id: str, fait: Annotated[str, Query(max_length=20)] = ""
) -> Response:
    viewer = require_viewer(request, services)
    found = connections.connected(services, viewer.actor, patient_id)
    return render(
        request, services, "catalogue/connected.html", title="Applications connectées", viewer=viewer,
        patient=found.patient, connections=found.connections, base=_base(patient_id), notice=NOTICES.get(fait, ""),
        current="applications",
    )  # fmt: skip


def _detail(
    request: Request, services: Services, viewer: Viewer, patient_id: str, app_id: str, error: str = ""
) -> Response:
    try:
        patient, app = apps.detail(services, viewer.actor, patient_id, app_id)
    except AppNotFound:
        return _not_found(request, services, viewer)
    return render(
        request, services, "catalogue/app.html", status_code=400 if error else 200, title=app.name, viewer=viewer,
        patient=patient, app=app, base=_base(patient_id), error=error, current="applications",
    )  # fmt: skip


@router.get("/espace/{patient_id}/applications/{app_id}", response_class=HTMLResponse)
def app_page(request: Request, services: ServicesDep, patient_id: str, app_id: str) -> Response:
    viewer = require_viewer(request, services)
    return _detail(request, services, viewer, patient_id, app_id)


@router.post("/espace/{patient_id}/applications/{app_id}/deconnecter")
def disconnect(request: Request, services: ServicesDep, patient_id: str, app_id: str) -> Response:
    viewer = require_viewer(request, services)
    try:
        connections.disconnect(services, viewer.actor, patient_id, app_id)
    except AppNotFound:
        return _not_found(request, services, viewer)
    except CatalogueError as exc:
        return render(
            request, services, "error.html", status_code=400, title="Déconnexion impossible", message=exc.message,
            viewer=viewer,
        )  # fmt: skip
    return RedirectResponse(f"{_base(patient_id)}/connectees?fait=deconnectee", status_code=303)


@router.post("/espace/{patient_id}/applications/{app_id}/signaler")
def report(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    app_id: str,
    motif: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    viewer = require_viewer(request, services)
    try:
        connections.report(services, viewer.actor, patient_id, app_id, motif)
    except AppNotFound:
        return _not_found(request, services, viewer)
    except CatalogueError as exc:
        return _detail(request, services, viewer, patient_id, app_id, exc.message)
    return RedirectResponse(f"{_base(patient_id)}/connectees?fait=signalee", status_code=303)
