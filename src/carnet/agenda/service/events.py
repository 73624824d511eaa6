"""The agenda's store (AGD-1): sealing, reading back and scoping the appointments and reminders of one space.

Used by the use cases of ``portal`` (the pages), ``calendar`` (iCalendar) and ``exchange`` (FHIR); each of those
opens the unit of work, asks the policy (``hall.guard``) and records the history. Here: what every one of them
shares — an event's words (title, place, with whom, comment, the FHIR resource as sent) sealed with the patient's
key (associated data ``agenda:<id>``, so rows cannot be swapped), the frozen view pages, calendars and FHIR read,
the ``Resource`` the policy judges, and the conditions a reading decision puts on a query.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from carnet.agenda.model import events as rules
from carnet.agenda.tables import AgendaEvent
from carnet.bootstrap import Services
from carnet.errors import CarnetError
from carnet.hall.actors import Actor
from carnet.hall.guard import AccessDenied, facts_for, guard
from carnet.hall.policy import Action, Decision, Resource, Scope, author_keys, decide
from carnet.profile.service.entries import author_fields
from carnet.storage import keyring
from carnet.storage.types import new_id, utcnow

NOT_FOUND = "Rendez-vous ou rappel introuvable."
SOURCE_WORDS = {
    "patient": "Saisi dans l'espace",
    "professional": "Donné par un professionnel de santé",
    "establishment": "Donné par un établissement",
    "app": "Transmis par une application",
    "service": "Saisi par le service",
}


class EventNotFound(CarnetError):
    """An event that does not exist and one the actor may not read get the same answer."""

    def __init__(self) -> None:
        super().__init__(NOT_FOUND)

    def __reduce__(self) -> tuple[type[EventNotFound], tuple[()]]:
        return (type(self), ())


@dataclass(frozen=True)
class EventView:
    """One appointment or reminder as pages, calendars and FHIR show it."""

    id: str
    patient_id: str
    kind: str
    starts_at: datetime
    ends_at: datetime | None
    all_day: bool
    status: str
    source: str
    author_id: str | None
    author_label: str
    created_at: datetime
    updated_at: datetime
    version: int
    title: str = ""
    place: str = ""
    with_whom: str = ""
    comment: str = ""
    fhir: dict[str, Any] | None = None

    @property
    def cancelled(self) -> bool:
        return self.status == rules.CANCELLED

    @property
    def from_space(self) -> bool:
        """Entered by the person or someone acting in their space (they may change its words)."""
        return not rules.locked_for_space(self.source)

    @property
    def kind_label(self) -> str:
        return rules.KINDS.get(self.kind, self.kind)

    @property
    def source_words(self) -> str:
        return SOURCE_WORDS.get(self.source, self.source)

    @property
    def day(self) -> date:
        return rules.day_of(self.starts_at)

    @property
    def hours(self) -> str:
        return rules.hours_text(self.starts_at, self.ends_at, self.all_day)


@dataclass(frozen=True)
class NewEvent:
    """What a use case asks to store: when, the words, and the FHIR resource as sent."""

    kind: str
    title: str
    starts_at: datetime
    ends_at: datetime | None = None
    all_day: bool = False
    status: str = rules.PLANNED
    place: str = ""
    with_whom: str = ""
    comment: str = ""
    fhir: dict[str, Any] | None = None

    @classmethod
    def of(cls, clean: rules.CleanEvent) -> NewEvent:
        return cls(
            kind=clean.kind,
            title=clean.title,
            starts_at=clean.starts_at,
            ends_at=clean.ends_at,
            all_day=clean.all_day,
            place=clean.place,
            with_whom=clean.with_whom,
            comment=clean.comment,
        )

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {"title": self.title}
        for name in ("place", "with_whom", "comment", "fhir"):
            if getattr(self, name):
                data[name] = getattr(self, name)
        return data


def resource_of(event: AgendaEvent) -> Resource:
    return Resource("agenda_event", event.id, author_id=event.author_id, source=event.source)


def _aad(event_id: str) -> bytes:
    return b"agenda:" + event_id.encode()


def store(services: Services, db: Session, actor: Actor, patient_id: str, new: NewEvent) -> AgendaEvent:
    """Seal and add one event (the caller asked the policy and records the history)."""
    data_key = keyring.data_key(db, services.keyring, patient_id)
    event_id = new_id()
    now = utcnow()
    event = AgendaEvent(
        id=event_id,
        patient_id=patient_id,
        kind=new.kind,
        starts_at=new.starts_at,
        ends_at=new.ends_at,
        all_day=new.all_day,
        status=new.status,
        sealed=keyring.seal(data_key, orjson.dumps(new.payload()), _aad(event_id)),
        created_at=now,
        updated_at=now,
        version=1,
        **author_fields(actor),
    )
    db.add(event)
    return event


def replace(services: Services, db: Session, event: AgendaEvent, new: NewEvent, fhir: dict[str, Any] | None) -> None:
    """Change an event in place (a new version; who entered it and its status stay; ``fhir`` as sent, kept)."""
    data_key = keyring.data_key(db, services.keyring, event.patient_id)
    payload = NewEvent(**{**new.__dict__, "fhir": fhir}).payload()
    event.kind = new.kind
    event.starts_at = new.starts_at
    event.ends_at = new.ends_at
    event.all_day = new.all_day
    event.sealed = keyring.seal(data_key, orjson.dumps(payload), _aad(event.id))
    touch(event)


def touch(event: AgendaEvent) -> None:
    event.updated_at = utcnow()
    event.version += 1


def views(services: Services, db: Session, patient_id: str, events: Sequence[AgendaEvent]) -> list[EventView]:
    """Open the events (one key look-up for all of them)."""
    if not events:
        return []
    data_key = keyring.data_key(db, services.keyring, patient_id, create=False)
    return [view_of(data_key, event) for event in events]


def view_of(data_key: bytes, event: AgendaEvent) -> EventView:
    return _view(event, orjson.loads(keyring.open_sealed(data_key, event.sealed, _aad(event.id))))


def stored_view(event: AgendaEvent, new: NewEvent) -> EventView:
    """The view of an event just stored from ``new`` (nothing to open again)."""
    return _view(event, new.payload())


def _view(event: AgendaEvent, data: dict[str, Any]) -> EventView:
    return EventView(
        id=event.id,
        patient_id=event.patient_id,
        kind=event.kind,
        starts_at=event.starts_at,
        ends_at=event.ends_at,
        all_day=event.all_day,
        status=event.status,
        source=event.source,
        author_id=event.author_id,
        author_label=event.author_label,
        created_at=event.created_at,
        updated_at=event.updated_at,
        version=event.version,
        title=str(data.get("title") or ""),
        place=str(data.get("place") or ""),
        with_whom=str(data.get("with_whom") or ""),
        comment=str(data.get("comment") or ""),
        fhir=data.get("fhir"),
    )


def scope_conditions(actor: Actor, decision: Decision) -> list[Any]:
    """The conditions the policy's ``AGENDA_READ`` decision puts on a query of the space's events."""
    if decision.scope == Scope.AUTHORED:
        return [AgendaEvent.author_id.in_(author_keys(actor) or {"-"})]
    if whole_agenda(decision):
        return []
    raise AccessDenied(decision)


def readable(db: Session, actor: Actor, patient_id: str) -> tuple[Decision, Select[AgendaEvent]]:
    """The policy's decision on reading this agenda, and the query of what it lets the actor see."""
    decision = guard(db, actor, patient_id, Action.AGENDA_READ, Resource("agenda"))
    query = select(AgendaEvent).where(AgendaEvent.patient_id == patient_id, *scope_conditions(actor, decision))
    return decision, query


def whole_agenda(decision: Decision) -> bool:
    """Whether the decision lets the actor see the whole agenda (the person — whose own space needs no scope —,
    their representatives and caregivers, the service's automatic work), not only what they gave."""
    return decision.allowed and decision.scope in {None, Scope.PATIENT, Scope.REPRESENTATIVE, Scope.ALL}


def well_formed(event_id: str) -> bool:
    return len(event_id) <= 36 and event_id.isascii() and event_id.replace("-", "").isalnum()


def load(db: Session, actor: Actor, action: Action, event_id: str, space: str | None = None) -> AgendaEvent:
    """One event, with the policy's yes for ``action`` on it; unknown and forbidden are the same
    ``EventNotFound`` for anyone but those who may read it (who learn why)."""
    event = db.get(AgendaEvent, event_id) if well_formed(event_id) else None
    if event is None or (space is not None and event.patient_id != space):
        raise EventNotFound()
    try:
        guard(db, actor, event.patient_id, action, resource_of(event))
    except AccessDenied:
        if action != Action.AGENDA_READ and _may_read(db, actor, event):
            raise  # readable, but this act is refused: 403 with the reason
        raise EventNotFound() from None
    return event


def _may_read(db: Session, actor: Actor, event: AgendaEvent) -> bool:
    facts = facts_for(db, actor, event.patient_id)
    return decide(actor, event.patient_id, Action.AGENDA_READ, resource_of(event), facts).allowed
