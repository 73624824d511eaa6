"""Minors and caregivers in the portal (FAM-1..3): whose spaces one may act in, a space's legal
representatives and caregivers, invitations and their acceptance.

Routes turn requests into one call of ``carnet.family.service``, which opens the unit of work and asks the
policy (``hall.guard``) for each action; nothing here decides access. ``install`` also gives the templates
``acting_as``, which the banner of ``family_banner.html`` uses to say whose space one is acting in.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import pass_context

from carnet.bootstrap import Services
from carnet.family import service as family
from carnet.people.service.lookup import PatientView
from carnet.web.deps import ServicesDep, Viewer, csrf_protect, home_url, load_viewer, render, require_viewer

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
def _acting_as(context: Any, viewer: Viewer | None, patient: PatientView | None) -> str | None:
    """« représentant légal » / « aidant » when the viewer acts in someone else's space (once per request)."""
    if viewer is None or patient is None or viewer.actor.patient_id in {None, patient.id}:
        return None
    request: Request | None = context.get("request")
    if request is None:
        return None
    cache: dict[str, str | None] = request.state.__dict__.setdefault("acting_as", {})
    if patient.id not in cache:
        services: Services = request.app.state.services
        cache[patient.id] = family.acting_label(services, viewer.actor, patient.id)
    return cache[patient.id]


def _error(request: Request, services: Services, viewer: Viewer | None, failed: family.NotDone) -> Response:
    return render(
        request,
        services,
        "error.html",
        status_code=failed.status,
        title="Action impossible",
        message=failed.message,
        viewer=viewer,
        patient=failed.patient,
    )


# --- whose spaces ---------------------------------------------------------------------------------------


@router.get("/famille", response_class=HTMLResponse)
def spaces(request: Request, services: ServicesDep, message: str = "") -> Response:
    viewer = require_viewer(request, services)
    page = family.my_spaces(services, viewer.actor)
    if page is None:  # a professional or an operator: their own home
        return RedirectResponse(home_url(viewer.actor), status_code=303)
    return render(
        request,
        services,
        "family_spaces.html",
        title="Mes espaces et mes proches",
        viewer=viewer,
        patient=page.own,
        links=page.links,
        message=MESSAGES.get(message),
        current="famille",
    )


@router.post("/famille/aides/{helped_id}/arreter", response_class=HTMLResponse)
def stop_helping(request: Request, services: ServicesDep, helped_id: str) -> Response:
    viewer = require_viewer(request, services)
    failed = family.stop_helping(services, viewer.actor, helped_id)
    if failed is not None:
        return _error(request, services, viewer, failed)
    return RedirectResponse("/famille?message=aide-arretee", status_code=303)


# --- one space's representatives and caregivers ----------------------------------------------------------


def _space_page(
    request: Request,
    services: Services,
    viewer: Viewer,
    view: family.FamilyOverview,
    *,
    status_code: int = 200,
    error: str | None = None,
    form: str = "",
    values: dict[str, str] | None = None,
    message: str = "",
) -> Response:
    return render(
        request,
        services,
        "family_space.html",
        status_code=status_code,
        # the menu says « Proches »: the page says it too (issue #15-12)
        title="Proches : représentants légaux et aidants" if view.minor else "Mes proches" if view.own else "Proches",
        viewer=viewer,
        patient=view.patient,
        view=view,
        own=view.own,
        name=view.name,
        error=error,
        form=form,
        values=values or {},
        message=MESSAGES.get(message),
        max_caregivers=family.MAX_CAREGIVERS,
        current="famille",
    )


def _not_done_page(
    request: Request,
    services: Services,
    viewer: Viewer,
    failed: family.NotDone,
    *,
    status_code: int | None = None,
    form: str = "",
    values: dict[str, str] | None = None,
) -> Response:
    """The family page again, with why the request was not done."""
    if failed.overview is None:
        return _error(request, services, viewer, failed)
    return _space_page(
        request,
        services,
        viewer,
        failed.overview,
        status_code=status_code or failed.status,
        error=failed.message,
        form=form,
        values=values,
    )


@router.get("/espace/{patient_id}/famille", response_class=HTMLResponse)
def space_family(request: Request, services: ServicesDep, patient_id: str, message: str = "") -> Response:
    viewer = require_viewer(request, services)
    view = family.family_page(services, viewer.actor, patient_id)
    return _space_page(request, services, viewer, view, message=message)


@router.post("/espace/{patient_id}/famille/representant", response_class=HTMLResponse)
def invite_representative(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    nir: Annotated[str, Form(max_length=30)] = "",
    email: Annotated[str, Form(max_length=254)] = "",
) -> Response:
    viewer = require_viewer(request, services)
    done = family.invite_representative(services, viewer.actor, patient_id, nir, email)
    if isinstance(done, family.NotDone):
        values = {"nir": nir, "email": email}
        return _not_done_page(request, services, viewer, done, status_code=400, form="representant", values=values)
    return RedirectResponse(f"/espace/{patient_id}/famille?message=representant-invite", status_code=303)


@router.post("/espace/{patient_id}/famille/aidant", response_class=HTMLResponse)
def invite_caregiver(
    request: Request, services: ServicesDep, patient_id: str, email: Annotated[str, Form(max_length=254)] = ""
) -> Response:
    viewer = require_viewer(request, services)
    done = family.invite_caregiver(services, viewer.actor, patient_id, email)
    if isinstance(done, family.NotDone):
        values = {"email": email}
        return _not_done_page(request, services, viewer, done, status_code=400, form="aidant", values=values)
    return RedirectResponse(f"/espace/{patient_id}/famille?message=aidant-invite", status_code=303)


@router.post("/espace/{patient_id}/famille/invitations/{invitation_id}/annuler", response_class=HTMLResponse)
def cancel_invitation(request: Request, services: ServicesDep, patient_id: str, invitation_id: str) -> Response:
    viewer = require_viewer(request, services)
    failed = family.cancel_invitation(services, viewer.actor, patient_id, invitation_id)
    if failed is not None:
        return _not_done_page(request, services, viewer, failed)
    return RedirectResponse(f"/espace/{patient_id}/famille?message=invitation-annulee", status_code=303)


@router.post("/espace/{patient_id}/famille/aidants/{caregiver_id}/retirer", response_class=HTMLResponse)
def remove_caregiver(request: Request, services: ServicesDep, patient_id: str, caregiver_id: str) -> Response:
    viewer = require_viewer(request, services)
    failed = family.remove_caregiver(services, viewer.actor, patient_id, caregiver_id)
    if failed is not None:
        return _not_done_page(request, services, viewer, failed)
    return RedirectResponse(f"/espace/{patient_id}/famille?message=aidant-retire", status_code=303)


# --- the invitee ----------------------------------------------------------------------------------------


def _invitation_page(
    request: Request,
    services: Services,
    viewer: Viewer | None,
    patient: PatientView | None,
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
    viewer = load_viewer(request, services)
    if viewer is None:  # after logging in, the login pages bring the person back here
        return _invitation_page(request, services, None, None, login_needed=True, token=jeton)
    request.state.viewer = viewer
    page = family.invitation_page(services, viewer.actor, jeton)
    if page.view is None:
        return _invitation_page(request, services, viewer, page.own, status_code=page.status, error=page.error)
    return _invitation_page(request, services, viewer, page.own, view=page.view, token=jeton)


@router.post("/famille/invitation", response_class=HTMLResponse)
def accept_invitation(
    request: Request, services: ServicesDep, jeton: Annotated[str, Form(max_length=200)] = ""
) -> Response:
    viewer = require_viewer(request, services)
    failed = family.accept(services, viewer.actor, jeton)
    if failed is not None:
        return _invitation_page(
            request, services, viewer, failed.patient, status_code=failed.status, error=failed.message
        )
    return RedirectResponse("/famille?message=invitation-acceptee", status_code=303)
