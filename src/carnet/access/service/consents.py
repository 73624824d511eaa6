"""The professional's side of access over FHIR (ACC-1, ACC-2), as use cases: the TD0.2 look-up and the
consents a professional's software records and reads back.

Each function opens its unit of work, asks the policy (through the hall) and records what was done in the
patient's history; it returns plain views (``Status``, ``ConsentView``) that ``carnet.access.fhir`` turns
into FHIR resources. A refusal of the policy comes out as ``AccessDenied``: its decision's ``rule`` says
why (``professionals_only``, ``consent_not_own``, ``unknown_space``, ``blocked``…), the interface words it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access.service import grants
from carnet.access.service.grants import Status
from carnet.access.tables import AccessGrant
from carnet.bootstrap import Services
from carnet.hall import audit
from carnet.hall.actors import Actor, ActorKind
from carnet.hall.guard import AccessDenied, guard
from carnet.hall.policy import Action, Resource
from carnet.hall.vocabulary import PatientStatus
from carnet.people.service import lookup as people
from carnet.people.tables import Patient, Professional

SERVICE_SPACE = audit.NO_PATIENT_CHAIN  # what the policy is asked about when no space has this INS
TD02 = "FHIR (TD0.2)"


def _space_of(patient: Patient | None) -> str:
    """What the policy is asked about: the space of the INS, or — none has it — the service's (it says so)."""
    return patient.id if patient is not None else SERVICE_SPACE


def _open_space(db: Session, ins: str) -> Patient | None:
    patient = people.patient_by_ins(db, ins)
    return patient if patient is not None and patient.status == PatientStatus.ACTIVE else None


# ---------------------------------------------------------------------------------------------- TD0.2


@dataclass(frozen=True)
class LookUp:
    """TD0.2: the caller's status in the open space of an INS (``None``: no open space has it) and, when
    they may not read it, why — ``establishment``, ``blocked`` or ``no-consent``."""

    status: Status | None
    refusal: str = ""


def _refusal(actor: Actor, status: Status) -> str:
    if status.allowed:
        return ""
    if actor.kind != ActorKind.PROFESSIONAL:
        return "establishment"
    return "blocked" if status.blocked else "no-consent"


def find_space(services: Services, actor: Actor, ins: str) -> LookUp:
    """TD0.2: does an open space exist for this INS, may the caller read it, are they the médecin traitant.
    The look-up is recorded: in the patient's history, or on the service's chain (without the INS) when no
    space is open for it."""
    with services.db.unit_of_work() as db:
        patient = _open_space(db, ins)
        if patient is None:
            audit.record(
                db,
                actor,
                str(Action.SPACE_FIND),
                outcome="deny",
                reason="Aucun espace ouvert pour l'INS demandé.",
                resource_type="space",
                details={"via": TD02},
            )
            return LookUp(None)
        try:
            status = grants.status(db, actor, patient, via=TD02)
        except AccessDenied:  # closed meanwhile: the hall has recorded the refusal
            return LookUp(None)
        return LookUp(status, _refusal(actor, status))


def space_status(services: Services, actor: Actor, patient_id: str) -> Status | None:
    """The ``fullUrl`` of a TD0.2 match: the caller's status in that space, when they may read it (``None``
    otherwise, whether the space exists or not)."""
    with services.db.unit_of_work() as db:
        patient = db.get(Patient, patient_id[:64])
        if patient is None or patient.status != PatientStatus.ACTIVE:
            return None
        try:
            status = grants.status(db, actor, patient, via="FHIR")
        except AccessDenied:
            return None
        return status if status.allowed else None


# --------------------------------------------------------------------------------------------- Consent


@dataclass(frozen=True)
class ConsentView:
    """A stored authorisation of a professional (ACC-1, ACC-2), as a Consent tells it."""

    id: str
    origin: str  # patient | oral | fhir
    role: str  # reader | administrator | medecin_traitant
    granted_at: datetime
    revoked_at: datetime | None
    patient_ins: str
    patient_ins_oid: str
    professional_rpps: str
    professional_name: str | None


@dataclass(frozen=True)
class RecordedConsent:
    consent: ConsentView
    created: bool  # False: the professional's consent was already recorded (the same one comes back)


@dataclass(frozen=True)
class ConsentSearch:
    space_found: bool  # False: no open space has this INS (nothing else is said)
    consents: list[ConsentView]


def _view(db: Session, row: AccessGrant, patient: Patient) -> ConsentView:
    pro = db.get(Professional, row.professional_id) if row.professional_id else None
    return ConsentView(
        row.id,
        row.origin,
        row.role,
        row.granted_at,
        row.revoked_at,
        patient.ins,
        patient.ins_oid,
        pro.rpps if pro else "",
        grants.professional_name(pro) if pro else None,
    )


def _named(db: Session, rpps: str) -> str | None:
    """The directory's professional holding this RPPS (the one a consent names), if any."""
    return db.scalar(select(Professional.id).where(Professional.rpps == rpps))


def _active_consent(db: Session, patient_id: str, professional_id: str | None) -> str | None:
    return db.scalar(
        select(AccessGrant.id).where(
            AccessGrant.patient_id == patient_id,
            AccessGrant.professional_id == professional_id,
            AccessGrant.role == "reader",
            AccessGrant.revoked_at.is_(None),
        )
    )


def record_fhir_consent(services: Services, actor: Actor, ins: str, rpps: str) -> RecordedConsent:
    """ACC-1: the professional's software records the patient's consent to their reading the space (origin
    « fhir »). The policy decides, in this order: an identified professional only, for themselves only (the
    consent names their RPPS), an open space, not blocked. ``AccessDenied`` otherwise (recorded)."""
    with services.db.unit_of_work() as db:
        patient = people.patient_by_ins(db, ins)
        resource = Resource("consent", author_id=_named(db, rpps))
        guard(db, actor, _space_of(patient), Action.CONSENT_RECORD, resource)
        assert patient is not None  # the policy denies unknown spaces
        before = _active_consent(db, patient.id, actor.professional_id)
        row = grants.consent_row(db, actor, patient.id, "fhir")
        return RecordedConsent(_view(db, row, patient), created=row.id != before)


def _record_reading(db: Session, actor: Actor, patient_id: str, consent_id: str | None, found: int) -> None:
    audit.record(
        db,
        actor,
        str(Action.CONSENT_READ),
        patient_id=patient_id,
        resource_type="consent",
        resource_id=consent_id,
        details={"via": "FHIR", "consentements": found},
    )


def read_consent(services: Services, actor: Actor, consent_id: str) -> ConsentView | None:
    """A consent, to the professional it authorises only; ``None`` to anyone else and for an unknown id
    alike (the same 404). The reading — or the refused attempt — is in the patient's history."""
    with services.db.unit_of_work() as db:
        row = db.get(AccessGrant, consent_id[:64])
        if row is None:
            return None
        try:
            guard(
                db,
                actor,
                row.patient_id,
                Action.CONSENT_READ,
                Resource("consent", row.id, author_id=row.professional_id),
            )
        except AccessDenied:
            return None
        patient = db.get(Patient, row.patient_id)
        assert patient is not None  # the policy denies unknown spaces
        _record_reading(db, actor, patient.id, row.id, 1)
        return _view(db, row, patient)


def search_consents(services: Services, actor: Actor, ins: str, status: str | None = None) -> ConsentSearch:
    """The caller's consents in the space of this INS, newest first (``status``: active | inactive | None for
    both). ``AccessDenied`` for whoever is not an identified professional (whatever the INS); an INS without
    an open space finds nothing. The reading is in the patient's history."""
    with services.db.unit_of_work() as db:
        patient = people.patient_by_ins(db, ins)
        try:
            guard(db, actor, _space_of(patient), Action.CONSENT_READ, Resource("consents"))
        except AccessDenied as denied:
            if denied.decision.rule != "unknown_space":
                raise
            return ConsentSearch(False, [])
        assert patient is not None  # the policy denies unknown spaces
        query = select(AccessGrant).where(
            AccessGrant.patient_id == patient.id, AccessGrant.professional_id == actor.professional_id
        )
        if status == "active":
            query = query.where(AccessGrant.revoked_at.is_(None))
        elif status == "inactive":
            query = query.where(AccessGrant.revoked_at.is_not(None))
        rows = db.scalars(query.order_by(AccessGrant.granted_at.desc(), AccessGrant.id)).all()
        _record_reading(db, actor, patient.id, None, len(rows))
        return ConsentSearch(True, [_view(db, row, patient) for row in rows])
