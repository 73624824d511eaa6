"""Minors and caregivers (FAM-1..3): the second legal representative, coming of age, caregivers.

Who may do what is decided by the policy only (``hall.guard``): ``FAMILY_MANAGE`` on a space lets its
owner — or the legal representative of a minor — invite a legal representative or a caregiver, cancel
an invitation and remove a caregiver. This module checks what is not an access decision: the
invitation itself (random token whose SHA-256 is stored, 14 days, single use), the NIR of a legal
representative, the limits (2 legal representatives per minor; 3 caregivers per person, pending
invitations included; 5 persons per caregiver).

An invitation is accepted by a person logged in to their own space: the link proves they received the
e-mail, the login who they are, and for a legal representative their space's NIR must be the one the
parent gave. A wrong person is refused (and the attempt kept in the child's history); the invitation
stays usable by the right one.

E-mails never name the child nor carry health data.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, exists, func, or_, select, update
from sqlalchemy.orm import Session

from carnet.bootstrap import Services
from carnet.enrolment.service import activation
from carnet.family.tables import Caregiver, LegalRepresentative, SpaceInvitation
from carnet.hall import audit
from carnet.hall.actors import Actor, ActorKind
from carnet.hall.guard import facts_for, guard, refuse
from carnet.hall.policy import Action, Resource, decide
from carnet.mail.outbound import Mail
from carnet.people.model.identifiers import IdentifierError, is_minor, parse_nir
from carnet.people.service import preferences
from carnet.people.tables import Account, Patient
from carnet.storage.types import utcnow
from carnet.vault.service.documents import resource_of
from carnet.vault.tables import Document

log = logging.getLogger("carnet.family")

INVITATION_DAYS = 14
MAX_REPRESENTATIVES = 2
MAX_CAREGIVERS = 3
MAX_HELPED = 5
MAJORITY_CHUNK = 200
SIGNATURE = "\n\nCarnet — ne répondez pas à ce message."

RELATIONS = {"own": "", "representative": "représentant légal", "caregiver": "aidant"}


class FamilyError(ValueError):
    """A request that cannot be done as asked; ``message`` is French, fit to show as is."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def display_name(patient: Patient) -> str:
    return f"{patient.first_names} {patient.used_name or patient.birth_name}"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invitation_link(services: Services, token: str) -> str:
    """The link of the e-mail. The token is in the query string, which the request log leaves out."""
    return f"{services.settings.base_url.rstrip('/')}/famille/invitation?jeton={token}"


def _email(value: str) -> str:
    email = value.strip()
    if "@" not in email or "." not in email.rsplit("@", 1)[-1] or len(email) > 254 or " " in email:
        raise FamilyError("Adresse e-mail invalide : vérifiez-la (exemple : prenom.nom@exemple.fr).")
    return email


def _contact(db: Session, patient_id: str) -> str | None:
    """Where to write to a person: their account's address, else the one on file."""
    email = db.scalar(select(Account.email).where(Account.patient_id == patient_id).limit(1))
    if email:
        return email
    patient = db.get(Patient, patient_id)
    return patient.email if patient else None


# --- who is linked to whom ----------------------------------------------------------------------------


def representatives_of(db: Session, minor: Patient) -> list[Patient]:
    """The parent the child is attached to, then the other legal representatives."""
    ids = [minor.attached_to_id] if minor.attached_to_id else []
    ids += [
        rid
        for rid in db.scalars(
            select(LegalRepresentative.representative_id)
            .where(LegalRepresentative.minor_id == minor.id)
            .order_by(LegalRepresentative.since)
        )
        if rid not in ids
    ]
    people = {p.id: p for p in db.scalars(select(Patient).where(Patient.id.in_(ids)))} if ids else {}
    return [people[i] for i in ids if i in people]


def caregivers_of(db: Session, helped_id: str) -> list[Patient]:
    return list(
        db.scalars(
            select(Patient)
            .join(Caregiver, Caregiver.caregiver_id == Patient.id)
            .where(Caregiver.helped_id == helped_id)
            .order_by(Caregiver.since)
        )
    )


def helped_by(db: Session, caregiver_id: str) -> list[Patient]:
    return list(
        db.scalars(
            select(Patient)
            .join(Caregiver, Caregiver.helped_id == Patient.id)
            .where(Caregiver.caregiver_id == caregiver_id)
            .order_by(Caregiver.since)
        )
    )


def _pending(kind: str | None, now: datetime) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [
        SpaceInvitation.accepted_at.is_(None),
        SpaceInvitation.cancelled_at.is_(None),
        SpaceInvitation.expires_at > now,
    ]
    if kind:
        conditions.append(SpaceInvitation.kind == kind)
    return conditions


def pending_invitations(
    db: Session, patient_id: str, kind: str | None = None, now: datetime | None = None
) -> list[SpaceInvitation]:
    return list(
        db.scalars(
            select(SpaceInvitation)
            .where(SpaceInvitation.patient_id == patient_id, *_pending(kind, now or utcnow()))
            .order_by(SpaceInvitation.created_at)
        )
    )


def _caregiver_count(db: Session, helped_id: str) -> int:
    return int(db.scalar(select(func.count()).select_from(Caregiver).where(Caregiver.helped_id == helped_id)) or 0)


def _helped_count(db: Session, caregiver_id: str) -> int:
    query = select(func.count()).select_from(Caregiver).where(Caregiver.caregiver_id == caregiver_id)
    return int(db.scalar(query) or 0)


def _lock(db: Session, *patient_ids: str) -> None:
    """Serialise the changes of these persons' links (PostgreSQL row locks; SQLite has one writer)."""
    for patient_id in sorted(set(patient_ids)):
        db.execute(select(Patient.id).where(Patient.id == patient_id).with_for_update())


# --- inviting -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Invited:
    invitation_id: str
    token: str  # only in the e-mail (and returned for the caller's tests); the database keeps its hash
    expires_at: datetime


def _new_invitation(
    db: Session, actor: Actor, patient_id: str, kind: str, email: str, nir: str | None, now: datetime
) -> Invited:
    token = secrets.token_urlsafe(32)
    row = SpaceInvitation(
        kind=kind,
        patient_id=patient_id,
        invited_by=actor.id or "",
        email=email,
        nir=nir,
        token_hash=token_hash(token),
        created_at=now,
        expires_at=now + timedelta(days=INVITATION_DAYS),
    )
    db.add(row)
    db.flush()
    return Invited(row.id, token, row.expires_at)


def _child(db: Session, child_id: str, now: datetime) -> Patient:
    child = db.get(Patient, child_id)
    assert child is not None  # the policy denies unknown spaces
    if not is_minor(child.birth_date, now.date()):
        raise FamilyError("Cette personne est majeure : elle gère seule son espace santé, sans représentant légal.")
    return child


def invite_representative(
    services: Services, db: Session, actor: Actor, child_id: str, nir: str, email: str, now: datetime | None = None
) -> Invited:
    """FAM-1: from the child's space, invite the second legal representative (NIR + e-mail, 14 days)."""
    now = now or utcnow()
    guard(db, actor, child_id, Action.FAMILY_MANAGE, Resource("representative_invitation"))
    child = _child(db, child_id, now)
    try:
        ins = parse_nir(nir).value
    except IdentifierError as exc:
        raise FamilyError(exc.message) from None
    address = _email(email)
    if ins == child.ins:
        raise FamilyError("Ce numéro de sécurité sociale est celui de l'enfant : saisissez celui de l'autre parent.")
    representatives = representatives_of(db, child)
    if any(person.ins == ins for person in representatives):
        raise FamilyError("Cette personne est déjà représentant légal de l'enfant.")
    pending = pending_invitations(db, child_id, "representative", now)
    if any(invitation.nir == ins for invitation in pending):
        raise FamilyError(
            "Une invitation est déjà en attente pour cette personne : annulez-la pour en envoyer une autre."
        )
    if len(representatives) + len(pending) >= MAX_REPRESENTATIVES:
        raise FamilyError(
            "Un enfant a au plus deux représentants légaux : ils sont déjà désignés ou invités. "
            "Annulez l'invitation en attente pour en envoyer une nouvelle."
        )
    invited = _new_invitation(db, actor, child_id, "representative", address, ins, now)
    audit.record(
        db,
        actor,
        "family.representative_invited",
        patient_id=child_id,
        resource_type="invitation",
        resource_id=invited.invitation_id,
        details={"jusqu_au": invited.expires_at.date().isoformat()},
    )
    services.mailer.send(
        Mail(
            address,
            "Invitation à accéder à l'espace santé d'un enfant",
            "Bonjour,\n\nVous êtes invité(e) à accéder à l'espace santé d'un enfant dont vous êtes représentant "
            "légal.\n\nPour accepter, ouvrez ce lien puis connectez-vous à votre propre espace santé Carnet : "
            f"{invitation_link(services, invited.token)}\n\n"
            f"Ce lien est valable {INVITATION_DAYS} jours. Si vous ne vous attendiez pas à ce message, ignorez-le."
            + SIGNATURE,
        )
    )
    return invited


def invite_caregiver(
    services: Services, db: Session, actor: Actor, patient_id: str, email: str, now: datetime | None = None
) -> Invited:
    """FAM-3: invite a caregiver by e-mail (14 days); at most 3 per person, pending invitations included."""
    now = now or utcnow()
    guard(db, actor, patient_id, Action.FAMILY_MANAGE, Resource("caregiver_invitation"))
    address = _email(email)
    _lock(db, patient_id)
    pending = pending_invitations(db, patient_id, "caregiver", now)
    if _caregiver_count(db, patient_id) + len(pending) >= MAX_CAREGIVERS:
        raise FamilyError(
            f"Vous avez déjà {MAX_CAREGIVERS} aidants (invitations en attente comprises) : retirez un aidant ou "
            "annulez une invitation avant d'en inviter un autre."
        )
    if any(invitation.email.lower() == address.lower() for invitation in pending):
        raise FamilyError("Une invitation est déjà en attente pour cette adresse.")
    known = db.scalars(select(Account.patient_id).where(func.lower(Account.email) == address.lower())).all()
    for caregiver_id in {pid for pid in known if pid}:
        if caregiver_id == patient_id:
            raise FamilyError("Vous ne pouvez pas être votre propre aidant : indiquez l'adresse d'un proche.")
        if db.get(Caregiver, (patient_id, caregiver_id)) is not None:
            raise FamilyError("Cette personne est déjà votre aidant.")
        if _helped_count(db, caregiver_id) >= MAX_HELPED:
            raise FamilyError(f"Cet aidant aide déjà {MAX_HELPED} personnes : il ne peut pas en aider davantage.")
    invited = _new_invitation(db, actor, patient_id, "caregiver", address, None, now)
    audit.record(
        db,
        actor,
        "family.caregiver_invited",
        patient_id=patient_id,
        resource_type="invitation",
        resource_id=invited.invitation_id,
        details={"jusqu_au": invited.expires_at.date().isoformat()},
    )
    services.mailer.send(
        Mail(
            address,
            "Invitation à devenir aidant dans Carnet",
            "Bonjour,\n\nUne personne qui utilise Carnet vous invite à devenir son aidant(e) : vous pourriez "
            "consulter son espace santé et y ajouter des documents.\n\nPour voir qui vous invite et accepter, "
            "ouvrez ce lien puis connectez-vous à votre propre espace santé Carnet : "
            f"{invitation_link(services, invited.token)}\n\n"
            f"Ce lien est valable {INVITATION_DAYS} jours. Si vous ne vous attendiez pas à ce message, ignorez-le."
            + SIGNATURE,
        )
    )
    return invited


def cancel_invitation(
    db: Session, actor: Actor, patient_id: str, invitation_id: str, now: datetime | None = None
) -> None:
    now = now or utcnow()
    guard(db, actor, patient_id, Action.FAMILY_MANAGE, Resource("invitation", invitation_id[:64]))
    invitation = db.get(SpaceInvitation, invitation_id)
    if invitation is None or invitation.patient_id != patient_id:
        raise FamilyError("Cette invitation n'existe pas.", 404)
    if invitation.accepted_at is not None or invitation.cancelled_at is not None:
        raise FamilyError("Cette invitation n'est plus en attente.")
    invitation.cancelled_at = now
    audit.record(
        db,
        actor,
        "family.invitation_cancelled",
        patient_id=patient_id,
        resource_type="invitation",
        resource_id=invitation.id,
        details={"type": invitation.kind},
    )


# --- accepting ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InvitationView:
    """What the invitee is shown before accepting (never the child's name)."""

    kind: str
    inviter: str
    expires_at: datetime


def _usable(db: Session, token: str, now: datetime) -> SpaceInvitation:
    invitation = db.scalar(select(SpaceInvitation).where(SpaceInvitation.token_hash == token_hash(token[:200])))
    if invitation is None:
        raise FamilyError("Ce lien d'invitation n'est pas valable : vérifiez que vous l'avez copié en entier.", 404)
    if invitation.cancelled_at is not None:
        raise FamilyError("Cette invitation a été annulée par la personne qui l'avait envoyée.", 410)
    if invitation.accepted_at is not None:
        raise FamilyError("Cette invitation a déjà été acceptée : elle ne peut servir qu'une fois.", 410)
    if invitation.expires_at <= now:
        raise FamilyError(
            "Cette invitation a expiré : demandez à la personne qui vous a invité(e) de vous en envoyer une nouvelle.",
            410,
        )
    return invitation


def view_invitation(db: Session, token: str, now: datetime | None = None) -> InvitationView:
    invitation = _usable(db, token, now or utcnow())
    inviter = db.get(Account, invitation.invited_by)
    return InvitationView(invitation.kind, inviter.display_name if inviter else "Une personne", invitation.expires_at)


def _wrong_person(db: Session, actor: Actor, invitation: SpaceInvitation, message: str) -> FamilyError:
    refuse(db, actor, "family.accept", invitation.patient_id, message, Resource("invitation", invitation.id))
    return FamilyError(message, 403)


def accept(db: Session, actor: Actor, token: str, now: datetime | None = None) -> Patient:
    """The invitee, logged in to their own space, accepts; returns the space they may now act in."""
    now = now or utcnow()
    if actor.kind != ActorKind.PATIENT or actor.patient_id is None:
        raise FamilyError(
            "Cette invitation s'adresse à une personne qui a un espace santé : connectez-vous avec votre compte "
            "personnel Carnet pour l'accepter.",
            403,
        )
    # The invitee acts on their own links, from their own space.
    guard(db, actor, actor.patient_id, Action.FAMILY_MANAGE, Resource("invitation"))
    invitation = _usable(db, token, now)
    space = db.get(Patient, invitation.patient_id)
    me = db.get(Patient, actor.patient_id)
    if space is None or me is None or space.status != "active":
        raise FamilyError("Cet espace santé n'est plus ouvert : l'invitation ne peut pas être acceptée.", 410)
    if me.id == space.id:
        raise _wrong_person(
            db, actor, invitation, "Cette invitation concerne votre propre espace : elle s'adresse à un proche."
        )
    _lock(db, space.id, me.id)
    if invitation.kind == "representative":
        if not hmac.compare_digest(me.ins, invitation.nir or ""):
            raise _wrong_person(
                db,
                actor,
                invitation,
                "Cette invitation est destinée à une autre personne : le numéro de sécurité sociale de votre espace "
                "ne correspond pas à celui indiqué par le parent.",
            )
        if not is_minor(space.birth_date, now.date()):
            raise FamilyError("Cette personne est désormais majeure : elle gère seule son espace santé.", 410)
        if any(person.id == me.id for person in representatives_of(db, space)):
            raise FamilyError("Vous êtes déjà représentant légal de cet enfant.")
        if len(representatives_of(db, space)) >= MAX_REPRESENTATIVES:
            raise FamilyError("Cet enfant a déjà deux représentants légaux.")
    else:
        if is_minor(me.birth_date, now.date()):
            raise _wrong_person(db, actor, invitation, "Un aidant doit être majeur.")
        if db.get(Caregiver, (space.id, me.id)) is not None:
            raise FamilyError("Vous êtes déjà aidant de cette personne.")
        if _caregiver_count(db, space.id) >= MAX_CAREGIVERS:
            raise FamilyError(
                f"La personne qui vous invite a déjà {MAX_CAREGIVERS} aidants : elle doit en retirer un avant que "
                "vous puissiez accepter."
            )
        if _helped_count(db, me.id) >= MAX_HELPED:
            raise FamilyError(
                f"Vous aidez déjà {MAX_HELPED} personnes : vous ne pouvez pas en aider davantage. "
                "Arrêtez d'aider l'une d'elles pour accepter cette invitation."
            )
    claimed = db.execute(
        update(SpaceInvitation)
        .where(
            SpaceInvitation.id == invitation.id,
            SpaceInvitation.accepted_at.is_(None),
            SpaceInvitation.cancelled_at.is_(None),
        )
        .values(accepted_at=now),
        execution_options={"synchronize_session": False},
    )
    if not getattr(claimed, "rowcount", 0):
        raise FamilyError("Cette invitation a déjà été acceptée : elle ne peut servir qu'une fois.", 410)
    if invitation.kind == "representative":
        db.add(LegalRepresentative(minor_id=space.id, representative_id=me.id, since=now))
        action = "family.representative_added"
    else:
        db.add(Caregiver(helped_id=space.id, caregiver_id=me.id, since=now))
        action = "family.caregiver_added"
    db.flush()
    audit.record(
        db,
        actor,
        action,
        patient_id=space.id,
        resource_type="invitation",
        resource_id=invitation.id,
        details={"qui": actor.label},
    )
    return space


# --- removing caregivers ------------------------------------------------------------------------------


def remove_caregiver(db: Session, actor: Actor, helped_id: str, caregiver_id: str) -> None:
    """FAM-3: the helped person (or their legal representative) removes a caregiver, at any time."""
    guard(db, actor, helped_id, Action.FAMILY_MANAGE, Resource("caregiver", caregiver_id[:64]))
    _end_help(db, actor, helped_id, caregiver_id, "la personne aidée")


def stop_helping(db: Session, actor: Actor, helped_id: str) -> None:
    """FAM-3: the caregiver stops helping — a decision about their own links, taken from their own space."""
    if actor.patient_id is None:
        raise FamilyError("Vous n'êtes pas aidant de cette personne.", 404)
    guard(db, actor, actor.patient_id, Action.FAMILY_MANAGE, Resource("caregiver", helped_id[:64]))
    _end_help(db, actor, helped_id, actor.patient_id, "l'aidant")


def _end_help(db: Session, actor: Actor, helped_id: str, caregiver_id: str, by: str) -> None:
    link = db.get(Caregiver, (helped_id, caregiver_id))
    if link is None:
        raise FamilyError("Cette personne n'est pas (ou plus) aidant de cet espace.", 404)
    caregiver = db.get(Patient, caregiver_id)
    db.delete(link)
    db.flush()
    audit.record(
        db,
        actor,
        "family.caregiver_removed",
        patient_id=helped_id,
        resource_type="caregiver",
        resource_id=caregiver_id,
        details={"qui": display_name(caregiver) if caregiver else "", "par": by},
    )


# --- what a space's family page shows, and whose spaces one may act in --------------------------------


@dataclass
class FamilyOverview:
    patient: Patient
    minor: bool
    representatives: list[Patient] = field(default_factory=list)
    representative_invitations: list[SpaceInvitation] = field(default_factory=list)
    caregivers: list[Patient] = field(default_factory=list)
    caregiver_invitations: list[SpaceInvitation] = field(default_factory=list)

    @property
    def can_invite_representative(self) -> bool:
        return self.minor and len(self.representatives) + len(self.representative_invitations) < MAX_REPRESENTATIVES

    @property
    def can_invite_caregiver(self) -> bool:
        return len(self.caregivers) + len(self.caregiver_invitations) < MAX_CAREGIVERS


def overview(db: Session, actor: Actor, patient_id: str, now: datetime | None = None) -> FamilyOverview:
    now = now or utcnow()
    guard(db, actor, patient_id, Action.FAMILY_MANAGE, Resource("family"))
    patient = db.get(Patient, patient_id)
    assert patient is not None
    minor = is_minor(patient.birth_date, now.date())
    return FamilyOverview(
        patient,
        minor,
        representatives_of(db, patient) if minor else [],
        pending_invitations(db, patient_id, "representative", now) if minor else [],
        caregivers_of(db, patient_id),
        pending_invitations(db, patient_id, "caregiver", now),
    )


@dataclass(frozen=True)
class SpaceLink:
    patient: Patient
    relation: str  # own | representative | caregiver

    @property
    def relation_label(self) -> str:
        return RELATIONS[self.relation]


def relation(db: Session, actor: Actor, patient_id: str) -> str | None:
    """In what capacity the actor acts in this space, as the policy sees it (None: not through a family link)."""
    if actor.kind != ActorKind.PATIENT or actor.patient_id is None:
        return None
    if actor.patient_id == patient_id:
        return "own"
    facts = facts_for(db, actor, patient_id)
    if not decide(actor, patient_id, Action.SPACE_VIEW, Resource("space"), facts).allowed:
        return None
    if facts.legal_representative:
        return "representative"
    return "caregiver" if facts.caregiver else None


def acting_as(db: Session, actor: Actor, patient_id: str) -> str | None:
    """« représentant légal » or « aidant » when the actor acts in someone else's space."""
    found = relation(db, actor, patient_id)
    return RELATIONS[found] if found and found != "own" else None


def spaces_of(db: Session, actor: Actor) -> list[SpaceLink]:
    """The spaces the person may act in: their own, their children's, those of the people they help."""
    if actor.kind != ActorKind.PATIENT or actor.patient_id is None:
        return []
    me = actor.patient_id
    guard(db, actor, me, Action.SPACE_VIEW, Resource("family"))
    own = db.get(Patient, me)
    links = [SpaceLink(own, "own")] if own is not None else []
    candidates = db.scalars(
        select(Patient)
        .where(
            or_(
                Patient.attached_to_id == me,
                exists().where(LegalRepresentative.minor_id == Patient.id, LegalRepresentative.representative_id == me),
                exists().where(Caregiver.helped_id == Patient.id, Caregiver.caregiver_id == me),
            )
        )
        .order_by(Patient.birth_date.desc())
    )
    for patient in candidates:
        found = relation(db, actor, patient.id)  # only what the policy lets them open
        if found in {"representative", "caregiver"}:
            links.append(SpaceLink(patient, found))
    return links


# --- FAM-2: at 18 the person takes over their own space -----------------------------------------------


def majority(services: Services, now: datetime | None = None) -> int:
    """Detach the spaces of people who turned 18 from their legal representatives (idempotent).

    For each active space of an adult still attached to a parent or with legal representatives: the
    links are removed, pending representative invitations cancelled, the history notes it, the former
    representatives are told by e-mail; a young adult without an account is given a way to activate
    their space (a new activation code by post). Returns the number of spaces detached.
    """
    now = now or utcnow()
    today = now.date()
    loose_cutoff = today - timedelta(days=365 * 18)  # a few days after the real one; is_minor decides exactly
    system = Actor.system()
    with services.db.unit_of_work() as db:  # two index look-ups (attached_to_id, legal_representatives)
        attached = select(Patient.id, Patient.birth_date).where(
            Patient.attached_to_id.is_not(None), Patient.birth_date <= loose_cutoff, Patient.status == "active"
        )
        represented = (
            select(Patient.id, Patient.birth_date)
            .join(LegalRepresentative, LegalRepresentative.minor_id == Patient.id)
            .where(Patient.birth_date <= loose_cutoff, Patient.status == "active")
        )
        due = sorted({pid for pid, born in db.execute(attached.union(represented)) if not is_minor(born, today)})
    done = 0
    for start in range(0, len(due), MAJORITY_CHUNK):
        with services.db.unit_of_work() as db:
            for patient_id in due[start : start + MAJORITY_CHUNK]:
                young = db.get(Patient, patient_id)
                if young is None or young.status != "active":
                    continue
                done += _come_of_age(services, db, system, young, now)
    if done:
        log.info("espaces détachés à la majorité : %d", done)
    return done


def _come_of_age(services: Services, db: Session, system: Actor, young: Patient, now: datetime) -> bool:
    guard(db, system, young.id, Action.FAMILY_MANAGE, Resource("space"))
    _lock(db, young.id)
    db.refresh(young)
    former = representatives_of(db, young)
    if not former:  # another worker got there first
        return False
    young.attached_to_id = None
    db.execute(delete(LegalRepresentative).where(LegalRepresentative.minor_id == young.id))
    db.execute(
        update(SpaceInvitation)
        .where(SpaceInvitation.patient_id == young.id, *_pending("representative", now))
        .values(cancelled_at=now),
        execution_options={"synchronize_session": False},
    )
    has_account = db.scalar(select(Account.id).where(Account.patient_id == young.id).limit(1)) is not None
    activation_offered = False
    if not has_account:
        activation_offered = _offer_activation(services, db, young, now)
    audit.record(
        db,
        system,
        "family.majority",
        patient_id=young.id,
        resource_type="space",
        details={
            "representants_detaches": len(former),
            "compte": has_account,
            **({} if has_account else {"code_d_activation": "courrier" if activation_offered else "à envoyer"}),
        },
    )
    for person in former:
        address = _contact(db, person.id)
        if address:
            services.mailer.send(
                Mail(
                    address,
                    "Votre enfant gère désormais seul son espace santé",
                    "Bonjour,\n\nVotre enfant a 18 ans : il gère désormais seul son espace santé. "
                    "Vous n'y avez plus accès." + SIGNATURE,
                )
            )
    if has_account:
        address = _contact(db, young.id)
        if address:
            services.mailer.send(
                Mail(
                    address,
                    "Vous gérez désormais seul(e) votre espace santé",
                    "Bonjour,\n\nVous avez 18 ans : vous gérez désormais seul(e) votre espace santé Carnet. "
                    "Vos représentants légaux n'y ont plus accès." + SIGNATURE,
                )
            )
    return True


def _offer_activation(services: Services, db: Session, young: Patient, now: datetime) -> bool:
    """A new activation code by post (ENR-4's « new code » path); False when the person was never invited
    (no invitation to renew): the history then says the code is still to be sent."""
    return activation.renew_code(services, db, young, by_letter=True, now=now)


# --- TRC-3 for caregivers -----------------------------------------------------------------------------

CAREGIVER_NOTICE = (
    "Bonjour,\n\n{what} dans l'espace santé d'une personne que vous aidez.\n\n"
    "Connectez-vous sur {url} pour le consulter (rubrique « Mes espaces »). Pour la sécurité de cette "
    "personne, ce message ne contient aucune information médicale ni son nom.\n\n"
    "Vous pouvez choisir les notifications que vous recevez dans vos Paramètres." + SIGNATURE
)


def notify_caregivers(services: Services, db: Session, helped_id: str, documents: Sequence[Document]) -> int:
    """Tell the caregivers of ``helped_id`` that documents were deposited (for the notification job).

    Each caregiver is told of the documents the policy lets them read (not those hidden from the patient or
    from representatives and caregivers), if they keep document notifications on in their own settings.
    The e-mail names neither the person nor the documents. Returns the number of e-mails sent.
    """
    if not documents:
        return 0
    sent = 0
    for caregiver_id in list(db.scalars(select(Caregiver.caregiver_id).where(Caregiver.helped_id == helped_id))):
        account = db.scalar(select(Account).where(Account.patient_id == caregiver_id).limit(1))
        if account is None or not preferences.settings_of(db, caregiver_id).notify_documents:
            continue
        actor = Actor(ActorKind.PATIENT, account.id, account.display_name, patient_id=caregiver_id)
        facts = facts_for(db, actor, helped_id)
        count = sum(
            1 for document in documents if decide(actor, helped_id, Action.DOCUMENT_READ, resource_of(document), facts)
        )
        if not count:
            continue
        what = "Un nouveau document a été déposé" if count == 1 else f"{count} nouveaux documents ont été déposés"
        services.mailer.send(
            Mail(
                account.email,
                "Nouveau document dans l'espace santé d'une personne que vous aidez",
                CAREGIVER_NOTICE.format(what=what, url=services.settings.base_url),
            )
        )
        sent += 1
    return sent
