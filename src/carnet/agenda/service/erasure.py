"""Erasing a space's agenda when the space is deleted or its archive purged (ENR-6).

Called by enrolment's lifecycle service inside its own transaction, next to the vault's and the profile's erasure;
the patient's data key is destroyed there too, so even a copy of these rows in a backup stays unreadable.
"""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.orm import Session

from carnet.agenda.tables import AgendaEvent, CalendarFeed, PreventionAnswers, Reminder


def erase_agenda(db: Session, patient_id: str) -> int:
    """Delete every appointment, reminder, subscription link, prevention answer and reminder owed of this space,
    in ``db``'s transaction; how many events."""
    deleted = db.execute(delete(AgendaEvent).where(AgendaEvent.patient_id == patient_id))
    db.execute(delete(CalendarFeed).where(CalendarFeed.patient_id == patient_id))
    db.execute(delete(PreventionAnswers).where(PreventionAnswers.patient_id == patient_id))
    db.execute(delete(Reminder).where(Reminder.patient_id == patient_id))
    return int(getattr(deleted, "rowcount", 0) or 0)
