"""The professional's side of the portal (ACC-1..4): find a patient by INS and identity traits, the
TD0.2 status of their space, "Mes patients", and the emergency accesses a médecin traitant is told of.

Nothing here decides access: every patient-specific answer goes through the hall (``guard``) or
``access.status`` (which does); a professional learns a patient's name only where the policy lets them
open the space.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from carnet.access.service import grants as access
from carnet.access.tables import AccessGrant, CareTeamMember, EmergencyAccess
from carnet.hall import audit
from carnet.hall.actors import Actor
from carnet.hall.guard import AccessDenied, guard, refuse
from carnet.hall.policy import Action, Resource
from carnet.people.service import lookup as people
from carnet.people.tables import Patient, Professional
from carnet.storage.types import utcnow

NO_SPACE = "Aucun espace santé ouvert ne correspond à cet INS."
TRAITS_MISMATCH = "Les traits d'identité ne correspondent pas à cet INS."
MY_PATIENTS_LIMIT = 50
EMERGENCY_WINDOW = timedelta(days=30)
EMERGENCY_KINDS = {"bris_de_glace": "bris de glace", "samu": "SAMU (régulation)"}


class SearchRefused(Exception):
    """A look-up that found nothing the professional may know of; ``message`` is French."""

    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


def normalise_trait(text: str) -> str:
    """« Marie-Ange » → « marie ange »: no accents, no case, hyphens and apostrophes as spaces."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(char for char in decomposed if not unicodedata.combining(char)).casefold()
    return " ".join(re.sub(r"[^0-9a-z]+", " ", plain).split())


def _first_name_matches(typed: str, first_names: str) -> bool:
    """The first first name of the INS, or the whole list of first names."""
    wanted = normalise_trait(typed)
    listed = [name for name in re.split(r"[\s,]+", first_names.strip()) if name]
    candidates = {normalise_trait(first_names)} | ({normalise_trait(listed[0])} if listed else set())
    return bool(wanted) and wanted in candidates


def traits_match(patient: Patient, birth_name: str, first_name: str, birth_date: date) -> bool:
    return (
        bool(normalise_trait(birth_name))
        and normalise_trait(birth_name) == normalise_trait(patient.birth_name)
        and _first_name_matches(first_name, patient.first_names)
        and birth_date == patient.birth_date
    )


def find(db: Session, actor: Actor, ins: str, birth_name: str, first_name: str, birth_date: date) -> access.Status:
    """TD0.2: the space of the person with this INS — when the identity traits match — and the actor's
    status there. An unknown INS and a space that is not open give the same answer; the look-up is in the
    patient's history either way."""
    patient = people.patient_by_ins(db, ins)
    try:
        if patient is None:
            guard(db, actor, "inconnu", Action.SPACE_FIND, Resource("space"))
        assert patient is not None  # the policy denies unknown spaces
        status = access.status(db, actor, patient)
    except AccessDenied:
        raise SearchRefused(NO_SPACE, 404) from None
    if not traits_match(patient, birth_name, first_name, birth_date):
        refuse(db, actor, str(Action.SPACE_FIND), patient.id, TRAITS_MISMATCH, Resource("space"))
        raise SearchRefused(TRAITS_MISMATCH, 400)
    audit.record(db, actor, str(Action.SPACE_FIND), patient_id=patient.id, resource_type="space")
    return status


def status_of(db: Session, actor: Actor, patient_id: str) -> access.Status:
    """The actor's TD0.2 status in the space ``patient_id`` (AccessDenied when it is not open)."""
    patient = db.get(Patient, patient_id)
    if patient is None:
        guard(db, actor, patient_id, Action.SPACE_FIND, Resource("space"))
    assert patient is not None  # the policy denies unknown spaces
    return access.status(db, actor, patient)


def open_space(db: Session, actor: Actor, patient_id: str) -> access.Status:
    """Enter the space to read it: the policy's SPACE_VIEW (a refusal is recorded), then the status."""
    guard(db, actor, patient_id, Action.SPACE_VIEW, Resource("space"))
    return status_of(db, actor, patient_id)


def role_label(status: access.Status) -> str:
    """Why the professional may (or may not) read, in French (TD0.2)."""
    if not status.allowed:
        return "Accès bloqué par la personne" if status.blocked else "Non autorisé"
    if status.medecin_traitant:
        return "Médecin traitant"
    if status.administrator:
        return "Administrateur de l'espace"
    if status.emergency_until is not None:
        return "Accès en urgence"
    return "Autorisé"


@dataclass(frozen=True)
class PatientLine:
    patient_id: str
    name: str
    birth_date: date
    role: str


def _name(patient: Patient) -> str:
    return f"{patient.first_names} {patient.used_name or patient.birth_name}"


def my_patients(db: Session, actor: Actor, limit: int = MY_PATIENTS_LIMIT) -> tuple[list[PatientLine], bool]:
    """Spaces where the professional (or a care team they are in) holds an active authorisation, most
    recent first, each one checked by the policy; ``True`` when there are more than ``limit``."""
    if not actor.professional_id:
        return [], False
    teams = select(CareTeamMember.team_id).where(CareTeamMember.professional_id == actor.professional_id)
    rows = db.execute(
        select(AccessGrant.patient_id)
        .where(
            AccessGrant.revoked_at.is_(None),
            or_(AccessGrant.professional_id == actor.professional_id, AccessGrant.care_team_id.in_(teams)),
        )
        .order_by(AccessGrant.granted_at.desc())
    ).all()
    patient_ids = list(dict.fromkeys(patient_id for (patient_id,) in rows))
    lines = []
    for patient_id in patient_ids[:limit]:
        try:
            status = status_of(db, actor, patient_id)
        except AccessDenied:
            continue
        if status.allowed:
            patient = status.patient
            lines.append(PatientLine(patient.id, _name(patient), patient.birth_date, role_label(status)))
    return lines, len(patient_ids) > limit


@dataclass(frozen=True)
class EmergencyLine:
    patient_id: str
    patient_name: str
    professional: str
    kind: str
    reason: str
    started_at: datetime
    expires_at: datetime


def emergencies_for_my_patients(db: Session, actor: Actor, limit: int = 20) -> list[EmergencyLine]:
    """ACC-4: emergency accesses of the last 30 days by others to the spaces of the patients whose médecin
    traitant the actor is — each space checked by the policy (a médecin traitant the patient blocked sees
    nothing)."""
    if not actor.professional_id:
        return []
    mine = select(AccessGrant.patient_id).where(
        AccessGrant.professional_id == actor.professional_id,
        AccessGrant.role == "medecin_traitant",
        AccessGrant.revoked_at.is_(None),
    )
    rows = db.scalars(
        select(EmergencyAccess)
        .where(
            EmergencyAccess.patient_id.in_(mine),
            EmergencyAccess.professional_id != actor.professional_id,
            EmergencyAccess.started_at >= utcnow() - EMERGENCY_WINDOW,
        )
        .order_by(EmergencyAccess.started_at.desc())
        .limit(limit)
    ).all()
    lines = []
    for row in rows:
        try:
            status = status_of(db, actor, row.patient_id)
        except AccessDenied:
            continue
        if not status.allowed:
            continue
        patient, pro = status.patient, db.get(Professional, row.professional_id)
        lines.append(
            EmergencyLine(
                patient.id,
                _name(patient),
                access.professional_name(pro) if pro else "Professionnel",
                EMERGENCY_KINDS.get(row.kind, row.kind),
                row.reason,
                row.started_at,
                row.expires_at,
            )
        )
    return lines
