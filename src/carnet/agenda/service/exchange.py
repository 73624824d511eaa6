"""The agenda over FHIR (AGD-1): create, read and search ``Appointment`` under the same policy, scopes and history
as the pages.

The FHIR interface (``carnet.agenda.fhir.appointments``) reads a resource with the pure mapping of
``carnet.agenda.model.fhir_map`` and calls one use case here; each opens its unit of work, finds the patient by INS
(an unknown patient and a space that is not open are the same 404), asks the policy, acts and records the history.
A professional's or an establishment's software puts an appointment in any open space and reads back only the ones
it gave: the person's own agenda is never shown to it (a search finds nothing else: total 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from carnet.agenda.model import events as rules
from carnet.agenda.model.fhir_map import Incoming
from carnet.agenda.service import events
from carnet.agenda.service.events import EventView, NewEvent
from carnet.agenda.service.portal import record_write
from carnet.agenda.tables import AgendaEvent
from carnet.bootstrap import Services
from carnet.hall import audit
from carnet.hall.actors import Actor
from carnet.hall.guard import guard
from carnet.hall.policy import Action, Resource
from carnet.people.tables import Patient
from carnet.vault.service.mhd import Subject, patient_for, subject_of


@dataclass(frozen=True)
class Stored:
    event: EventView
    subject: Subject


def _record_read(db: Any, actor: Actor, patient_id: str, event_id: str | None) -> None:
    audit.record(
        db,
        actor,
        str(Action.AGENDA_READ),
        patient_id=patient_id,
        resource_type="agenda_event" if event_id else "agenda",
        resource_id=event_id,
        details={"fhir": "Appointment"},
    )


def create(services: Services, actor: Actor, kept: Incoming) -> Stored:
    """Store one appointment for the patient it designates (``MhdError`` 404 when there is no open space)."""
    with services.db.unit_of_work() as db:
        patient = patient_for(db, kept.subject, "Appointment.participant.actor")
        guard(db, actor, patient.id, Action.AGENDA_WRITE, Resource("agenda_event"))
        new = NewEvent(
            kind=rules.APPOINTMENT,
            title=kept.title,
            starts_at=kept.starts_at,
            ends_at=kept.ends_at,
            status=kept.status,
            place=kept.place,
            with_whom=kept.with_whom,
            comment=kept.comment,
            fhir=kept.fhir,
        )
        row = events.store(services, db, actor, patient.id, new)
        db.flush()
        record_write(db, actor, patient.id, row.id, "add", row.kind)
        return Stored(events.stored_view(row, new), patient)


def read(services: Services, actor: Actor, event_id: str) -> Stored:
    """One appointment by id; unknown, a reminder, and not readable are the same ``EventNotFound``."""
    with services.db.unit_of_work() as db:
        row = events.load(db, actor, Action.AGENDA_READ, event_id)
        if row.kind != rules.APPOINTMENT:
            raise events.EventNotFound()
        _record_read(db, actor, row.patient_id, row.id)
        patient = db.get(Patient, row.patient_id)
        assert patient is not None
        return Stored(events.views(services, db, row.patient_id, [row])[0], subject_of(patient))


@dataclass(frozen=True)
class Filters:
    """A search: a period [from, to) of the start, the kept statuses (empty: any), a page."""

    date_from: datetime | None = None
    date_to: datetime | None = None
    statuses: frozenset[str] = frozenset()
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True)
class Found:
    subject: Subject
    events: list[EventView]
    total: int


def search(services: Services, actor: Actor, designation: dict[str, Any], filters: Filters) -> Found:
    """One patient's appointments the actor may read, soonest first."""
    with services.db.unit_of_work() as db:
        patient = patient_for(db, designation, "patient.identifier")
        _, query = events.readable(db, actor, patient.id)
        query = query.where(AgendaEvent.kind == rules.APPOINTMENT)
        if filters.date_from is not None:
            query = query.where(AgendaEvent.starts_at >= filters.date_from)
        if filters.date_to is not None:
            query = query.where(AgendaEvent.starts_at < filters.date_to)
        if filters.statuses:
            query = query.where(AgendaEvent.status.in_(sorted(filters.statuses)))
        total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
        ordered = query.order_by(AgendaEvent.starts_at, AgendaEvent.id)
        rows = db.scalars(ordered.limit(filters.limit).offset(filters.offset)).all() if filters.limit else []
        _record_read(db, actor, patient.id, None)
        return Found(patient, events.views(services, db, patient.id, rows), total)
