"""The hall every request walks through: policy decision + audit, in one transaction (ACC-5).

A service calls ``guard`` before touching a patient's data. Allowed: the caller goes on and
records what it did with ``audit.record`` in the same transaction. Denied: the refusal itself is
recorded (kept even when the caller's transaction rolls back) and ``AccessDenied`` carries the
reason to the interface.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from carnet.domain.actors import Actor
from carnet.domain.policy import Action, Decision, Facts, Resource, decide
from carnet.services import audit
from carnet.storage.tables import Patient
from carnet.storage.types import utcnow


class AccessDenied(Exception):
    def __init__(self, decision: Decision) -> None:
        super().__init__(decision.reason)
        self.decision = decision


def facts_for(db: Session, actor: Actor, patient_id: str) -> Facts:
    """Gather what the policy needs to know; later rules add their facts here."""
    patient = db.get(Patient, patient_id)
    if patient is None:
        return Facts(patient_exists=False)
    representative = (
        actor.patient_id is not None
        and patient.attached_to_id == actor.patient_id
        and patient.birth_date > utcnow().date() - timedelta(days=18 * 365 + 4)
    )
    return Facts(patient_exists=True, patient_status=patient.status, legal_representative=representative)


def refuse(
    db: Session,
    actor: Actor,
    action: str,
    patient_id: str | None,
    reason: str,
    resource: Resource | None = None,
    details: dict[str, object] | None = None,
) -> None:
    """Record a refusal in the current transaction — and again after a rollback, so it is never lost
    and never commits the caller's half-done work."""

    def write(session: Session) -> None:
        audit.record(
            session,
            actor,
            action,
            patient_id=patient_id,
            outcome="deny",
            reason=reason,
            resource_type=resource.type if resource else None,
            resource_id=resource.id if resource else None,
            details=details or {},
        )

    write(db)
    db.info.setdefault("after_rollback", []).append(write)


def guard(db: Session, actor: Actor, patient_id: str, action: Action, resource: Resource | None = None) -> Decision:
    decision = decide(actor, patient_id, action, resource, facts_for(db, actor, patient_id))
    if not decision.allowed:
        refuse(
            db,
            actor,
            str(action),
            patient_id if decision.rule != "unknown_space" else None,
            decision.reason,
            resource,
            {} if decision.rule != "unknown_space" else {"requested_space": patient_id[:64]},
        )
        raise AccessDenied(decision)
    return decision
