"""CAT-1: the life of a referenced app.

An editor applies: the app is ``PRESERIE`` (pre-series: under review, tested by the operator, invisible to
patients). The operator publishes it (``EN_LIGNE``: in the catalogue, connectable, for one year, renewable),
takes it offline for a while (``HORS_LIGNE``), suspends it (``SUSPENDUE``: a security problem — every token
stops at the next request) or dereferences it (``DEREFERENCEE``: final). Only an app ``EN_LIGNE`` whose
referencing has not expired may connect or act; tokens are checked against the live status at every request.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

REFERENCING = timedelta(days=365)


class AppStatus(StrEnum):
    PRESERIE = "PRESERIE"
    EN_LIGNE = "EN_LIGNE"
    HORS_LIGNE = "HORS_LIGNE"
    SUSPENDUE = "SUSPENDUE"
    DEREFERENCEE = "DEREFERENCEE"


STATUS_LABELS = {
    AppStatus.PRESERIE: "En présérie (en cours d'examen)",
    AppStatus.EN_LIGNE: "En ligne",
    AppStatus.HORS_LIGNE: "Hors ligne",
    AppStatus.SUSPENDUE: "Suspendue",
    AppStatus.DEREFERENCEE: "Déréférencée",
}

# decision word (CLI, operator form) → the status it leads to
DECISIONS = {
    "publish": AppStatus.EN_LIGNE,
    "offline": AppStatus.HORS_LIGNE,
    "suspend": AppStatus.SUSPENDUE,
    "dereference": AppStatus.DEREFERENCEE,
}
DECISION_LABELS = {
    "publish": "Mettre en ligne",
    "offline": "Mettre hors ligne",
    "suspend": "Suspendre",
    "dereference": "Déréférencer",
    "renew": "Renouveler le référencement (un an)",
}

TRANSITIONS: dict[AppStatus, set[AppStatus]] = {
    AppStatus.PRESERIE: {AppStatus.EN_LIGNE, AppStatus.DEREFERENCEE},
    AppStatus.EN_LIGNE: {AppStatus.HORS_LIGNE, AppStatus.SUSPENDUE, AppStatus.DEREFERENCEE},
    AppStatus.HORS_LIGNE: {AppStatus.EN_LIGNE, AppStatus.SUSPENDUE, AppStatus.DEREFERENCEE},
    AppStatus.SUSPENDUE: {AppStatus.EN_LIGNE, AppStatus.DEREFERENCEE},
    AppStatus.DEREFERENCEE: set(),
}


class TransitionError(ValueError):
    """A decision the app's current status does not allow (the message is French)."""


def next_status(current: str, decision: str) -> AppStatus:
    """The status ``decision`` leads to from ``current``; ``TransitionError`` (French) otherwise."""
    target = DECISIONS.get(decision)
    if target is None:
        raise TransitionError(f"Décision inconnue : « {decision[:40]} ».")
    if target not in TRANSITIONS[AppStatus(current)]:
        raise TransitionError(
            f"Impossible de passer de « {STATUS_LABELS[AppStatus(current)]} » à « {STATUS_LABELS[target]} »."
        )
    return target


def referenced_until(now: datetime, current: datetime | None) -> datetime:
    """Publishing or renewing: one year from now, or from the current end if it is still ahead."""
    start = current if current is not None and current > now else now
    return start + REFERENCING


def is_live(status: str, until: datetime | None, now: datetime) -> bool:
    """Whether the app may connect and act: published and its referencing not expired."""
    return status == AppStatus.EN_LIGNE and until is not None and until > now
