"""The agenda as iCalendar (RFC 5545, AGD-1), pure: one ``VCALENDAR`` of ``VEVENT``s built with the ``icalendar``
library.

Each event has a stable ``UID`` (``<id>@carnet``, so a calendar application updates it rather than adding it
again), ``DTSTAMP`` and ``LAST-MODIFIED`` (when it last changed), ``SEQUENCE`` (its version), ``DTSTART`` — and
``DTEND`` when it has an end — in French time (``TZID=Europe/Paris``, the ``VTIMEZONE`` included; a whole day
as a ``DATE``), ``STATUS`` (``CANCELLED`` once cancelled) and ``CLASS:PRIVATE``.

Without details (a subscription the person did not open to details) an event says only « Rendez-vous » or
« Rappel » and when: no title, place, professional or comment — a calendar on a shared or synchronised device
then shows nothing of the person's health. With details, everything.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Protocol

from icalendar import Calendar, Event

from carnet.agenda.model import events as rules
from carnet.hall.vocabulary import PARIS

PRODID = "-//Carnet//Agenda//FR"
CALENDAR_NAME = "Agenda Carnet"


class CalendarEvent(Protocol):
    """What a ``VEVENT`` is built from (the service's ``EventView`` has all of it)."""

    @property
    def id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def starts_at(self) -> datetime: ...
    @property
    def ends_at(self) -> datetime | None: ...
    @property
    def all_day(self) -> bool: ...
    @property
    def status(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def place(self) -> str: ...
    @property
    def with_whom(self) -> str: ...
    @property
    def comment(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def author_label(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def updated_at(self) -> datetime: ...
    @property
    def version(self) -> int: ...


def uid_of(event_id: str) -> str:
    return f"{event_id}@carnet"


def _description(event: CalendarEvent) -> str:
    lines = []
    if event.with_whom:
        lines.append(f"Avec : {event.with_whom}")
    if rules.locked_for_space(event.source) and event.author_label:
        lines.append(f"Donné par : {event.author_label}")
    if event.comment:
        lines.append(event.comment)
    return "\n".join(lines)


def vevent(event: CalendarEvent, details: bool) -> Event:
    """One event; without ``details``, only its kind and when."""
    component = Event()
    component.add("uid", uid_of(event.id))
    component.add("dtstamp", event.updated_at)
    component.add("created", event.created_at)
    component.add("last-modified", event.updated_at)
    component.add("sequence", max(event.version - 1, 0))
    if event.all_day:
        day = rules.day_of(event.starts_at)
        component.add("dtstart", day)
        component.add("dtend", day + timedelta(days=1))
    else:
        component.add("dtstart", event.starts_at.astimezone(PARIS))
        if event.ends_at is not None:
            component.add("dtend", event.ends_at.astimezone(PARIS))
    component.add("summary", event.title if details else rules.KINDS.get(event.kind, "Rendez-vous"))
    if details:
        if event.place:
            component.add("location", event.place)
        description = _description(event)
        if description:
            component.add("description", description)
    component.add("status", "CANCELLED" if event.status == rules.CANCELLED else "CONFIRMED")
    component.add("class", "PRIVATE")
    component.add("transp", "TRANSPARENT" if event.kind == rules.REMINDER else "OPAQUE")
    return component


def calendar(events: Sequence[CalendarEvent], details: bool) -> bytes:
    """The ``VCALENDAR`` of ``events`` (RFC 5545, CRLF lines folded at 75 octets), with the ``VTIMEZONE`` of
    Europe/Paris for the years the events cover."""
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", CALENDAR_NAME)
    cal.add("x-wr-timezone", "Europe/Paris")
    for event in events:
        cal.add_component(vevent(event, details))
    timed = [rules.day_of(e.starts_at) for e in events if not e.all_day]
    if timed:
        first, last = min(timed), max(timed)
        cal.add_missing_timezones(first_date=date(first.year - 1, 1, 1), last_date=date(last.year + 1, 12, 31))
    return bytes(cal.to_ical())
