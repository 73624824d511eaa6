"""The messaging in the person's space (MSG-1, MSG-2): the conversations (search, pages, the quota), one conversation
(answer, write again after it was closed, delete it), an attachment's download and « Ajouter à mes documents ».

Each route parses its request, calls one use case of ``carnet.messaging.service.conversations`` (which asks the
policy and writes the history) and renders what it returns. A conversation or an attachment that does not exist and
one the viewer may not read get the same 404 page; a refused input comes back in the form with its French reason and
the typed text. Nothing typed travels in an address but the search words of the list (ids otherwise).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from carnet.bootstrap import Services
from carnet.hall.actors import ActorKind
from carnet.hall.guard import AccessDenied
from carnet.messaging.model import messages as rules
from carnet.messaging.pages.common import HELPERS, MESSAGE_FIELD_MAX, SUBJECT_FIELD_MAX, download, read_files
from carnet.messaging.service import conversations
from carnet.messaging.service.store import NOT_FOUND, ThreadNotFound
from carnet.vault.model.documents import DocumentError
from carnet.web.deps import ServicesDep, Viewer, csrf_protect, render, require_viewer

router = APIRouter(dependencies=[Depends(csrf_protect)])

MESSAGES = {
    "envoye": "Votre message a été envoyé.",
    "supprime": "L'échange a été supprimé.",
}
PERSONAL = "messages_personal"  # the policy's rule: caregivers do not read the messaging
FilesDep = Annotated[list[UploadFile] | None, File()]
TextDep = Annotated[str, Form(max_length=MESSAGE_FIELD_MAX)]


def _base(patient_id: str) -> str:
    return f"/espace/{quote(patient_id, safe='')}/messages"


def _not_found(request: Request, services: Services, viewer: Viewer) -> HTMLResponse:
    return render(
        request, services, "error.html", status_code=404, title="Échange introuvable", message=NOT_FOUND, viewer=viewer
    )


def _refused(request: Request, services: Services, viewer: Viewer, reason: str) -> HTMLResponse:
    return render(
        request, services, "error.html", status_code=403, title="Action impossible", message=reason, viewer=viewer
    )


def _people_only(request: Request, services: Services, viewer: Viewer) -> HTMLResponse | None:
    """The space's messaging is answered by its people; a professional answers from /pro (their GETs are sent there
    by ``patients_only``; their forms posted here are refused like a stranger's)."""
    if viewer.actor.kind == ActorKind.PATIENT:
        return None
    return render(
        request,
        services,
        "error.html",
        status_code=403,
        title="Accès refusé",
        message="Vous n'avez pas accès à cet espace.",
        viewer=viewer,
    )


# ------------------------------------------------------------------ the conversations (MSG-1)


def _list_url(base: str, query: str, page: int) -> str:
    params = {k: v for k, v in (("q", query), ("page", str(page) if page > 1 else "")) if v}
    return f"{base}?{urlencode(params)}" if params else base


@router.get("/espace/{patient_id}/messages", response_class=HTMLResponse)
def inbox(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    q: Annotated[str, Query(max_length=200)] = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    message: Annotated[str, Query(max_length=30)] = "",
) -> Response:
    """MSG-1: the conversations, latest first, the search in them, the quota."""
    viewer = require_viewer(request, services)
    try:
        found = conversations.inbox(services, viewer.actor, patient_id, q, page)
    except AccessDenied as exc:
        if exc.decision.rule != PERSONAL:
            raise
        return _refused(request, services, viewer, exc.decision.reason)
    base = _base(patient_id)
    return render(
        request,
        services,
        "messaging/inbox.html",
        title="Messagerie",
        viewer=viewer,
        patient=found.patient,
        inbox=found,
        base=base,
        previous_url=_list_url(base, found.query, found.page - 1) if found.page > 1 else "",
        next_url=_list_url(base, found.query, found.page + 1) if found.page < found.pages else "",
        message=MESSAGES.get(message, ""),
        current="messagerie",
        **HELPERS,
    )


# ------------------------------------------------------------------ attachments (MSG-2)
# Declared before the conversation's routes: « pieces » is never taken for a conversation's id.


@router.get("/espace/{patient_id}/messages/pieces/{attachment_id}")
def attachment(request: Request, services: ServicesDep, patient_id: str, attachment_id: str) -> Response:
    viewer = require_viewer(request, services)
    try:
        content = conversations.attachment_content(services, viewer.actor, attachment_id, patient_id)
    except ThreadNotFound:
        return _not_found(request, services, viewer)
    return download(content)


def _filing_page(
    request: Request,
    services: Services,
    viewer: Viewer,
    patient_id: str,
    attachment_id: str,
    *,
    error: str = "",
    values: dict[str, str] | None = None,
) -> Response:
    try:
        filing = conversations.filing(services, viewer.actor, attachment_id, patient_id)
    except ThreadNotFound:
        return _not_found(request, services, viewer)
    except AccessDenied as exc:
        return _refused(request, services, viewer, exc.decision.reason)
    base = _base(patient_id)
    document_id = filing.attachment.document_id
    return render(
        request,
        services,
        "messaging/file.html",
        status_code=400 if error else 200,
        title="Ajouter à mes documents",
        viewer=viewer,
        patient=filing.patient,
        filing=filing,
        base=base,
        action=f"{base}/pieces/{quote(attachment_id, safe='')}/classer",
        thread_url=f"{base}/{quote(filing.thread.id, safe='')}",
        document_url=f"/espace/{quote(patient_id, safe='')}/documents/{quote(document_id, safe='')}"
        if document_id
        else "",
        error=error,
        values=values or {},
        current="messagerie",
    )


@router.get("/espace/{patient_id}/messages/pieces/{attachment_id}/classer", response_class=HTMLResponse)
def filing_form(request: Request, services: ServicesDep, patient_id: str, attachment_id: str) -> Response:
    """MSG-2: « Ajouter à mes documents »: the category to file it under, a title."""
    viewer = require_viewer(request, services)
    return _filing_page(request, services, viewer, patient_id, attachment_id)


@router.post("/espace/{patient_id}/messages/pieces/{attachment_id}/classer", response_class=HTMLResponse)
def file_attachment(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    attachment_id: str,
    type_code: Annotated[str, Form(alias="type", max_length=20)] = "",
    titre: Annotated[str, Form(max_length=300)] = "",
) -> Response:
    viewer = require_viewer(request, services)
    refused = _people_only(request, services, viewer)
    if refused:
        return refused
    values = {"type": type_code, "titre": titre}
    if not type_code:
        error = "Choisissez le type du document."
        return _filing_page(request, services, viewer, patient_id, attachment_id, error=error, values=values)
    try:
        document_id = conversations.file_attachment(services, viewer.actor, attachment_id, patient_id, type_code, titre)
    except ThreadNotFound:
        return _not_found(request, services, viewer)
    except AccessDenied as exc:
        return _refused(request, services, viewer, exc.decision.reason)
    except DocumentError as exc:
        return _filing_page(request, services, viewer, patient_id, attachment_id, error=exc.message, values=values)
    target = f"/espace/{quote(patient_id, safe='')}/documents/{quote(document_id, safe='')}?message=ajoute"
    return RedirectResponse(target, status_code=303)


# ------------------------------------------------------------------ one conversation


def _thread_page(
    request: Request,
    services: Services,
    viewer: Viewer,
    patient_id: str,
    thread_id: str,
    *,
    message: str = "",
    error: str = "",
    error_form: str = "",
    values: dict[str, str] | None = None,
) -> Response:
    try:
        shown = conversations.conversation(services, viewer.actor, thread_id, patient_id)
    except ThreadNotFound:
        return _not_found(request, services, viewer)
    base = _base(patient_id)
    return render(
        request,
        services,
        "messaging/thread.html",
        status_code=400 if error else 200,
        title=shown.thread.subject or "Échange",
        viewer=viewer,
        patient=shown.patient,
        shown=shown,
        thread=shown.thread,
        base=base,
        thread_url=f"{base}/{quote(thread_id, safe='')}",
        message=MESSAGES.get(message, ""),
        error=error,
        error_form=error_form,
        values=values or {},
        current="messagerie",
        **HELPERS,
    )


@router.get("/espace/{patient_id}/messages/{thread_id}", response_class=HTMLResponse)
def thread(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    thread_id: str,
    message: Annotated[str, Query(max_length=30)] = "",
) -> Response:
    """One conversation; opening it marks it read."""
    viewer = require_viewer(request, services)
    return _thread_page(request, services, viewer, patient_id, thread_id, message=message)


def _sent(
    request: Request,
    services: Services,
    viewer: Viewer,
    patient_id: str,
    thread_id: str,
    act: Callable[[], str],
    form: str,
    values: dict[str, str],
) -> Response:
    """Run ``act`` (answer or write again); to the conversation it went to, or back to the form with the reason and
    what was typed (files are chosen again: a browser never refills a file field)."""
    try:
        target = act()
    except ThreadNotFound:
        return _not_found(request, services, viewer)
    except AccessDenied as exc:
        return _refused(request, services, viewer, exc.decision.reason)
    except rules.MessageError as exc:
        return _thread_page(
            request, services, viewer, patient_id, thread_id, error=exc.message, error_form=form, values=values
        )
    return RedirectResponse(f"{_base(patient_id)}/{quote(target, safe='')}?message=envoye", status_code=303)


@router.post("/espace/{patient_id}/messages/{thread_id}/repondre", response_class=HTMLResponse)
def answer(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    thread_id: str,
    texte: TextDep = "",
    fichiers: FilesDep = None,
) -> Response:
    """MSG-1: the person (or a legal representative) answers in an open conversation."""
    viewer = require_viewer(request, services)
    refused = _people_only(request, services, viewer)
    if refused:
        return refused

    def act() -> str:
        files = read_files(fichiers)
        conversations.answer(services, viewer.actor, thread_id, texte, files, patient_id)
        return thread_id

    return _sent(request, services, viewer, patient_id, thread_id, act, "repondre", {"texte": texte})


@router.post("/espace/{patient_id}/messages/{thread_id}/ecrire", response_class=HTMLResponse)
def write_again(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    thread_id: str,
    objet: Annotated[str, Form(max_length=SUBJECT_FIELD_MAX)] = "",
    texte: TextDep = "",
    fichiers: FilesDep = None,
) -> Response:
    """MSG-1: after the professional closed the conversation, write to them again (a new conversation)."""
    viewer = require_viewer(request, services)
    refused = _people_only(request, services, viewer)
    if refused:
        return refused

    def act() -> str:
        files = read_files(fichiers)
        return conversations.write_again(services, viewer.actor, thread_id, objet, texte, files, patient_id)

    typed = {"objet": objet, "texte": texte}
    return _sent(request, services, viewer, patient_id, thread_id, act, "ecrire", typed)


@router.get("/espace/{patient_id}/messages/{thread_id}/supprimer", response_class=HTMLResponse)
def delete_confirm(request: Request, services: ServicesDep, patient_id: str, thread_id: str) -> Response:
    """« Supprimer l'échange »: what is lost, before anything is."""
    viewer = require_viewer(request, services)
    try:
        shown = conversations.conversation(services, viewer.actor, thread_id, patient_id)
    except ThreadNotFound:
        return _not_found(request, services, viewer)
    if not shown.may_delete:
        return _refused(request, services, viewer, "Vous ne pouvez pas supprimer cet échange.")
    base = _base(patient_id)
    unfiled = [a for m in shown.messages for a in m.attachments if not a.document_id]
    return render(
        request,
        services,
        "messaging/delete.html",
        title="Supprimer l'échange",
        viewer=viewer,
        patient=shown.patient,
        thread=shown.thread,
        unfiled=unfiled,
        base=base,
        thread_url=f"{base}/{quote(thread_id, safe='')}",
        current="messagerie",
    )


@router.post("/espace/{patient_id}/messages/{thread_id}/supprimer", response_class=HTMLResponse)
def delete(request: Request, services: ServicesDep, patient_id: str, thread_id: str) -> Response:
    viewer = require_viewer(request, services)
    refused = _people_only(request, services, viewer)
    if refused:
        return refused
    try:
        conversations.delete(services, viewer.actor, thread_id, patient_id)
    except ThreadNotFound:
        return _not_found(request, services, viewer)
    except AccessDenied as exc:
        return _refused(request, services, viewer, exc.decision.reason)
    return RedirectResponse(f"{_base(patient_id)}?message=supprime", status_code=303)
