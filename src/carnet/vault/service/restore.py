"""The documents of an imported archive (ENR-7, item 5): each DocumentReference back as the document it was, its
original bytes re-sealed with this instance's key for the space, byte-exact; the folders (``List``) back with the
documents filed in them.

The row is what ``carnet.vault.service.export.archive_facts`` wrote (author and how it came, dates, labels,
masking, the document it replaced); a document deposited over MHD keeps its DocumentReference as sent (without
the archive's own additions) and its coded search index, so that MHD gives it back and finds it as before. The
words are indexed again from the bytes. Documents come in the order they were deposited, so that a newer version
finds the one it replaced (``restoring.ids``). Nothing is announced to the person (no « nouveau document »
notification): these are their documents, moved.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.orm import Session

from carnet.bootstrap import Services
from carnet.export.model.restoring import Fact, RestoreError, Restoring, facts_of, resources_of, without_facts
from carnet.hall.vocabulary import DocumentStatus
from carnet.storage import keyring
from carnet.storage.types import new_id, utcnow
from carnet.vault.model import documents as rules
from carnet.vault.model import mhd_metadata
from carnet.vault.service import content, documents
from carnet.vault.tables import Document, Folder

RESTORED_STATUSES = {DocumentStatus.CURRENT.value, DocumentStatus.SUPERSEDED.value}


def _text(facts: dict[str, Fact], name: str, limit: int, required: bool = False) -> str | None:
    value = facts.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or len(value) > limit or (required and not value.strip()):
        raise RestoreError(f"Document de l'archive : « {name} » manquant ou invalide.")
    return value


def _moment(facts: dict[str, Fact], name: str) -> datetime | None:
    value = facts.get(name)
    if value is not None and not isinstance(value, datetime):
        raise RestoreError(f"Document de l'archive : date « {name} » invalide.")
    return value


def _file_of(resource: dict[str, Any]) -> tuple[str, str]:
    contents = resource.get("content") or [{}]
    attachment = contents[0].get("attachment") if isinstance(contents[0], dict) else None
    url = attachment.get("url") if isinstance(attachment, dict) else None
    if not isinstance(url, str) or not url.startswith("documents/"):
        raise RestoreError(f"DocumentReference/{resource.get('id')} : fichier du document introuvable dans l'archive.")
    return url, str(attachment.get("contentType") or "")  # type: ignore[union-attr]


def _sent(resource: dict[str, Any], body: bytes) -> mhd_metadata.Kept:
    """The DocumentReference as it was sent over MHD, without what the export added to it."""
    sent = without_facts(resource)
    others = [e for e in sent.get("extension", []) if e.get("url") != mhd_metadata.DEPOSIT_TIME]
    sent.pop("extension", None)
    if others:
        sent["extension"] = others
    try:
        return mhd_metadata.keep(sent, body, "DocumentReference")
    except Exception as exc:  # the archive said it came over MHD: it must read as MHD
        raise RestoreError(f"DocumentReference/{resource.get('id')} : métadonnées MHD illisibles.") from exc


def _row(restoring: Restoring, resource: dict[str, Any], body: bytes, facts: dict[str, Fact]) -> Document:
    status = _text(facts, "status", 20, True)
    if status not in RESTORED_STATUSES:
        raise RestoreError(f"DocumentReference/{resource.get('id')} : statut « {status} » non restaurable.")
    labels = rules.check_confidentiality(str(facts.get("confidentiality") or "").split())
    replaced = _text(facts, "replaces_id", 36)
    created = _moment(facts, "created_at") or utcnow()
    document_id = new_id()
    return Document(
        id=document_id,
        patient_id=restoring.patient_id,
        master_identifier=_text(facts, "master_identifier", 128),
        status=status,
        category=_text(facts, "category", 20, True),
        type_system=_text(facts, "type_system", 60, True),
        type_code=_text(facts, "type_code", 20, True),
        type_display=_text(facts, "type_display", 200, True),
        class_system=_text(facts, "class_system", 200),
        class_code=_text(facts, "class_code", 40),
        format_system=_text(facts, "format_system", 200),
        format_code=_text(facts, "format_code", 100),
        title=_text(facts, "title", 300, True),
        mime_type=_text(facts, "mime_type", 100, True),
        size=len(body),
        body_mac=hmac.new(restoring.key, body, hashlib.sha256).hexdigest(),
        blob_key=documents.blob_key_of(document_id),
        confidentiality=labels,
        masked="MASQUE_PS" in labels,
        mask_reason=_text(facts, "mask_reason", 300),
        source=_text(facts, "source", 20, True),
        author_kind=_text(facts, "author_kind", 20, True),
        author_id=_text(facts, "author_id", 36),
        author_label=_text(facts, "author_label", 200, True),
        author_rpps=_text(facts, "author_rpps", 11),
        author_finess=_text(facts, "author_finess", 9),
        replaces_id=restoring.ids.get(f"DocumentReference/{replaced}") if replaced else None,
        submission_set_id=_text(facts, "submission_set_id", 128),
        service_date=_moment(facts, "service_date"),
        service_end=_moment(facts, "service_end"),
        document_date=_moment(facts, "document_date") or created,
        creation_date=_moment(facts, "creation_date"),
        created_at=created,
        version=1,
        notified_at=utcnow(),
    )


def restore(db: Session, services: Services, restoring: Restoring, bundle: dict[str, Any]) -> int:
    """The archive's documents and folders into ``restoring``'s space; how many documents."""
    count = 0
    for resource in resources_of(bundle, "DocumentReference"):
        facts = facts_of(resource)
        if not facts:
            raise RestoreError(
                f"DocumentReference/{resource.get('id')} : ce n'est pas un document d'une archive Carnet."
            )
        path, _ = _file_of(resource)
        body = restoring.read_file(path)
        document = _row(restoring, resource, body, facts)
        kept = _sent(resource, body) if facts.get("sent") else None
        if kept is not None:
            document.metadata_sealed = keyring.seal(
                restoring.key, orjson.dumps(kept.sent), documents.metadata_aad(document.id)
            )
        preview = content.unwrap_cda(body) if document.mime_type in {"text/xml", "application/xml"} else None
        if preview is not None and preview.mime_type not in rules.PREVIEWABLE:
            preview = None
        if preview is not None:
            document.preview_blob_key = documents.blob_key_of(document.id, "p")
            document.preview_mime_type = preview.mime_type
        documents.write_bodies(services, restoring.key, document.id, body, preview, restoring.written)
        db.add(document)
        db.flush()
        text = preview or content.Unwrapped(body, document.mime_type)
        documents.index_terms(
            db, restoring.key, document, content.extract_text(text.body, text.mime_type), kept.index if kept else ()
        )
        restoring.ids[f"DocumentReference/{resource.get('id')}"] = document.id
        count += 1
    for folder in resources_of(bundle, "List"):
        name = str(folder.get("title") or "").strip()[:100] or "Dossier"
        row = Folder(id=new_id(), patient_id=restoring.patient_id, name=name)
        db.add(row)
        db.flush()
        for entry in folder.get("entry") or []:
            reference = (entry.get("item") or {}).get("reference") if isinstance(entry, dict) else None
            document_id = restoring.ids.get(str(reference))
            if document_id:
                filed = db.get(Document, document_id)
                if filed is not None:
                    filed.folder_id = row.id
    return count
