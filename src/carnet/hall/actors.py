"""Who is acting: every request becomes an ``Actor`` before it reaches a service."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ActorKind(StrEnum):
    PATIENT = "patient"
    REPRESENTATIVE = "representative"
    CAREGIVER = "caregiver"
    PROFESSIONAL = "professional"
    ESTABLISHMENT = "establishment"
    APP = "app"
    OPERATOR = "operator"
    SYSTEM = "system"


@dataclass(frozen=True)
class Actor:
    """An authenticated party. ``patient_id`` is the actor's own space, if they have one."""

    kind: ActorKind
    id: str | None
    label: str
    patient_id: str | None = None
    professional_id: str | None = None
    rpps: str | None = None
    finess: str | None = None
    establishment_id: str | None = None
    profession_code: str | None = None

    @classmethod
    def system(cls, label: str = "Carnet (traitement automatique)") -> Actor:
        return cls(kind=ActorKind.SYSTEM, id=None, label=label)
