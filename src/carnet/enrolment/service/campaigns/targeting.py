"""Starting a campaign (ENR-2): the départements it covers, and the invitations it queues.

Set-based: the people are read in one query, then their invitations inserted in bulk, ``INSERT_PAGE``
per transaction (a crash keeps the pages done; starting again invites the others into a new campaign;
an invitation made meanwhile by someone else is skipped, not duplicated). The e-mail channel is chosen
when the person has an address; a person without one waits as ``to_print`` (see the package's notes).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, Table, exists, func, select
from sqlalchemy.orm import Session

from carnet.bootstrap import Services
from carnet.enrolment.model import activation_codes as codes
from carnet.enrolment.model.opposition import objection_deadline
from carnet.enrolment.service.campaigns.queue import INSERT_PAGE, SERVICE_SPACE, CampaignError
from carnet.enrolment.tables import Campaign, Invitation, QueuedEmail
from carnet.hall import audit
from carnet.hall.actors import Actor
from carnet.hall.guard import guard
from carnet.hall.policy import Action, Resource
from carnet.hall.vocabulary import PatientStatus
from carnet.people.tables import Patient
from carnet.storage.bulk import insert_new
from carnet.storage.types import TimeOrderedIds, utcnow

log = logging.getLogger("carnet.campaigns")

DEPARTEMENTS = frozenset(
    {f"{n:02d}" for n in range(1, 96) if n != 20} | {"2A", "2B"} | {str(n) for n in range(971, 977)}
)


@dataclass(frozen=True)
class CampaignView:
    """A campaign as the console and the CLI show it."""

    id: str
    departements: tuple[str, ...]
    started_at: datetime
    started_by: str


def campaign_view(campaign: Campaign) -> CampaignView:
    return CampaignView(campaign.id, tuple(campaign.departements), campaign.started_at, campaign.started_by)


def parse_departements(value: str | Iterable[str]) -> list[str]:
    """« 2a, 2B » → ["2A", "2B"]; unknown codes are refused by name."""
    items = value.replace(";", ",").split(",") if isinstance(value, str) else list(value)
    result: list[str] = []
    for item in items:
        code = item.strip().upper()
        if not code:
            continue
        if code.isdigit() and len(code) == 1:
            code = "0" + code
        if code not in DEPARTEMENTS:
            raise CampaignError(f"Département inconnu : « {item.strip()[:5]} » (exemples : 2A, 2B, 06, 971).")
        if code not in result:
            result.append(code)
    if not result:
        raise CampaignError("Indiquez au moins un département (par exemple 2A,2B).")
    return result


def start_campaign(
    services: Services, departements: str | Iterable[str], actor: Actor, now: datetime | None = None
) -> CampaignView:
    """Invite every registered person of these départements who has no invitation yet (operators only, audited).

    A campaign that would invite nobody (everyone already invited, or their space already open) is refused
    with :class:`CampaignError` and not created (issue #15-13)."""
    deps = parse_departements(departements)
    now = now or utcnow()
    with services.db.unit_of_work() as db:
        guard(db, actor, SERVICE_SPACE, Action.ENROLMENT_MANAGE, Resource("campaign"))
        if not db.scalar(select(_eligible(deps).exists())):
            raise CampaignError(_nobody_to_invite(db, deps))
        campaign = Campaign(
            departements=deps, started_at=now, started_by=actor.label, opening_due_at=objection_deadline(now)
        )
        db.add(campaign)
        db.flush()
        audit.record(
            db,
            actor,
            "campaign.started",
            resource_type="campaign",
            resource_id=campaign.id,
            details={"departements": deps},
        )
        view = campaign_view(campaign)
    invited = _invite(services, view.id, deps, now)
    log.info("campagne %s (%s) : %d personnes invitées", view.id, ",".join(deps), invited)
    return view


def _registered(deps: Sequence[str]) -> Select[str, bool]:
    """(patient id, has an e-mail address) of the registered people of these départements."""
    has_email = Patient.email.is_not(None) & Patient.email.like("%@%")
    return select(Patient.id, has_email).where(
        Patient.status == PatientStatus.REGISTERED, Patient.departement.in_(deps)
    )


def _eligible(deps: Sequence[str]) -> Select[str, bool]:
    """The registered people of these départements not invited yet."""
    return _registered(deps).where(~exists().where(Invitation.patient_id == Patient.id))


def _nobody_to_invite(db: Session, deps: Sequence[str]) -> str:
    """Why a campaign in these départements would invite nobody, in French (counts only, no names)."""
    where = f"dans le département {deps[0]}" if len(deps) == 1 else f"dans les départements {', '.join(deps)}"
    known = db.scalar(select(func.count()).select_from(Patient).where(Patient.departement.in_(deps))) or 0
    if not known:
        return (
            f"Aucune personne du registre n'habite {where} : importez d'abord le registre des assurés. "
            "Aucune campagne n'a été lancée."
        )
    return (
        f"Personne à inviter {where} : les personnes du registre de ce territoire ({known}) ont toutes déjà été "
        "invitées, ont déjà un espace ou se sont opposées à sa création. Aucune campagne n'a été lancée."
    )


def _invite(services: Services, campaign_id: str, deps: Sequence[str], now: datetime) -> int:
    """Queue the invitations of the registered people not invited yet; how many.

    The registry is read as one stream and written ``INSERT_PAGE`` per transaction: memory stays flat for a
    region of 12 million people. Who is invited already is asked page by page, in a query planned afresh each
    time: a stream planned with the invitations table empty would scan it, growing, for every person. A page's
    codes are drawn (CPU, this thread) while the previous page is written (the database, a writer thread)."""
    invited = 0
    ids = TimeOrderedIds()
    with ThreadPoolExecutor(1, thread_name_prefix="carnet-invitations") as writer:
        writing: Future[int] | None = None
        for page in services.db.pages(_registered(deps), INSERT_PAGE):
            with services.db.reading() as db:
                people = [patient_id for patient_id, _ in page]
                already = set(db.scalars(select(Invitation.patient_id).where(Invitation.patient_id.in_(people))))
            rows = [
                _invitation_row(services, ids(), campaign_id, patient_id, bool(emailed), now)
                for patient_id, emailed in page
                if patient_id not in already
            ]
            if writing:
                invited += writing.result()
            writing = writer.submit(_write, services, rows) if rows else None
        if writing:
            invited += writing.result()
    services.db.analyze(Invitation.__tablename__, QueuedEmail.__tablename__)  # the sending claims are planned on them
    return invited


def _write(services: Services, rows: list[dict[str, Any]]) -> int:
    """Insert a page of invitations, and its e-mails into the sending's queue; how many were inserted.

    A row is skipped when its person was invited meanwhile (by another campaign: not twice) or when its code was
    drawn already for someone else — 59 bits of code, so about once in ten thousand regions of 12 million people,
    once in three hundred for the whole country. That person is not left out: they get a new code, in the same
    transaction."""
    table = cast(Table, Invitation.__table__)
    written: list[dict[str, Any]] = []
    with services.db.unit_of_work() as db:
        connection = db.connection()
        while rows:
            done = insert_new(connection, table, rows)
            if done == len(rows):
                written += rows
                break
            ours = [row["id"] for row in rows]
            inserted = set(db.scalars(select(Invitation.id).where(Invitation.id.in_(ours))))
            written += [row for row in rows if row["id"] in inserted]
            people = [row["patient_id"] for row in rows]
            invited = set(db.scalars(select(Invitation.patient_id).where(Invitation.patient_id.in_(people))))
            rows = [_new_code(services, row) for row in rows if row["patient_id"] not in invited]
        emails = [{"invitation_id": row["id"]} for row in written if row["channel"] == "email"]
        insert_new(connection, cast(Table, QueuedEmail.__table__), emails)
    return len(written)


def _invitation_row(
    services: Services, invitation_id: str, campaign_id: str, patient_id: str, emailed: bool, now: datetime
) -> dict[str, Any]:
    channel = "email" if emailed else "letter"
    row = {
        "id": invitation_id,
        "patient_id": patient_id,
        "campaign_id": campaign_id,
        "channel": channel,
        "status": "pending" if channel == "email" else "to_print",
        "code_expires_at": now + codes.VALIDITY,
        "attempts": 0,
    }
    return _new_code(services, row)


def _new_code(services: Services, row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with a freshly drawn activation code (its look-up hash and its sealed form)."""
    code = codes.new_code()
    return row | {
        "code_hash": services.keys.mac(codes.MAC_PURPOSE, code),
        "code_sealed": services.keys.seal(code, codes.SEAL_PURPOSE),
    }


def count_invitations(services: Services, campaign_id: str) -> dict[str, int]:
    """Channel counts of a campaign (for the CLI)."""
    with services.db.unit_of_work() as db:
        rows = db.execute(
            select(Invitation.channel, func.count()).where(Invitation.campaign_id == campaign_id).group_by("channel")
        ).all()
    return {channel: count for channel, count in rows}
