"""Erasing a space's messaging when the space is deleted or its archive purged (ENR-6).

Called by enrolment's lifecycle service inside its own transaction, next to the vault's, the profile's and the
agenda's erasure; the attachment blobs are deleted by the caller once the transaction has committed (the patient's
data key is destroyed there too, so a copy in a backup stays unreadable).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.messaging.service.conversations import erase_threads
from carnet.messaging.tables import Attachment, Thread


def erase_messages(db: Session, patient_id: str) -> list[str]:
    """Delete every conversation, message and attachment row of this space; the blob keys to delete."""
    keys = list(db.scalars(select(Attachment.blob_key).where(Attachment.patient_id == patient_id)))
    erase_threads(db, list(db.scalars(select(Thread.id).where(Thread.patient_id == patient_id))))
    return keys
