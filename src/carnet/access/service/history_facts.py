"""What the history tells of the access tables (TRC-3): emergency accesses and first consultations by
professionals, as plain facts — so that the history never reads the access tables itself.

Deciding who may see these facts is the caller's business (the history asks the policy first).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access.service.grants import professional_name
from carnet.access.tables import EmergencyAccess, FirstAccess
from carnet.people.model.professions import profession_label
from carnet.people.tables import Professional

EMERGENCY_KINDS = {"samu": "SAMU", "bris_de_glace": "bris de glace"}


def _kind(kind: str) -> str:
    return EMERGENCY_KINDS.get(kind, "bris de glace")


@dataclass(frozen=True)
class EmergencyFact:
    """An emergency access to a space (ACC-4): when, by whom, how (« SAMU » or « bris de glace ») and why."""

    at: datetime
    professional: str
    kind: str
    reason: str


@dataclass(frozen=True)
class FirstConsultation:
    """The first time a professional consulted a space (TRC-3)."""

    at: datetime
    professional: str
    profession: str  # « Médecin », « Infirmier »… as the directory names it


def emergencies_since(db: Session, patient_id: str, since: datetime, limit: int = 20) -> list[EmergencyFact]:
    """The emergency accesses to this space started since ``since``, the most recent first."""
    rows = db.execute(
        select(EmergencyAccess, Professional)
        .join(Professional, Professional.id == EmergencyAccess.professional_id)
        .where(EmergencyAccess.patient_id == patient_id, EmergencyAccess.started_at >= since)
        .order_by(EmergencyAccess.started_at.desc())
        .limit(limit)
    )
    return [EmergencyFact(row.started_at, professional_name(pro), _kind(row.kind), row.reason) for row, pro in rows]


def first_consultations_since(
    db: Session, patient_id: str, since: datetime, limit: int = 20
) -> list[FirstConsultation]:
    """The professionals who consulted this space for the first time since ``since``, the most recent first."""
    rows = db.execute(
        select(FirstAccess, Professional)
        .join(Professional, Professional.id == FirstAccess.professional_id)
        .where(FirstAccess.patient_id == patient_id, FirstAccess.at >= since)
        .order_by(FirstAccess.at.desc())
        .limit(limit)
    )
    return [
        FirstConsultation(consulted.at, professional_name(pro), profession_label(pro.profession_code))
        for consulted, pro in rows
    ]
