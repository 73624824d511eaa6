"""The professional's side of the portal (ACC-1..4): home, finding a patient by INS and identity traits,
the TD0.2 status of their space (oral consent, emergency access), the professional document view
(search, consultation, deposit), and the history of the space (TRC-2: all of it for the médecin traitant,
their own actions for the others).

Nothing here decides access: ``pro_view`` / ``access`` / ``vault`` ask the policy through the hall. A
professional learns a patient's name only on the pages the policy lets them open. The address carries
the space's internal id only (never the INS).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, FastAPI, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from carnet.access.service import grants as access
from carnet.access.service import pro_view
from carnet.bootstrap import Services
from carnet.enrolment.service.identify import FormError, parse_birth_date
from carnet.hall.actors import ActorKind
from carnet.hall.guard import AccessDenied
from carnet.hall.vocabulary import PARIS
from carnet.history import service as history
from carnet.people.model.identifiers import IdentifierError, parse_nir
from carnet.vault.model import documents as rules
from carnet.vault.service.documents import NOT_FOUND, DocumentContent, DocumentNotFound
from carnet.web import documents_view as view
from carnet.web.deps import ServicesDep, Viewer, csrf_protect, home_url, load_viewer, render, require_viewer
from carnet.web.documents_view import ListQuery
from carnet.web.forms import paris_midnight, parse_day

router = APIRouter(dependencies=[Depends(csrf_protect)])

MESSAGES = {
    "consentement": "Le consentement oral de la personne est enregistré : il figure dans son historique, "
    "et elle peut le retirer à tout moment.",
    "urgence": "Accès en urgence ouvert pour 2 heures. La personne et son médecin traitant en sont informés.",
    "depose": "Votre document a été déposé dans l'espace santé de la personne.",
}


class Elsewhere(Exception):
    """This page is not for the viewer: send them (303) to ``url``."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


def install(app: FastAPI) -> None:
    """Register the professional's pages and the redirections they rely on."""

    async def elsewhere(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Elsewhere)
        return RedirectResponse(exc.url, status_code=303)

    async def not_a_professional(request: Request, exc: Exception) -> Response:
        """Anyone but a professional is sent to their own home."""
        assert isinstance(exc, pro_view.NotAProfessional)
        return RedirectResponse(home_url(exc.actor), status_code=303)

    app.add_exception_handler(Elsewhere, elsewhere)
    app.add_exception_handler(pro_view.NotAProfessional, not_a_professional)
    app.include_router(router)


async def patients_only(request: Request, services: ServicesDep) -> None:
    """Dependency for the patient portal: a professional opening ``/espace/{patient_id}…`` is sent to the
    professional view of that space. Navigation only — access is decided by the policy on the pro pages."""
    patient_id = request.path_params.get("patient_id")
    if request.method not in {"GET", "HEAD"} or not patient_id or not request.url.path.startswith("/espace/"):
        return
    viewer = await run_in_threadpool(load_viewer, request, services)
    if viewer is not None and viewer.actor.kind == ActorKind.PROFESSIONAL:
        raise Elsewhere(f"{_base(str(patient_id))}/documents")


def _base(patient_id: str) -> str:
    return f"/pro/patients/{quote(patient_id, safe='')}"


def hour_fr(moment: datetime | None) -> str:
    return moment.astimezone(PARIS).strftime("%H:%M") if moment else ""


def explanation(status: pro_view.SpaceStatus, samu: bool) -> str:
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


def _patient_context(space: pro_view.Space) -> dict[str, Any]:
    """What every page about one space shows: the name only when the policy lets the professional in."""
    status = space.status
    samu = bool(space.professional and space.professional.samu_regulator)
    return {
        "status": status,
        "person": status.patient if status.allowed else None,
        "role": status.role,
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
    viewer = require_viewer(request, services)
    home = pro_view.home(services, viewer.actor)
    return render(
        request,
        services,
        "pro_home.html",
        status_code=status_code,
        title="Espace professionnel",
        viewer=viewer,
        pro=home.professional,
        profession=home.professional.profession if home.professional else "",
        patients=home.patients,
        more_patients=home.more_patients,
        emergencies=home.emergencies,
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
    viewer = require_viewer(request, services)
    try:
        patient_id = pro_view.find_space(services, viewer.actor, nir, nom, prenom, born)
    except pro_view.SearchRefused as refusal:
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
    viewer = require_viewer(request, services)
    try:
        space = pro_view.space(services, viewer.actor, patient_id)
    except AccessDenied as exc:
        return _refused(request, services, viewer, exc.decision.reason)
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
        **_patient_context(space),
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
    viewer = require_viewer(request, services)
    try:
        pro_view.record_oral_consent(services, viewer.actor, patient_id)
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
        viewer = require_viewer(request, services)
        try:
            pro_view.start_emergency(services, viewer.actor, patient_id, motif)
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
    viewer = require_viewer(request, services)
    categories = rules.categories()
    query = ListQuery(categorie if categorie in categories else "", "", auteur, du, au, q, view.page_number(page))
    errors: list[str] = []
    filters = view.search_filters(query, errors)
    try:
        found = pro_view.documents(services, viewer.actor, patient_id, filters)
    except AccessDenied as exc:
        return _refused(request, services, viewer, exc.decision.reason)
    query = replace(query, page=found.listing.page)
    context = _patient_context(found.space)
    return render(
        request,
        services,
        "pro_documents.html",
        title="Documents du patient",
        viewer=viewer,
        docs_url=f"{context['base']}/documents",
        query=query,
        categories=categories,
        documents=found.listing.documents,
        total=found.listing.total,
        pages=found.listing.pages,
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
    viewer = require_viewer(request, services)
    try:
        space = pro_view.space(services, viewer.actor, patient_id)
    except AccessDenied as exc:
        return _refused(request, services, viewer, exc.decision.reason)
    return render(
        request,
        services,
        "pro_deposit.html",
        status_code=400 if error else 200,
        title="Déposer un document",
        viewer=viewer,
        types=rules.types_of(rules.LOINC),
        category_labels=rules.categories(),
        accept=view.ACCEPT,
        error=error,
        values=values or {},
        **_patient_context(space),
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
    viewer = require_viewer(request, services)
    values = {"type": type_code, "titre": titre}
    known = type_code in {t.code for t in rules.types_of(rules.LOINC)}
    sent = view.read_upload(fichier, known, "Choisissez le fichier à déposer.")
    error = sent.error
    allowed = False
    if error is None:
        deposit = pro_view.Deposit(sent.filename, sent.mime_type, sent.body, type_code, titre)
        try:
            allowed = pro_view.deposit(services, viewer.actor, patient_id, deposit)
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


@router.get("/pro/patients/{patient_id}/documents/{document_id}", response_class=HTMLResponse)
def document_page(request: Request, services: ServicesDep, patient_id: str, document_id: str) -> Response:
    viewer = require_viewer(request, services)
    try:
        shown = pro_view.document(services, viewer.actor, patient_id, document_id)
    except DocumentNotFound:
        return _refused(request, services, viewer, NOT_FOUND.reason, 404)
    except AccessDenied as exc:
        return _refused(request, services, viewer, exc.decision.reason)
    document = shown.document
    context = _patient_context(shown.space)
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
        kind=shown.kind,
        text=shown.text,
        no_preview=view.NO_PREVIEW,
        **context,
    )


def _content(
    request: Request, services: Services, viewer: Viewer, patient_id: str, document_id: str, *, preview: bool
) -> DocumentContent | Response:
    """The document's bytes, or the page saying why not (a document not to be read: like a missing one)."""
    try:
        return pro_view.document_content(services, viewer.actor, patient_id, document_id, preview=preview)
    except DocumentNotFound:
        return _refused(request, services, viewer, NOT_FOUND.reason, 404)
    except AccessDenied as exc:
        return _refused(request, services, viewer, exc.decision.reason)


@router.get("/pro/patients/{patient_id}/documents/{document_id}/apercu")
def document_preview(request: Request, services: ServicesDep, patient_id: str, document_id: str) -> Response:
    """The document itself, inline, for the frame or image of the document page (same origin only)."""
    viewer = require_viewer(request, services)
    content = _content(request, services, viewer, patient_id, document_id, preview=True)
    if isinstance(content, Response):
        return content
    if not view.previewable(content):
        return _refused(request, services, viewer, view.NO_PREVIEW, 415)
    return view.inline(content)


@router.get("/pro/patients/{patient_id}/documents/{document_id}/telecharger")
def document_download(request: Request, services: ServicesDep, patient_id: str, document_id: str) -> Response:
    viewer = require_viewer(request, services)
    content = _content(request, services, viewer, patient_id, document_id, preview=False)
    return content if isinstance(content, Response) else view.attachment(content)


# ------------------------------------------------------------------ the history of the space (TRC-2)


def _history_query(tab: str, kind: str, du: str, au: str, errors: list[str]) -> history.HistoryQuery:
    day_from = parse_day(du, "du", errors)
    day_to = parse_day(au, "au", errors)
    if day_from and day_to and day_to < day_from:
        errors.append("La fin de la période est avant son début : vérifiez les dates.")
    return history.HistoryQuery(
        tab=tab,
        kind=kind,
        date_from=paris_midnight(day_from) if day_from and not errors else None,
        date_to=paris_midnight(day_to + timedelta(days=1)) if day_to and not errors else None,
    )


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
    viewer = require_viewer(request, services)
    tab = onglet if onglet in history.TABS else history.ALL
    kind = kind_filter if kind_filter in history.KINDS else ""
    errors: list[str] = []
    query = _history_query(tab, kind, du, au, errors)
    try:
        found = pro_view.space_history(services, viewer.actor, patient_id, query)
    except AccessDenied as exc:
        return _refused(request, services, viewer, exc.decision.reason)
    view_ = found.history
    filters = {"du": du.strip(), "au": au.strip(), "type": kind}
    heading = "Mes actions dans cet espace" if view_.own_actions else "Historique de l'espace"
    return render(
        request,
        services,
        "pro_history.html",
        status_code=400 if errors else 200,
        title=heading,
        viewer=viewer,
        view=view_,
        lines=view_.lines,
        tab=history.ALL if view_.own_actions else tab,
        tabs={} if view_.own_actions else history.TABS_FOR_PROFESSIONALS,
        kinds=history.KINDS,
        filters=filters,
        filter_query=urlencode({k: v for k, v in filters.items() if v}),
        errors=errors,
        **_patient_context(found.space),
    )
