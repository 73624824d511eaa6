"""The professional's side of the portal (ACC-1..4): home, finding a patient by INS and identity traits,
the TD0.2 status of their space (oral consent, emergency access), the professional document view
(search, consultation, deposit), and the history of the space (TRC-2: all of it for the médecin traitant,
their own actions for the others).

Nothing here decides access: ``pro_view`` / ``access`` / ``vault`` ask the policy through the hall. A
professional learns a patient's name only on the pages the policy lets them open. The address carries
the space's internal id only (never the INS).
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, FastAPI, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from carnet.access.service import grants as access
from carnet.access.service import pro_view
from carnet.bootstrap import Services
from carnet.enrolment.service.opposition import FormError, parse_birth_date
from carnet.hall.actors import ActorKind
from carnet.hall.guard import AccessDenied
from carnet.history import service as history
from carnet.identity.service import auth
from carnet.people.model.identifiers import IdentifierError, parse_nir
from carnet.people.model.professions import profession_label
from carnet.people.tables import Professional
from carnet.vault.model import documents as rules
from carnet.vault.pages import (
    ACCEPT,
    NO_PREVIEW,
    PER_PAGE,
    ListQuery,
    _declared_mime,
    _filters,
    _preview_kind,
    _too_big,
    safe_filename,
)
from carnet.vault.service import documents as vault
from carnet.vault.tables import Document
from carnet.web.deps import ServicesDep, Viewer, csrf_protect, load_viewer
from carnet.web.portal import _history_day, _home_url, _paris_midnight, render, require_viewer

router = APIRouter(dependencies=[Depends(csrf_protect)])

PARIS = ZoneInfo("Europe/Paris")
MESSAGES = {
    "consentement": "Le consentement oral de la personne est enregistré : il figure dans son historique, "
    "et elle peut le retirer à tout moment.",
    "urgence": "Accès en urgence ouvert pour 2 heures. La personne et son médecin traitant en sont informés.",
    "depose": "Votre document a été déposé dans l'espace santé de la personne.",
}
NOT_FOUND = vault.NOT_FOUND.reason


class Elsewhere(Exception):
    """This page is not for the viewer: send them (303) to ``url``."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


def install(app: FastAPI) -> None:
    """Register the professional's pages and the redirection they rely on."""

    async def elsewhere(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Elsewhere)
        return RedirectResponse(exc.url, status_code=303)

    app.add_exception_handler(Elsewhere, elsewhere)
    app.include_router(router)


async def patients_only(request: Request, services: ServicesDep) -> None:
    """Dependency for the patient portal: a professional opening ``/espace/{patient_id}…`` is sent to the
    professional view of that space. Navigation only — access is decided by the policy on the pro pages."""
    patient_id = request.path_params.get("patient_id")
    if request.method not in {"GET", "HEAD"} or not patient_id or not request.url.path.startswith("/espace/"):
        return

    def kind() -> str | None:
        with services.db.unit_of_work() as db:
            viewer = load_viewer(request, services, db, auth.FULL_STAGE)
            return str(viewer.actor.kind) if viewer else None

    if await run_in_threadpool(kind) == ActorKind.PROFESSIONAL:
        raise Elsewhere(f"{_base(str(patient_id))}/documents")


def _base(patient_id: str) -> str:
    return f"/pro/patients/{quote(patient_id, safe='')}"


def _professional(request: Request, services: Services, db: Session) -> Viewer:
    """The logged-in professional; anyone else is sent to their own home (anonymous: to the login)."""
    viewer = require_viewer(request, services, db)
    if viewer.actor.kind != ActorKind.PROFESSIONAL:
        raise Elsewhere(_home_url(viewer))
    return viewer


def hour_fr(moment: datetime | None) -> str:
    return moment.astimezone(PARIS).strftime("%H:%M") if moment else ""


def explanation(status: access.Status, samu: bool) -> str:
    """The French reason of the status (TD0.2)."""
    if not status.allowed:
        return status.reason
    if status.medecin_traitant:
        return (
            "Vous êtes le médecin traitant de cette personne : vous voyez tous ses documents, "
            "y compris ceux qu'elle a masqués aux autres professionnels."
        )
    if status.administrator:
        return (
            "La personne vous a donné le statut d'administrateur de son espace : vous voyez tous ses documents, "
            "y compris ceux qu'elle a masqués aux autres professionnels."
        )
    if status.emergency_until is not None:
        kind = "SAMU (régulation)" if samu else "en urgence"
        return (
            f"Accès {kind} jusqu'à {hour_fr(status.emergency_until)}. La personne et son médecin traitant "
            "sont informés de cet accès."
        )
    return (
        "La personne vous a autorisé : vous voyez les documents que votre profession peut consulter, "
        "sauf ceux qu'elle a masqués aux professionnels."
    )


def _refused(request: Request, services: Services, viewer: Viewer, reason: str, status_code: int = 403) -> HTMLResponse:
    return render(
        request,
        services,
        "pro_refused.html",
        status_code=status_code,
        title={404: "Document introuvable", 415: "Aperçu indisponible"}.get(status_code, "Accès refusé"),
        viewer=viewer,
        reason=reason,
        current="pro",
    )


def _patient_context(status: access.Status, pro: Professional | None) -> dict[str, Any]:
    """What every page about one space shows: the name only when the policy lets the professional in."""
    samu = bool(pro and pro.samu_regulator)
    return {
        "status": status,
        "person": status.patient if status.allowed else None,
        "role": pro_view.role_label(status),
        "explanation": explanation(status, samu),
        "until": hour_fr(status.emergency_until),
        "base": _base(status.patient.id),
        "samu": samu,
        "current": "pro",
    }


# ------------------------------------------------------------------ home and search (TD0.2)


def _home(
    request: Request,
    services: Services,
    *,
    errors: list[str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    with services.db.unit_of_work() as db:
        viewer = _professional(request, services, db)
        pro = db.get(Professional, viewer.actor.professional_id)
        patients, more = pro_view.my_patients(db, viewer.actor)
        emergencies = pro_view.emergencies_for_my_patients(db, viewer.actor)
    return render(
        request,
        services,
        "pro_home.html",
        status_code=status_code,
        title="Espace professionnel",
        viewer=viewer,
        pro=pro,
        profession=profession_label(pro.profession_code) if pro else "",
        patients=patients,
        more_patients=more,
        emergencies=emergencies,
        hour_fr=hour_fr,
        errors=errors or [],
        values=values or {},
        current="pro",
    )


@router.get("/pro", response_class=HTMLResponse)
def pro_home(request: Request, services: ServicesDep) -> Response:
    return _home(request, services)


@router.post("/pro/recherche", response_class=HTMLResponse)
def pro_search(
    request: Request,
    services: ServicesDep,
    ins: Annotated[str, Form(max_length=30)] = "",
    nom: Annotated[str, Form(max_length=100)] = "",
    prenom: Annotated[str, Form(max_length=100)] = "",
    naissance: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Find a space by INS + identity traits; the answer is the professional's status there (TD0.2)."""
    values = {"ins": ins, "nom": nom, "prenom": prenom, "naissance": naissance}
    errors: list[str] = []
    nir = born = None
    try:
        nir = parse_nir(ins).value
    except IdentifierError as exc:
        errors.append(exc.message)
    if not nom.strip():
        errors.append("Nom de naissance : indiquez-le tel qu'il figure sur la pièce d'identité.")
    if not prenom.strip():
        errors.append("Premier prénom : indiquez-le tel qu'il figure sur la pièce d'identité.")
    try:
        born = parse_birth_date(naissance)
    except FormError as exc:
        errors.append(exc.message)
    if errors or nir is None or born is None:
        return _home(request, services, errors=errors, values=values, status_code=400)
    refusal = None
    try:
        with services.db.unit_of_work() as db:
            viewer = _professional(request, services, db)
            status = pro_view.find(db, viewer.actor, nir, nom, prenom, born)
            patient_id = status.patient.id
    except pro_view.SearchRefused as exc:
        refusal = exc
    if refusal is not None:
        return _home(request, services, errors=[refusal.message], values=values, status_code=refusal.status_code)
    return RedirectResponse(_base(patient_id), status_code=303)


# ------------------------------------------------------------------ one space: status, consent, emergency


def _status_page(
    request: Request,
    services: Services,
    patient_id: str,
    *,
    message: str = "",
    error: str | None = None,
    error_form: str = "",
    reason_text: str = "",
    status_code: int = 200,
) -> Response:
    with services.db.unit_of_work() as db:
        viewer = _professional(request, services, db)
        try:
            status = pro_view.status_of(db, viewer.actor, patient_id)
        except AccessDenied as exc:
            return _refused(request, services, viewer, exc.decision.reason)
        pro = db.get(Professional, viewer.actor.professional_id)
    return render(
        request,
        services,
        "pro_patient.html",
        status_code=status_code,
        title="Accès à l'espace santé",
        viewer=viewer,
        message=MESSAGES.get(message, ""),
        error=error,
        error_form=error_form,
        reason_text=reason_text,
        min_reason=access.MIN_REASON,
        **_patient_context(status, pro),
    )


@router.get("/pro/patients/{patient_id}", response_class=HTMLResponse)
def patient_status(
    request: Request, services: ServicesDep, patient_id: str, message: Annotated[str, Query(max_length=30)] = ""
) -> Response:
    return _status_page(request, services, patient_id, message=message)


@router.post("/pro/patients/{patient_id}/consentement", response_class=HTMLResponse)
def record_oral_consent(
    request: Request, services: ServicesDep, patient_id: str, accord: Annotated[str, Form(max_length=5)] = ""
) -> Response:
    """ACC-1: the professional records that the person said yes, orally."""
    if accord != "oui":
        error = "Cochez la case « La personne m'a donné son accord oral » pour enregistrer son consentement."
        return _status_page(request, services, patient_id, error=error, error_form="consentement", status_code=400)
    try:
        with services.db.unit_of_work() as db:
            viewer = _professional(request, services, db)
            access.record_consent(db, viewer.actor, patient_id, "oral")
    except AccessDenied as exc:
        return _status_page(
            request, services, patient_id, error=exc.decision.reason, error_form="consentement", status_code=403
        )
    return RedirectResponse(f"{_base(patient_id)}?message=consentement", status_code=303)


@router.post("/pro/patients/{patient_id}/urgence", response_class=HTMLResponse)
def start_emergency(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    motif: Annotated[str, Form(max_length=1000)] = "",
    incapacite: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    """ACC-4: break-the-glass (or the SAMU regulator on a call), with a reason, for two hours."""
    error, code = None, 400
    if incapacite != "oui":
        error = "Cochez la case confirmant que la personne n'est pas en état de donner son accord."
    else:
        try:
            with services.db.unit_of_work() as db:
                viewer = _professional(request, services, db)
                access.start_emergency(db, viewer.actor, patient_id, motif)
        except access.AccessError as exc:
            error = exc.message
        except AccessDenied as exc:
            error, code = exc.decision.reason, 403
    if error:
        return _status_page(
            request, services, patient_id, error=error, error_form="urgence", reason_text=motif, status_code=code
        )
    return RedirectResponse(f"{_base(patient_id)}/documents?message=urgence", status_code=303)


# ------------------------------------------------------------------ documents: list and search


@router.get("/pro/patients/{patient_id}/documents", response_class=HTMLResponse)
def documents_list(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    categorie: Annotated[str, Query(max_length=20)] = "",
    auteur: Annotated[str, Query(max_length=200)] = "",
    du: Annotated[str, Query(max_length=10)] = "",
    au: Annotated[str, Query(max_length=10)] = "",
    q: Annotated[str, Query(max_length=200)] = "",
    page: Annotated[str, Query(max_length=6)] = "1",
    message: Annotated[str, Query(max_length=30)] = "",
) -> Response:
    """The documents the policy lets this professional see: one page query and one count."""
    categories = rules.categories()
    number = int(page) if page.isdigit() and int(page) > 0 else 1
    query = ListQuery(categorie if categorie in categories else "", "", auteur, du, au, q, number)
    errors: list[str] = []
    with services.db.unit_of_work() as db:
        viewer = _professional(request, services, db)
        try:
            status = pro_view.open_space(db, viewer.actor, patient_id)
        except AccessDenied as exc:
            return _refused(request, services, viewer, exc.decision.reason)
        filters = _filters(query, errors)
        result = vault.search(services, db, viewer.actor, patient_id, filters)
        pages = max(1, math.ceil(result.total / PER_PAGE))
        if query.page > pages:  # past the end: show the last page
            query = replace(query, page=pages)
            last = replace(filters, offset=(pages - 1) * PER_PAGE)
            result = vault.search(services, db, viewer.actor, patient_id, last)
        pro = db.get(Professional, viewer.actor.professional_id)
    context = _patient_context(status, pro)
    return render(
        request,
        services,
        "pro_documents.html",
        title="Documents du patient",
        viewer=viewer,
        docs_url=f"{context['base']}/documents",
        query=query,
        categories=categories,
        documents=result.documents,
        total=result.total,
        pages=pages,
        errors=errors,
        message=MESSAGES.get(message, ""),
        **context,
    )


# ------------------------------------------------------------------ deposit from the portal


def _deposit_page(
    request: Request,
    services: Services,
    patient_id: str,
    *,
    error: str | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    with services.db.unit_of_work() as db:
        viewer = _professional(request, services, db)
        try:
            status = pro_view.status_of(db, viewer.actor, patient_id)
        except AccessDenied as exc:
            return _refused(request, services, viewer, exc.decision.reason)
        pro = db.get(Professional, viewer.actor.professional_id)
    return render(
        request,
        services,
        "pro_deposit.html",
        status_code=400 if error else 200,
        title="Déposer un document",
        viewer=viewer,
        types=rules.types_of(rules.LOINC),
        category_labels=rules.categories(),
        accept=ACCEPT,
        error=error,
        values=values or {},
        **_patient_context(status, pro),
    )


@router.get("/pro/patients/{patient_id}/documents/deposer", response_class=HTMLResponse)
def deposit_form(request: Request, services: ServicesDep, patient_id: str) -> Response:
    return _deposit_page(request, services, patient_id)


@router.post("/pro/patients/{patient_id}/documents/deposer", response_class=HTMLResponse)
def deposit_submit(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    fichier: Annotated[UploadFile | None, File()] = None,
    type_code: Annotated[str, Form(alias="type", max_length=20)] = "",
    titre: Annotated[str, Form(max_length=300)] = "",
) -> Response:
    """ACC-3, VLT-2: professionals feed the space — even one who cannot read it (blocked, not authorised)."""
    with services.db.unit_of_work() as db:
        viewer = _professional(request, services, db)
        try:
            allowed = pro_view.status_of(db, viewer.actor, patient_id).allowed
        except AccessDenied as exc:
            return _refused(request, services, viewer, exc.decision.reason)
    values = {"type": type_code, "titre": titre}
    filename = ((fichier.filename or "") if fichier else "").replace("\\", "/").split("/")[-1].strip()
    codes = {t.code: t for t in rules.types_of(rules.LOINC)}
    error = None
    body = b""
    if fichier is None or not filename:
        error = "Choisissez le fichier à déposer."
    elif type_code not in codes:
        error = "Choisissez le type du document."
    elif fichier.size is not None and fichier.size > rules.MAX_SIZE:
        error = _too_big(fichier.size)  # refused before reading it
    else:
        body = fichier.file.read(rules.MAX_SIZE + 1)
        if len(body) > rules.MAX_SIZE:
            error = _too_big(fichier.size or len(body))
    if error is None and fichier is not None:
        mime = _declared_mime(filename, fichier.content_type)
        new = vault.NewDocument(
            patient_id=patient_id,
            type_system=rules.LOINC,
            type_code=type_code,
            title=titre.strip() or codes[type_code].display,
            mime_type=mime,
            body=body,
            filename=filename,
        )
        try:
            if mime not in rules.UPLOAD_TYPES:  # the portal takes the patient's formats; CDA comes over MHD
                rules.check_body(body, mime)
            vault.deposit_many(services, viewer.actor, [new])
        except rules.DocumentError as exc:
            error = exc.message
        except AccessDenied as exc:
            return _refused(request, services, viewer, exc.decision.reason)
    if error:
        return _deposit_page(request, services, patient_id, error=error, values=values)
    if allowed:
        return RedirectResponse(f"{_base(patient_id)}/documents?message=depose", status_code=303)
    return RedirectResponse(f"{_base(patient_id)}?message=depose", status_code=303)


# ------------------------------------------------------------------ one document


def _read(
    request: Request, services: Services, patient_id: str, document_id: str, *, preview: bool, action: str
) -> tuple[Viewer, access.Status, Professional | None, Document, bytes, str] | Response:
    """The document if the policy lets this professional read it, in this space; a refusal page otherwise
    (a document they may not see is answered like one that does not exist)."""
    with services.db.unit_of_work() as db:
        viewer = _professional(request, services, db)
        try:
            status = pro_view.open_space(db, viewer.actor, patient_id)
        except AccessDenied as exc:
            return _refused(request, services, viewer, exc.decision.reason)
        try:
            document, body, mime = vault.read(services, db, viewer.actor, document_id, preview=preview, action=action)
        except AccessDenied:
            return _refused(request, services, viewer, NOT_FOUND, 404)
        if document.patient_id != patient_id:  # the address names the space
            return _refused(request, services, viewer, NOT_FOUND, 404)
        pro = db.get(Professional, viewer.actor.professional_id)
    return viewer, status, pro, document, body, mime


@router.get("/pro/patients/{patient_id}/documents/{document_id}", response_class=HTMLResponse)
def document_page(request: Request, services: ServicesDep, patient_id: str, document_id: str) -> Response:
    found = _read(request, services, patient_id, document_id, preview=True, action="document.metadata")
    if isinstance(found, Response):
        return found
    viewer, status, pro, document, _, mime = found
    kind = _preview_kind(mime)
    text = None
    if kind == "text":  # shown on this page itself: this is the consultation
        again = _read(request, services, patient_id, document_id, preview=True, action="document.read")
        if isinstance(again, Response):
            return again
        text = again[4].decode("utf-8", errors="replace")
    context = _patient_context(status, pro)
    return render(
        request,
        services,
        "pro_document.html",
        title=document.title,
        viewer=viewer,
        docs_url=f"{context['base']}/documents",
        document=document,
        category=rules.categories().get(document.category, document.category),
        own=document.author_id == viewer.actor.professional_id,
        kind=kind,
        text=text,
        no_preview=NO_PREVIEW,
        **context,
    )


@router.get("/pro/patients/{patient_id}/documents/{document_id}/apercu")
def document_preview(request: Request, services: ServicesDep, patient_id: str, document_id: str) -> Response:
    """The document itself, inline, for the frame or image of the document page (same origin only)."""
    found = _read(request, services, patient_id, document_id, preview=True, action="document.read")
    if isinstance(found, Response):
        return found
    viewer, _, _, document, body, mime = found
    if _preview_kind(mime) is None:
        return _refused(request, services, viewer, NO_PREVIEW, 415)
    return Response(
        body,
        media_type=f"{mime}; charset=utf-8" if mime == "text/plain" else mime,
        headers={
            "Content-Disposition": f'inline; filename="{safe_filename(document.title, mime)}"',
            "Content-Security-Policy": (
                "default-src 'none'; object-src 'self'; frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
            ),
            "X-Frame-Options": "SAMEORIGIN",
        },
    )


@router.get("/pro/patients/{patient_id}/documents/{document_id}/telecharger")
def document_download(request: Request, services: ServicesDep, patient_id: str, document_id: str) -> Response:
    found = _read(request, services, patient_id, document_id, preview=False, action="document.download")
    if isinstance(found, Response):
        return found
    _, _, _, document, body, mime = found
    return Response(
        body,
        media_type=mime,
        headers={"Content-Disposition": f'attachment; filename="{safe_filename(document.title, mime)}"'},
    )


# ------------------------------------------------------------------ the history of the space (TRC-2)


@router.get("/pro/patients/{patient_id}/historique", response_class=HTMLResponse)
def patient_history(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    onglet: Annotated[str, Query(max_length=20)] = history.ALL,
    du: Annotated[str, Query(max_length=10)] = "",
    au: Annotated[str, Query(max_length=10)] = "",
    kind_filter: Annotated[str, Query(alias="type", max_length=20)] = "",
) -> Response:
    """TRC-2 "the médecin traitant and the author see theirs": the history of the space as the policy lets
    this professional read it — all of it (médecin traitant, administrator), or only their own actions
    (anyone else, even without access to the documents). Reading it is itself recorded."""
    tab = onglet if onglet in history.TABS else history.ALL
    kind = kind_filter if kind_filter in history.KINDS else ""
    errors: list[str] = []
    day_from = _history_day(du, "du", errors)
    day_to = _history_day(au, "au", errors)
    if day_from and day_to and day_to < day_from:
        errors.append("La fin de la période est avant son début : vérifiez les dates.")
    with services.db.unit_of_work() as db:
        viewer = _professional(request, services, db)
        try:
            status = pro_view.status_of(db, viewer.actor, patient_id)
            view = history.history_view(
                db,
                viewer.actor,
                patient_id,
                history.HistoryQuery(
                    tab=tab,
                    kind=kind,
                    date_from=_paris_midnight(day_from) if day_from and not errors else None,
                    date_to=_paris_midnight(day_to + timedelta(days=1)) if day_to and not errors else None,
                ),
            )
        except AccessDenied as exc:
            return _refused(request, services, viewer, exc.decision.reason)
        pro = db.get(Professional, viewer.actor.professional_id)
    filters = {"du": du.strip(), "au": au.strip(), "type": kind}
    heading = "Mes actions dans cet espace" if view.own_actions else "Historique de l'espace"
    return render(
        request,
        services,
        "pro_history.html",
        status_code=400 if errors else 200,
        title=heading,
        viewer=viewer,
        view=view,
        lines=view.lines,
        tab=history.ALL if view.own_actions else tab,
        tabs={} if view.own_actions else history.TABS_FOR_PROFESSIONALS,
        kinds=history.KINDS,
        filters=filters,
        filter_query=urlencode({k: v for k, v in filters.items() if v}),
        errors=errors,
        **_patient_context(status, pro),
    )
