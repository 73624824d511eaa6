"""Rules of the right to object (ENR-3): the 6-week period, its deadline, receipt numbers, French dates.

The period runs from the sending of the invitation. Its deadline is the first instant *after* the
last day (midnight, Paris time), so "jusqu'au 7 janvier 2027 inclus" printed on a letter is exactly
what the service enforces: an objection is accepted while ``now < deadline``, and the space is
created by the scheduled job once ``now >= deadline``.

A letter is not in the person's hands the day it is produced: it is printed, put in an envelope and
carried by the post. The period therefore starts ``DELIVERY_MARGIN`` after sending (a choice in the
person's favour; the specification only says "6 weeks from sending") — for an e-mail as well, so that
the e-mails and the letters of one campaign day announce the same dates (issue #15-13): both are
computed here, by :func:`objection_deadline` and :func:`creation_day`, and nowhere else.
"""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from carnet.enrolment.model.activation_codes import ALPHABET

PARIS: Final = ZoneInfo("Europe/Paris")
OBJECTION_PERIOD: Final = timedelta(weeks=6)
DELIVERY_MARGIN: Final = timedelta(days=7)  # printing and post; the same for every channel
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


def objection_deadline(sent_at: datetime) -> datetime:
    """The first instant (UTC) at which objecting is no longer possible for an invitation sent at ``sent_at``,
    by e-mail or by letter alike: it depends only on the sending day (Paris)."""
    following = paris_day(sent_at) + DELIVERY_MARGIN + OBJECTION_PERIOD + timedelta(days=1)
    return datetime(following.year, following.month, following.day, tzinfo=PARIS).astimezone(UTC)


def creation_day(deadline: datetime) -> date:
    """The day the space is created without objection (the day after the last one), as the e-mail and the
    letter announce it."""
    return paris_day(deadline)


def last_day(deadline: datetime) -> date:
    """The last day (Paris) on which an objection is accepted."""
    return (deadline.astimezone(PARIS) - timedelta(microseconds=1)).date()


def can_object(deadline: datetime | None, now: datetime) -> bool:
    """Before sending (no deadline yet) or during the period."""
    return deadline is None or now < deadline


def date_fr(day: date) -> str:
    """« 7 janvier 2027 » (« 1er » for the first of the month)."""
    number = "1er" if day.day == 1 else str(day.day)
    return f"{number} {MONTHS[day.month - 1]} {day.year}"


def paris_day(moment: datetime) -> date:
    return moment.astimezone(PARIS).date()


def new_receipt_number(now: datetime) -> str:
    """« OPP-2026-7KQ3XM2A »: the year, then 8 random symbols (no 0/O/1/I/L) — 17 characters."""
    return f"OPP-{paris_day(now).year}-" + "".join(secrets.choice(ALPHABET) for _ in range(8))
