"""« Examens recommandés » (AGD-2): the person's page — every item of the prevention calendar that applies to
them, grouped by kind, with its status, due date and source, and the forms to say « Fait le … », « Pas fait » or
to clear what they said — and the professional's read-only view.

Each route parses its request, calls one use case of ``carnet.agenda.service.prevention`` (which asks the policy
and writes the history) and renders. An unknown item is a 404 page; a bad date comes back on the page, in
French, next to the item. Nothing typed travels in an address: the item's code is in the path, the date in the
form's body.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from carnet.access.service import pro_view
from carnet.agenda.model.prevention import STATUS_LABELS
from carnet.agenda.service import prevention
from carnet.agenda.service.prevention import AnswerError, Line, PreventionNotFound, Statuses
from carnet.bootstrap import Services
from carnet.hall.guard import AccessDenied
from carnet.hall.vocabulary import PARIS
from carnet.web.deps import ServicesDep, Viewer, csrf_protect, render, require_viewer

router = APIRouter(dependencies=[Depends(csrf_protect)])

TITLE = "Examens recommandés"
GROUP_TITLES = {
    "vaccination": "Vaccinations",
    "depistage": "Dépistages organisés des cancers",
    "examen_enfant": "Examens de l'enfant",
    "bilan_dentaire": "Bilans bucco-dentaires (M'T dents)",
    "bilan_prevention": "Bilans prévention (Mon bilan prévention)",
}
BADGES = {  # DSFR badge per status
    "a_planifier": "fr-badge--warning",
    "en_retard": "fr-badge--error",
    "realise": "fr-badge--success",
    "non_realise": "fr-badge--new",
    "non_renseigne": "fr-badge--info",
}
MESSAGES = {
    "fait": "C'est noté : l'examen ou le vaccin est indiqué comme fait.",
    "non_fait": "C'est noté : l'examen ou le vaccin est indiqué comme non fait.",
    "effacer": "Votre réponse a été effacée.",
}


def _base(patient_id: str) -> str:
    return f"/espace/{quote(patient_id, safe='')}/prevention"


def _pro_base(patient_id: str) -> str:
    return f"/pro/patients/{quote(patient_id, safe='')}"


def _day(value: date | None) -> str:
    return value.strftime("%d/%m/%Y") if value else ""


def due_text(line: Line) -> str:
    """When the item is due, in French, as its status reads it."""
    status = line.status
    if status.due is None:
        return (
            "Date à préciser : indiquez quand il a été fait pour la dernière fois."
            if status.status == "non_renseigne"
            else ""
        )
    if status.status == "realise":
        return f"Prochaine échéance : {_day(status.due)}"
    if status.status == "en_retard":
        return f"Prévu depuis le {_day(status.due)}"
    if status.status == "non_renseigne":
        return f"Prochaine campagne : à partir du {_day(status.due)}"
    return f"À faire à partir du {_day(status.due)}"


def note_text(line: Line) -> str:
    """The catch-up and the dose of a series: « Rattrapage prévu par le calendrier : dose 1 sur 3. »"""
    status = line.status
    dose = f"dose {status.dose} sur {status.doses}" if status.dose and status.doses else ""
    if status.catch_up:
        return f"Rattrapage prévu par le calendrier{' : ' + dose if dose else ''}."
    return f"{dose.capitalize()}." if dose else ""


def done_text(line: Line) -> str:
    """What was recorded, and where it comes from."""
    status, answer = line.status, line.answer
    if status.last_done is not None:
        where = "d'après votre profil médical" if line.from_profile else "d'après votre réponse"
        return f"Fait le {_day(status.last_done)} — {where}"
    if answer is not None and answer.answer == "non_fait":
        return f"Vous avez indiqué le {_day(answer.day)} que cela n'a pas été fait."
    return ""


HELPERS: dict[str, Any] = {
    "due_text": due_text,
    "note_text": note_text,
    "done_text": done_text,
    "badges": BADGES,
    "status_labels": STATUS_LABELS,
    "group_titles": GROUP_TITLES,
}


def _today_iso() -> str:
    return datetime.now(UTC).astimezone(PARIS).date().isoformat()


# ------------------------------------------------------------------ the person's page


def _page(
    request: Request,
    services: Services,
    viewer: Viewer,
    page: Statuses,
    *,
    message: str = "",
    error: str = "",
    error_code: str = "",
    typed: str = "",
    status_code: int = 200,
) -> Response:
    return render(
        request,
        services,
        "agenda/prevention.html",
        status_code=status_code,
        title=TITLE,
        viewer=viewer,
        patient=page.patient,
        view=page,
        base=_base(page.patient.id),
        profile_url=f"/espace/{quote(page.patient.id, safe='')}/profil/vaccinations",
        message=MESSAGES.get(message, ""),
        error=error,
        error_code=error_code,
        typed=typed,
        today=_today_iso(),
        current="agenda",
        **HELPERS,
    )


@router.get("/espace/{patient_id}/prevention", response_class=HTMLResponse)
def page(
    request: Request, services: ServicesDep, patient_id: str, message: Annotated[str, Query(max_length=20)] = ""
) -> Response:
    """AGD-2: « Examens recommandés »."""
    viewer = require_viewer(request, services)
    return _page(request, services, viewer, prevention.statuses(services, viewer.actor, patient_id), message=message)


@router.post("/espace/{patient_id}/prevention/{code}", response_class=HTMLResponse)
def answer(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    code: str,
    reponse: Annotated[str, Form(max_length=20)] = "",
    jour: Annotated[str, Form(alias="date", max_length=30)] = "",
) -> Response:
    """AGD-2: the person marks an item done on a day, not done, or clears their answer."""
    viewer = require_viewer(request, services)
    try:
        done = prevention.answer(services, viewer.actor, patient_id, code[:40], reponse, jour)
    except PreventionNotFound:
        return render(
            request, services, "error.html", status_code=404, title="Élément introuvable", message=prevention.NOT_FOUND
        )
    except AnswerError as exc:
        page = prevention.statuses(services, viewer.actor, patient_id)
        return _page(request, services, viewer, page, error=exc.message, error_code=code, typed=jour, status_code=400)
    anchor = quote(code, safe="")
    return RedirectResponse(f"{_base(patient_id)}?message={done}#{anchor}", status_code=303)


# ------------------------------------------------------------------ the professional's view (read only)


def _pro_refused(request: Request, services: Services, viewer: Viewer, reason: str) -> HTMLResponse:
    return render(
        request,
        services,
        "pro_refused.html",
        status_code=403,
        title="Accès refusé",
        viewer=viewer,
        reason=reason,
        current="pro",
    )


@router.get("/pro/patients/{patient_id}/prevention", response_class=HTMLResponse)
def pro_page(request: Request, services: ServicesDep, patient_id: str) -> Response:
    """AGD-2: the recommended examinations of a patient, for a professional with a standing (read only)."""
    viewer = require_viewer(request, services)
    try:
        space = pro_view.space(services, viewer.actor, patient_id)
    except AccessDenied as exc:
        return _pro_refused(request, services, viewer, exc.decision.reason)
    status = space.status
    if not status.allowed:
        return _pro_refused(request, services, viewer, status.reason)
    try:
        page = prevention.statuses(services, viewer.actor, patient_id)
    except AccessDenied as exc:
        return _pro_refused(request, services, viewer, exc.decision.reason)
    until = status.emergency_until.astimezone(PARIS).strftime("%H:%M") if status.emergency_until else ""
    return render(
        request,
        services,
        "agenda/prevention_pro.html",
        title=f"{TITLE} du patient",
        viewer=viewer,
        view=page,
        status=status,
        person=status.patient,
        role=status.role,
        until=until,
        explanation=f"Accès en urgence jusqu'à {until}. La personne et son médecin traitant sont informés de cet accès."
        if until
        else "",
        base=_pro_base(patient_id),
        current="pro",
        **HELPERS,
    )
