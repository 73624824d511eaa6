"""The patient's « Accès » page (ACC-1..4): who may read the space, the médecin traitant, authorising a
professional or a care team, blocking and unblocking, and the emergency accesses.

Every change goes through ``services.access`` (the policy decides, through the hall, and the history
records). The page is for those who may read the space's access settings (the person, their legal
representatives, their caregivers — read only); anyone else gets the same 403 as for any page of the
space, and learns nothing, not even the names of the person's professionals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from carnet.access.service import directory_search
from carnet.access.service import grants as access
from carnet.bootstrap import Services
from carnet.hall.guard import AccessDenied, facts_for, guard
from carnet.hall.policy import Action, Resource, decide
from carnet.people.tables import Patient, Professional
from carnet.web.deps import ServicesDep, Viewer, csrf_protect
from carnet.web.portal import _space, render

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
EMERGENCY_KINDS = {"samu": "SAMU", "bris_de_glace": "Bris de glace"}
MEDECIN_TRAITANT = access.ROLES["medecin_traitant"]


def _base(patient_id: str) -> str:
    return f"/espace/{patient_id}/acces"


@dataclass
class Search:
    """A search of the directory typed in one of the page's three forms, and what it found."""

    target: str = ""  # medecin | pro | equipe
    text: str = ""
    role: str = "reader"
    professionals: list[directory_search.ProfessionalHit] = field(default_factory=list)
    teams: list[directory_search.CareTeamHit] = field(default_factory=list)
    error: str = ""


@dataclass(frozen=True)
class EmergencyView:
    at: datetime
    who: str
    kind: str
    reason: str
    until: datetime


def _may_manage(db: Session, viewer: Viewer, patient_id: str) -> bool:
    """Show the forms only to whom the policy lets change access (the routes ask the policy again)."""
    facts = facts_for(db, viewer.actor, patient_id)
    return decide(viewer.actor, patient_id, Action.ACCESS_MANAGE, Resource("access"), facts).allowed


def _context(
    db: Session,
    viewer: Viewer,
    patient: Patient,
    *,
    search: Search | None = None,
    error: str = "",
    message: str = "",
) -> dict[str, Any]:
    overview = access.overview(db, viewer.actor, patient.id)
    blocked_ids = {professional_id for professional_id, _, _ in overview.blocked}
    emergencies = []
    for row in overview.emergencies:
        pro = db.get(Professional, row.professional_id)
        emergencies.append(
            EmergencyView(
                row.started_at,
                access.professional_name(pro) if pro else "Professionnel",
                EMERGENCY_KINDS.get(row.kind, row.kind),
                row.reason,
                row.expires_at,
            )
        )
    medecin = next((grant for grant in overview.grants if grant.role == MEDECIN_TRAITANT), None)
    return {
        "title": "Accès à mon espace",
        "viewer": viewer,
        "patient": patient,
        "grants": overview.grants,
        "blocked": overview.blocked,
        "blocked_ids": blocked_ids,
        "emergencies": emergencies,
        "medecin": medecin,
        "can_manage": _may_manage(db, viewer, patient.id),
        "search": search or Search(),
        "role_choices": ROLE_CHOICES,
        "block_text": BLOCK_TEXT,
        "error": error,
        "message": message,
        "base": _base(patient.id),
        "current": "acces",
    }


def _enter(request: Request, services: Services, db: Session, patient_id: str) -> tuple[Viewer, Patient]:
    """Who may read the space's access settings comes in; anyone else gets the space's usual 403."""
    return _space(request, services, db, patient_id, Action.SETTINGS_READ, Resource("access"))


def _change(
    request: Request, services: Services, patient_id: str, operation: Callable[[Session, Viewer], str]
) -> Response:
    """Run one change; success → back to the page with its message; a refusal → the page, saying why."""
    with services.db.unit_of_work() as db:
        viewer, patient = _enter(request, services, db, patient_id)
        try:
            message = operation(db, viewer)
        except access.AccessError as exc:
            context, status = _context(db, viewer, patient, error=exc.message), 400
        except directory_search.SearchError as exc:
            context, status = _context(db, viewer, patient, error=exc.message), 400
        except AccessDenied as exc:
            context, status = _context(db, viewer, patient, error=exc.decision.reason), 403
        else:
            return RedirectResponse(f"{_base(patient_id)}?message={message}", status_code=303)
    return render(request, services, "access.html", status_code=status, **context)


def _manage(db: Session, viewer: Viewer, patient_id: str) -> None:
    guard(db, viewer.actor, patient_id, Action.ACCESS_MANAGE, Resource("access"))


@router.get("/espace/{patient_id}/acces", response_class=HTMLResponse)
def access_page(
    request: Request, services: ServicesDep, patient_id: str, message: Annotated[str, Query(max_length=20)] = ""
) -> Response:
    with services.db.unit_of_work() as db:
        viewer, patient = _enter(request, services, db, patient_id)
        context = _context(db, viewer, patient, message=MESSAGES.get(message, ""))
    return render(request, services, "access.html", **context)


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
    search = Search(pour if pour in SEARCHES else "pro", q.strip(), role if role in ROLE_CHOICES else "reader")
    status = 200
    with services.db.unit_of_work() as db:
        viewer, patient = _enter(request, services, db, patient_id)
        try:
            _manage(db, viewer, patient_id)
            if search.target == "equipe":
                search.teams = directory_search.search_care_teams(db, search.text)
            else:
                professions = directory_search.DOCTORS if search.target == "medecin" else None
                search.professionals = directory_search.search_professionals(db, search.text, professions=professions)
        except directory_search.SearchError as exc:
            search.error, status = exc.message, 400
        except AccessDenied as exc:
            context = _context(db, viewer, patient, error=exc.decision.reason)
            return render(request, services, "access.html", status_code=403, **context)
        context = _context(db, viewer, patient, search=search)
    return render(request, services, "access.html", status_code=status, **context)


@router.post("/espace/{patient_id}/acces/medecin-traitant", response_class=HTMLResponse)
def declare_medecin_traitant(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    professionnel: Annotated[str, Form(max_length=36)] = "",
) -> Response:
    """ACC-2: declare (or change) the médecin traitant."""

    def operation(db: Session, viewer: Viewer) -> str:
        _manage(db, viewer, patient_id)
        access.grant(db, viewer.actor, patient_id, professional_id=professionnel, role="medecin_traitant")
        return "medecin"

    return _change(request, services, patient_id, operation)


@router.post("/espace/{patient_id}/acces/autoriser", response_class=HTMLResponse)
def authorise_professional(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    professionnel: Annotated[str, Form(max_length=36)] = "",
    role: Annotated[str, Form(max_length=20)] = "reader",
) -> Response:
    """ACC-1, ACC-2: authorise a professional, as « autorisé » or « administrateur »."""

    def operation(db: Session, viewer: Viewer) -> str:
        if role not in ROLE_CHOICES:
            raise access.AccessError("Choisissez le statut : autorisé ou administrateur.")
        access.grant(db, viewer.actor, patient_id, professional_id=professionnel or None, role=role)
        return "autorise"

    return _change(request, services, patient_id, operation)


@router.post("/espace/{patient_id}/acces/equipe", response_class=HTMLResponse)
def authorise_team(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    equipe: Annotated[str, Form(max_length=36)] = "",
) -> Response:
    """ACC-1: authorise a care team as a whole."""

    def operation(db: Session, viewer: Viewer) -> str:
        access.grant(db, viewer.actor, patient_id, care_team_id=equipe or None)
        return "equipe"

    return _change(request, services, patient_id, operation)


@router.post("/espace/{patient_id}/acces/retirer", response_class=HTMLResponse)
def withdraw(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    autorisation: Annotated[str, Form(max_length=36)] = "",
) -> Response:
    """ACC-1: withdraw an authorisation (given by the person, or the consent a professional recorded)."""

    def operation(db: Session, viewer: Viewer) -> str:
        access.revoke(db, viewer.actor, patient_id, autorisation)
        return "retire"

    return _change(request, services, patient_id, operation)


@router.post("/espace/{patient_id}/acces/bloquer", response_class=HTMLResponse)
def block(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    professionnel: Annotated[str, Form(max_length=36)] = "",
    confirmer: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    """ACC-3: block a professional, after a confirmation page that says what it means."""
    if confirmer != "oui":
        with services.db.unit_of_work() as db:
            viewer, patient = _enter(request, services, db, patient_id)
            try:
                _manage(db, viewer, patient_id)
            except AccessDenied as exc:
                context = _context(db, viewer, patient, error=exc.decision.reason)
                return render(request, services, "access.html", status_code=403, **context)
            pro = db.get(Professional, professionnel) if professionnel else None
            if pro is None:
                context = _context(db, viewer, patient, error="Ce professionnel n'est pas dans l'annuaire.")
                return render(request, services, "access.html", status_code=400, **context)
            name = access.professional_name(pro)
        return render(
            request,
            services,
            "access_block.html",
            title="Bloquer un professionnel",
            viewer=viewer,
            patient=patient,
            professional_id=pro.id,
            name=name,
            block_text=BLOCK_TEXT,
            base=_base(patient_id),
            current="acces",
        )

    def operation(db: Session, viewer: Viewer) -> str:
        access.block(db, viewer.actor, patient_id, professionnel)
        return "bloque"

    return _change(request, services, patient_id, operation)


@router.post("/espace/{patient_id}/acces/debloquer", response_class=HTMLResponse)
def unblock(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    professionnel: Annotated[str, Form(max_length=36)] = "",
) -> Response:
    """ACC-3: lift a block; a new authorisation is needed for the professional to read again."""

    def operation(db: Session, viewer: Viewer) -> str:
        access.unblock(db, viewer.actor, patient_id, professionnel)
        return "debloque"

    return _change(request, services, patient_id, operation)
