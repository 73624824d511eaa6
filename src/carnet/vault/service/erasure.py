"""Erasing a space's vault when the space is deleted or its archive purged (ENR-6).

Called by enrolment's lifecycle service inside its own transaction (the decision, the key destruction
and the audit entry are its business): the rows go here, the blobs are deleted by the caller once the
transaction has committed.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from carnet.vault.tables import Document, DocumentTerm, Folder


@dataclass(frozen=True)
class Erased:
    """What was removed: the number of documents, and the blob keys to delete after the commit."""

    documents: int
    blob_keys: tuple[str, ...]


def erase_space(db: Session, patient_id: str) -> Erased:
    """Delete every document (with its search terms) and folder of this space, in ``db``'s transaction."""
    keys = db.execute(
        select(Document.blob_key, Document.preview_blob_key).where(Document.patient_id == patient_id)
    ).all()
    db.execute(delete(DocumentTerm).where(DocumentTerm.patient_id == patient_id))
    db.execute(delete(Document).where(Document.patient_id == patient_id))
    db.execute(delete(Folder).where(Folder.patient_id == patient_id))
    return Erased(len(keys), tuple(key for pair in keys for key in pair if key))
