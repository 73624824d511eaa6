"""Erasing a space's profile when the space is deleted or its archive purged (ENR-6).

Called by enrolment's lifecycle service inside its own transaction, next to the vault's erasure; the
patient's data key is destroyed there too, so even a copy of these rows in a backup stays unreadable.
"""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.orm import Session

from carnet.profile.tables import MeasureTarget, ProfileEntry


def erase_profile(db: Session, patient_id: str) -> int:
    """Delete every item, measure and target of this space, in ``db``'s transaction; how many entries."""
    deleted = db.execute(delete(ProfileEntry).where(ProfileEntry.patient_id == patient_id))
    db.execute(delete(MeasureTarget).where(MeasureTarget.patient_id == patient_id))
    return int(getattr(deleted, "rowcount", 0) or 0)
