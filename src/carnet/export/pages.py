"""« Télécharger toutes mes données » (ENR-7): the page in « Paramètres », asking for the archive, the code that
confirms the download, and the download itself (streamed, never whole in memory).

Each route parses, calls one use case of ``carnet.export.service.requests`` (which asks the policy and writes the
history) and renders. The archive is sent with ``Cache-Control: no-store``; nothing typed travels in an address.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from carnet.bootstrap import Services
from carnet.export.service import requests
from carnet.web.deps import ServicesDep, Viewer, csrf_protect, render, require_viewer

router = APIRouter(dependencies=[Depends(csrf_protect)])

MESSAGES = {
    "demandee": "C'est noté : l'archive est en préparation. Vous recevrez un e-mail quand elle sera prête.",
    "deja": "Une archive est déjà en préparation : vous recevrez un e-mail quand elle sera prête.",
    "code": "Un code vient de vous être envoyé par e-mail. Saisissez-le ci-dessous pour télécharger l'archive.",
    "code-retard": "Le service d'e-mail est lent : votre code peut arriver avec quelques minutes de retard.",
    "trop": "Trop de codes ont été demandés : patientez quelques minutes avant d'en demander un autre.",
}


def _base(patient_id: str) -> str:
    return f"/espace/{quote(patient_id, safe='')}/export"


def _page(
    request: Request, services: Services, viewer: Viewer, patient_id: str, message: str = "", error: str = ""
) -> HTMLResponse:
    view = requests.page(services, viewer.actor, patient_id)
    return render(
        request,
        services,
        "export/page.html",
        status_code=400 if error else 200,
        title="Télécharger toutes mes données",
        viewer=viewer,
        patient=view.patient,
        latest=view.latest,
        base=_base(patient_id),
        totp=viewer.account.has_totp,
        message=message,
        error=error,
        current="parametres",
    )


@router.get("/espace/{patient_id}/export", response_class=HTMLResponse)
def export_page(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    message: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    viewer = require_viewer(request, services)
    return _page(request, services, viewer, patient_id, MESSAGES.get(message, ""))


@router.post("/espace/{patient_id}/export")
def ask(request: Request, services: ServicesDep, patient_id: str) -> Response:
    viewer = require_viewer(request, services)
    _, new = requests.request(services, viewer.actor, patient_id)
    return RedirectResponse(f"{_base(patient_id)}?message={'demandee' if new else 'deja'}", status_code=303)


@router.post("/espace/{patient_id}/export/code")
def code(request: Request, services: ServicesDep, patient_id: str) -> Response:
    viewer = require_viewer(request, services)
    sent = requests.send_code(services, viewer.actor, patient_id)
    word = "trop" if sent is None else "code" if sent else "code-retard"
    return RedirectResponse(f"{_base(patient_id)}?message={word}", status_code=303)


@router.post("/espace/{patient_id}/export/{export_id}/telecharger")
def download(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    export_id: str,
    code: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    viewer = require_viewer(request, services)
    try:
        archive = requests.download(services, viewer.actor, patient_id, export_id, code)
    except requests.DownloadRefused as refused:
        return _page(request, services, viewer, patient_id, error=refused.message)
    headers = {
        "Content-Disposition": f'attachment; filename="{archive.filename}"',
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }
    return StreamingResponse(archive.chunks, media_type="application/zip", headers=headers)
