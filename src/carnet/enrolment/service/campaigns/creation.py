"""The creation of spaces (ENR-3): automatic once the 6-week objection period is over, or at once by an
operator — never while the person objects. Each creation goes through the hall and is audited."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from carnet.bootstrap import Services
from carnet.enrolment.service.campaigns.queue import CampaignError
from carnet.enrolment.tables import Campaign, Invitation, Objection
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

OPEN_CHUNK = 500  # invitations read per transaction by the scheduled job
OPEN_SECONDS = 40.0  # the job's time for one run (every minute): a region's walk goes on at the next run
RECHECK = timedelta(days=1)  # an invitation not yet sent (a letter to print): looked at again a day later
WAITING = (InvitationStatus.SENT, InvitationStatus.LETTER)


def active_objection(db: Session, patient_id: str) -> Objection | None:
    return db.scalar(
        select(Objection)
        .where(Objection.patient_id == patient_id, Objection.withdrawn_at.is_(None))
        .order_by(Objection.recorded_at.desc())
        .limit(1)
    )


def _page(db: Session, campaign_id: str, after: str, chunk: int) -> list[Any]:
    """The next invitations of the campaign, in id order, whose person is still registered and not objecting."""
    no_objection = ~exists().where(Objection.patient_id == Patient.id, Objection.withdrawn_at.is_(None))
    return list(
        db.execute(
            select(Invitation.id, Invitation.patient_id, Invitation.status, Invitation.objection_deadline)
            .join(Patient, Patient.id == Invitation.patient_id)
            .where(
                Invitation.campaign_id == campaign_id,
                Invitation.id > after,
                Patient.status == PatientStatus.REGISTERED,
                no_objection,
            )
            .order_by(Invitation.id)
            .limit(chunk)
        )
    )


def _open(db: Session, system: Actor, patient_ids: list[str], now: datetime) -> None:
    for patient_id in patient_ids:
        guard(db, system, patient_id, Action.SPACE_OPEN, Resource("space"))
    db.execute(
        update(Patient)
        .where(Patient.id.in_(patient_ids), Patient.status == PatientStatus.REGISTERED)
        .values(status=PatientStatus.ACTIVE, opened_at=now),
        execution_options={"synchronize_session": False},
    )
    for patient_id in patient_ids:
        audit.record(
            db,
            system,
            "space.created",
            patient_id=patient_id,
            resource_type="space",
            details={"motif": "délai d'opposition écoulé"},
        )


def _walk(services: Services, campaign_id: str, now: datetime, chunk: int, until: float) -> tuple[int, bool]:
    """One campaign's invitations walked from its cursor: the spaces whose period is over opened, a page a
    transaction (the cursor and the next due time written with it); how many, and whether the walk ended."""
    system = Actor.system()
    opened = 0
    while True:
        with services.db.unit_of_work() as db:
            campaign = db.get(Campaign, campaign_id)
            if campaign is None:
                return opened, True
            rows = _page(db, campaign_id, campaign.opening_cursor, chunk)
            sent = [row for row in rows if row.status in WAITING and row.objection_deadline is not None]
            due = [row.patient_id for row in sent if row.objection_deadline <= now]
            later = [row.objection_deadline for row in sent if row.objection_deadline > now]
            if any(row.status not in WAITING for row in rows):  # a letter still to print: its deadline is to come
                later.append(now + RECHECK)
            if due:
                _open(db, system, due, now)
            opened += len(due)
            campaign.opening_next_at = _earliest(campaign.opening_next_at, *later)
            if len(rows) < chunk:  # the end: the next walk starts over, when the earliest deadline left falls due
                campaign.opening_due_at, campaign.opening_next_at = campaign.opening_next_at, None
                campaign.opening_cursor = ""
                return opened, True
            campaign.opening_cursor = rows[-1].id
        if time.monotonic() > until:
            return opened, False


def auto_create_spaces(
    services: Services, now: datetime | None = None, chunk: int = OPEN_CHUNK, seconds: float = OPEN_SECONDS
) -> int:
    """ENR-3: the 6 weeks have passed without objection → the space is created (system actor, audited).

    Only the campaigns whose earliest deadline has come are walked (``Campaign.opening_due_at``), each in the order of
    its invitations' ids from where the last run stopped: the job reads a region's invitations once when their
    deadline comes, not every minute — and never the same rows twice in one walk. A walk longer than ``seconds`` goes
    on at the next run."""
    now = now or utcnow()
    until = time.monotonic() + seconds
    with services.db.reading() as db:
        due = list(
            db.scalars(select(Campaign.id).where(Campaign.opening_due_at <= now).order_by(Campaign.opening_due_at))
        )
    opened = 0
    for campaign_id in due:
        count, ended = _walk(services, campaign_id, now, chunk, until)
        opened += count
        if not ended:
            break
    if opened:
        log.info("espaces créés à l'issue du délai d'opposition : %d", opened)
    return opened


def rearm(db: Session, invitation: Invitation | None, now: datetime) -> None:
    """A person registered again (an objection withdrawn): their campaign is walked when their deadline comes — at
    the next run if it is past."""
    if invitation is None:
        return
    campaign = db.get(Campaign, invitation.campaign_id)
    if campaign is not None:
        when = invitation.objection_deadline or now
        campaign.opening_due_at = _earliest(campaign.opening_due_at, when)
        if campaign.opening_cursor:  # a walk in progress, maybe past this person: the next one will not be
            campaign.opening_next_at = _earliest(campaign.opening_next_at, when)


def _earliest(*moments: datetime | None) -> datetime | None:
    return min((moment for moment in moments if moment is not None), default=None)


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
