"""Look-ups of people (patients, professionals) shared by the interfaces."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.people.tables import Patient


def patient_by_ins(db: Session, ins: str) -> Patient | None:
    return db.scalar(select(Patient).where(Patient.ins == ins))


def attached_children(db: Session, patient_id: str) -> list[Patient]:
    """Minors attached to this patient (shown from FAM-1 on)."""
    return list(db.scalars(select(Patient).where(Patient.attached_to_id == patient_id).order_by(Patient.birth_date)))
