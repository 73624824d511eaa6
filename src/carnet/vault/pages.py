"""The patient's document vault in the portal (VLT-1, 3, 4, 5, 7): list, upload, folders, preview,
download, masking and deletion — every read and write through ``services.vault`` (the policy decides).

Each page first checks that the viewer may enter the space (``SPACE_VIEW``, like every page of the
space); the vault services then decide, document by document, and write the history.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import PurePosixPath
from typing import Annotated
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException

from carnet.bootstrap import Services
from carnet.hall import audit
from carnet.hall.guard import AccessDenied, guard
from carnet.hall.policy import Action, Resource
from carnet.people.service import preferences
from carnet.people.tables import Patient
from carnet.vault.model import documents as rules
from carnet.vault.service import documents as vault
from carnet.vault.tables import Document, Folder
from carnet.web.deps import ServicesDep, Viewer, csrf_protect
from carnet.web.portal import _space, render

router = APIRouter(dependencies=[Depends(csrf_protect)])

PARIS = ZoneInfo("Europe/Paris")
PER_PAGE = 20
FOLDER_NAME_MAX = 100
ACCEPT = ",".join(ext for extensions in rules.UPLOAD_TYPES.values() for ext in extensions)
MIME_OF_EXTENSION = {ext: mime for mime, extensions in rules.UPLOAD_TYPES.items() for ext in extensions}
NO_PREVIEW = "Aperçu indisponible pour ce format : téléchargez le document."
MESSAGES = {
    "ajoute": "Votre document a été ajouté.",
    "dossier": "Le dossier a été créé.",
    "masque": "Le document est maintenant masqué aux professionnels.",
    "demasque": "Le document est de nouveau visible par les professionnels que vous autorisez.",
    "masquage-actif": "Vos nouveaux documents seront désormais masqués aux professionnels.",
    "masquage-inactif": "Vos nouveaux documents ne seront plus masqués automatiquement.",
    "supprime": "Les documents sélectionnés ont été supprimés définitivement.",
}


@dataclass(frozen=True)
class ListQuery:
    """The filters of the list page, as they travel in its address."""

    categorie: str = ""
    dossier: str = ""
    auteur: str = ""
    du: str = ""
    au: str = ""
    q: str = ""
    page: int = 1

    def params(self, **changes: object) -> dict[str, str]:
        values = asdict(replace(self, **changes))  # type: ignore[arg-type]
        params = {k: str(v).strip() for k, v in values.items() if k != "page" and str(v).strip()}
        if values["page"] > 1:
            params["page"] = str(values["page"])
        return params

    def link(self, base: str, **changes: object) -> str:
        params = self.params(**changes)
        return f"{base}?{urlencode(params)}" if params else base

    @property
    def encoded(self) -> str:
        return urlencode(self.params())

    @property
    def filtered(self) -> bool:
        return any(self.params(page=1).values())


def _base(patient_id: str) -> str:
    return f"/espace/{patient_id}/documents"


def _folders(db: Session, patient_id: str) -> list[Folder]:
    """The patient's folders (called once the page's guard has let the viewer in)."""
    return list(db.scalars(select(Folder).where(Folder.patient_id == patient_id).order_by(Folder.name, Folder.id)))


def _parse_day(value: str, label: str, errors: list[str]) -> date | None:
    if not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        errors.append(f"La date « {label} » n'est pas valide : choisissez une date (jour, mois, année).")
        return None


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=PARIS).astimezone(UTC)


def _filters(query: ListQuery, errors: list[str]) -> vault.SearchFilters:
    day_from = _parse_day(query.du, "ajouté depuis le", errors)
    day_to = _parse_day(query.au, "ajouté jusqu'au", errors)
    return vault.SearchFilters(
        text=query.q,
        category=query.categorie or None,
        author=query.auteur.strip() or None,
        folder_id=query.dossier or None,
        date_from=_start_of(day_from) if day_from else None,
        date_to=_start_of(day_to + timedelta(days=1)) if day_to else None,
        limit=PER_PAGE,
        offset=(query.page - 1) * PER_PAGE,
    )


def _list_page(
    request: Request,
    services: Services,
    patient_id: str,
    query: ListQuery,
    *,
    message: str = "",
    error: str | None = None,
    status_code: int = 200,
    folder_name: str = "",
) -> Response:
    categories = rules.categories()
    if query.categorie not in categories:
        query = replace(query, categorie="")
    errors = [error] if error else []
    with services.db.unit_of_work() as db:
        viewer, patient = _space(request, services, db, patient_id, Action.SPACE_VIEW, Resource("space"))
        counts = vault.counts(db, viewer.actor, patient_id)
        folders = _folders(db, patient_id)
        if query.dossier not in {f.id for f in folders}:
            query = replace(query, dossier="")
        filters = _filters(query, errors)
        page = vault.search(services, db, viewer.actor, patient_id, filters)
        pages = max(1, math.ceil(page.total / PER_PAGE))
        if query.page > pages:  # past the end (documents were deleted): show the last page
            query = replace(query, page=pages)
            filters = replace(filters, offset=(pages - 1) * PER_PAGE)
            page = vault.search(services, db, viewer.actor, patient_id, filters)
        mask_default = preferences.read(db, viewer.actor, patient_id).mask_new_documents
    return render(
        request,
        services,
        "documents/list.html",
        status_code=status_code,
        title="Mes documents",
        viewer=viewer,
        patient=patient,
        current="documents",
        docs_url=_base(patient_id),
        query=query,
        categories=categories,
        category_counts=counts.categories,
        folder_counts=counts.folders,
        total_all=counts.total,
        folders=folders,
        folder_names={f.id: f.name for f in folders},
        documents=page.documents,
        total=page.total,
        pages=pages,
        message=MESSAGES.get(message, ""),
        errors=errors,
        mask_default=mask_default,
        folder_name=folder_name,
        max_delete=rules.MAX_DELETE_BATCH,
    )


@router.get("/espace/{patient_id}/documents", response_class=HTMLResponse)
def documents_list(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    categorie: Annotated[str, Query(max_length=20)] = "",
    dossier: Annotated[str, Query(max_length=36)] = "",
    auteur: Annotated[str, Query(max_length=200)] = "",
    du: Annotated[str, Query(max_length=10)] = "",
    au: Annotated[str, Query(max_length=10)] = "",
    q: Annotated[str, Query(max_length=200)] = "",
    page: Annotated[str, Query(max_length=6)] = "1",
    message: Annotated[str, Query(max_length=30)] = "",
) -> Response:
    number = int(page) if page.isdigit() and int(page) > 0 else 1
    query = ListQuery(categorie, dossier, auteur, du, au, q, number)
    return _list_page(request, services, patient_id, query, message=message)


# ------------------------------------------------------------------ folders (VLT-1)


@router.post("/espace/{patient_id}/documents/dossiers", response_class=HTMLResponse)
def folder_create(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    nom: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    name = " ".join(nom.split())
    error = None
    with services.db.unit_of_work() as db:
        viewer, _ = _space(request, services, db, patient_id, Action.SPACE_VIEW, Resource("space"))
        guard(db, viewer.actor, patient_id, Action.FOLDER_WRITE, Resource("folder"))
        if not name:
            error = "Donnez un nom au dossier."
        elif len(name) > FOLDER_NAME_MAX:
            error = f"Le nom du dossier ne doit pas dépasser {FOLDER_NAME_MAX} caractères ({len(name)} saisis)."
        elif name.casefold() in {f.name.casefold() for f in _folders(db, patient_id)}:
            error = f"Vous avez déjà un dossier nommé « {name} »."
        else:
            folder = Folder(patient_id=patient_id, name=name)
            db.add(folder)
            db.flush()
            audit.record(
                db, viewer.actor, "folder.create", patient_id=patient_id, resource_type="folder", resource_id=folder.id
            )
            folder_id = folder.id
    if error:
        return _list_page(
            request, services, patient_id, ListQuery(), error=error, status_code=400, folder_name=nom[:FOLDER_NAME_MAX]
        )
    url = ListQuery(dossier=folder_id).link(_base(patient_id), page=1)
    return RedirectResponse(f"{url}&message=dossier", status_code=303)


# ------------------------------------------------------------------ upload (VLT-3)


def _upload_page(
    request: Request,
    services: Services,
    viewer: Viewer,
    patient: Patient,
    folders: list[Folder],
    *,
    error: str | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    return render(
        request,
        services,
        "documents/upload.html",
        status_code=400 if error else 200,
        title="Ajouter un document",
        viewer=viewer,
        patient=patient,
        current="documents",
        docs_url=_base(patient.id),
        types=rules.patient_types(),
        folders=folders,
        accept=ACCEPT,
        error=error,
        values=values or {},
    )


@router.get("/espace/{patient_id}/documents/ajouter", response_class=HTMLResponse)
def upload_form(
    request: Request, services: ServicesDep, patient_id: str, dossier: Annotated[str, Query(max_length=36)] = ""
) -> Response:
    with services.db.unit_of_work() as db:
        viewer, patient = _space(request, services, db, patient_id, Action.SPACE_VIEW, Resource("space"))
        folders = _folders(db, patient_id)
    return _upload_page(request, services, viewer, patient, folders, values={"dossier": dossier})


def _declared_mime(filename: str, content_type: str | None) -> str:
    """What the file says it is: its extension first, the browser's type otherwise (the vault checks the bytes)."""
    suffix = PurePosixPath(filename.lower()).suffix
    return MIME_OF_EXTENSION.get(suffix) or (content_type or "application/octet-stream")


def _too_big(size: int) -> str:
    megabytes = f"{size / 1_048_576:.1f}".replace(".", ",")
    return f"Le document dépasse la taille maximale de 5 Mo ({megabytes} Mo)."


@router.post("/espace/{patient_id}/documents/ajouter", response_class=HTMLResponse)
def upload_submit(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    fichier: Annotated[UploadFile | None, File()] = None,
    type_code: Annotated[str, Form(alias="type", max_length=20)] = "",
    titre: Annotated[str, Form(max_length=300)] = "",
    dossier: Annotated[str, Form(max_length=36)] = "",
) -> Response:
    with services.db.unit_of_work() as db:
        viewer, patient = _space(request, services, db, patient_id, Action.SPACE_VIEW, Resource("space"))
        folders = _folders(db, patient_id)
    values = {"type": type_code, "titre": titre, "dossier": dossier}
    filename = ((fichier.filename or "") if fichier else "").replace("\\", "/").split("/")[-1].strip()
    error = None
    body = b""
    if fichier is None or not filename:
        error = "Choisissez le fichier à ajouter."
    elif type_code not in {t.code for t in rules.patient_types()}:
        error = "Choisissez le type du document."
    elif fichier.size is not None and fichier.size > rules.MAX_SIZE:
        error = _too_big(fichier.size)  # refused before reading it
    else:
        body = fichier.file.read(rules.MAX_SIZE + 1)
        if len(body) > rules.MAX_SIZE:
            error = _too_big(fichier.size or len(body))
    if error is None and fichier is not None:
        new = vault.NewDocument(
            patient_id=patient_id,
            type_system=rules.PATIENT_TYPE_SYSTEM,
            type_code=type_code,
            title=titre.strip() or PurePosixPath(filename).stem,
            mime_type=_declared_mime(filename, fichier.content_type),
            body=body,
            folder_id=dossier or None,
            filename=filename,
        )
        try:
            vault.deposit_many(services, viewer.actor, [new])
        except rules.DocumentError as exc:
            error = exc.message
    if error:
        return _upload_page(request, services, viewer, patient, folders, error=error, values=values)
    return RedirectResponse(f"{_base(patient_id)}?message=ajoute", status_code=303)


# ------------------------------------------------------------------ masking (VLT-5)


@router.post("/espace/{patient_id}/documents/masquage-par-defaut")
def mask_default(
    request: Request, services: ServicesDep, patient_id: str, actif: Annotated[str, Form(max_length=5)] = ""
) -> Response:
    on = actif == "oui"
    with services.db.unit_of_work() as db:
        viewer, _ = _space(request, services, db, patient_id, Action.SPACE_VIEW, Resource("space"))
        preferences.update(db, viewer.actor, patient_id, mask_new_documents=on)
    message = "masquage-actif" if on else "masquage-inactif"
    return RedirectResponse(f"{_base(patient_id)}?message={message}", status_code=303)


# ------------------------------------------------------------------ deletion (VLT-7)


def _selected(ids: list[str] | None) -> list[str]:
    return list(dict.fromkeys(i.strip()[:64] for i in ids or [] if i.strip()))


def _delete_page(
    request: Request,
    services: Services,
    viewer: Viewer,
    patient: Patient,
    documents: list[Document],
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        services,
        "documents/delete.html",
        status_code=status_code,
        title="Supprimer des documents",
        viewer=viewer,
        patient=patient,
        current="documents",
        docs_url=_base(patient.id),
        documents=documents,
        error=error,
    )


def _batch_error(ids: list[str]) -> str | None:
    if not ids:
        return "Choisissez au moins un document à supprimer."
    if len(ids) > rules.MAX_DELETE_BATCH:
        return (
            f"Vous pouvez supprimer au plus {rules.MAX_DELETE_BATCH} documents à la fois : "
            f"vous en avez choisi {len(ids)}."
        )
    return None


def _confirm_delete(request: Request, services: Services, patient_id: str, ids: list[str]) -> Response:
    with services.db.unit_of_work() as db:
        viewer, patient = _space(request, services, db, patient_id, Action.SPACE_VIEW, Resource("space"))
        error = _batch_error(ids)
        documents = []
        if error is None:
            for document_id in ids:
                document, _, _ = vault.read(services, db, viewer.actor, document_id, action="document.metadata")
                _same_space(document, patient_id)
                documents.append(document)
    return _delete_page(request, services, viewer, patient, documents, error=error, status_code=400 if error else 200)


@router.get("/espace/{patient_id}/documents/supprimer", response_class=HTMLResponse)
def delete_confirm(
    request: Request, services: ServicesDep, patient_id: str, ids: Annotated[list[str] | None, Query()] = None
) -> Response:
    return _confirm_delete(request, services, patient_id, _selected(ids))


@router.post("/espace/{patient_id}/documents/supprimer", response_class=HTMLResponse)
def delete_submit(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    ids: Annotated[list[str] | None, Form()] = None,
    confirmer: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    selected = _selected(ids)
    if confirmer != "oui" or _batch_error(selected):
        return _confirm_delete(request, services, patient_id, selected)
    with services.db.unit_of_work() as db:
        viewer, patient = _space(request, services, db, patient_id, Action.SPACE_VIEW, Resource("space"))
    try:
        vault.delete_documents(services, viewer.actor, selected)
    except rules.DocumentError as exc:
        return _delete_page(request, services, viewer, patient, [], error=exc.message, status_code=400)
    except AccessDenied as exc:
        if exc.decision.rule != "professional_document_kept":
            raise
        return _delete_page(request, services, viewer, patient, [], error=exc.decision.reason, status_code=403)
    return RedirectResponse(f"{_base(patient_id)}?message=supprime", status_code=303)


# ------------------------------------------------------------------ one document (VLT-4, VLT-5)


def _same_space(document: Document, patient_id: str) -> None:
    """The address names the space: a document of another space is not found here."""
    if document.patient_id != patient_id:
        raise HTTPException(404)


def _preview_kind(mime: str) -> str | None:
    if mime not in rules.PREVIEWABLE:
        return None
    return "pdf" if mime == "application/pdf" else "text" if mime == "text/plain" else "image"


@router.get("/espace/{patient_id}/documents/{document_id}", response_class=HTMLResponse)
def document_page(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    document_id: str,
    message: Annotated[str, Query(max_length=30)] = "",
) -> Response:
    text = None
    with services.db.unit_of_work() as db:
        viewer, patient = _space(request, services, db, patient_id, Action.SPACE_VIEW, Resource("space"))
        document, body, mime = vault.read(
            services, db, viewer.actor, document_id, preview=True, action="document.metadata"
        )
        _same_space(document, patient_id)
        kind = _preview_kind(mime)
        if kind == "text":  # shown on this page itself: this is the consultation
            document, body, mime = vault.read(services, db, viewer.actor, document_id, preview=True)
            text = body.decode("utf-8", errors="replace")
        folder = db.get(Folder, document.folder_id) if document.folder_id else None
    return render(
        request,
        services,
        "documents/document.html",
        title=document.title,
        viewer=viewer,
        patient=patient,
        current="documents",
        docs_url=_base(patient_id),
        document=document,
        category=rules.categories().get(document.category, document.category),
        folder=folder,
        kind=kind,
        text=text,
        no_preview=NO_PREVIEW,
        message=MESSAGES.get(message, ""),
    )


@router.get("/espace/{patient_id}/documents/{document_id}/apercu")
def document_preview(request: Request, services: ServicesDep, patient_id: str, document_id: str) -> Response:
    """The document itself, inline, for the frame or image of the document page (same origin only)."""
    with services.db.unit_of_work() as db:
        viewer, _ = _space(request, services, db, patient_id, Action.SPACE_VIEW, Resource("space"))
        document, body, mime = vault.read(services, db, viewer.actor, document_id, preview=True)
        _same_space(document, patient_id)
    if _preview_kind(mime) is None:
        return render(request, services, "error.html", status_code=415, title="Aperçu indisponible", message=NO_PREVIEW)
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


@router.get("/espace/{patient_id}/documents/{document_id}/telecharger")
def document_download(request: Request, services: ServicesDep, patient_id: str, document_id: str) -> Response:
    with services.db.unit_of_work() as db:
        viewer, _ = _space(request, services, db, patient_id, Action.SPACE_VIEW, Resource("space"))
        document, body, mime = vault.read(services, db, viewer.actor, document_id, action="document.download")
        _same_space(document, patient_id)
    return Response(
        body,
        media_type=mime,
        headers={"Content-Disposition": f'attachment; filename="{safe_filename(document.title, mime)}"'},
    )


def safe_filename(title: str, mime: str) -> str:
    """An ASCII file name from the title (« Bilan d'hémoglobine » → Bilan-d-hemoglobine.pdf)."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", ascii_title).strip("-.")[:80].strip("-.") or "document"
    extensions = rules.UPLOAD_TYPES.get(mime) or ((".xml",) if "xml" in mime else ("",))
    if extensions[0] and stem.lower().endswith(tuple(extensions)):
        return stem
    return stem + extensions[0]


@router.post("/espace/{patient_id}/documents/{document_id}/masquage")
def document_mask(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    document_id: str,
    masquer: Annotated[str, Form(max_length=5)] = "",
    retour: Annotated[str, Form(max_length=600)] = "",
) -> Response:
    masked = masquer == "oui"
    with services.db.unit_of_work() as db:
        viewer, _ = _space(request, services, db, patient_id, Action.SPACE_VIEW, Resource("space"))
        document = vault.set_masked(db, viewer.actor, document_id, masked)
        _same_space(document, patient_id)
    message = "masque" if masked else "demasque"
    if retour == "document":
        return RedirectResponse(f"{_base(patient_id)}/{document_id}?message={message}", status_code=303)
    kept = {k: v for k, v in parse_qsl(retour) if k in ListQuery.__dataclass_fields__}
    return RedirectResponse(f"{_base(patient_id)}?{urlencode({**kept, 'message': message})}", status_code=303)
