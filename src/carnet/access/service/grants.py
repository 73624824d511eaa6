"""Who may read a space (ACC-1..4): consent, médecin traitant and administrators, blocking, emergency.

Every change goes through the hall (policy + audit) and is recorded; grants and blocks are revoked
or lifted, never deleted, so that the history stays whole. What these rows mean for reading is
decided by the policy only (``hall.professional_facts`` reads them, ``policy.rule_professional``
decides).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access.tables import AccessBlock, AccessGrant, CareTeam, EmergencyAccess, FirstAccess
from carnet.bootstrap import Services
from carnet.errors import CarnetError
from carnet.hall import audit
from carnet.hall.actors import Actor, ActorKind
from carnet.hall.guard import facts_for, guard
from carnet.hall.policy import Action, Decision, Resource, decide
from carnet.mail.outbound import Mail
from carnet.people.model.professions import profession_label
from carnet.people.tables import Account, Patient, PatientSettings, Professional
from carnet.storage.db import CommittedFacts
from carnet.storage.types import utcnow

EMERGENCY_DURATION = timedelta(hours=2)
ROLES = {"reader": "autorisé", "administrator": "administrateur", "medecin_traitant": "médecin traitant"}
ORIGINS = {
    "patient": "par vous",
    "oral": "consentement oral recueilli par le professionnel",
    "fhir": "par son logiciel",
}
MIN_REASON = 10
EMERGENCY_KINDS = {"samu": "SAMU", "bris_de_glace": "Bris de glace"}


class AccessError(CarnetError):
    """A request that cannot be done as asked; ``message`` is French."""


def professional_name(pro: Professional) -> str:
    title = "Dr " if pro.profession_code in {"10", "40"} else ""
    return f"{title}{pro.first_name} {pro.last_name}"


def _professional(db: Session, professional_id: str) -> Professional:
    pro = db.get(Professional, professional_id)
    if pro is None:
        raise AccessError("Ce professionnel n'est pas dans l'annuaire.")
    return pro


def _active_grants(db: Session, patient_id: str) -> list[AccessGrant]:
    return list(
        db.scalars(
            select(AccessGrant)
            .where(AccessGrant.patient_id == patient_id, AccessGrant.revoked_at.is_(None))
            .order_by(AccessGrant.granted_at)
        )
    )


def _record(db: Session, actor: Actor, action: str, patient_id: str, details: dict[str, object]) -> None:
    audit.record(db, actor, action, patient_id=patient_id, resource_type="access", details=details)


def grant(
    db: Session,
    actor: Actor,
    patient_id: str,
    *,
    professional_id: str | None = None,
    care_team_id: str | None = None,
    role: str = "reader",
) -> AccessGrant:
    """ACC-1, ACC-2: the patient (or their legal representative) authorises a professional or a care team,
    or gives a professional the médecin traitant or administrator status."""
    guard(db, actor, patient_id, Action.ACCESS_MANAGE, Resource("access"))
    if role not in ROLES or (professional_id is None) == (care_team_id is None):
        raise AccessError("Choisissez un professionnel ou une équipe de soins.")
    if care_team_id is not None:
        if role != "reader":
            raise AccessError("Seul un professionnel peut être médecin traitant ou administrateur.")
        team = db.get(CareTeam, care_team_id)
        if team is None:
            raise AccessError("Cette équipe de soins n'existe pas.")
        label = team.name
    else:
        pro = _professional(db, professional_id or "")
        if role == "medecin_traitant" and pro.profession_code != "10":
            raise AccessError("Le médecin traitant doit être un médecin : choisissez un médecin dans l'annuaire.")
        label = f"{professional_name(pro)} ({profession_label(pro.profession_code).lower()})"
    now = utcnow()
    for existing in _active_grants(db, patient_id):
        same = existing.professional_id == professional_id and existing.care_team_id == care_team_id
        if (same and existing.role == role) or (role == "medecin_traitant" and existing.role == role):
            if same:
                return existing
            existing.revoked_at, existing.revoked_by = now, actor.label  # one médecin traitant at a time
    row = AccessGrant(
        patient_id=patient_id,
        professional_id=professional_id,
        care_team_id=care_team_id,
        role=role,
        origin="patient",
        granted_at=now,
        granted_by=actor.label,
    )
    db.add(row)
    db.flush()
    _record(db, actor, "access.grant", patient_id, {"qui": label, "statut": ROLES[role]})
    return row


def record_consent(db: Session, actor: Actor, patient_id: str, origin: str = "oral") -> AccessGrant:
    """ACC-1: a professional records the patient's consent (said orally, or sent by their software)."""
    guard(db, actor, patient_id, Action.CONSENT_RECORD, Resource("access"))
    return consent_row(db, actor, patient_id, origin)


def consent_row(db: Session, actor: Actor, patient_id: str, origin: str) -> AccessGrant:
    """The professional's active consent in this space, recorded (and written to the history) if missing.
    For services that have asked the policy (``Action.CONSENT_RECORD``) already."""
    professional_id = actor.professional_id or ""
    for existing in _active_grants(db, patient_id):
        if existing.professional_id == professional_id and existing.role == "reader":
            return existing
    row = AccessGrant(
        patient_id=patient_id,
        professional_id=professional_id,
        role="reader",
        origin=origin,
        granted_at=utcnow(),
        granted_by=actor.label,
    )
    db.add(row)
    db.flush()
    _record(db, actor, "access.consent_recorded", patient_id, {"qui": actor.label, "origine": ORIGINS[origin]})
    return row


def revoke(db: Session, actor: Actor, patient_id: str, grant_id: str) -> AccessGrant:
    """The patient withdraws an authorisation or a status (at once)."""
    guard(db, actor, patient_id, Action.ACCESS_MANAGE, Resource("access"))
    row = db.get(AccessGrant, grant_id)
    if row is None or row.patient_id != patient_id:
        raise AccessError("Cette autorisation n'existe pas.")
    if row.revoked_at is None:
        row.revoked_at, row.revoked_by = utcnow(), actor.label
        _record(db, actor, "access.revoke", patient_id, {"qui": grant_label(db, row), "statut": ROLES[row.role]})
    return row


def block(db: Session, actor: Actor, patient_id: str, professional_id: str) -> AccessBlock:
    """ACC-3: the professional can no longer read (deposits still arrive)."""
    guard(db, actor, patient_id, Action.ACCESS_MANAGE, Resource("access"))
    pro = _professional(db, professional_id)
    current = _active_block(db, patient_id, professional_id)
    if current is not None:
        return current
    row = AccessBlock(patient_id=patient_id, professional_id=professional_id, blocked_at=utcnow())
    db.add(row)
    db.flush()
    _record(db, actor, "access.block", patient_id, {"qui": professional_name(pro)})
    return row


def unblock(db: Session, actor: Actor, patient_id: str, professional_id: str) -> None:
    """ACC-3: lifting a block does not restore earlier authorisations: a new consent is needed."""
    guard(db, actor, patient_id, Action.ACCESS_MANAGE, Resource("access"))
    pro = _professional(db, professional_id)
    current = _active_block(db, patient_id, professional_id)
    if current is None:
        return
    now = utcnow()
    current.lifted_at = now
    for row in _active_grants(db, patient_id):
        if row.professional_id == professional_id:
            row.revoked_at, row.revoked_by = now, actor.label
    _record(db, actor, "access.unblock", patient_id, {"qui": professional_name(pro)})


def _active_block(db: Session, patient_id: str, professional_id: str) -> AccessBlock | None:
    return db.scalar(
        select(AccessBlock).where(
            AccessBlock.patient_id == patient_id,
            AccessBlock.professional_id == professional_id,
            AccessBlock.lifted_at.is_(None),
        )
    )


def start_emergency(db: Session, actor: Actor, patient_id: str, reason: str) -> EmergencyAccess:
    """ACC-4: break-the-glass (or the SAMU regulator on a call), reason required, for two hours."""
    reason = " ".join(reason.split())
    if len(reason) < MIN_REASON:
        raise AccessError(f"Indiquez le motif de l'accès en urgence (au moins {MIN_REASON} caractères).")
    guard(db, actor, patient_id, Action.EMERGENCY_START, Resource("access"))
    pro = _professional(db, actor.professional_id or "")
    now = utcnow()
    row = EmergencyAccess(
        patient_id=patient_id,
        professional_id=pro.id,
        kind="samu" if pro.samu_regulator else "bris_de_glace",
        reason=reason[:500],
        started_at=now,
        expires_at=now + EMERGENCY_DURATION,
    )
    db.add(row)
    db.flush()
    _record(
        db,
        actor,
        "emergency.access",
        patient_id,
        {"qui": actor.label, "type": "SAMU" if row.kind == "samu" else "bris de glace", "motif": row.reason},
    )
    return row


def note_consultation(db: Session, actor: Actor, patient_id: str, decision: Decision) -> None:
    """TRC-3: the first time a professional consults a space under consent, status or emergency,
    the patient is told (by the notices job)."""
    if actor.kind != ActorKind.PROFESSIONAL or not actor.professional_id:
        return
    if not decision.rule.startswith("professional_") or decision.rule == "professional_own_documents":
        return
    key = (patient_id, actor.professional_id)
    if _consulted.get(db, key):  # a first consultation, once recorded, stays (it is never deleted)
        return
    if db.get(FirstAccess, key) is None:
        db.add(FirstAccess(patient_id=patient_id, professional_id=actor.professional_id, at=utcnow()))
        db.flush()
    _consulted.remember(db, key)


_consulted = CommittedFacts(50_000)  # (patient, professional) whose first consultation is recorded


@dataclass(frozen=True)
class Identity:
    """A person's INS identity traits (what TD0.2 gives back to those allowed), as plain data."""

    id: str
    ins: str
    ins_oid: str
    birth_name: str
    first_names: str
    used_name: str | None
    sex: str
    birth_date: date


def identity(patient: Patient) -> Identity:
    return Identity(
        patient.id,
        patient.ins,
        patient.ins_oid,
        patient.birth_name,
        patient.first_names,
        patient.used_name,
        patient.sex,
        patient.birth_date,
    )


@dataclass(frozen=True)
class Status:
    """What a professional learns about a space they looked up (TD0.2)."""

    patient: Identity
    allowed: bool
    reason: str
    medecin_traitant: bool
    administrator: bool
    blocked: bool
    emergency_until: datetime | None
    emergency_possible: bool


def status(db: Session, actor: Actor, patient: Patient, via: str = "portail") -> Status:
    """TD0.2: may this professional read the space, and why not; the hall decides, the look-up is recorded."""
    guard(db, actor, patient.id, Action.SPACE_FIND, Resource("space"))
    facts = facts_for(db, actor, patient.id)
    view = decide(actor, patient.id, Action.SPACE_VIEW, Resource("space"), facts)
    emergency = decide(actor, patient.id, Action.EMERGENCY_START, Resource("access"), facts)
    roles = {
        row.role
        for row in _active_grants(db, patient.id)
        if actor.professional_id and row.professional_id == actor.professional_id
    }
    until = db.scalar(
        select(EmergencyAccess.expires_at)
        .where(
            EmergencyAccess.patient_id == patient.id,
            EmergencyAccess.professional_id == (actor.professional_id or "-"),
            EmergencyAccess.expires_at > utcnow(),
        )
        .order_by(EmergencyAccess.expires_at.desc())
        .limit(1)
    )
    if not audit.seen_today(db, actor, str(Action.SPACE_FIND), patient.id):  # once a day, not per page (#15-10)
        _record(db, actor, str(Action.SPACE_FIND), patient.id, {"via": via, "accès": "oui" if view.allowed else "non"})
    return Status(
        patient=identity(patient),
        allowed=view.allowed,
        reason=view.reason,
        medecin_traitant="medecin_traitant" in roles,
        administrator=facts.administrator,
        blocked=facts.blocked,
        emergency_until=until if view.allowed else None,
        emergency_possible=emergency.allowed,
    )


@dataclass(frozen=True)
class GrantView:
    id: str
    who: str
    role: str
    origin: str
    since: datetime
    professional_id: str | None
    team: bool


@dataclass(frozen=True)
class EmergencyView:
    """An emergency access, as the patient reads it (ACC-4)."""

    at: datetime
    who: str
    kind: str
    reason: str
    until: datetime


@dataclass(frozen=True)
class Overview:
    """The patient's "Accès" page: who may read, who is blocked, emergency accesses."""

    grants: list[GrantView]
    blocked: list[tuple[str, str, datetime]]  # professional id, name, since
    emergencies: list[EmergencyView]


def grant_label(db: Session, row: AccessGrant) -> str:
    if row.care_team_id:
        team = db.get(CareTeam, row.care_team_id)
        return f"Équipe de soins {team.name}" if team else "Équipe de soins"
    pro = db.get(Professional, row.professional_id)
    return f"{professional_name(pro)} ({profession_label(pro.profession_code).lower()})" if pro else "Professionnel"


def overview(db: Session, actor: Actor, patient_id: str) -> Overview:
    guard(db, actor, patient_id, Action.SETTINGS_READ, Resource("access"))
    grants = [
        GrantView(
            row.id,
            grant_label(db, row),
            ROLES[row.role],
            ORIGINS.get(row.origin, row.origin),
            row.granted_at,
            row.professional_id,
            row.care_team_id is not None,
        )
        for row in _active_grants(db, patient_id)
    ]
    blocks = db.scalars(
        select(AccessBlock).where(AccessBlock.patient_id == patient_id, AccessBlock.lifted_at.is_(None))
    )
    blocked = [
        (b.professional_id, professional_name(_professional(db, b.professional_id)), b.blocked_at) for b in blocks
    ]
    return Overview(grants, blocked, _emergencies(db, patient_id))


def _emergencies(db: Session, patient_id: str, limit: int = 20) -> list[EmergencyView]:
    rows = db.scalars(
        select(EmergencyAccess)
        .where(EmergencyAccess.patient_id == patient_id)
        .order_by(EmergencyAccess.started_at.desc())
        .limit(limit)
    ).all()
    views = []
    for row in rows:
        pro = db.get(Professional, row.professional_id)
        views.append(
            EmergencyView(
                row.started_at,
                professional_name(pro) if pro else "Professionnel",
                EMERGENCY_KINDS.get(row.kind, row.kind),
                row.reason,
                row.expires_at,
            )
        )
    return views


def medecin_traitant_of(db: Session, patient_id: str) -> Professional | None:
    professional_id = db.scalar(
        select(AccessGrant.professional_id).where(
            AccessGrant.patient_id == patient_id,
            AccessGrant.role == "medecin_traitant",
            AccessGrant.revoked_at.is_(None),
        )
    )
    return db.get(Professional, professional_id) if professional_id else None


EMERGENCY_TO_PATIENT = (
    "Bonjour,\n\nUn professionnel de santé a accédé en urgence à votre espace santé Carnet le {when}.\n\n"
    "Vous trouverez le détail (qui, quand, pourquoi) dans l'historique de votre espace : {url}\n"
    "Si cet accès vous semble anormal, utilisez « Signaler » dans l'historique. Vous pouvez aussi régler "
    "l'accès en urgence dans Paramètres.\n\nPour votre sécurité, ce message ne contient aucune information "
    "médicale.\n\nCarnet — ne répondez pas à ce message."
)
EMERGENCY_TO_DOCTOR = (
    "Bonjour,\n\nUn accès en urgence a eu lieu le {when} à l'espace santé d'une personne dont vous êtes le "
    "médecin traitant.\n\nConnectez-vous à votre espace professionnel Carnet pour en voir le détail : {url}\n\n"
    "Carnet — ne répondez pas à ce message."
)
FIRST_CONSULTATION = (
    "Bonjour,\n\nUn professionnel de santé a consulté votre espace santé Carnet pour la première fois le {when}.\n\n"
    "Vous pouvez voir qui dans l'historique de votre espace, et gérer les accès dans « Accès » : {url}\n\n"
    "Pour votre sécurité, ce message ne contient aucune information médicale.\n\nCarnet — ne répondez pas à ce "
    "message."
)


def _when(at: datetime) -> str:
    return at.strftime("%d/%m/%Y à %H:%M (UTC)")


def send_notices(services: Services, now: datetime | None = None) -> int:
    """Job (ACC-4, TRC-3): e-mail the patient and their médecin traitant after each emergency access, and
    the patient after a first consultation by a professional. The tables are the queue."""
    now = now or utcnow()
    base = services.settings.base_url.rstrip("/")
    sent = 0
    with services.db.unit_of_work() as db:
        for row in db.scalars(select(EmergencyAccess).where(EmergencyAccess.notified_at.is_(None)).limit(500)):
            patient = db.get(Patient, row.patient_id)
            if patient is not None and patient.email:
                text = EMERGENCY_TO_PATIENT.format(
                    when=_when(row.started_at), url=f"{base}/espace/{patient.id}/historique"
                )
                services.mailer.send(Mail(patient.email, "Accès en urgence à votre espace santé", text))
                sent += 1
            doctor = medecin_traitant_of(db, row.patient_id)
            account = (
                db.scalar(select(Account).where(Account.professional_id == doctor.id)) if doctor is not None else None
            )
            if account is not None and doctor is not None and doctor.id != row.professional_id:
                text = EMERGENCY_TO_DOCTOR.format(when=_when(row.started_at), url=f"{base}/pro")
                services.mailer.send(Mail(account.email, "Accès en urgence à l'espace santé d'un patient", text))
                sent += 1
            row.notified_at = now
        for first in db.scalars(select(FirstAccess).where(FirstAccess.notified_at.is_(None)).limit(500)):
            patient = db.get(Patient, first.patient_id)
            settings = db.get(PatientSettings, first.patient_id)
            if patient is not None and patient.email and (settings is None or settings.notify_documents):
                text = FIRST_CONSULTATION.format(when=_when(first.at), url=f"{base}/espace/{patient.id}/acces")
                services.mailer.send(Mail(patient.email, "Première consultation de votre espace santé", text))
                sent += 1
            first.notified_at = now
    return sent
