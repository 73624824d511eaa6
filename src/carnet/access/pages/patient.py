"""The patient's « Accès » page (ACC-1..4): who may read the space, the médecin traitant, authorising a
professional or a care team, blocking and unblocking, and the emergency accesses.

Each route calls one use case of ``carnet.access.service.patient_access`` (which opens the unit of work;
the policy decides, through the hall, and the history records) and renders what it returns. The page is
for those who may read the space's access settings (the person, their legal representatives, their
caregivers — read only); anyone else gets the same 403 as for any page of the space, and learns nothing,
not even the names of the person's professionals.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from carnet.access.service import patient_access as access
from carnet.access.service.patient_access import AccessPage, Done, Shown
from carnet.bootstrap import Services
from carnet.web.deps import ServicesDep, Viewer, csrf_protect, render, require_viewer

router = APIRouter(dependencies=[Depends(csrf_protect)])

MESSAGES = {
    "medecin": "Votre médecin traitant est enregistré : il peut consulter tous vos documents, masqués compris.",
    "autorise": "Le professionnel est autorisé à consulter votre espace.",
    "equipe": "L'équipe de soins est autorisée à consulter votre espace.",
    "retire": "L'accès a été retiré : il ne permet plus de consulter votre espace.",
    "bloque": "Le professionnel est bloqué : il ne peut plus consulter votre espace.",
    "debloque": (
        "Le professionnel est débloqué. Il ne peut pas pour autant consulter votre espace : "
        "pour cela, autorisez-le à nouveau."
    ),
}
ROLE_CHOICES = {
    "reader": (
        "Autorisé",
        "Il consulte les documents que sa profession peut voir, sauf ceux que vous avez masqués.",
    ),
    "administrator": (
        "Administrateur",
        "Comme votre médecin traitant, il voit tous vos documents, masqués compris.",
    ),
}
BLOCK_TEXT = (
    "Le professionnel ne pourra plus consulter votre espace, même s'il était autorisé. Il pourra toujours y "
    "déposer des documents. Pour le débloquer, il faudra l'autoriser à nouveau."
)
SEARCHES = {"medecin", "pro", "equipe"}


def _base(patient_id: str) -> str:
    return f"/espace/{patient_id}/acces"


def _context(viewer: Viewer, page: AccessPage, *, error: str = "", message: str = "") -> dict[str, Any]:
    return {
        "title": "Accès à mon espace",
        "viewer": viewer,
        "patient": page.patient,
        "grants": page.grants,
        "blocked": page.blocked,
        "blocked_ids": page.blocked_ids,
        "emergencies": page.emergencies,
        "medecin": page.medecin,
        "can_manage": page.can_manage,
        "search": page.search,
        "role_choices": ROLE_CHOICES,
        "block_text": BLOCK_TEXT,
        "error": error,
        "message": message,
        "base": _base(page.patient.id),
        "current": "acces",
    }


def _show(request: Request, services: Services, viewer: Viewer, shown: Shown) -> Response:
    context = _context(viewer, shown.page, error=shown.error)
    return render(request, services, "access.html", status_code=shown.status, **context)


def _after(request: Request, services: Services, viewer: Viewer, patient_id: str, outcome: Done | Shown) -> Response:
    """A change made → back to the page with its message; refused → the page, saying why."""
    if isinstance(outcome, Done):
        return RedirectResponse(f"{_base(patient_id)}?message={outcome.message}", status_code=303)
    return _show(request, services, viewer, outcome)


@router.get("/espace/{patient_id}/acces", response_class=HTMLResponse)
def access_page(
    request: Request, services: ServicesDep, patient_id: str, message: Annotated[str, Query(max_length=20)] = ""
) -> Response:
    viewer = require_viewer(request, services)
    page = access.access_page(services, viewer.actor, patient_id)
    return render(request, services, "access.html", **_context(viewer, page, message=MESSAGES.get(message, "")))


@router.post("/espace/{patient_id}/acces/recherche", response_class=HTMLResponse)
def access_search(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    pour: Annotated[str, Form(max_length=10)] = "",
    q: Annotated[str, Form(max_length=100)] = "",
    role: Annotated[str, Form(max_length=20)] = "reader",
) -> Response:
    """Search the directory (a professional's name or RPPS, a care team's name); sent in the form's body,
    never in the address."""
    viewer = require_viewer(request, services)
    target = pour if pour in SEARCHES else "pro"
    chosen = role if role in ROLE_CHOICES else "reader"
    shown = access.search_directory(services, viewer.actor, patient_id, target, q.strip(), chosen)
    return _show(request, services, viewer, shown)


@router.post("/espace/{patient_id}/acces/medecin-traitant", response_class=HTMLResponse)
def declare_medecin_traitant(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    professionnel: Annotated[str, Form(max_length=36)] = "",
) -> Response:
    """ACC-2: declare (or change) the médecin traitant."""
    viewer = require_viewer(request, services)
    outcome = access.declare_medecin_traitant(services, viewer.actor, patient_id, professionnel)
    return _after(request, services, viewer, patient_id, outcome)


@router.post("/espace/{patient_id}/acces/autoriser", response_class=HTMLResponse)
def authorise_professional(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    professionnel: Annotated[str, Form(max_length=36)] = "",
    role: Annotated[str, Form(max_length=20)] = "reader",
) -> Response:
    """ACC-1, ACC-2: authorise a professional, as « autorisé » or « administrateur »."""
    viewer = require_viewer(request, services)
    outcome = access.authorise_professional(services, viewer.actor, patient_id, professionnel, role)
    return _after(request, services, viewer, patient_id, outcome)


@router.post("/espace/{patient_id}/acces/equipe", response_class=HTMLResponse)
def authorise_team(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    equipe: Annotated[str, Form(max_length=36)] = "",
) -> Response:
    """ACC-1: authorise a care team as a whole."""
    viewer = require_viewer(request, services)
    outcome = access.authorise_team(services, viewer.actor, patient_id, equipe)
    return _after(request, services, viewer, patient_id, outcome)


@router.post("/espace/{patient_id}/acces/retirer", response_class=HTMLResponse)
def withdraw(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    autorisation: Annotated[str, Form(max_length=36)] = "",
) -> Response:
    """ACC-1: withdraw an authorisation (given by the person, or the consent a professional recorded)."""
    viewer = require_viewer(request, services)
    outcome = access.withdraw(services, viewer.actor, patient_id, autorisation)
    return _after(request, services, viewer, patient_id, outcome)


@router.post("/espace/{patient_id}/acces/bloquer", response_class=HTMLResponse)
def block(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    professionnel: Annotated[str, Form(max_length=36)] = "",
    confirmer: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    """ACC-3: block a professional, after a confirmation page that says what it means."""
    viewer = require_viewer(request, services)
    if confirmer == "oui":
        outcome = access.block(services, viewer.actor, patient_id, professionnel)
        return _after(request, services, viewer, patient_id, outcome)
    confirmation = access.confirm_block(services, viewer.actor, patient_id, professionnel)
    if isinstance(confirmation, Shown):
        return _show(request, services, viewer, confirmation)
    return render(
        request,
        services,
        "access_block.html",
        title="Bloquer un professionnel",
        viewer=viewer,
        patient=confirmation.patient,
        professional_id=confirmation.professional_id,
        name=confirmation.name,
        block_text=BLOCK_TEXT,
        base=_base(patient_id),
        current="acces",
    )


@router.post("/espace/{patient_id}/acces/debloquer", response_class=HTMLResponse)
def unblock(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    professionnel: Annotated[str, Form(max_length=36)] = "",
) -> Response:
    """ACC-3: lift a block; a new authorisation is needed for the professional to read again."""
    viewer = require_viewer(request, services)
    outcome = access.unblock(services, viewer.actor, patient_id, professionnel)
    return _after(request, services, viewer, patient_id, outcome)
