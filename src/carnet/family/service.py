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

Pages call the use cases (``my_spaces``, ``family_page``, ``invite_representative``, ``invite_caregiver``,
``cancel_invitation``, ``remove_caregiver``, ``stop_helping``, ``invitation_page``, ``accept``,
``acting_label``): each opens its unit of work and returns plain views — a request that cannot be done as
asked comes back as ``NotDone`` (the French reason, and what to show again). The helpers taking a
``Session`` are for other services sharing their transaction (notifications, jobs).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import ColumnElement, delete, exists, func, or_, select, update
from sqlalchemy.orm import Session

from carnet.bootstrap import Services
from carnet.enrolment.service import activation
from carnet.errors import CarnetError
from carnet.family.tables import Caregiver, LegalRepresentative, SpaceInvitation
from carnet.hall import audit
from carnet.hall.actors import Actor, ActorKind
from carnet.hall.guard import facts_for, guard, refuse
from carnet.hall.policy import Action, Resource, decide
from carnet.hall.vocabulary import PatientStatus
from carnet.mail.outbound import Mail
from carnet.people.model.identifiers import IdentifierError, display_name, is_minor, parse_nir
from carnet.people.service import preferences
from carnet.people.service.lookup import PatientView, patient_view
from carnet.people.tables import Account, Patient
from carnet.storage.types import utcnow
from carnet.vault.service.documents import resource_of

log = logging.getLogger("carnet.family")

INVITATION_DAYS = 14
MAX_REPRESENTATIVES = 2
MAX_CAREGIVERS = 3
MAX_HELPED = 5
MAJORITY_CHUNK = 200
SIGNATURE = "\n\nCarnet — ne répondez pas à ce message."

RELATIONS = {"own": "", "representative": "représentant légal", "caregiver": "aidant"}


class FamilyError(CarnetError):
    """A request that cannot be done as asked; ``message`` is French, fit to show as is."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class _Named(Protocol):
    @property
    def first_names(self) -> str: ...
    @property
    def birth_name(self) -> str: ...
    @property
    def used_name(self) -> str | None: ...


def full_name(patient: _Named) -> str:
    return display_name(patient.first_names, patient.birth_name, patient.used_name)


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


def _own_view(db: Session, actor: Actor) -> PatientView | None:
    """The header of the actor's own space (pages about their links show it), if they have one."""
    own = db.get(Patient, actor.patient_id) if actor.patient_id else None
    return patient_view(own) if own is not None else None


# --- what pages show ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PendingInvitation:
    """An invitation still waiting for its answer, as the space's family page lists it."""

    id: str
    kind: str  # representative | caregiver
    email: str
    expires_at: datetime


@dataclass(frozen=True)
class FamilyOverview:
    """A space's legal representatives, caregivers and pending invitations (its family page)."""

    patient: PatientView
    minor: bool
    own: bool  # the viewer's own space
    representatives: tuple[PatientView, ...] = ()
    representative_invitations: tuple[PendingInvitation, ...] = ()
    caregivers: tuple[PatientView, ...] = ()
    caregiver_invitations: tuple[PendingInvitation, ...] = ()

    @property
    def name(self) -> str:
        return full_name(self.patient)

    @property
    def can_invite_representative(self) -> bool:
        return self.minor and len(self.representatives) + len(self.representative_invitations) < MAX_REPRESENTATIVES

    @property
    def can_invite_caregiver(self) -> bool:
        return len(self.caregivers) + len(self.caregiver_invitations) < MAX_CAREGIVERS


@dataclass(frozen=True)
class NotDone:
    """A request that could not be done as asked: the French reason, the HTTP status, and what the page
    shows again — the space's family page (``overview``) or the header of the viewer's own space."""

    message: str
    status: int
    patient: PatientView | None = None
    overview: FamilyOverview | None = None


@dataclass(frozen=True)
class SpaceLink:
    patient: PatientView
    relation: str  # own | representative | caregiver

    @property
    def relation_label(self) -> str:
        return RELATIONS[self.relation]


@dataclass(frozen=True)
class FamilySpaces:
    """The spaces a person may act in (their own first), and the header of their own space."""

    own: PatientView | None
    links: tuple[SpaceLink, ...]


@dataclass(frozen=True)
class InvitationView:
    """What the invitee is shown before accepting (never the child's name)."""

    kind: str
    inviter: str
    expires_at: datetime


@dataclass(frozen=True)
class InvitationPage:
    """The invitation page: the invitation (or why it cannot be used) and the invitee's own space."""

    own: PatientView | None
    view: InvitationView | None = None
    error: str = ""
    status: int = 200


@dataclass(frozen=True)
class Invited:
    invitation_id: str
    token: str  # only in the e-mail (and returned for the caller's tests); the database keeps its hash
    expires_at: datetime


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


# --- a space's family page ------------------------------------------------------------------------------


def _pending_views(rows: Sequence[SpaceInvitation]) -> tuple[PendingInvitation, ...]:
    return tuple(PendingInvitation(row.id, row.kind, row.email, row.expires_at) for row in rows)


def overview(db: Session, actor: Actor, patient_id: str, now: datetime | None = None) -> FamilyOverview:
    """The space's family page, if the policy lets ``actor`` manage it (``FAMILY_MANAGE``)."""
    now = now or utcnow()
    guard(db, actor, patient_id, Action.FAMILY_MANAGE, Resource("family"))
    patient = db.get(Patient, patient_id)
    assert patient is not None  # the policy denies unknown spaces
    minor = is_minor(patient.birth_date, now.date())
    return FamilyOverview(
        patient_view(patient),
        minor,
        actor.patient_id == patient_id,
        tuple(patient_view(p) for p in representatives_of(db, patient)) if minor else (),
        _pending_views(pending_invitations(db, patient_id, "representative", now)) if minor else (),
        tuple(patient_view(p) for p in caregivers_of(db, patient_id)),
        _pending_views(pending_invitations(db, patient_id, "caregiver", now)),
    )


def family_page(services: Services, actor: Actor, patient_id: str) -> FamilyOverview:
    """FAM-1, FAM-3: a space's legal representatives, caregivers and pending invitations."""
    with services.db.unit_of_work() as db:
        return overview(db, actor, patient_id)


def _not_done(db: Session, actor: Actor, patient_id: str, exc: FamilyError) -> NotDone:
    """The family page to show again, with why the request was not done."""
    page = overview(db, actor, patient_id)
    return NotDone(exc.message, exc.status, page.patient, page)


# --- inviting -----------------------------------------------------------------------------------------


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
    audit.record(
        db,
        actor,
        "family.representative_invited" if kind == "representative" else "family.caregiver_invited",
        patient_id=patient_id,
        resource_type="invitation",
        resource_id=row.id,
        details={"jusqu_au": row.expires_at.date().isoformat()},
    )
    return Invited(row.id, token, row.expires_at)


def _child(db: Session, child_id: str, now: datetime) -> Patient:
    child = db.get(Patient, child_id)
    assert child is not None  # the policy denies unknown spaces
    if not is_minor(child.birth_date, now.date()):
        raise FamilyError("Cette personne est majeure : elle gère seule son espace santé, sans représentant légal.")
    return child


def _check_representative(db: Session, child: Patient, ins: str, now: datetime) -> None:
    """FAM-1: not the child, not already a representative nor invited, at most two representatives."""
    if ins == child.ins:
        raise FamilyError("Ce numéro de sécurité sociale est celui de l'enfant : saisissez celui de l'autre parent.")
    representatives = representatives_of(db, child)
    if any(person.ins == ins for person in representatives):
        raise FamilyError("Cette personne est déjà représentant légal de l'enfant.")
    pending = pending_invitations(db, child.id, "representative", now)
    if any(invitation.nir == ins for invitation in pending):
        raise FamilyError(
            "Une invitation est déjà en attente pour cette personne : annulez-la pour en envoyer une autre."
        )
    if len(representatives) + len(pending) >= MAX_REPRESENTATIVES:
        raise FamilyError(
            "Un enfant a au plus deux représentants légaux : ils sont déjà désignés ou invités. "
            "Annulez l'invitation en attente pour en envoyer une nouvelle."
        )


def _invite_representative(
    services: Services, db: Session, actor: Actor, child_id: str, nir: str, email: str, now: datetime
) -> Invited:
    guard(db, actor, child_id, Action.FAMILY_MANAGE, Resource("representative_invitation"))
    child = _child(db, child_id, now)
    try:
        ins = parse_nir(nir).value
    except IdentifierError as exc:
        raise FamilyError(exc.message) from None
    address = _email(email)
    _check_representative(db, child, ins, now)
    invited = _new_invitation(db, actor, child_id, "representative", address, ins, now)
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


def invite_representative(
    services: Services, actor: Actor, child_id: str, nir: str, email: str, now: datetime | None = None
) -> Invited | NotDone:
    """FAM-1: from the child's space, invite the second legal representative (NIR + e-mail, 14 days)."""
    with services.db.unit_of_work() as db:
        try:
            return _invite_representative(services, db, actor, child_id, nir, email, now or utcnow())
        except FamilyError as exc:
            return _not_done(db, actor, child_id, exc)


def _check_caregiver(db: Session, patient_id: str, address: str, now: datetime) -> None:
    """FAM-3: at most 3 caregivers (pending invitations included), not oneself, 5 helped per caregiver."""
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


def _invite_caregiver(
    services: Services, db: Session, actor: Actor, patient_id: str, email: str, now: datetime
) -> Invited:
    guard(db, actor, patient_id, Action.FAMILY_MANAGE, Resource("caregiver_invitation"))
    address = _email(email)
    _lock(db, patient_id)
    _check_caregiver(db, patient_id, address, now)
    invited = _new_invitation(db, actor, patient_id, "caregiver", address, None, now)
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


def invite_caregiver(
    services: Services, actor: Actor, patient_id: str, email: str, now: datetime | None = None
) -> Invited | NotDone:
    """FAM-3: invite a caregiver by e-mail (14 days); at most 3 per person, pending invitations included."""
    with services.db.unit_of_work() as db:
        try:
            return _invite_caregiver(services, db, actor, patient_id, email, now or utcnow())
        except FamilyError as exc:
            return _not_done(db, actor, patient_id, exc)


def _cancel_invitation(db: Session, actor: Actor, patient_id: str, invitation_id: str, now: datetime) -> None:
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


def cancel_invitation(
    services: Services, actor: Actor, patient_id: str, invitation_id: str, now: datetime | None = None
) -> NotDone | None:
    """FAM-1, FAM-3: cancel a pending invitation (its link stops working); None once done."""
    with services.db.unit_of_work() as db:
        try:
            _cancel_invitation(db, actor, patient_id, invitation_id, now or utcnow())
        except FamilyError as exc:
            return _not_done(db, actor, patient_id, exc)
        return None


# --- accepting ----------------------------------------------------------------------------------------


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


def invitation_page(services: Services, actor: Actor, token: str) -> InvitationPage:
    """What the invitee, logged in, is shown before accepting: who invites them and until when — or why the
    link cannot be used (unknown, cancelled, used, expired)."""
    with services.db.unit_of_work() as db:
        own = _own_view(db, actor)
        try:
            return InvitationPage(own, view_invitation(db, token))
        except FamilyError as exc:
            return InvitationPage(own, error=exc.message, status=exc.status)


def _wrong_person(db: Session, actor: Actor, invitation: SpaceInvitation, message: str) -> FamilyError:
    refuse(db, actor, "family.accept", invitation.patient_id, message, Resource("invitation", invitation.id))
    return FamilyError(message, 403)


def _check_new_representative(
    db: Session, actor: Actor, invitation: SpaceInvitation, space: Patient, me: Patient, now: datetime
) -> None:
    """FAM-1: the invitee's NIR is the one the parent gave; the child is still a minor, with room."""
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
    representatives = representatives_of(db, space)
    if any(person.id == me.id for person in representatives):
        raise FamilyError("Vous êtes déjà représentant légal de cet enfant.")
    if len(representatives) >= MAX_REPRESENTATIVES:
        raise FamilyError("Cet enfant a déjà deux représentants légaux.")


def _check_new_caregiver(
    db: Session, actor: Actor, invitation: SpaceInvitation, space: Patient, me: Patient, now: datetime
) -> None:
    """FAM-3: an adult, not yet a caregiver here; 3 caregivers per person, 5 persons per caregiver."""
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


def _claim(db: Session, actor: Actor, invitation: SpaceInvitation, space: Patient, me: Patient, now: datetime) -> None:
    """Use the invitation (once, even when two acceptances race) and create the link it offers."""
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
    else:
        db.add(Caregiver(helped_id=space.id, caregiver_id=me.id, since=now))
    db.flush()
    audit.record(
        db,
        actor,
        "family.representative_added" if invitation.kind == "representative" else "family.caregiver_added",
        patient_id=space.id,
        resource_type="invitation",
        resource_id=invitation.id,
        details={"qui": actor.label},
    )


def _accept(db: Session, actor: Actor, token: str, now: datetime) -> Patient:
    """The invitee, logged in to their own space, accepts; returns the space they may now act in."""
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
    if space is None or me is None or space.status != PatientStatus.ACTIVE:
        raise FamilyError("Cet espace santé n'est plus ouvert : l'invitation ne peut pas être acceptée.", 410)
    if me.id == space.id:
        raise _wrong_person(
            db, actor, invitation, "Cette invitation concerne votre propre espace : elle s'adresse à un proche."
        )
    _lock(db, space.id, me.id)
    if invitation.kind == "representative":
        _check_new_representative(db, actor, invitation, space, me, now)
    else:
        _check_new_caregiver(db, actor, invitation, space, me, now)
    _claim(db, actor, invitation, space, me, now)
    return space


def accept(services: Services, actor: Actor, token: str, now: datetime | None = None) -> NotDone | None:
    """FAM-1, FAM-3: the invitee accepts; None once done, else why not (with their own space's header).
    A wrong person's attempt is kept in the history of the space they were invited to."""
    with services.db.unit_of_work() as db:
        try:
            _accept(db, actor, token, now or utcnow())
        except FamilyError as exc:
            return NotDone(exc.message, exc.status, _own_view(db, actor))
        return None


# --- removing caregivers ------------------------------------------------------------------------------


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
        details={"qui": full_name(caregiver) if caregiver else "", "par": by},
    )


def remove_caregiver(services: Services, actor: Actor, helped_id: str, caregiver_id: str) -> NotDone | None:
    """FAM-3: the helped person (or their legal representative) removes a caregiver, at any time."""
    with services.db.unit_of_work() as db:
        guard(db, actor, helped_id, Action.FAMILY_MANAGE, Resource("caregiver", caregiver_id[:64]))
        try:
            _end_help(db, actor, helped_id, caregiver_id, "la personne aidée")
        except FamilyError as exc:
            return _not_done(db, actor, helped_id, exc)
        return None


def stop_helping(services: Services, actor: Actor, helped_id: str) -> NotDone | None:
    """FAM-3: the caregiver stops helping — a decision about their own links, taken from their own space."""
    with services.db.unit_of_work() as db:
        if actor.patient_id is None:
            return NotDone("Vous n'êtes pas aidant de cette personne.", 404)
        guard(db, actor, actor.patient_id, Action.FAMILY_MANAGE, Resource("caregiver", helped_id[:64]))
        try:
            _end_help(db, actor, helped_id, actor.patient_id, "l'aidant")
        except FamilyError as exc:
            return NotDone(exc.message, exc.status, _own_view(db, actor))
        return None


# --- whose spaces one may act in ----------------------------------------------------------------------


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


def acting_label(services: Services, actor: Actor, patient_id: str) -> str | None:
    """``acting_as`` in its own unit of work, for the banner of every page of a space (nothing is recorded:
    the page itself asked the policy)."""
    if actor.kind != ActorKind.PATIENT or actor.patient_id in {None, patient_id}:
        return None
    with services.db.unit_of_work() as db:
        return acting_as(db, actor, patient_id)


def spaces_of(db: Session, actor: Actor) -> list[SpaceLink]:
    """The spaces the person may act in: their own, their children's, those of the people they help."""
    if actor.kind != ActorKind.PATIENT or actor.patient_id is None:
        return []
    me = actor.patient_id
    guard(db, actor, me, Action.SPACE_VIEW, Resource("family"))
    own = db.get(Patient, me)
    links = [SpaceLink(patient_view(own), "own")] if own is not None else []
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
            links.append(SpaceLink(patient_view(patient), found))
    return links


def my_spaces(services: Services, actor: Actor) -> FamilySpaces | None:
    """FAM-1, FAM-3 « Mes espaces et mes proches »; None for whoever has no space of their own (a
    professional, an operator): the page is a person's."""
    if actor.kind != ActorKind.PATIENT or not actor.patient_id:
        return None
    with services.db.unit_of_work() as db:
        links = spaces_of(db, actor)
        own = next((link.patient for link in links if link.relation == "own"), None)
        return FamilySpaces(own, tuple(links))


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
            Patient.attached_to_id.is_not(None),
            Patient.birth_date <= loose_cutoff,
            Patient.status == PatientStatus.ACTIVE,
        )
        represented = (
            select(Patient.id, Patient.birth_date)
            .join(LegalRepresentative, LegalRepresentative.minor_id == Patient.id)
            .where(Patient.birth_date <= loose_cutoff, Patient.status == PatientStatus.ACTIVE)
        )
        due = sorted({pid for pid, born in db.execute(attached.union(represented)) if not is_minor(born, today)})
    done = 0
    for start in range(0, len(due), MAJORITY_CHUNK):
        with services.db.unit_of_work() as db:
            for patient_id in due[start : start + MAJORITY_CHUNK]:
                young = db.get(Patient, patient_id)
                if young is None or young.status != PatientStatus.ACTIVE:
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
    _tell_of_majority(services, db, young, former, has_account)
    return True


def _tell_of_majority(
    services: Services, db: Session, young: Patient, former: Sequence[Patient], has_account: bool
) -> None:
    """The former representatives are told; the young adult too, when they have an account."""
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


def tell_caregivers(services: Services, db: Session, helped_id: str, deposited: Sequence[Resource]) -> int:
    """Tell the caregivers of ``helped_id`` that documents were deposited (for the notification job).

    ``deposited`` are the documents as the policy knows them (``Resource("document", …)``, labels
    included). Each caregiver is told of the documents the policy lets them read (not those hidden from
    the patient or from representatives and caregivers), if they keep document notifications on in their
    own settings. The e-mail names neither the person nor the documents. Returns the number of e-mails sent.
    """
    if not deposited:
        return 0
    sent = 0
    for caregiver_id in list(db.scalars(select(Caregiver.caregiver_id).where(Caregiver.helped_id == helped_id))):
        account = db.scalar(select(Account).where(Account.patient_id == caregiver_id).limit(1))
        if account is None or not preferences.settings_of(db, caregiver_id).notify_documents:
            continue
        actor = Actor(ActorKind.PATIENT, account.id, account.display_name, patient_id=caregiver_id)
        facts = facts_for(db, actor, helped_id)
        count = sum(
            1 for document in deposited if decide(actor, helped_id, Action.DOCUMENT_READ, document, facts).allowed
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


def notify_caregivers(services: Services, db: Session, helped_id: str, documents: Sequence[Any]) -> int:
    """``tell_caregivers`` for the vault's document rows (each turned into the policy's resource by the
    vault's service): the family never reads the vault's tables."""
    return tell_caregivers(services, db, helped_id, [resource_of(document) for document in documents])
