"""The words every capability shares: France's time zone and the states of a space, a document, an
invitation. Pure: no storage, no framework."""

from __future__ import annotations

from enum import StrEnum
from typing import Final
from zoneinfo import ZoneInfo

PARIS: Final = ZoneInfo("Europe/Paris")  # every date a person reads is French time


class PatientStatus(StrEnum):
    """registered (imported) → active (space open) | opposed; active → closed (archived) → active; deleted."""

    REGISTERED = "registered"
    ACTIVE = "active"
    OPPOSED = "opposed"
    CLOSED = "closed"
    DELETED = "deleted"


class DocumentStatus(StrEnum):
    """A document of the vault: current, replaced by a newer version, or withdrawn by its author (VLT-2)."""

    CURRENT = "current"
    SUPERSEDED = "superseded"
    ENTERED_IN_ERROR = "entered-in-error"


class InvitationStatus(StrEnum):
    """An invitation (ENR-2): pending (queued) → sending (claimed) → sent (e-mail); letters: to_print | bounced
    → printing (batch claimed) → letter (PDF produced)."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    BOUNCED = "bounced"
    TO_PRINT = "to_print"
    PRINTING = "printing"
    LETTER = "letter"
