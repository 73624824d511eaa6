"""Appointments and reminders (AGD-1), pure: what a typed appointment or reminder must be to be kept — title,
date, start time (or the whole day), optional end time, place, with whom, comment — with the French message of
the first field that is wrong, and the calendar arithmetic of the agenda's views (a month, a week, the list).

Every moment a person types or reads is French time (Europe/Paris); what is kept is UTC. An all-day event starts
at midnight (French time) and has no end. What the people of the space typed they change; an appointment a
professional gave keeps its words (``locked_for_space``): the person may cancel it or take it off their agenda.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final

from carnet.errors import CarnetError
from carnet.hall.vocabulary import PARIS

APPOINTMENT: Final = "rendez_vous"
REMINDER: Final = "rappel"
KINDS: Final[dict[str, str]] = {APPOINTMENT: "Rendez-vous", REMINDER: "Rappel"}
PLANNED: Final = "prevu"
CANCELLED: Final = "annule"
STATUSES: Final[dict[str, str]] = {PLANNED: "Prévu", CANCELLED: "Annulé"}

TITLE_MAX: Final = 200
PLACE_MAX: Final = 200
WITH_MAX: Final = 200
COMMENT_MAX: Final = 2000
EARLIEST: Final = date(1900, 1, 1)
LATEST: Final = date(2100, 12, 31)

LABELS: Final[dict[str, str]] = {  # the form's fields, as the messages name them
    "title": "Titre",
    "day": "Date",
    "start": "Heure de début",
    "end": "Heure de fin",
    "place": "Lieu",
    "with_whom": "Avec qui",
    "comment": "Commentaire",
}


class EventError(CarnetError):
    """What was typed cannot be kept: the French reason and the field it is about (``""``: the whole form)."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field

    def __reduce__(self) -> tuple[type[EventError], tuple[str, str]]:
        return (type(self), (self.message, self.field))


@dataclass(frozen=True)
class TypedEvent:
    """An appointment or a reminder as typed in a form (every field a string, the box « Toute la journée »)."""

    kind: str = APPOINTMENT
    title: str = ""
    day: str = ""
    start: str = ""
    end: str = ""
    all_day: bool = False
    place: str = ""
    with_whom: str = ""
    comment: str = ""


@dataclass(frozen=True)
class CleanEvent:
    """What is kept: the kind, when (UTC, aware), and the words."""

    kind: str
    title: str
    starts_at: datetime
    ends_at: datetime | None
    all_day: bool
    place: str = ""
    with_whom: str = ""
    comment: str = ""


def plain_text(text: str, limit: int, field: str, multiline: bool = False) -> str:
    """The text without control characters (new lines kept in a comment), trimmed, at most ``limit`` characters."""
    kept = []
    for char in text.replace("\r\n", "\n"):
        if char == "\n" and multiline:
            kept.append(char)
        elif char in "\t\n\r":
            kept.append(" ")
        elif unicodedata.category(char) not in {"Cc", "Cf", "Cs", "Co"}:
            kept.append(char)
    cleaned = "".join(kept).strip()
    if not multiline:
        cleaned = " ".join(cleaned.split())
    if len(cleaned) > limit:
        raise EventError(f"« {LABELS[field]} » : {limit} caractères au plus.", field)
    return cleaned


def _day(text: str) -> date:
    if not text.strip():
        raise EventError("« Date » : ce champ est obligatoire.", "day")
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise EventError("« Date » : la date n'est pas valide (jour/mois/année).", "day") from None
    if not EARLIEST <= day <= LATEST:
        raise EventError("« Date » : choisissez une date entre 1900 et 2100.", "day")
    return day


def _time(text: str, field: str) -> time | None:
    if not text.strip():
        return None
    try:
        typed = time.fromisoformat(text.strip())
    except ValueError:
        message = f"« {LABELS[field]} » : l'heure n'est pas valide (heures:minutes, par exemple 14:30)."
        raise EventError(message, field) from None
    return typed.replace(tzinfo=None, second=0, microsecond=0)


def at_paris(day: date, moment: time) -> datetime:
    """A French wall-clock time as a UTC instant (a time skipped by the spring change moves forward)."""
    return datetime.combine(day, moment, PARIS).astimezone(UTC)


def clean(typed: TypedEvent) -> CleanEvent:
    """``typed`` as kept, or ``EventError`` naming the first field that is wrong."""
    if typed.kind not in KINDS:
        raise EventError("Choisissez un rendez-vous ou un rappel.")
    title = plain_text(typed.title, TITLE_MAX, "title")
    if not title:
        raise EventError("« Titre » : ce champ est obligatoire.", "title")
    day = _day(typed.day)
    start, end = _time(typed.start, "start"), _time(typed.end, "end")
    if typed.all_day:
        starts_at, ends_at = at_paris(day, time()), None
    else:
        if start is None:
            raise EventError("« Heure de début » : indiquez l'heure, ou cochez « Toute la journée ».", "start")
        starts_at = at_paris(day, start)
        ends_at = at_paris(day, end) if end is not None else None
        if ends_at is not None and ends_at <= starts_at:
            raise EventError("« Heure de fin » : elle doit être après l'heure de début.", "end")
    appointment = typed.kind == APPOINTMENT
    return CleanEvent(
        kind=typed.kind,
        title=title,
        starts_at=starts_at,
        ends_at=ends_at,
        all_day=typed.all_day,
        place=plain_text(typed.place, PLACE_MAX, "place") if appointment else "",
        with_whom=plain_text(typed.with_whom, WITH_MAX, "with_whom") if appointment else "",
        comment=plain_text(typed.comment, COMMENT_MAX, "comment", multiline=True),
    )


def typed_of(
    kind: str,
    title: str,
    starts_at: datetime,
    ends_at: datetime | None,
    all_day: bool,
    place: str = "",
    with_whom: str = "",
    comment: str = "",
) -> TypedEvent:
    """What the form shows again for a kept event (its times in French time)."""
    start = starts_at.astimezone(PARIS)
    return TypedEvent(
        kind=kind,
        title=title,
        day=start.date().isoformat(),
        start="" if all_day else start.strftime("%H:%M"),
        end=ends_at.astimezone(PARIS).strftime("%H:%M") if ends_at is not None and not all_day else "",
        all_day=all_day,
        place=place,
        with_whom=with_whom,
        comment=comment,
    )


def locked_for_space(source: str) -> bool:
    """An appointment given by a professional, an establishment or an app keeps its words: the people of the
    space cancel it or take it off their agenda, they do not rewrite it."""
    return source != "patient"


# ------------------------------------------------------------------ the calendar's views

VIEWS: Final[dict[str, str]] = {"liste": "Liste", "mois": "Mois", "semaine": "Semaine"}
MONTHS: Final = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)
WEEKDAYS: Final = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
SHORT_WEEKDAYS: Final = ("lun.", "mar.", "mer.", "jeu.", "ven.", "sam.", "dim.")


def day_of(moment: datetime) -> date:
    """The French calendar day of an instant."""
    return moment.astimezone(PARIS).date()


def parse_day(text: str, today: date) -> date:
    """The ``date`` of an agenda address (AAAA-MM-JJ); today when absent or not a date of the agenda."""
    try:
        day = date.fromisoformat(text.strip()) if text.strip() else today
    except ValueError:
        return today
    return day if EARLIEST <= day <= LATEST else today


def view_of(text: str) -> str:
    return text if text in VIEWS else "liste"


def _first_of_month(day: date) -> date:
    return day.replace(day=1)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def window(view: str, day: date) -> tuple[date, date]:
    """The days a month or week view shows: ``[first, after)`` (the month's whole weeks for a month)."""
    if view == "semaine":
        first = monday_of(day)
        return first, first + timedelta(days=7)
    first = monday_of(_first_of_month(day))
    last = _add_months(day, 1) - timedelta(days=1)
    return first, last + timedelta(days=7 - last.weekday())


def month_weeks(day: date) -> list[list[date]]:
    """The weeks (Monday first) that a month's grid shows."""
    first, after = window("mois", day)
    days = [first + timedelta(days=n) for n in range((after - first).days)]
    return [days[n : n + 7] for n in range(0, len(days), 7)]


def week_days(day: date) -> list[date]:
    first = monday_of(day)
    return [first + timedelta(days=n) for n in range(7)]


def step(view: str, day: date, forward: bool) -> date:
    """The day the previous or next month (or week) opens on."""
    if view == "semaine":
        return monday_of(day) + timedelta(days=7 if forward else -7)
    return _add_months(day, 1 if forward else -1)


def long_day(day: date) -> str:
    """« lundi 7 décembre 2026 »."""
    return f"{WEEKDAYS[day.weekday()]} {day.day}{'er' if day.day == 1 else ''} {MONTHS[day.month - 1]} {day.year}"


def month_title(day: date) -> str:
    """« décembre 2026 »."""
    return f"{MONTHS[day.month - 1]} {day.year}"


def week_title(day: date) -> str:
    """« Semaine du 30 novembre au 6 décembre 2026 »."""
    first = monday_of(day)
    last = first + timedelta(days=6)
    start = f"{first.day}{'er' if first.day == 1 else ''} {MONTHS[first.month - 1]}"
    if first.year != last.year:
        start += f" {first.year}"
    return f"Semaine du {start} au {last.day}{'er' if last.day == 1 else ''} {MONTHS[last.month - 1]} {last.year}"


def hours_text(starts_at: datetime, ends_at: datetime | None, all_day: bool) -> str:
    """« 14:30 – 15:00 », « 14:30 », or « Toute la journée » (French time)."""
    if all_day:
        return "Toute la journée"
    start, end = starts_at.astimezone(PARIS), ends_at.astimezone(PARIS) if ends_at else None
    if end is None:
        return start.strftime("%H:%M")
    if end.date() != start.date():  # over several days (an appointment sent over FHIR)
        return f"{start.strftime('%H:%M')} – {end.strftime('%d/%m/%Y %H:%M')}"
    return f"{start.strftime('%H:%M')} – {end.strftime('%H:%M')}"
