"""A space's home page and settings (VLT-5, TRC-3, ACC-4): what the patient sees first, read through the hall."""

from __future__ import annotations

from dataclasses import dataclass, fields

from carnet.bootstrap import Services
from carnet.hall import audit
from carnet.hall.actors import Actor
from carnet.hall.policy import Action, Resource
from carnet.hall.vocabulary import PatientStatus
from carnet.history import service as history
from carnet.messaging.service import conversations
from carnet.people.service import preferences
from carnet.people.service.lookup import PatientView, attached_children, enter_space, patient_view
from carnet.people.tables import Patient


@dataclass(frozen=True)
class Home:
    patient: PatientView
    children: list[PatientView]
    alerts: list[history.Alert]
    unread_messages: int | None = None  # MSG-1: None when the viewer may not read the messaging (a caregiver)


@dataclass(frozen=True)
class ClosedSpace:
    """ENR-6: the owner of a closed space is offered to reopen it (the policy decides the reopening)."""

    patient: PatientView


@dataclass(frozen=True)
class Settings:
    mask_new_documents: bool
    notify_documents: bool
    notify_messages: bool
    notify_exams: bool
    notify_screening: bool
    notify_appointments: bool
    reminder_days: int
    reminder_details: bool
    emergency_samu: bool
    emergency_professionals: bool
    emergency_masked: bool


def space_home(services: Services, actor: Actor, patient_id: str) -> Home | ClosedSpace:
    with services.db.unit_of_work() as db:
        if actor.patient_id == patient_id:
            own = db.get(Patient, patient_id)
            if own is not None and own.status == PatientStatus.CLOSED:
                return ClosedSpace(patient_view(own))
        patient = enter_space(db, actor, patient_id, Action.SPACE_VIEW, Resource("space"))
        audit.record(db, actor, str(Action.SPACE_VIEW), patient_id=patient_id, resource_type="space")
        children = [patient_view(child) for child in attached_children(db, patient_id)]
        alerts = history.alerts(db, actor, patient_id)
    return Home(patient, children, alerts, conversations.unread_count(services, actor, patient_id))


def read_settings(services: Services, actor: Actor, patient_id: str) -> tuple[PatientView, Settings]:
    with services.db.unit_of_work() as db:
        row = preferences.read(db, actor, patient_id)
        switches = {f.name: bool(getattr(row, f.name)) for f in fields(Settings) if f.name != "reminder_days"}
        values = Settings(reminder_days=int(row.reminder_days), **switches)
        patient = db.get(Patient, patient_id)
        assert patient is not None  # the policy denies unknown spaces
        return patient_view(patient), values


def change_settings(services: Services, actor: Actor, patient_id: str, **changes: bool) -> None:
    with services.db.unit_of_work() as db:
        preferences.update(db, actor, patient_id, **changes)


def change_reminders(services: Services, actor: Actor, patient_id: str, days: str, **choices: bool) -> None:
    """AGD-3: which reminders are e-mailed, how many days ahead (``SettingsError`` in French for a bad number of
    days, nothing changed), and whether they name the examination or the appointment."""
    value = preferences.reminder_days_of(days)
    with services.db.unit_of_work() as db:
        preferences.update(db, actor, patient_id, reminder_days=value, **choices)
