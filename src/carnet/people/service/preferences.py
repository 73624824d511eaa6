"""The patient's settings (VLT-5 masking default, TRC-3 notifications), read and changed through the hall."""

from __future__ import annotations

from sqlalchemy.orm import Session

from carnet.hall import audit
from carnet.hall.actors import Actor
from carnet.hall.guard import guard
from carnet.hall.policy import Action, Resource
from carnet.people.tables import PatientSettings

FIELDS = (
    "mask_new_documents",
    "notify_documents",
    "notify_messages",
    "notify_exams",
    "notify_screening",
    "emergency_samu",
    "emergency_professionals",
    "emergency_masked",
)


def settings_of(db: Session, patient_id: str) -> PatientSettings:
    """Current settings (defaults when never changed); no access check: for services only."""
    row = db.get(PatientSettings, patient_id)
    if row is None:
        row = PatientSettings(
            patient_id=patient_id,
            mask_new_documents=False,
            notify_documents=True,
            notify_messages=True,
            notify_exams=True,
            notify_screening=True,
            emergency_samu=True,
            emergency_professionals=True,
            emergency_masked=False,
        )
    return row


def read(db: Session, actor: Actor, patient_id: str) -> PatientSettings:
    guard(db, actor, patient_id, Action.SETTINGS_READ, Resource("settings"))
    return settings_of(db, patient_id)


def update(db: Session, actor: Actor, patient_id: str, **changes: bool) -> PatientSettings:
    guard(db, actor, patient_id, Action.SETTINGS_WRITE, Resource("settings"))
    row = db.get(PatientSettings, patient_id)
    if row is None:
        row = settings_of(db, patient_id)
        db.add(row)
    changed = {}
    for name, value in changes.items():
        if name not in FIELDS:
            raise ValueError(name)
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed[name] = value
    if changed:
        audit.record(db, actor, "settings.write", patient_id=patient_id, resource_type="settings", details=changed)
    return row
