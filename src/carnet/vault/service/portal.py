"""The document pages of a space in the portal (VLT-1, 3, 4, 5, 7), one use case per page.

Each use case enters the space through the policy (``SPACE_VIEW``, like every page of the space), then the
vault decides document by document and writes the history, in the same unit of work; the pages get plain
views back. A document is always looked for in the space the address names: one of another space, one that
does not exist and one the viewer may not read are the same ``DocumentNotFound``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import PurePosixPath

from carnet.bootstrap import Services
from carnet.errors import CarnetError
from carnet.hall import audit
from carnet.hall.actors import Actor
from carnet.hall.guard import AccessDenied, guard
from carnet.hall.policy import Action, Resource
from carnet.people.service import preferences
from carnet.people.service.lookup import PatientView, enter_space
from carnet.vault.model import documents as rules
from carnet.vault.service import documents
from carnet.vault.service.documents import (
    Counts,
    DocumentContent,
    DocumentView,
    FolderView,
    Listing,
    SearchFilters,
)
from carnet.vault.tables import Folder

SPACE = Resource("space")


class DeletionRefused(CarnetError):
    """A deletion the policy refuses for a reason the person is told (VLT-7: a professional's document)."""


def space_of(services: Services, actor: Actor, patient_id: str) -> PatientView:
    """Whose space it is, for a page that has nothing else to show (``AccessDenied`` if the viewer may not enter)."""
    with services.db.unit_of_work() as db:
        return enter_space(db, actor, patient_id, Action.SPACE_VIEW, SPACE)


@dataclass(frozen=True)
class DocumentList:
    """The list page: what the viewer may see of the space, counted per category and folder."""

    patient: PatientView
    listing: Listing
    counts: Counts
    folders: list[FolderView]
    folder_id: str  # the folder shown ("" when the one asked for is not one of this space's)
    mask_default: bool


def list_documents(services: Services, actor: Actor, patient_id: str, filters: SearchFilters) -> DocumentList:
    """VLT-1, VLT-4: one page of the documents the policy lets the viewer see, with the counts and folders."""
    with services.db.unit_of_work() as db:
        patient = enter_space(db, actor, patient_id, Action.SPACE_VIEW, SPACE)
        counts = documents.counts(db, actor, patient_id)
        folders = documents.folders_of(db, patient_id)
        if filters.folder_id not in {f.id for f in folders}:
            filters = replace(filters, folder_id=None)
        listing = documents.search_page(services, db, actor, patient_id, filters)
        mask_default = preferences.read(db, actor, patient_id).mask_new_documents
    return DocumentList(patient, listing, counts, folders, filters.folder_id or "", mask_default)


def create_folder(services: Services, actor: Actor, patient_id: str, name: str) -> str:
    """VLT-1: a new folder (its id); ``DocumentError`` (French) when the name will not do."""
    name = " ".join(name.split())
    with services.db.unit_of_work() as db:
        enter_space(db, actor, patient_id, Action.SPACE_VIEW, SPACE)
        guard(db, actor, patient_id, Action.FOLDER_WRITE, Resource("folder"))
        error = rules.folder_name_error(name, [f.name for f in documents.folders_of(db, patient_id)])
        if error:
            raise rules.DocumentError(error)
        folder = Folder(patient_id=patient_id, name=name)
        db.add(folder)
        db.flush()
        audit.record(db, actor, "folder.create", patient_id=patient_id, resource_type="folder", resource_id=folder.id)
        return folder.id


@dataclass(frozen=True)
class UploadForm:
    patient: PatientView
    folders: list[FolderView]


def upload_form(services: Services, actor: Actor, patient_id: str) -> UploadForm:
    with services.db.unit_of_work() as db:
        patient = enter_space(db, actor, patient_id, Action.SPACE_VIEW, SPACE)
        return UploadForm(patient, documents.folders_of(db, patient_id))


@dataclass(frozen=True)
class Upload:
    """A file sent from the portal, as the form gave it."""

    filename: str
    mime_type: str  # what the file says it is (the vault checks the bytes)
    body: bytes
    type_code: str
    title: str = ""
    folder_id: str | None = None


def upload(services: Services, actor: Actor, patient_id: str, sent: Upload) -> None:
    """VLT-3: the patient (or who acts for them) adds a document; ``DocumentError`` (French) when refused."""
    with services.db.unit_of_work() as db:
        enter_space(db, actor, patient_id, Action.SPACE_VIEW, SPACE)
    new = documents.NewDocument(
        patient_id=patient_id,
        type_system=rules.PATIENT_TYPE_SYSTEM,
        type_code=sent.type_code,
        title=sent.title.strip() or PurePosixPath(sent.filename).stem,
        mime_type=sent.mime_type,
        body=sent.body,
        folder_id=sent.folder_id or None,
        filename=sent.filename,
    )
    documents.deposit_many(services, actor, [new])


def set_mask_default(services: Services, actor: Actor, patient_id: str, on: bool) -> None:
    """VLT-5: new documents masked from professionals by default (or no longer)."""
    with services.db.unit_of_work() as db:
        enter_space(db, actor, patient_id, Action.SPACE_VIEW, SPACE)
        preferences.update(db, actor, patient_id, mask_new_documents=on)


@dataclass(frozen=True)
class Deletion:
    """The confirmation page of a deletion: the documents, or why there are none to show."""

    patient: PatientView
    documents: list[DocumentView]
    error: str | None = None


def deletion(services: Services, actor: Actor, patient_id: str, document_ids: list[str]) -> Deletion:
    """VLT-7: what the viewer is about to delete (each document read through the policy, in this space)."""
    with services.db.unit_of_work() as db:
        patient = enter_space(db, actor, patient_id, Action.SPACE_VIEW, SPACE)
        error = rules.deletion_batch_error(document_ids)
        if error:
            return Deletion(patient, [], error)
        shown = [
            documents.view_of(
                documents.read(
                    services, db, actor, document_id, action="document.metadata", space=patient_id, with_body=False
                )[0]
            )
            for document_id in document_ids
        ]
        return Deletion(patient, shown)


def delete(services: Services, actor: Actor, patient_id: str, document_ids: list[str]) -> None:
    """VLT-7: the patient deletes their own uploads, all or none. ``DocumentError`` for a bad batch,
    ``DeletionRefused`` for a professional's document, ``DocumentNotFound`` for one not in this space."""
    with services.db.unit_of_work() as db:
        enter_space(db, actor, patient_id, Action.SPACE_VIEW, SPACE)
    try:
        documents.delete_documents(services, actor, document_ids, space=patient_id)
    except documents.DocumentNotFound:
        raise
    except AccessDenied as exc:
        if exc.decision.rule != "professional_document_kept":
            raise
        raise DeletionRefused(exc.decision.reason) from None


@dataclass(frozen=True)
class DocumentPage:
    patient: PatientView
    document: DocumentView
    folder: FolderView | None
    kind: str | None  # how it is previewed (``rules.preview_kind``)
    text: str | None  # a text document, shown on the page itself


def document_page(services: Services, actor: Actor, patient_id: str, document_id: str) -> DocumentPage:
    """VLT-4: one document's page; a text document is read (and that reading recorded) to be shown there."""
    with services.db.unit_of_work() as db:
        patient = enter_space(db, actor, patient_id, Action.SPACE_VIEW, SPACE)
        row, _, mime = documents.read(
            services,
            db,
            actor,
            document_id,
            preview=True,
            action="document.metadata",
            space=patient_id,
            with_body=False,
        )
        document = documents.view_of(row)
        kind = rules.preview_kind(mime)
        text = None
        if kind == "text":  # shown on this page itself: this is the consultation
            _, body, _ = documents.read(services, db, actor, document_id, preview=True, space=patient_id)
            text = body.decode("utf-8", errors="replace")
        return DocumentPage(patient, document, documents.folder_of(db, document), kind, text)


def document_content(
    services: Services, actor: Actor, patient_id: str, document_id: str, *, preview: bool
) -> DocumentContent:
    """VLT-4: the document itself, for its preview (``document.read``) or its download (``document.download``)."""
    with services.db.unit_of_work() as db:
        enter_space(db, actor, patient_id, Action.SPACE_VIEW, SPACE)
        action = "document.read" if preview else "document.download"
        return documents.read_content(
            services, db, actor, document_id, preview=preview, action=action, space=patient_id
        )


def mask(services: Services, actor: Actor, patient_id: str, document_id: str, masked: bool) -> None:
    """VLT-5: the document masked from professionals (or shown to them again)."""
    with services.db.unit_of_work() as db:
        enter_space(db, actor, patient_id, Action.SPACE_VIEW, SPACE)
        documents.set_masked(db, actor, document_id, masked, space=patient_id)
