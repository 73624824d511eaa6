"""The agenda's use cases for the pages (AGD-1): the agenda as a list, a month or a week; one appointment or
reminder; adding, changing, cancelling and deleting one; and the professional's page of the appointments they gave.

Each use case opens its unit of work, asks the policy (through ``events``), acts and records the history in the
same transaction, and returns frozen views. What was typed that cannot be kept comes back as ``EventError`` (the
French reason and the field); nothing is written. An appointment a professional gave keeps its words: the people of
the space may cancel it or take it off their agenda (``EventLocked`` if they try to rewrite it).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from carnet.agenda.model import events as rules
from carnet.agenda.service import calendar, events
from carnet.agenda.service.events import EventView, NewEvent
from carnet.agenda.tables import AgendaEvent
from carnet.bootstrap import Services
from carnet.errors import CarnetError
from carnet.hall import audit
from carnet.hall.actors import Actor, ActorKind
from carnet.hall.guard import guard
from carnet.hall.policy import Action, Resource
from carnet.hall.vocabulary import PARIS
from carnet.people.service.lookup import PatientView, patient_view
from carnet.people.tables import Patient
from carnet.storage.types import utcnow

PAST_PER_PAGE = 20
UPCOMING_SHOWN = 100
LOCKED = (
    "Un rendez-vous donné par un professionnel ne se modifie pas : vous pouvez l'annuler ou le retirer de votre agenda."
)
DONE = {  # what the history says of each change (the entry's details keep the operation too)
    ("add", rules.APPOINTMENT): "a ajouté un rendez-vous à l'agenda",
    ("add", rules.REMINDER): "a ajouté un rappel à l'agenda",
    ("change", rules.APPOINTMENT): "a modifié un rendez-vous de l'agenda",
    ("change", rules.REMINDER): "a modifié un rappel de l'agenda",
    ("cancel", rules.APPOINTMENT): "a annulé un rendez-vous de l'agenda",
    ("cancel", rules.REMINDER): "a annulé un rappel de l'agenda",
    ("delete", rules.APPOINTMENT): "a supprimé un rendez-vous de l'agenda",
    ("delete", rules.REMINDER): "a supprimé un rappel de l'agenda",
}


class EventLocked(CarnetError):
    """The people of the space do not rewrite an appointment a professional gave."""

    def __init__(self) -> None:
        super().__init__(LOCKED)

    def __reduce__(self) -> tuple[type[EventLocked], tuple[()]]:
        return (type(self), ())


def _patient(db: Session, patient_id: str) -> PatientView:
    patient = db.get(Patient, patient_id)
    assert patient is not None  # the policy refuses unknown spaces first
    return patient_view(patient)


def record_write(db: Session, actor: Actor, patient_id: str, event_id: str, op: str, kind: str) -> None:
    """The history of a change: the operation and its words (nothing of what the event says)."""
    audit.record(
        db,
        actor,
        str(Action.AGENDA_WRITE),
        patient_id=patient_id,
        resource_type="agenda_event",
        resource_id=event_id,
        details={"op": op, "fait": DONE[(op, kind)]},
    )


def _record_read(db: Session, actor: Actor, patient_id: str, event_id: str | None = None, **details: Any) -> None:
    audit.record(
        db,
        actor,
        str(Action.AGENDA_READ),
        patient_id=patient_id,
        resource_type="agenda_event" if event_id else "agenda",
        resource_id=event_id,
        details={k: v for k, v in details.items() if v is not None},
    )


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), PARIS)


def _people_of_space(actor: Actor) -> bool:
    return actor.kind == ActorKind.PATIENT


# ------------------------------------------------------------------ the agenda (list, month, week)


@dataclass(frozen=True)
class AgendaPage:
    patient: PatientView
    view: str
    day: date
    today: date
    events: list[EventView] = field(default_factory=list)  # the month's or the week's, in order
    upcoming: list[EventView] = field(default_factory=list)  # the list: today and after, soonest first
    more_upcoming: int = 0
    past: list[EventView] = field(default_factory=list)  # the list: before today, latest first, one page
    past_total: int = 0
    page: int = 1
    feeds: list[calendar.FeedView] = field(default_factory=list)
    whole: bool = True  # False: a professional, who sees only what they gave
    people_of_space: bool = True

    @property
    def pages(self) -> int:
        return max(1, -(-self.past_total // PAST_PER_PAGE))

    def on(self, day: date) -> list[EventView]:
        return [e for e in self.events if e.day == day]


def _count(db: Session, query: Any) -> int:
    return int(db.scalar(select(func.count()).select_from(query.subquery())) or 0)


def _listing(services: Services, db: Session, patient_id: str, query: Any, today: date, page: int) -> dict[str, Any]:
    start = _midnight(today)
    coming = query.where(AgendaEvent.starts_at >= start)
    rows = db.scalars(coming.order_by(AgendaEvent.starts_at, AgendaEvent.id).limit(UPCOMING_SHOWN)).all()
    gone = query.where(AgendaEvent.starts_at < start)
    past_total = _count(db, gone)
    page = min(max(page, 1), max(1, -(-past_total // PAST_PER_PAGE)))
    past_rows = db.scalars(
        gone.order_by(AgendaEvent.starts_at.desc(), AgendaEvent.id)
        .limit(PAST_PER_PAGE)
        .offset((page - 1) * PAST_PER_PAGE)
    ).all()
    opened = events.views(services, db, patient_id, [*rows, *past_rows])
    return {
        "upcoming": opened[: len(rows)],
        "more_upcoming": max(0, _count(db, coming) - len(rows)) if len(rows) == UPCOMING_SHOWN else 0,
        "past": opened[len(rows) :],
        "past_total": past_total,
        "page": page,
    }


def agenda(services: Services, actor: Actor, patient_id: str, view: str, day: date, page: int = 1) -> AgendaPage:
    """The agenda as the actor may see it (the people of the space: all of it; a professional: what they gave),
    as a list, a month or a week; one line of the history a day."""
    view = rules.view_of(view)
    today = utcnow().astimezone(PARIS).date()
    with services.db.unit_of_work() as db:
        decision, query = events.readable(db, actor, patient_id)
        whole = events.whole_agenda(decision)
        found: dict[str, Any] = {}
        if view == "liste":
            found = _listing(services, db, patient_id, query, today, page)
        else:
            first, after = rules.window(view, day)
            rows = db.scalars(
                query.where(AgendaEvent.starts_at >= _midnight(first), AgendaEvent.starts_at < _midnight(after))
                .order_by(AgendaEvent.all_day.desc(), AgendaEvent.starts_at, AgendaEvent.id)
                .limit(1000)
            ).all()
            found["events"] = events.views(services, db, patient_id, rows)
        feeds = calendar.active_feeds(db, patient_id) if whole else []
        if not audit.seen_today(db, actor, str(Action.AGENDA_READ), patient_id):  # a list seen again: once a day
            _record_read(db, actor, patient_id)
        return AgendaPage(
            patient=_patient(db, patient_id),
            view=view,
            day=day,
            today=today,
            feeds=feeds,
            whole=whole,
            people_of_space=_people_of_space(actor),
            **found,
        )


# ------------------------------------------------------------------ one event


@dataclass(frozen=True)
class EventPage:
    patient: PatientView
    event: EventView
    people_of_space: bool


def event_page(services: Services, actor: Actor, patient_id: str, event_id: str) -> EventPage:
    """One appointment or reminder (``EventNotFound`` alike for unknown and not readable)."""
    with services.db.unit_of_work() as db:
        row = events.load(db, actor, Action.AGENDA_READ, event_id, patient_id)
        view = events.views(services, db, patient_id, [row])[0]
        _record_read(db, actor, patient_id, row.id)
        return EventPage(_patient(db, patient_id), view, _people_of_space(actor))


def new_form(services: Services, actor: Actor, patient_id: str) -> PatientView:
    """Whether the actor may add to this agenda (the form's page): the person whose agenda it is."""
    with services.db.unit_of_work() as db:
        guard(db, actor, patient_id, Action.AGENDA_WRITE, Resource("agenda_event"))
        return _patient(db, patient_id)


def add(services: Services, actor: Actor, patient_id: str, typed: rules.TypedEvent) -> EventView:
    """AGD-1: an appointment or a reminder added by the people of the space, or given by a professional."""
    with services.db.unit_of_work() as db:
        guard(db, actor, patient_id, Action.AGENDA_WRITE, Resource("agenda_event"))
        new = NewEvent.of(rules.clean(typed))
        row = events.store(services, db, actor, patient_id, new)
        db.flush()
        record_write(db, actor, patient_id, row.id, "add", row.kind)
        return events.stored_view(row, new)


def _writable(db: Session, actor: Actor, patient_id: str, event_id: str) -> AgendaEvent:
    return events.load(db, actor, Action.AGENDA_WRITE, event_id, patient_id)


def edit_form(services: Services, actor: Actor, patient_id: str, event_id: str) -> EventPage:
    """The event to change, when the actor may change its words."""
    with services.db.unit_of_work() as db:
        row = _writable(db, actor, patient_id, event_id)
        if _people_of_space(actor) and rules.locked_for_space(row.source):
            raise EventLocked()
        return EventPage(_patient(db, patient_id), events.views(services, db, patient_id, [row])[0], True)


def update(services: Services, actor: Actor, patient_id: str, event_id: str, typed: rules.TypedEvent) -> EventView:
    """Change an event's words and time (its kind, status and who entered it stay)."""
    with services.db.unit_of_work() as db:
        row = _writable(db, actor, patient_id, event_id)
        if _people_of_space(actor) and rules.locked_for_space(row.source):
            raise EventLocked()
        new = NewEvent.of(rules.clean(replace(typed, kind=row.kind)))
        events.replace(services, db, row, new, None)
        record_write(db, actor, patient_id, row.id, "change", row.kind)
        return events.stored_view(row, new)


def removal(services: Services, actor: Actor, patient_id: str, event_id: str) -> EventPage:
    """The event to cancel or delete, when the actor may (the confirmation page)."""
    with services.db.unit_of_work() as db:
        row = _writable(db, actor, patient_id, event_id)
        return EventPage(_patient(db, patient_id), events.views(services, db, patient_id, [row])[0], True)


def cancel(services: Services, actor: Actor, patient_id: str, event_id: str) -> EventView:
    """The event stays in the agenda, marked cancelled (calendars show it cancelled)."""
    with services.db.unit_of_work() as db:
        row = _writable(db, actor, patient_id, event_id)
        if row.status != rules.CANCELLED:
            row.status = rules.CANCELLED
            events.touch(row)
            record_write(db, actor, patient_id, row.id, "cancel", row.kind)
        return events.views(services, db, patient_id, [row])[0]


def delete(services: Services, actor: Actor, patient_id: str, event_id: str) -> str:
    """The event leaves the agenda for good; its kind (for the message)."""
    with services.db.unit_of_work() as db:
        row = _writable(db, actor, patient_id, event_id)
        kind = row.kind
        record_write(db, actor, patient_id, row.id, "delete", kind)
        db.delete(row)
        return kind
