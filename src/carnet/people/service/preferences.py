"""The patient's settings (VLT-5 masking default, TRC-3 notifications, AGD-3 reminders), read and changed through
the hall."""

from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from carnet.errors import CarnetError
from carnet.hall import audit
from carnet.hall.actors import Actor
from carnet.hall.guard import guard
from carnet.hall.policy import Action, Resource
from carnet.people.tables import PatientSettings
from carnet.storage.base import columns

REMINDER_DAYS_DEFAULT = 7
REMINDER_DAYS = range(1, 31)  # AGD-3: reminders 1 to 30 days ahead
FIELDS = (
    "mask_new_documents",
    "notify_documents",
    "notify_messages",
    "notify_exams",
    "notify_screening",
    "notify_appointments",
    "reminder_days",
    "reminder_details",
    "emergency_samu",
    "emergency_professionals",
    "emergency_masked",
)


class SettingsError(CarnetError):
    """A setting typed that cannot be kept (the French reason)."""


def reminder_days_of(text: str) -> int:
    """How many days ahead reminders are sent, as typed (1 to 30)."""
    value = text.strip()
    if not value.isdigit() or int(value) not in REMINDER_DAYS:
        raise SettingsError(
            f"Le délai des rappels est un nombre de jours entre {REMINDER_DAYS.start} et {REMINDER_DAYS.stop - 1}."
        )
    return int(value)


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
            notify_appointments=True,
            reminder_days=REMINDER_DAYS_DEFAULT,
            reminder_details=False,
            emergency_samu=True,
            emergency_professionals=True,
            emergency_masked=False,
        )
    return row


_SETTINGS = columns(PatientSettings)
_MASKS = select(_SETTINGS.mask_new_documents).where(_SETTINGS.patient_id == bindparam("patient"))  # every deposit


def masks_new_documents(db: Session, patient_id: str) -> bool:
    """The person's « masquer par défaut » (False when the settings were never changed); for services only."""
    return bool(db.scalar(_MASKS, {"patient": patient_id}))


def read(db: Session, actor: Actor, patient_id: str) -> PatientSettings:
    guard(db, actor, patient_id, Action.SETTINGS_READ, Resource("settings"))
    return settings_of(db, patient_id)


def update(db: Session, actor: Actor, patient_id: str, **changes: bool | int) -> PatientSettings:
    guard(db, actor, patient_id, Action.SETTINGS_WRITE, Resource("settings"))
    row = db.get(PatientSettings, patient_id)
    if row is None:
        row = settings_of(db, patient_id)
        db.add(row)
    changed = {}
    for name, value in changes.items():
        if name not in FIELDS:
            raise ValueError(name)
        if name == "reminder_days" and (isinstance(value, bool) or value not in REMINDER_DAYS):
            raise ValueError(name)
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed[name] = value
    if changed:
        audit.record(db, actor, "settings.write", patient_id=patient_id, resource_type="settings", details=changed)
    return row
