"""The hall every request walks through: policy decision + audit, in one transaction (ACC-5).

A service calls ``guard`` before touching a patient's data. Allowed: the caller goes on and
records what it did with ``audit.record`` in the same transaction. Denied: the refusal itself is
recorded (kept even when the caller's transaction rolls back) and ``AccessDenied`` carries the
reason to the interface.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import and_, bindparam, exists, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from carnet.access.tables import AccessBlock, AccessGrant, CareTeamMember, EmergencyAccess
from carnet.catalogue.model.apps import AppStatus
from carnet.catalogue.tables import App, AppConsent
from carnet.family.tables import Caregiver, LegalRepresentative
from carnet.hall import audit
from carnet.hall.actors import Actor, ActorKind
from carnet.hall.policy import Action, Decision, Facts, Resource, decide
from carnet.people.model.identifiers import is_minor
from carnet.people.tables import Patient, PatientSettings, Professional
from carnet.storage.base import columns
from carnet.storage.types import utcnow


class AccessDenied(Exception):
    def __init__(self, decision: Decision) -> None:
        super().__init__(decision.reason)
        self.decision = decision


_P = columns(Patient)
_PATIENT = select(_P.status, _P.birth_date, _P.attached_to_id).where(_P.id == bindparam("patient"))


def _patient(db: Session, patient_id: str) -> tuple[str, date, str | None] | None:
    """The space's status, and what tells whether a person represents its holder: from the session when it holds the
    patient already, else three columns read (not the whole row: every request asks)."""
    known = db.identity_map.get(identity_key(Patient, patient_id))
    if isinstance(known, Patient):
        return known.status, known.birth_date, known.attached_to_id
    row = db.execute(_PATIENT, {"patient": patient_id}).first()
    return None if row is None else (row.status, row.birth_date, row.attached_to_id)


def facts_for(db: Session, actor: Actor, patient_id: str) -> Facts:
    """Gather what the policy needs to know about this actor and this space."""
    patient = _patient(db, patient_id)
    if patient is None:
        return Facts(patient_exists=False)
    status, birth_date, attached_to_id = patient
    if actor.kind == ActorKind.APP:
        return Facts(patient_status=status, app_connected=app_connected(db, actor, patient_id))
    if actor.patient_id is not None and actor.patient_id != patient_id:
        representative = is_minor(birth_date, utcnow().date()) and (
            attached_to_id == actor.patient_id
            or db.get(LegalRepresentative, (patient_id, actor.patient_id)) is not None
        )
        caregiver = db.get(Caregiver, (patient_id, actor.patient_id)) is not None
        return Facts(patient_status=status, legal_representative=representative, caregiver=caregiver)
    if actor.professional_id is None:
        return Facts(patient_status=status)
    return professional_facts(db, actor.professional_id, patient_id, status)


_CONSENT, _APP = columns(AppConsent), columns(App)
_APP_CONNECTED = (
    select(_CONSENT.id)
    .join(_APP.id.table, _APP.id == _CONSENT.app_id)
    .where(
        _CONSENT.app_id == bindparam("app"),
        _CONSENT.patient_id == bindparam("patient"),
        _CONSENT.revoked_at.is_(None),
        _CONSENT.scope_version == _APP.scope_version,
        _APP.status == AppStatus.EN_LIGNE,
        _APP.referenced_until > bindparam("now"),
    )
    .limit(1)
)  # the facts' statements are built once: every request asks them (issues #13, #14)


def app_connected(db: Session, actor: Actor, patient_id: str) -> bool:
    """CAT-3: a live consent of this space to this app (``actor.id``), at the app's current scopes, and the app
    EN_LIGNE with its referencing not expired — read at every act, so a disconnection or a suspension counts at once."""
    params = {"app": actor.id, "patient": patient_id, "now": utcnow()}
    return db.execute(_APP_CONNECTED, params).first() is not None


_GRANT, _MEMBER, _BLOCK, _EMERGENCY_ACCESS = (
    columns(AccessGrant),
    columns(CareTeamMember),
    columns(AccessBlock),
    columns(EmergencyAccess),
)
_SETTINGS, _PROFESSIONAL = columns(PatientSettings), columns(Professional)
_GRANTS = select(_GRANT.role, _GRANT.granted_at, _GRANT.care_team_id).where(
    _GRANT.patient_id == bindparam("patient"),
    _GRANT.revoked_at.is_(None),
    or_(
        _GRANT.professional_id == bindparam("pro"),
        _GRANT.care_team_id.in_(select(_MEMBER.team_id).where(_MEMBER.professional_id == bindparam("pro"))),
    ),
)
_ITS_BLOCK = and_(_BLOCK.patient_id == bindparam("patient"), _BLOCK.professional_id == bindparam("pro"))
_ITS_SETTINGS = _SETTINGS.patient_id == bindparam("patient")
# Everything but the consents in one statement (one round trip on PostgreSQL; a NULL toggle: the settings were never
# changed, the default holds).
_OTHER_FACTS = select(
    exists().where(_ITS_BLOCK, _BLOCK.lifted_at.is_(None)).label("blocked"),
    select(func.max(_BLOCK.lifted_at)).where(_ITS_BLOCK).scalar_subquery().label("last_lift"),
    select(_EMERGENCY_ACCESS.kind)
    .where(
        _EMERGENCY_ACCESS.patient_id == bindparam("patient"),
        _EMERGENCY_ACCESS.professional_id == bindparam("pro"),
        _EMERGENCY_ACCESS.expires_at > bindparam("now"),
    )
    .order_by(_EMERGENCY_ACCESS.expires_at.desc())
    .limit(1)
    .scalar_subquery()
    .label("emergency"),
    select(_PROFESSIONAL.samu_regulator).where(_PROFESSIONAL.id == bindparam("pro")).scalar_subquery().label("samu"),
    *(
        select(toggle).where(_ITS_SETTINGS).scalar_subquery().label(toggle.name)
        for toggle in (_SETTINGS.emergency_samu, _SETTINGS.emergency_professionals, _SETTINGS.emergency_masked)
    ),
)


def professional_facts(db: Session, professional_id: str, patient_id: str, status: str) -> Facts:
    """Consent, status, blocking, emergency and the patient's emergency toggles (ACC-1..4): two statements."""
    params = {"patient": patient_id, "pro": professional_id, "now": utcnow()}
    grants = db.execute(_GRANTS, params).all()
    other = db.execute(_OTHER_FACTS, params).one()
    # ACC-3: after a block is lifted only a new consent counts; a team's earlier one no longer covers them.
    last_lift = other.last_lift
    roles = {role for role, at, team in grants if team is None or last_lift is None or at > last_lift}
    return Facts(
        patient_status=status,
        consent=bool(roles),
        administrator=bool(roles & {"administrator", "medecin_traitant"}),
        blocked=bool(other.blocked),
        emergency=other.emergency,
        samu_regulator=bool(other.samu),
        emergency_samu=other.emergency_samu if other.emergency_samu is not None else True,
        emergency_professionals=other.emergency_professionals if other.emergency_professionals is not None else True,
        emergency_masked=bool(other.emergency_masked),
    )


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
