"""The progress of campaigns (ENR-2), for the operator console and the CLI: counters only, no health data.

A handful of grouped queries over all the campaigns shown, whatever their size; operators only (the hall
decides, on the service-wide space).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from carnet.bootstrap import Services
from carnet.enrolment.service.campaigns.queue import BOUNCE, LETTER_QUEUE, SERVICE_SPACE
from carnet.enrolment.service.campaigns.targeting import CampaignView, campaign_view
from carnet.enrolment.tables import Campaign, Invitation, Objection
from carnet.hall.actors import Actor
from carnet.hall.guard import guard
from carnet.hall.policy import Action, Resource
from carnet.hall.vocabulary import InvitationStatus, PatientStatus
from carnet.people.tables import Patient


@dataclass(frozen=True)
class CampaignProgress:
    campaign: CampaignView
    invited: int = 0
    pending: int = 0
    sent: int = 0
    bounced: int = 0
    letters: int = 0
    letters_waiting: int = 0
    objections: int = 0
    activations: int = 0
    opened: int = 0
    batches: tuple[tuple[str, int, datetime | None], ...] = field(default_factory=tuple)  # batch, letters, produced


def _counted(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _invitation_counts(db: Session, progress: dict[str, CampaignProgress], in_campaigns: Any) -> None:
    for row in db.execute(
        select(
            Invitation.campaign_id,
            func.count(),
            _counted(
                Invitation.status.in_((InvitationStatus.PENDING, InvitationStatus.SENDING))
                & (Invitation.channel == "email")
            ),
            _counted(Invitation.status == InvitationStatus.SENT),
            _counted(Invitation.last_error.like(f"{BOUNCE}%")),
            _counted(Invitation.status == InvitationStatus.LETTER),
            _counted(
                (Invitation.channel == "letter") & Invitation.status.in_((*LETTER_QUEUE, InvitationStatus.PRINTING))
            ),
            _counted(Invitation.code_used_at.is_not(None)),
        )
        .where(in_campaigns)
        .group_by(Invitation.campaign_id)
    ):
        invited, pending, sent, bounced, letters, waiting, activations = row[1:8]
        progress[row[0]] = replace(
            progress[row[0]],
            invited=invited,
            pending=pending,
            sent=sent,
            bounced=bounced,
            letters=letters,
            letters_waiting=waiting,
            activations=activations,
        )


def _people_counts(db: Session, progress: dict[str, CampaignProgress], in_campaigns: Any) -> None:
    for campaign, count in db.execute(
        select(Invitation.campaign_id, func.count(func.distinct(Objection.patient_id)))
        .join(Objection, Objection.patient_id == Invitation.patient_id)
        .where(in_campaigns, Objection.withdrawn_at.is_(None))
        .group_by(Invitation.campaign_id)
    ):
        progress[campaign] = replace(progress[campaign], objections=count)
    for campaign, count in db.execute(
        select(Invitation.campaign_id, func.count())
        .join(Patient, Patient.id == Invitation.patient_id)
        .where(in_campaigns, Patient.status == PatientStatus.ACTIVE)
        .group_by(Invitation.campaign_id)
    ):
        progress[campaign] = replace(progress[campaign], opened=count)


def _batches(db: Session, progress: dict[str, CampaignProgress], in_campaigns: Any) -> None:
    found: dict[str, list[tuple[str, int, datetime | None]]] = {}
    for campaign, batch, count, produced in db.execute(
        select(Invitation.campaign_id, Invitation.letter_batch, func.count(), func.min(Invitation.sent_at))
        .where(in_campaigns, Invitation.status == InvitationStatus.LETTER, Invitation.letter_batch.is_not(None))
        .group_by(Invitation.campaign_id, Invitation.letter_batch)
        .order_by(func.min(Invitation.sent_at))
    ):
        found.setdefault(campaign, []).append((batch or "", count, produced))
    for campaign, batches in found.items():
        progress[campaign] = replace(progress[campaign], batches=tuple(batches))


def campaign_progress(services: Services, actor: Actor, campaign_id: str | None = None) -> list[CampaignProgress]:
    """Counters per campaign, newest first (operators only); one campaign's, with its letter batches."""
    with services.db.unit_of_work() as db:
        guard(db, actor, SERVICE_SPACE, Action.ENROLMENT_MANAGE, Resource("campaign"))
        query = select(Campaign).order_by(Campaign.started_at.desc())
        if campaign_id:
            query = query.where(Campaign.id == campaign_id)
        progress = {c.id: CampaignProgress(campaign_view(c)) for c in db.scalars(query)}
        if not progress:
            return []
        in_campaigns = Invitation.campaign_id.in_(list(progress))
        _invitation_counts(db, progress, in_campaigns)
        _people_counts(db, progress, in_campaigns)
        if campaign_id:
            _batches(db, progress, in_campaigns)
    return list(progress.values())
