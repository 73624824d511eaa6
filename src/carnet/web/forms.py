"""Parsing helpers shared by page modules (dates typed in forms), with French messages."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from carnet.hall.vocabulary import PARIS


def parse_day(value: str, label: str, errors: list[str]) -> date | None:
    """A date from an ``<input type=date>``; a French message in ``errors`` when it is not one."""
    if not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        errors.append(f"La date « {label} » n'est pas valide : choisissez une date (jour, mois, année).")
        return None


def paris_midnight(day: date) -> datetime:
    """The instant a day starts in France, in UTC (how moments are stored)."""
    return datetime.combine(day, time(0), tzinfo=PARIS).astimezone(UTC)
