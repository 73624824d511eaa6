"""Minors and caregivers in the portal (FAM-1..3): whose spaces one may act in, a space's legal
representatives and caregivers, invitations and their acceptance.

Routes turn requests into calls of ``services.family``, which asks the policy (``hall.guard``) for each
action; nothing here decides access. ``install`` also gives the templates ``acting_as``, which the
banner of ``family_banner.html`` uses to say whose space one is acting in.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import pass_context
from sqlalchemy.orm import Session, object_session

from carnet.bootstrap import Services
from carnet.family import service as family
from carnet.hall.actors import ActorKind
from carnet.identity.service import auth
from carnet.people.tables import Patient
from carnet.web.deps import ServicesDep, Viewer, csrf_protect, load_viewer
from carnet.web.portal import render, require_viewer

router = APIRouter(dependencies=[Depends(csrf_protect)])

MESSAGES = {
    "representant-invite": (
        "L'invitation a été envoyée par e-mail au second représentant légal. Elle est valable 14 jours."
    ),
    "aidant-invite": "L'invitation a été envoyée par e-mail à votre proche. Elle est valable 14 jours.",
    "invitation-annulee": "L'invitation est annulée : le lien envoyé ne fonctionne plus.",
    "aidant-retire": "L'aidant est retiré : il n'a plus accès à cet espace.",
    "invitation-acceptee": "Invitation acceptée : l'espace apparaît maintenant dans la liste ci-dessous.",
    "aide-arretee": "Vous n'aidez plus cette personne : vous n'avez plus accès à son espace.",
}


def install(app: FastAPI) -> None:
    """Register the routes and the templates' ``acting_as`` (call after ``app.state.templates`` is set)."""
    app.include_router(router)
    app.state.templates.env.globals["acting_as"] = _acting_as


@pass_context
def _acting_as(context: Any, viewer: Viewer | None, patient: Patient | None) -> str | None:
    """« représentant légal » / « aidant » when the viewer acts in someone else's space (once per request)."""
    if viewer is None or patient is None or viewer.actor.patient_id in {None, patient.id}:
        return None
    request: Request | None = context.get("request")
    if request is None:
        return None
    cache: dict[str, str | None] = request.state.__dict__.setdefault("acting_as", {})
    if patient.id not in cache:
        # Rendered inside the route's unit of work: ask through it (a second transaction of this thread
        # would wait for the SQLite write lock the first one holds). Rendered after it: a short new one.
        session = object_session(patient)
        if session is not None:
            cache[patient.id] = family.acting_as(session, viewer.actor, patient.id)
        else:
            services: Services = request.app.state.services
            with services.db.unit_of_work() as db:
                cache[patient.id] = family.acting_as(db, viewer.actor, patient.id)
    return cache[patient.id]


def _own_space(db: Session, viewer: Viewer) -> Patient | None:
    return db.get(Patient, viewer.actor.patient_id) if viewer.actor.patient_id else None


def _home(viewer: Viewer) -> str:
    if viewer.actor.kind == ActorKind.PATIENT and viewer.actor.patient_id:
        return f"/espace/{viewer.actor.patient_id}"
    return "/operateur" if viewer.actor.kind == ActorKind.OPERATOR else "/pro"


# --- whose spaces ---------------------------------------------------------------------------------------


@router.get("/famille", response_class=HTMLResponse)
def spaces(request: Request, services: ServicesDep, message: str = "") -> Response:
    with services.db.unit_of_work() as db:
        viewer = require_viewer(request, services, db)
        if viewer.actor.kind != ActorKind.PATIENT or not viewer.actor.patient_id:
            return RedirectResponse(_home(viewer), status_code=303)
        links = family.spaces_of(db, viewer.actor)
        own = _own_space(db, viewer)
    return render(
        request,
        services,
        "family_spaces.html",
        title="Mes espaces et mes proches",
        viewer=viewer,
        patient=own,
        links=links,
        message=MESSAGES.get(message),
        current="famille",
    )


@router.post("/famille/aides/{helped_id}/arreter", response_class=HTMLResponse)
def stop_helping(request: Request, services: ServicesDep, helped_id: str) -> Response:
    with services.db.unit_of_work() as db:
        viewer = require_viewer(request, services, db)
        try:
            family.stop_helping(db, viewer.actor, helped_id)
        except family.FamilyError as exc:
            return _error(request, services, viewer, _own_space(db, viewer), exc)
    return RedirectResponse("/famille?message=aide-arretee", status_code=303)


def _error(
    request: Request, services: Services, viewer: Viewer | None, patient: Patient | None, exc: family.FamilyError
) -> Response:
    return render(
        request,
        services,
        "error.html",
        status_code=exc.status,
        title="Action impossible",
        message=exc.message,
        viewer=viewer,
        patient=patient,
    )


# --- one space's representatives and caregivers ----------------------------------------------------------


def _space_page(
    request: Request,
    services: Services,
    db: Session,
    viewer: Viewer,
    patient_id: str,
    *,
    status_code: int = 200,
    error: str | None = None,
    form: str = "",
    values: dict[str, str] | None = None,
    message: str = "",
) -> Response:
    view = family.overview(db, viewer.actor, patient_id)
    own = viewer.actor.patient_id == patient_id
    return render(
        request,
        services,
        "family_space.html",
        status_code=status_code,
        title="Représentants légaux et aidants" if view.minor else "Mes aidants" if own else "Aidants",
        viewer=viewer,
        patient=view.patient,
        view=view,
        own=own,
        name=family.display_name(view.patient),
        error=error,
        form=form,
        values=values or {},
        message=MESSAGES.get(message),
        max_caregivers=family.MAX_CAREGIVERS,
        current="famille",
    )


@router.get("/espace/{patient_id}/famille", response_class=HTMLResponse)
def space_family(request: Request, services: ServicesDep, patient_id: str, message: str = "") -> Response:
    with services.db.unit_of_work() as db:
        viewer = require_viewer(request, services, db)
        return _space_page(request, services, db, viewer, patient_id, message=message)


@router.post("/espace/{patient_id}/famille/representant", response_class=HTMLResponse)
def invite_representative(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    nir: Annotated[str, Form(max_length=30)] = "",
    email: Annotated[str, Form(max_length=254)] = "",
) -> Response:
    with services.db.unit_of_work() as db:
        viewer = require_viewer(request, services, db)
        try:
            family.invite_representative(services, db, viewer.actor, patient_id, nir, email)
        except family.FamilyError as exc:
            values = {"nir": nir, "email": email}
            return _space_page(
                request,
                services,
                db,
                viewer,
                patient_id,
                status_code=400,
                error=exc.message,
                form="representant",
                values=values,
            )
    return RedirectResponse(f"/espace/{patient_id}/famille?message=representant-invite", status_code=303)


@router.post("/espace/{patient_id}/famille/aidant", response_class=HTMLResponse)
def invite_caregiver(
    request: Request, services: ServicesDep, patient_id: str, email: Annotated[str, Form(max_length=254)] = ""
) -> Response:
    with services.db.unit_of_work() as db:
        viewer = require_viewer(request, services, db)
        try:
            family.invite_caregiver(services, db, viewer.actor, patient_id, email)
        except family.FamilyError as exc:
            return _space_page(
                request,
                services,
                db,
                viewer,
                patient_id,
                status_code=400,
                error=exc.message,
                form="aidant",
                values={"email": email},
            )
    return RedirectResponse(f"/espace/{patient_id}/famille?message=aidant-invite", status_code=303)


@router.post("/espace/{patient_id}/famille/invitations/{invitation_id}/annuler", response_class=HTMLResponse)
def cancel_invitation(request: Request, services: ServicesDep, patient_id: str, invitation_id: str) -> Response:
    with services.db.unit_of_work() as db:
        viewer = require_viewer(request, services, db)
        try:
            family.cancel_invitation(db, viewer.actor, patient_id, invitation_id)
        except family.FamilyError as exc:
            return _space_page(request, services, db, viewer, patient_id, status_code=exc.status, error=exc.message)
    return RedirectResponse(f"/espace/{patient_id}/famille?message=invitation-annulee", status_code=303)


@router.post("/espace/{patient_id}/famille/aidants/{caregiver_id}/retirer", response_class=HTMLResponse)
def remove_caregiver(request: Request, services: ServicesDep, patient_id: str, caregiver_id: str) -> Response:
    with services.db.unit_of_work() as db:
        viewer = require_viewer(request, services, db)
        try:
            family.remove_caregiver(db, viewer.actor, patient_id, caregiver_id)
        except family.FamilyError as exc:
            return _space_page(request, services, db, viewer, patient_id, status_code=exc.status, error=exc.message)
    return RedirectResponse(f"/espace/{patient_id}/famille?message=aidant-retire", status_code=303)


# --- the invitee ----------------------------------------------------------------------------------------


def _invitation_page(
    request: Request,
    services: Services,
    viewer: Viewer | None,
    patient: Patient | None,
    *,
    status_code: int = 200,
    **context: object,
) -> Response:
    return render(
        request,
        services,
        "family_invitation.html",
        status_code=status_code,
        title="Invitation",
        viewer=viewer,
        patient=patient,
        current="famille",
        **context,
    )


@router.get("/famille/invitation", response_class=HTMLResponse)
def invitation(request: Request, services: ServicesDep, jeton: str = "") -> Response:
    with services.db.unit_of_work() as db:
        viewer = load_viewer(request, services, db, auth.FULL_STAGE)
        if viewer is None:  # after logging in, the login pages bring the person back here
            return _invitation_page(request, services, None, None, login_needed=True, token=jeton)
        request.state.viewer = viewer
        own = _own_space(db, viewer)
        try:
            view = family.view_invitation(db, jeton)
        except family.FamilyError as exc:
            return _invitation_page(request, services, viewer, own, status_code=exc.status, error=exc.message)
    return _invitation_page(request, services, viewer, own, view=view, token=jeton)


@router.post("/famille/invitation", response_class=HTMLResponse)
def accept_invitation(
    request: Request, services: ServicesDep, jeton: Annotated[str, Form(max_length=200)] = ""
) -> Response:
    with services.db.unit_of_work() as db:
        viewer = require_viewer(request, services, db)
        own = _own_space(db, viewer)
        error: family.FamilyError | None = None
        try:
            family.accept(db, viewer.actor, jeton)
        except family.FamilyError as exc:
            error = exc
    if error is not None:
        return _invitation_page(request, services, viewer, own, status_code=error.status, error=error.message)
    return RedirectResponse("/famille?message=invitation-acceptee", status_code=303)
