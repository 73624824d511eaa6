"""The patient's document vault in the portal (VLT-1, 3, 4, 5, 7): list, upload, folders, preview,
download, masking and deletion.

Each page parses its request, calls one use case of ``carnet.vault.service.portal`` (which enters the space
through the policy, asks the vault and writes the history) and renders what it returns. A document that is
not in the space of the address, does not exist or may not be read gets the same « Document introuvable » (404).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from carnet.bootstrap import Services
from carnet.people.service.lookup import PatientView
from carnet.vault.model import documents as rules
from carnet.vault.service import portal
from carnet.vault.service.documents import NOT_FOUND, DocumentNotFound, DocumentView
from carnet.web import documents_view as view
from carnet.web.deps import ServicesDep, Viewer, csrf_protect, render, require_viewer
from carnet.web.documents_view import ListQuery

router = APIRouter(dependencies=[Depends(csrf_protect)])

MESSAGES = {
    "ajoute": "Votre document a été ajouté.",
    "dossier": "Le dossier a été créé.",
    "masque": "Le document est maintenant masqué aux professionnels.",
    "demasque": "Le document est de nouveau visible par les professionnels que vous autorisez.",
    "masquage-actif": "Vos nouveaux documents seront désormais masqués aux professionnels.",
    "masquage-inactif": "Vos nouveaux documents ne seront plus masqués automatiquement.",
    "supprime": "Les documents sélectionnés ont été supprimés définitivement.",
    "supprime-un": "Le document a été supprimé définitivement.",
}


def _base(patient_id: str) -> str:
    return f"/espace/{patient_id}/documents"


def _not_found(request: Request, services: Services) -> Response:
    """A document of another space, one that does not exist and one the viewer may not read: one answer."""
    return render(
        request, services, "error.html", status_code=404, title="Document introuvable", message=NOT_FOUND.reason
    )


# ------------------------------------------------------------------ list (VLT-1, VLT-4)


def _list_page(
    request: Request,
    services: Services,
    viewer: Viewer,
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
    filters = view.search_filters(query, errors)
    found = portal.list_documents(services, viewer.actor, patient_id, filters)
    query = replace(query, dossier=found.folder_id, page=found.listing.page)
    return render(
        request,
        services,
        "documents/list.html",
        status_code=status_code,
        title="Mes documents",
        viewer=viewer,
        patient=found.patient,
        current="documents",
        docs_url=_base(patient_id),
        query=query,
        categories=categories,
        category_counts=found.counts.categories,
        folder_counts=found.counts.folders,
        total_all=found.counts.total,
        folders=found.folders,
        folder_names={f.id: f.name for f in found.folders},
        documents=found.listing.documents,
        total=found.listing.total,
        pages=found.listing.pages,
        message=MESSAGES.get(message, ""),
        errors=errors,
        mask_default=found.mask_default,
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
    viewer = require_viewer(request, services)
    query = ListQuery(categorie, dossier, auteur, du, au, q, view.page_number(page))
    return _list_page(request, services, viewer, patient_id, query, message=message)


# ------------------------------------------------------------------ folders (VLT-1)


@router.post("/espace/{patient_id}/documents/dossiers", response_class=HTMLResponse)
def folder_create(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    nom: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    viewer = require_viewer(request, services)
    try:
        folder_id = portal.create_folder(services, viewer.actor, patient_id, nom)
    except rules.DocumentError as exc:
        return _list_page(
            request,
            services,
            viewer,
            patient_id,
            ListQuery(),
            error=exc.message,
            status_code=400,
            folder_name=nom[: rules.FOLDER_NAME_MAX],
        )
    url = ListQuery(dossier=folder_id).link(_base(patient_id), page=1)
    return RedirectResponse(f"{url}&message=dossier", status_code=303)


# ------------------------------------------------------------------ upload (VLT-3)


def _upload_page(
    request: Request,
    services: Services,
    viewer: Viewer,
    patient_id: str,
    *,
    error: str | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    form = portal.upload_form(services, viewer.actor, patient_id)
    return render(
        request,
        services,
        "documents/upload.html",
        status_code=400 if error else 200,
        title="Ajouter un document",
        viewer=viewer,
        patient=form.patient,
        current="documents",
        docs_url=_base(patient_id),
        types=rules.patient_types(),
        folders=form.folders,
        accept=view.ACCEPT,
        error=error,
        values=values or {},
    )


@router.get("/espace/{patient_id}/documents/ajouter", response_class=HTMLResponse)
def upload_form(
    request: Request, services: ServicesDep, patient_id: str, dossier: Annotated[str, Query(max_length=36)] = ""
) -> Response:
    viewer = require_viewer(request, services)
    return _upload_page(request, services, viewer, patient_id, values={"dossier": dossier})


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
    viewer = require_viewer(request, services)
    values = {"type": type_code, "titre": titre, "dossier": dossier}
    known = type_code in {t.code for t in rules.patient_types()}
    sent = view.read_upload(fichier, known, "Choisissez le fichier à ajouter.")
    error = sent.error
    if error is None:
        upload = portal.Upload(sent.filename, sent.mime_type, sent.body, type_code, titre, dossier or None)
        try:
            portal.upload(services, viewer.actor, patient_id, upload)
        except rules.DocumentError as exc:
            error = exc.message
    if error:
        return _upload_page(request, services, viewer, patient_id, error=error, values=values)
    return RedirectResponse(f"{_base(patient_id)}?message=ajoute", status_code=303)


# ------------------------------------------------------------------ masking (VLT-5)


@router.post("/espace/{patient_id}/documents/masquage-par-defaut")
def mask_default(
    request: Request, services: ServicesDep, patient_id: str, actif: Annotated[str, Form(max_length=5)] = ""
) -> Response:
    viewer = require_viewer(request, services)
    on = actif == "oui"
    portal.set_mask_default(services, viewer.actor, patient_id, on)
    message = "masquage-actif" if on else "masquage-inactif"
    return RedirectResponse(f"{_base(patient_id)}?message={message}", status_code=303)


# ------------------------------------------------------------------ deletion (VLT-7)


def _selected(ids: list[str] | None) -> list[str]:
    return list(dict.fromkeys(i.strip()[:64] for i in ids or [] if i.strip()))


def _delete_page(
    request: Request,
    services: Services,
    viewer: Viewer,
    patient: PatientView,
    documents: list[DocumentView],
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        services,
        "documents/delete.html",
        status_code=status_code,
        title="Supprimer un document" if len(documents) == 1 else "Supprimer des documents",
        viewer=viewer,
        patient=patient,
        current="documents",
        docs_url=_base(patient.id),
        documents=documents,
        error=error,
    )


def _confirm_delete(request: Request, services: Services, viewer: Viewer, patient_id: str, ids: list[str]) -> Response:
    try:
        asked = portal.deletion(services, viewer.actor, patient_id, ids)
    except DocumentNotFound:
        return _not_found(request, services)
    status_code = 400 if asked.error else 200
    return _delete_page(
        request, services, viewer, asked.patient, asked.documents, error=asked.error, status_code=status_code
    )


@router.get("/espace/{patient_id}/documents/supprimer", response_class=HTMLResponse)
def delete_confirm(
    request: Request, services: ServicesDep, patient_id: str, ids: Annotated[list[str] | None, Query()] = None
) -> Response:
    viewer = require_viewer(request, services)
    return _confirm_delete(request, services, viewer, patient_id, _selected(ids))


@router.post("/espace/{patient_id}/documents/supprimer", response_class=HTMLResponse)
def delete_submit(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    ids: Annotated[list[str] | None, Form()] = None,
    confirmer: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    viewer = require_viewer(request, services)
    selected = _selected(ids)
    if confirmer != "oui" or rules.deletion_batch_error(selected):
        return _confirm_delete(request, services, viewer, patient_id, selected)
    error, status_code = None, 303
    try:
        portal.delete(services, viewer.actor, patient_id, selected)
    except DocumentNotFound:
        return _not_found(request, services)
    except rules.DocumentError as exc:
        error, status_code = exc.message, 400
    except portal.DeletionRefused as exc:
        error, status_code = exc.message, 403
    if error:
        patient = portal.space_of(services, viewer.actor, patient_id)
        return _delete_page(request, services, viewer, patient, [], error=error, status_code=status_code)
    done = "supprime" if len(selected) > 1 else "supprime-un"
    return RedirectResponse(f"{_base(patient_id)}?message={done}", status_code=303)


# ------------------------------------------------------------------ one document (VLT-4, VLT-5)


@router.get("/espace/{patient_id}/documents/{document_id}", response_class=HTMLResponse)
def document_page(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    document_id: str,
    message: Annotated[str, Query(max_length=30)] = "",
) -> Response:
    viewer = require_viewer(request, services)
    try:
        shown = portal.document_page(services, viewer.actor, patient_id, document_id)
    except DocumentNotFound:
        return _not_found(request, services)
    document = shown.document
    return render(
        request,
        services,
        "documents/document.html",
        title=document.title,
        viewer=viewer,
        patient=shown.patient,
        current="documents",
        docs_url=_base(patient_id),
        document=document,
        category=rules.categories().get(document.category, document.category),
        folder=shown.folder,
        kind=shown.kind,
        text=shown.text,
        no_preview=view.NO_PREVIEW,
        message=MESSAGES.get(message, ""),
    )


@router.get("/espace/{patient_id}/documents/{document_id}/apercu")
def document_preview(request: Request, services: ServicesDep, patient_id: str, document_id: str) -> Response:
    """The document itself, inline, for the frame or image of the document page (same origin only)."""
    viewer = require_viewer(request, services)
    try:
        content = portal.document_content(services, viewer.actor, patient_id, document_id, preview=True)
    except DocumentNotFound:
        return _not_found(request, services)
    if not view.previewable(content):
        return render(
            request, services, "error.html", status_code=415, title="Aperçu indisponible", message=view.NO_PREVIEW
        )
    return view.inline(content)


@router.get("/espace/{patient_id}/documents/{document_id}/telecharger")
def document_download(request: Request, services: ServicesDep, patient_id: str, document_id: str) -> Response:
    viewer = require_viewer(request, services)
    try:
        content = portal.document_content(services, viewer.actor, patient_id, document_id, preview=False)
    except DocumentNotFound:
        return _not_found(request, services)
    return view.attachment(content)


@router.post("/espace/{patient_id}/documents/{document_id}/masquage")
def document_mask(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    document_id: str,
    masquer: Annotated[str, Form(max_length=5)] = "",
    retour: Annotated[str, Form(max_length=600)] = "",
) -> Response:
    viewer = require_viewer(request, services)
    masked = masquer == "oui"
    try:
        portal.mask(services, viewer.actor, patient_id, document_id, masked)
    except DocumentNotFound:
        return _not_found(request, services)
    message = "masque" if masked else "demasque"
    if retour == "document":
        return RedirectResponse(f"{_base(patient_id)}/{document_id}?message={message}", status_code=303)
    kept = {k: v for k, v in parse_qsl(retour) if k in ListQuery.__dataclass_fields__}
    return RedirectResponse(f"{_base(patient_id)}?{urlencode({**kept, 'message': message})}", status_code=303)
