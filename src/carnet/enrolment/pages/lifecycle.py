"""Closing, deleting and reopening one's space (ENR-6), with the password asked again.

Who may do it is the hall's decision, taken by the service (a refusal is the 403 page).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from carnet.bootstrap import Services
from carnet.enrolment.service import lifecycle
from carnet.people.service.lookup import PatientView
from carnet.web.deps import (
    ServicesDep,
    Viewer,
    client_address,
    csrf_protect,
    render,
    require_viewer,
    session_cookie_name,
)

router = APIRouter(prefix="/espace/{patient_id}", dependencies=[Depends(csrf_protect)])


def _page(
    request: Request, services: Services, viewer: Viewer, patient: PatientView, status: int = 200, **context: object
) -> Response:
    return render(
        request,
        services,
        "space_lifecycle.html",
        status_code=status,
        title="Fermer ou supprimer mon espace",
        viewer=viewer,
        patient=patient,
        confirm_word=lifecycle.CONFIRM_WORD,
        current="parametres",
        **context,
    )


def _logged_out(services: Services, url: str) -> Response:
    response = RedirectResponse(url, status_code=303)
    response.delete_cookie(session_cookie_name(services), path="/")
    return response


@router.get("/parametres/fermeture")
def lifecycle_page(request: Request, services: ServicesDep, patient_id: str) -> Response:
    viewer = require_viewer(request, services)
    return _page(request, services, viewer, lifecycle.lifecycle_page(services, viewer.actor, patient_id))


@router.post("/parametres/fermer")
def close(
    request: Request, services: ServicesDep, patient_id: str, mot_de_passe: Annotated[str, Form(max_length=200)] = ""
) -> Response:
    viewer = require_viewer(request, services)
    result = lifecycle.close_own_space(
        services, viewer.actor, viewer.account.login, mot_de_passe, client_address(request), patient_id
    )
    if result.error:
        return _page(request, services, viewer, result.patient, 400, error=result.error, form="fermer")
    return _logged_out(services, "/connexion?ferme=1")


@router.post("/parametres/supprimer")
def delete(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    mot_de_passe: Annotated[str, Form(max_length=200)] = "",
    confirmation: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    viewer = require_viewer(request, services)
    result = lifecycle.delete_own_space(
        services, viewer.actor, viewer.account.login, mot_de_passe, client_address(request), patient_id, confirmation
    )
    if result.error:
        return _page(request, services, viewer, result.patient, 400, error=result.error, form="supprimer")
    return _logged_out(services, "/connexion?supprime=1")


@router.post("/rouvrir")
def reopen(request: Request, services: ServicesDep, patient_id: str) -> Response:
    viewer = require_viewer(request, services)
    lifecycle.reopen_space(services, viewer.actor, patient_id)
    return RedirectResponse(f"/espace/{patient_id}", status_code=303)
