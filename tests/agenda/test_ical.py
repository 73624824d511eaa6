"""The agenda as iCalendar (RFC 5545, AGD-1), pure: each VEVENT read back by ``icalendar.Calendar.from_ical`` —
stable UID, DTSTAMP, DTSTART/DTEND in Europe/Paris with its VTIMEZONE, a whole day as a DATE, STATUS:CANCELLED, and
nothing but « Rendez-vous » / « Rappel » and the time without details."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

from icalendar import Calendar

from carnet.agenda.model import events as rules
from carnet.agenda.model import ical

WHEN = datetime(2031, 7, 14, 8, 30, tzinfo=UTC)  # 10:30 in Paris (summer time)


@dataclass(frozen=True)
class Event:
    id: str = "5f0c9d0e-0000-4000-8000-000000000001"
    kind: str = rules.APPOINTMENT
    starts_at: datetime = WHEN
    ends_at: datetime | None = WHEN + timedelta(minutes=45)
    all_day: bool = False
    status: str = rules.PLANNED
    title: str = "Cardiologue ; bilan, « annuel »"
    place: str = "Clinique du Golfe, Ajaccio"
    with_whom: str = "Dr Leca"
    comment: str = "Apporter l'ECG.\nÀ jeun."
    source: str = "professional"
    author_label: str = "Dr Jean-Baptiste FERRACCI"
    created_at: datetime = datetime(2031, 6, 1, 9, 0, tzinfo=UTC)
    updated_at: datetime = datetime(2031, 6, 2, 9, 0, tzinfo=UTC)
    version: int = 3


def read(body: bytes) -> Calendar:
    return Calendar.from_ical(body)


def test_an_appointment_with_every_detail() -> None:
    body = ical.calendar([Event()], details=True)
    assert body.startswith(b"BEGIN:VCALENDAR\r\n") and body.endswith(b"END:VCALENDAR\r\n")
    assert all(len(line) <= 75 for line in body.split(b"\r\n"))  # folded lines
    calendar = read(body)
    assert str(calendar["VERSION"]) == "2.0" and str(calendar["PRODID"]) == ical.PRODID
    [timezone] = calendar.walk("VTIMEZONE")
    assert str(timezone["TZID"]) == "Europe/Paris"
    [event] = calendar.walk("VEVENT")
    assert str(event["UID"]) == "5f0c9d0e-0000-4000-8000-000000000001@carnet"
    assert event.decoded("DTSTAMP") == datetime(2031, 6, 2, 9, 0, tzinfo=UTC)
    assert event["DTSTART"].params["TZID"] == "Europe/Paris" and event["DTEND"].params["TZID"] == "Europe/Paris"
    start = event.decoded("DTSTART")
    assert (start.hour, start.minute) == (10, 30) and start.astimezone(UTC) == WHEN
    assert event.decoded("DTEND").astimezone(UTC) == WHEN + timedelta(minutes=45)
    assert str(event["SUMMARY"]) == "Cardiologue ; bilan, « annuel »"  # escaped on the way, read back whole
    assert str(event["LOCATION"]) == "Clinique du Golfe, Ajaccio"
    description = str(event["DESCRIPTION"])
    assert "Avec : Dr Leca" in description and "Donné par : Dr Jean-Baptiste FERRACCI" in description
    assert "Apporter l'ECG.\nÀ jeun." in description
    assert str(event["STATUS"]) == "CONFIRMED" and str(event["CLASS"]) == "PRIVATE" and event["SEQUENCE"] == 2


def test_without_details_only_the_kind_and_the_time() -> None:
    body = ical.calendar([Event(), Event(id="r", kind=rules.REMINDER, title="Vaccin")], details=False)
    text = body.decode()
    for secret in ("Cardiologue", "Clinique", "Leca", "ECG", "FERRACCI", "Vaccin"):
        assert secret not in text
    events = read(body).walk("VEVENT")
    assert [str(e["SUMMARY"]) for e in events] == ["Rendez-vous", "Rappel"]
    assert all("LOCATION" not in e and "DESCRIPTION" not in e for e in events)
    assert events[0].decoded("DTSTART").astimezone(UTC) == WHEN  # the time is still there


def test_a_whole_day_is_a_date_and_a_cancelled_event_says_so() -> None:
    day = Event(kind=rules.REMINDER, all_day=True, ends_at=None, starts_at=datetime(2031, 3, 9, 23, 0, tzinfo=UTC))
    cancelled = Event(id="c", status=rules.CANCELLED, ends_at=None)
    calendar = read(ical.calendar([day, cancelled], details=True))
    whole, gone = calendar.walk("VEVENT")
    assert whole.decoded("DTSTART") == date(2031, 3, 10) and whole.decoded("DTEND") == date(2031, 3, 11)
    assert str(whole["TRANSP"]) == "TRANSPARENT"
    assert str(gone["STATUS"]) == "CANCELLED" and "DTEND" not in gone
    only_days = read(ical.calendar([day], details=True))
    assert only_days.walk("VTIMEZONE") == []  # no time of day: no time zone needed


def test_an_empty_agenda_is_a_valid_calendar_and_uids_are_stable() -> None:
    empty = read(ical.calendar([], details=False))
    assert empty.walk("VEVENT") == [] and str(empty["X-WR-CALNAME"]) == "Agenda Carnet"
    first = read(ical.calendar([Event()], details=True)).walk("VEVENT")[0]
    changed = read(ical.calendar([replace(Event(), title="Autre", version=4)], details=True)).walk("VEVENT")[0]
    assert first["UID"] == changed["UID"] and changed["SEQUENCE"] == 3
