"""The documents in the archive of a space (ENR-7, VLT-1..8): one ``DocumentReference`` per document the asker may
read, with its original bytes beside the Bundle, and one ``List`` per folder.

Which documents: the **current** ones and the **superseded** ones (an older version a newer one replaced — its
``status`` says so, and the newer one ``relatesTo`` it), as the asker's document list would show them; not the
ones their author withdrew (``entered-in-error``). The list's own decision (``DOCUMENT_SEARCH`` and its scope) is
applied to the query, then every document is put to the policy as its page would (``DOCUMENT_READ``): documents
still hidden from the patient (INVISIBLE_PATIENT, until the consultation that announces them) are left out for
everyone, INVISIBLE_REPRESENTANTS_LEGAUX ones for a legal representative; documents the person masked from
professionals (MASQUE_PS) are theirs, and are in it, with their labels.

Each DocumentReference is the one the FHIR API serves (``carnet.vault.model.fhir_map``: as sent over MHD with
Carnet's elements, when it came that way), its subject the Bundle's Patient, its attachment pointing at
``documents/<id>-<title><extension>`` (relative to the archive's root) with the type, size and title. The bytes
are read only when the archive writes the file (``ExportedFile.read`` opens the sealed blob then): a space of
4,000 documents is never held in memory, and the rows are read 500 at a time. The attachment's ``hash`` (base64
SHA-1 of the original bytes, as FHIR R4 says) is written into the resource when its file is read — the archive
writes an item's files before its resource.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from carnet.bootstrap import Services
from carnet.export.model.exported import Exported, ExportedFile
from carnet.export.model.restoring import Fact, facts_extension
from carnet.hall.actors import Actor
from carnet.hall.guard import facts_for
from carnet.hall.policy import Action, Facts, Resource, decide
from carnet.hall.vocabulary import PARIS, DocumentStatus
from carnet.people.model.fhir_map import patient_element
from carnet.people.service.export import enter_export
from carnet.people.tables import Patient
from carnet.storage import keyring
from carnet.storage.types import utcnow
from carnet.vault.model import fhir_map
from carnet.vault.service import documents
from carnet.vault.service.documents import DocumentView
from carnet.vault.service.mhd import Subject, subject_of
from carnet.vault.tables import Document

SECTION = "Documents"
STATUSES = (DocumentStatus.CURRENT, DocumentStatus.SUPERSEDED)
BATCH = 500
FOLDER = "documents"


def _reader(
    services: Services, key: bytes, blob_key: str, document_id: str, attachment: dict[str, Any]
) -> Callable[[], bytes]:
    """The document's original bytes, opened when the archive asks for them; their hash then goes into the
    DocumentReference's attachment."""

    def read() -> bytes:
        body = keyring.open_sealed(key, services.blobs.get(blob_key), document_id.encode())
        attachment["hash"] = base64.b64encode(hashlib.sha1(body, usedforsecurity=False).digest()).decode("ascii")
        return body

    return read


def _day(moment: datetime) -> str:
    return f"{moment.astimezone(PARIS):%d/%m/%Y}"


def summary(view: DocumentView) -> str:
    """The document's line in the reading guide: « Compte rendu de biologie — déposé le 12/03/2026 par Dr X »."""
    kind = "" if view.title == view.type_display else f" ({view.type_display})"
    line = f"{view.title}{kind} — déposé le {_day(view.created_at)} par {view.author_label}"
    if view.status == DocumentStatus.SUPERSEDED:
        line += " ; remplacé depuis par une version plus récente"
    if view.masked:
        line += " ; masqué aux professionnels"
    if "INVISIBLE_REPRESENTANTS_LEGAUX" in view.confidentiality:
        line += " ; non visible des représentants légaux"
    return line


def _exported(
    services: Services,
    key: bytes,
    view: DocumentView,
    blob_key: str,
    subject: Subject,
    patient: dict[str, Any],
    sent: dict[str, Any] | None,
    facts: dict[str, Fact],
) -> Exported:
    path = f"{FOLDER}/{view.id}-{fhir_map.file_name(view.title, view.mime_type)}"
    resource = fhir_map.document_resource(view, subject, path, sent)
    resource["subject"] = dict(patient)
    resource["extension"] = [*resource.get("extension", []), facts_extension(facts)]
    attachment = resource["content"][0]["attachment"]
    file = ExportedFile(
        path,
        view.mime_type,
        _reader(services, key, blob_key, view.id, attachment),
        f"{view.title} du {_day(view.created_at)}",
    )
    return Exported(resource, (file,), summary(view), SECTION)


def archive_facts(row: Document) -> dict[str, Fact]:
    """What the vault kept of a document that its DocumentReference does not say as such — so that another Carnet
    restores the row as it was (``carnet.vault.service.restore``)."""
    return {
        "status": row.status,
        "category": row.category,
        "type_system": row.type_system,
        "type_code": row.type_code,
        "type_display": row.type_display,
        "class_system": row.class_system,
        "class_code": row.class_code,
        "format_system": row.format_system,
        "format_code": row.format_code,
        "title": row.title,
        "mime_type": row.mime_type,
        "confidentiality": " ".join(row.confidentiality or []),
        "mask_reason": row.mask_reason,
        "source": row.source,
        "author_kind": row.author_kind,
        "author_id": row.author_id,
        "author_label": row.author_label,
        "author_rpps": row.author_rpps,
        "author_finess": row.author_finess,
        "replaces_id": row.replaces_id,
        "master_identifier": row.master_identifier,
        "submission_set_id": row.submission_set_id,
        "service_date": row.service_date,
        "service_end": row.service_end,
        "document_date": row.document_date,
        "creation_date": row.creation_date,
        "created_at": row.created_at,
        "sent": row.metadata_sealed is not None,
    }


def _batch(db: Session, where: list[Any], after: tuple[datetime, str] | None) -> list[Document]:
    query = select(Document).where(*where)
    if after is not None:
        at, last = after
        query = query.where(or_(Document.created_at > at, and_(Document.created_at == at, Document.id > last)))
    return list(db.scalars(query.order_by(Document.created_at, Document.id).limit(BATCH)))


def _readable(actor: Actor, patient_id: str, facts: Facts, row: Document, now: datetime) -> bool:
    """The document's own decision, as its page asks it; never one still hidden from the patient."""
    if documents.is_hidden_from_patient(row, now):
        return False
    return decide(actor, patient_id, Action.DOCUMENT_READ, documents.resource_of(row, now), facts).allowed


def _documents(
    services: Services, actor: Actor, subject: Subject, key: bytes, where: list[Any], facts: Facts
) -> Iterator[tuple[Exported, str | None]]:
    """The readable documents, 500 rows at a time (each batch in its own unit of work), with their folder."""
    patient = patient_element(subject.id, subject.ins, subject.ins_oid)
    after: tuple[datetime, str] | None = None
    while True:
        with services.db.unit_of_work() as db:
            rows = _batch(db, where, after)
            now = utcnow()
            readable = [row for row in rows if _readable(actor, subject.id, facts, row, now)]
            sent = documents.sent_metadata(services, db, readable)
            items = [
                (
                    _exported(
                        services,
                        key,
                        documents.view_of(row),
                        row.blob_key,
                        subject,
                        patient,
                        sent.get(row.id),
                        archive_facts(row),
                    ),
                    row.folder_id,
                )
                for row in readable
            ]
        yield from items
        if len(rows) < BATCH:
            return
        after = (rows[-1].created_at, rows[-1].id)


def export_resources(services: Services, actor: Actor, patient_id: str) -> Iterator[Exported]:
    """Every current or superseded document ``actor`` may read, oldest first, then the space's folders."""
    with services.db.unit_of_work() as db:
        decision = enter_export(db, actor, patient_id, Action.DOCUMENT_SEARCH, Resource("documents"))
        where = [
            Document.patient_id == patient_id,
            Document.status.in_(STATUSES),
            *documents._scope(db, actor, patient_id, decision),
        ]
        facts = facts_for(db, actor, patient_id)
        row = db.get(Patient, patient_id)
        assert row is not None  # the policy refuses unknown spaces
        subject = subject_of(row)
        folders = documents.folders_of(db, patient_id)
        try:
            key: bytes | None = keyring.data_key(db, services.keyring, patient_id, create=False)
        except keyring.DataKeyMissing:  # nothing was ever sealed for this space: no document
            key = None
    filed: dict[str, list[str]] = {}
    if key is not None:
        for item, folder_id in _documents(services, actor, subject, key, where, facts):
            if folder_id:
                filed.setdefault(folder_id, []).append(item.resource["id"])
            yield item
    patient = patient_element(subject.id, subject.ins, subject.ins_oid)
    for folder in folders:
        ids = filed.get(folder.id, [])
        line = f"Dossier « {folder.name} » — {len(ids)} document{'s' if len(ids) > 1 else ''}"
        yield Exported(fhir_map.folder_list(folder.id, folder.name, ids, patient), (), line, SECTION)
