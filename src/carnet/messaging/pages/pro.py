"""The messaging on the professional's side (MSG-1): their conversations across patients, one conversation (answer,
« Mettre fin à l'échange »), an attachment's download, and writing to a patient from their page.

Nothing here decides access: the use cases of ``carnet.messaging.service.conversations`` ask the policy. A professional
learns a patient's name on the new-message form only when the policy lets them read the space (as on every
/pro/patients page); in their own conversations the patient is their correspondent.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from carnet.access.service import pro_view
from carnet.bootstrap import Services
from carnet.hall.actors import ActorKind
from carnet.hall.guard import AccessDenied
from carnet.hall.vocabulary import PARIS
from carnet.messaging.model import messages as rules
from carnet.messaging.pages.common import HELPERS, MESSAGE_FIELD_MAX, SUBJECT_FIELD_MAX, download, read_files
from carnet.messaging.pages.portal import FilesDep, TextDep
from carnet.messaging.service import conversations
from carnet.messaging.service.store import NOT_FOUND, ThreadNotFound
from carnet.web.deps import ServicesDep, Viewer, csrf_protect, render, require_viewer

router = APIRouter(dependencies=[Depends(csrf_protect)])

BASE = "/pro/messages"
MESSAGES = {
    "envoye": "Votre message a été envoyé à la personne.",
    "termine": "L'échange est terminé : la personne peut le relire mais plus y répondre.",
}


def _professional(request: Request, services: Services) -> Viewer:
    """The professional's pages are for professionals: anyone else is sent to their own home."""
    viewer = require_viewer(request, services)
    if viewer.actor.kind != ActorKind.PROFESSIONAL:
        raise pro_view.NotAProfessional(viewer.actor)
    return viewer


def _refused(request: Request, services: Services, viewer: Viewer, reason: str, status_code: int = 403) -> HTMLResponse:
    return render(
        request,
        services,
        "pro_refused.html",
        status_code=status_code,
        title="Échange introuvable" if status_code == 404 else "Accès refusé",
        viewer=viewer,
        reason=reason,
        current="messagerie",
    )


def _thread_url(thread_id: str) -> str:
    return f"{BASE}/{quote(thread_id, safe='')}"


# ------------------------------------------------------------------ their conversations


@router.get(BASE, response_class=HTMLResponse)
def pro_inbox(
    request: Request,
    services: ServicesDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    """The professional's conversations with their patients, latest first."""
    viewer = _professional(request, services)
    found = conversations.pro_inbox(services, viewer.actor, page)
    return render(
        request,
        services,
        "messaging/pro_inbox.html",
        title="Messagerie",
        viewer=viewer,
        inbox=found,
        base=BASE,
        previous_url=f"{BASE}?page={found.page - 1}" if found.page > 1 else "",
        next_url=f"{BASE}?page={found.page + 1}" if found.page < found.pages else "",
        current="messagerie",
        **HELPERS,
    )


# ------------------------------------------------------------------ attachments (declared before the conversations)


@router.get(BASE + "/pieces/{attachment_id}")
def pro_attachment(request: Request, services: ServicesDep, attachment_id: str) -> Response:
    viewer = _professional(request, services)
    try:
        content = conversations.attachment_content(services, viewer.actor, attachment_id)
    except ThreadNotFound:
        return _refused(request, services, viewer, NOT_FOUND, 404)
    return download(content)


# ------------------------------------------------------------------ one conversation


def _thread_page(
    request: Request,
    services: Services,
    viewer: Viewer,
    thread_id: str,
    *,
    message: str = "",
    error: str = "",
    values: dict[str, str] | None = None,
) -> Response:
    try:
        shown = conversations.conversation(services, viewer.actor, thread_id)
    except ThreadNotFound:
        return _refused(request, services, viewer, NOT_FOUND, 404)
    return render(
        request,
        services,
        "messaging/pro_thread.html",
        status_code=400 if error else 200,
        title=shown.thread.subject or "Échange",
        viewer=viewer,
        shown=shown,
        thread=shown.thread,
        base=BASE,
        thread_url=_thread_url(thread_id),
        patient_url=f"/pro/patients/{quote(shown.thread.patient_id, safe='')}",
        message=MESSAGES.get(message, ""),
        error=error,
        values=values or {},
        current="messagerie",
        **HELPERS,
    )


@router.get(BASE + "/{thread_id}", response_class=HTMLResponse)
def pro_thread(
    request: Request,
    services: ServicesDep,
    thread_id: str,
    message: Annotated[str, Query(max_length=30)] = "",
) -> Response:
    viewer = _professional(request, services)
    return _thread_page(request, services, viewer, thread_id, message=message)


@router.post(BASE + "/{thread_id}/repondre", response_class=HTMLResponse)
def pro_answer(
    request: Request,
    services: ServicesDep,
    thread_id: str,
    texte: TextDep = "",
    fichiers: FilesDep = None,
) -> Response:
    viewer = _professional(request, services)
    try:
        conversations.answer(services, viewer.actor, thread_id, texte, read_files(fichiers))
    except ThreadNotFound:
        return _refused(request, services, viewer, NOT_FOUND, 404)
    except AccessDenied as exc:
        return _refused(request, services, viewer, exc.decision.reason)
    except rules.MessageError as exc:
        return _thread_page(request, services, viewer, thread_id, error=exc.message, values={"texte": texte})
    return RedirectResponse(f"{_thread_url(thread_id)}?message=envoye", status_code=303)


@router.get(BASE + "/{thread_id}/terminer", response_class=HTMLResponse)
def close_confirm(request: Request, services: ServicesDep, thread_id: str) -> Response:
    """« Mettre fin à l'échange »: what it means for the person, before it is done."""
    viewer = _professional(request, services)
    try:
        shown = conversations.conversation(services, viewer.actor, thread_id)
    except ThreadNotFound:
        return _refused(request, services, viewer, NOT_FOUND, 404)
    if not shown.may_close:
        return RedirectResponse(_thread_url(thread_id), status_code=303)
    return render(
        request,
        services,
        "messaging/pro_close.html",
        title="Mettre fin à l'échange",
        viewer=viewer,
        thread=shown.thread,
        base=BASE,
        thread_url=_thread_url(thread_id),
        current="messagerie",
    )


@router.post(BASE + "/{thread_id}/terminer", response_class=HTMLResponse)
def close(request: Request, services: ServicesDep, thread_id: str) -> Response:
    viewer = _professional(request, services)
    try:
        conversations.close(services, viewer.actor, thread_id)
    except ThreadNotFound:
        return _refused(request, services, viewer, NOT_FOUND, 404)
    except AccessDenied as exc:
        return _refused(request, services, viewer, exc.decision.reason)
    return RedirectResponse(f"{_thread_url(thread_id)}?message=termine", status_code=303)


# ------------------------------------------------------------------ writing to a patient


def _space_context(space: pro_view.Space) -> dict[str, Any]:
    """What the menu of a patient's pages shows: the name only when the professional may read the space."""
    status = space.status
    until = status.emergency_until.astimezone(PARIS).strftime("%H:%M") if status.emergency_until else ""
    return {
        "status": status,
        "person": status.patient if status.allowed else None,
        "role": status.role,
        "until": until,
        "explanation": f"Accès en urgence jusqu'à {until}." if until else "",
        "base": f"/pro/patients/{quote(status.patient.id, safe='')}",
    }


def _new_page(
    request: Request,
    services: Services,
    viewer: Viewer,
    patient_id: str,
    *,
    error: str = "",
    values: dict[str, str] | None = None,
) -> Response:
    try:
        space = pro_view.space(services, viewer.actor, patient_id)
        conversations.may_write(services, viewer.actor, patient_id)
    except AccessDenied as exc:
        return _refused(request, services, viewer, exc.decision.reason)
    context = _space_context(space)
    return render(
        request,
        services,
        "messaging/pro_new.html",
        status_code=400 if error else 200,
        title="Écrire au patient",
        viewer=viewer,
        action=f"{context['base']}/messages/nouveau",
        error=error,
        values=values or {},
        current="pro",
        **context,
        **HELPERS,
    )


@router.get("/pro/patients/{patient_id}/messages/nouveau", response_class=HTMLResponse)
def new_message(request: Request, services: ServicesDep, patient_id: str) -> Response:
    """MSG-1: a professional starts a conversation with any open space that did not block them."""
    viewer = _professional(request, services)
    return _new_page(request, services, viewer, patient_id)


@router.post("/pro/patients/{patient_id}/messages/nouveau", response_class=HTMLResponse)
def start(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    objet: Annotated[str, Form(max_length=SUBJECT_FIELD_MAX)] = "",
    texte: Annotated[str, Form(max_length=MESSAGE_FIELD_MAX)] = "",
    fichiers: FilesDep = None,
) -> Response:
    viewer = _professional(request, services)
    try:
        thread_id = conversations.start(services, viewer.actor, patient_id, objet, texte, read_files(fichiers))
    except AccessDenied as exc:
        return _refused(request, services, viewer, exc.decision.reason)
    except rules.MessageError as exc:
        values = {"objet": objet, "texte": texte}
        return _new_page(request, services, viewer, patient_id, error=exc.message, values=values)
    return RedirectResponse(f"{_thread_url(thread_id)}?message=envoye", status_code=303)
