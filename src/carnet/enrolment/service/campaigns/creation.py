"""The creation of spaces (ENR-3): automatic once the 6-week objection period is over, or at once by an
operator — never while the person objects. Each creation goes through the hall and is audited."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from carnet.bootstrap import Services
from carnet.enrolment.service.campaigns.queue import CampaignError
from carnet.enrolment.tables import Invitation, Objection
from carnet.hall import audit
from carnet.hall.actors import Actor
from carnet.hall.guard import guard
from carnet.hall.policy import Action, Resource
from carnet.hall.vocabulary import InvitationStatus, PatientStatus
from carnet.people.model.identifiers import IdentifierError, parse_nir
from carnet.people.service.lookup import patient_by_ins
from carnet.people.tables import Patient
from carnet.storage.types import utcnow

log = logging.getLogger("carnet.campaigns")

OPEN_CHUNK = 500  # spaces opened per transaction by the scheduled job


def active_objection(db: Session, patient_id: str) -> Objection | None:
    return db.scalar(
        select(Objection)
        .where(Objection.patient_id == patient_id, Objection.withdrawn_at.is_(None))
        .order_by(Objection.recorded_at.desc())
        .limit(1)
    )


def _open_due(db: Session, system: Actor, now: datetime, chunk: int) -> int:
    """Open up to ``chunk`` spaces whose period is over without objection; how many."""
    no_objection = ~exists().where(Objection.patient_id == Patient.id, Objection.withdrawn_at.is_(None))
    due = list(
        db.scalars(
            select(Patient.id)
            .join(Invitation, Invitation.patient_id == Patient.id)
            .where(
                Invitation.status.in_((InvitationStatus.SENT, InvitationStatus.LETTER)),
                Invitation.objection_deadline <= now,
                Patient.status == PatientStatus.REGISTERED,
                no_objection,
            )
            .limit(chunk)
        )
    )
    for patient_id in due:
        guard(db, system, patient_id, Action.SPACE_OPEN, Resource("space"))
    if due:
        db.execute(
            update(Patient)
            .where(Patient.id.in_(due), Patient.status == PatientStatus.REGISTERED)
            .values(status=PatientStatus.ACTIVE, opened_at=now),
            execution_options={"synchronize_session": False},
        )
    for patient_id in due:
        audit.record(
            db,
            system,
            "space.created",
            patient_id=patient_id,
            resource_type="space",
            details={"motif": "délai d'opposition écoulé"},
        )
    return len(due)


def auto_create_spaces(services: Services, now: datetime | None = None, chunk: int = OPEN_CHUNK) -> int:
    """ENR-3: the 6 weeks have passed without objection → the space is created (system actor, audited)."""
    now = now or utcnow()
    system = Actor.system()
    opened = 0
    while True:
        with services.db.unit_of_work() as db:
            count = _open_due(db, system, now, chunk)
        if not count:
            break
        opened += count
    if opened:
        log.info("espaces créés à l'issue du délai d'opposition : %d", opened)
    return opened


@dataclass(frozen=True)
class Opened:
    patient_id: str
    already: bool


def open_space(services: Services, actor: Actor, ins: str, now: datetime | None = None) -> Opened:
    """``carnet spaces open INS``: open one registered person's space at once, audited.

    Refused while the person objects: their objection must be withdrawn first (by them, online or
    by phone), never overridden.
    """
    now = now or utcnow()
    try:
        nir = parse_nir(ins)
    except IdentifierError as exc:
        raise CampaignError(exc.message) from None
    with services.db.unit_of_work() as db:
        patient = patient_by_ins(db, nir.value)
        if patient is None:
            raise CampaignError("Aucune personne n'est enregistrée avec ce NIR.")
        guard(db, actor, patient.id, Action.SPACE_OPEN, Resource("space"))
        objection = active_objection(db, patient.id)
        if patient.status == PatientStatus.OPPOSED or objection is not None:
            number = f" (récépissé n° {objection.receipt_number})" if objection else ""
            raise CampaignError(
                f"Cette personne s'est opposée à la création de son espace{number}. L'espace ne peut pas être "
                "ouvert : la personne doit d'abord retirer son opposition (en ligne sur /opposition/annuler, "
                "ou par téléphone auprès d'un conseiller)."
            )
        if patient.status == PatientStatus.ACTIVE:
            return Opened(patient.id, already=True)
        if patient.status != PatientStatus.REGISTERED:
            raise CampaignError(
                "Cet espace a été fermé ou supprimé : seule la personne peut le rouvrir, depuis son espace."
            )
        patient.status = PatientStatus.ACTIVE
        patient.opened_at = now
        audit.record(
            db,
            actor,
            "space.created",
            patient_id=patient.id,
            resource_type="space",
            details={"motif": "ouverture immédiate par un opérateur"},
        )
    return Opened(patient.id, already=False)
