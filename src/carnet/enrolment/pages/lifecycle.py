"""Closing, deleting and reopening one's space (ENR-6), with the password asked again."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from carnet.bootstrap import Services
from carnet.enrolment.service import lifecycle
from carnet.identity.service import auth
from carnet.people.tables import Patient
from carnet.web.deps import ServicesDep, Viewer, csrf_protect, session_cookie_name
from carnet.web.portal import render, require_viewer

router = APIRouter(prefix="/espace/{patient_id}", dependencies=[Depends(csrf_protect)])
CONFIRM_WORD = "SUPPRIMER"


def _page(
    request: Request, services: Services, viewer: Viewer, patient: Patient | None, status: int = 200, **context: object
) -> Response:
    return render(
        request,
        services,
        "space_lifecycle.html",
        status_code=status,
        title="Fermer ou supprimer mon espace",
        viewer=viewer,
        patient=patient,
        confirm_word=CONFIRM_WORD,
        current="parametres",
        **context,
    )


def _password_ok(request: Request, services: Services, db: object, viewer: Viewer, password: str) -> str | None:
    client = request.client.host if request.client else "inconnu"
    try:
        auth.check_password(services, db, viewer.account.login, password, client)  # type: ignore[arg-type]
    except auth.LoginError as exc:
        return "Mot de passe incorrect." if exc.message == auth.GENERIC_FAILURE else exc.message
    return None


@router.get("/parametres/fermeture")
def lifecycle_page(request: Request, services: ServicesDep, patient_id: str) -> Response:
    with services.db.unit_of_work() as db:
        viewer = require_viewer(request, services, db)
        patient = db.get(Patient, patient_id) if viewer.actor.patient_id == patient_id else None
    if patient is None:
        return render(
            request,
            services,
            "error.html",
            status_code=403,
            title="Accès refusé",
            message="Vous n'avez pas accès à cet espace.",
        )
    return _page(request, services, viewer, patient)


@router.post("/parametres/fermer")
def close(
    request: Request, services: ServicesDep, patient_id: str, mot_de_passe: Annotated[str, Form(max_length=200)] = ""
) -> Response:
    with services.db.unit_of_work() as db:
        viewer = require_viewer(request, services, db)
        error = _password_ok(request, services, db, viewer, mot_de_passe)
        if error is None:
            lifecycle.close_space(services, db, viewer.actor, patient_id)
        patient = db.get(Patient, patient_id)
    if error:
        return _page(request, services, viewer, patient, 400, error=error, form="fermer")
    response = RedirectResponse("/connexion?ferme=1", status_code=303)
    response.delete_cookie(session_cookie_name(services), path="/")
    return response


@router.post("/parametres/supprimer")
def delete(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    mot_de_passe: Annotated[str, Form(max_length=200)] = "",
    confirmation: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    with services.db.unit_of_work() as db:
        viewer = require_viewer(request, services, db)
        patient = db.get(Patient, patient_id)
        error = _password_ok(request, services, db, viewer, mot_de_passe)
        if error is None and confirmation.strip().upper() != CONFIRM_WORD:
            error = f"Pour confirmer, saisissez le mot {CONFIRM_WORD} en majuscules."
    if error:
        return _page(request, services, viewer, patient, 400, error=error, form="supprimer")
    lifecycle.delete_space(services, viewer.actor, patient_id)
    response = RedirectResponse("/connexion?supprime=1", status_code=303)
    response.delete_cookie(session_cookie_name(services), path="/")
    return response


@router.post("/rouvrir")
def reopen(request: Request, services: ServicesDep, patient_id: str) -> Response:
    with services.db.unit_of_work() as db:
        viewer = require_viewer(request, services, db)
        lifecycle.reopen_space(services, db, viewer.actor, patient_id)
    return RedirectResponse(f"/espace/{patient_id}", status_code=303)
