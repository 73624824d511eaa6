"""Look-ups of people (patients, professionals) shared by the capabilities, and the plain views the
interfaces render instead of rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.bootstrap import Services
from carnet.hall.actors import Actor
from carnet.hall.guard import guard
from carnet.hall.policy import Action, Resource
from carnet.people.model.identifiers import display_name
from carnet.people.tables import Patient


@dataclass(frozen=True)
class PatientView:
    """A person as pages show them: identity traits and the state of their space (no health data)."""

    id: str
    first_names: str
    birth_name: str
    used_name: str | None
    birth_date: date
    status: str
    closed_at: datetime | None

    @property
    def display_name(self) -> str:
        return display_name(self.first_names, self.birth_name, self.used_name)


def patient_view(patient: Patient) -> PatientView:
    return PatientView(
        id=patient.id,
        first_names=patient.first_names,
        birth_name=patient.birth_name,
        used_name=patient.used_name,
        birth_date=patient.birth_date,
        status=patient.status,
        closed_at=patient.closed_at,
    )


def patient_by_ins(db: Session, ins: str) -> Patient | None:
    return db.scalar(select(Patient).where(Patient.ins == ins))


def attached_children(db: Session, patient_id: str) -> list[Patient]:
    """Minors attached to this patient (shown from FAM-1 on)."""
    return list(db.scalars(select(Patient).where(Patient.attached_to_id == patient_id).order_by(Patient.birth_date)))


def enter_space(db: Session, actor: Actor, patient_id: str, action: Action, resource: Resource) -> PatientView:
    """The policy's yes (or ``AccessDenied``) for this act in this space, and whose space it is."""
    guard(db, actor, patient_id, action, resource)
    patient = db.get(Patient, patient_id)
    assert patient is not None  # the policy denies unknown spaces
    return patient_view(patient)


def open_space(services: Services, actor: Actor, patient_id: str, action: Action, resource: Resource) -> PatientView:
    """``enter_space`` in its own unit of work, for pages that only need the space's header."""
    with services.db.unit_of_work() as db:
        return enter_space(db, actor, patient_id, action, resource)
