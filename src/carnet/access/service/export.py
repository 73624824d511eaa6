"""Who may read the space, in its archive (ENR-7, ACC-1..4): every authorisation ever given — to professionals and
care teams, the médecin traitant and the administrators, active or withdrawn —, every block (lifted or not), every
emergency access, and the person's three choices for emergencies, as FHIR R4 ``Consent`` resources
(``carnet.access.model.fhir_map``).

What may be read is decided as on the « Accès » page: ``SETTINGS_READ`` on the space's access (the person, or a
legal representative). The archive says more than the page, which shows what holds now and the last emergency
accesses: it keeps the past too — grants are revoked and blocks lifted, never deleted, so the whole story is there.
These are a few rows per space; they are read in one unit of work, in the order they happened.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access.model import fhir_map
from carnet.access.model.fhir_map import Grantee
from carnet.access.service import grants
from carnet.access.tables import AccessBlock, AccessGrant, EmergencyAccess
from carnet.bootstrap import Services
from carnet.export.model.exported import Exported
from carnet.hall.actors import Actor
from carnet.hall.policy import Action, Resource
from carnet.hall.vocabulary import PARIS
from carnet.people.model.fhir_map import patient_element
from carnet.people.service import preferences
from carnet.people.service.export import enter_export
from carnet.people.tables import Patient, Professional
from carnet.storage.types import utcnow

SECTION = "Accès et consentements"
ORIGINS = {  # how an authorisation was given, told to whoever reads the archive
    "patient": "donnée dans l'espace",
    "oral": "consentement oral recueilli par le professionnel",
    "fhir": "enregistrée par le logiciel du professionnel",
}
CHOICES = (  # (the setting, its id's suffix, the choice in French)
    ("emergency_samu", "urgence-samu", "Accès en urgence par le médecin régulateur du SAMU"),
    ("emergency_professionals", "urgence-professionnels", "Accès en urgence (bris de glace) par un professionnel"),
    ("emergency_masked", "urgence-masques", "Documents masqués visibles lors d'un accès en urgence"),
)


def _day(moment: datetime) -> str:
    return f"{moment.astimezone(PARIS):%d/%m/%Y}"


def _professional(db: Session, professional_id: str | None) -> Grantee:
    pro = db.get(Professional, professional_id) if professional_id else None
    return Grantee(grants.professional_name(pro), pro.rpps) if pro else Grantee("Professionnel")


def _grants(db: Session, patient_id: str, patient: dict[str, object]) -> list[Exported]:
    rows = db.scalars(
        select(AccessGrant).where(AccessGrant.patient_id == patient_id).order_by(AccessGrant.granted_at, AccessGrant.id)
    )
    found = []
    for row in rows:
        who = Grantee(
            grants.grant_label(db, row), _professional(db, row.professional_id).rpps if not row.care_team_id else ""
        )
        resource = fhir_map.consent_of_grant(row.id, row.role, row.origin, row.granted_at, row.revoked_at, who, patient)
        role = grants.ROLES.get(row.role, row.role)
        when = (
            f"depuis le {_day(row.granted_at)}"
            if row.revoked_at is None
            else f"du {_day(row.granted_at)} au {_day(row.revoked_at)} (retirée)"
        )
        line = f"{who.label} — {role} {when} ; autorisation {ORIGINS.get(row.origin, row.origin)}"
        found.append(Exported(resource, (), line, SECTION))
    return found


def _blocks(db: Session, patient_id: str, patient: dict[str, object]) -> list[Exported]:
    rows = db.scalars(
        select(AccessBlock).where(AccessBlock.patient_id == patient_id).order_by(AccessBlock.blocked_at, AccessBlock.id)
    )
    found = []
    for row in rows:
        who = _professional(db, row.professional_id)
        resource = fhir_map.consent_of_block(row.id, row.blocked_at, row.lifted_at, who, patient)
        lifted = f" (débloqué le {_day(row.lifted_at)})" if row.lifted_at is not None else ""
        found.append(Exported(resource, (), f"{who.label} — bloqué le {_day(row.blocked_at)}{lifted}", SECTION))
    return found


def _emergencies(db: Session, patient_id: str, patient: dict[str, object]) -> list[Exported]:
    rows = db.scalars(
        select(EmergencyAccess)
        .where(EmergencyAccess.patient_id == patient_id)
        .order_by(EmergencyAccess.started_at, EmergencyAccess.id)
    )
    now = utcnow()
    found = []
    for row in rows:
        who = _professional(db, row.professional_id)
        resource = fhir_map.consent_of_emergency(
            row.id, row.kind, row.reason, row.started_at, row.expires_at, now, who, patient
        )
        at = row.started_at.astimezone(PARIS)
        kind = grants.EMERGENCY_KINDS.get(row.kind, row.kind)
        line = f"Accès en urgence ({kind}) de {who.label} le {at:%d/%m/%Y à %H:%M} — motif : « {row.reason} »"
        found.append(Exported(resource, (), line, SECTION))
    return found


def export_resources(services: Services, actor: Actor, patient_id: str) -> Iterator[Exported]:
    """The space's consents and access grants, past and present (see the module's docstring)."""
    with services.db.unit_of_work() as db:
        enter_export(db, actor, patient_id, Action.SETTINGS_READ, Resource("access"))
        row = db.get(Patient, patient_id)
        assert row is not None  # the policy refuses unknown spaces
        patient = patient_element(row.id, row.ins, row.ins_oid)
        items = [*_grants(db, patient_id, patient), *_blocks(db, patient_id, patient)]
        items += _emergencies(db, patient_id, patient)
        settings = preferences.settings_of(db, patient_id)
        for name, suffix, choice in CHOICES:
            allowed = bool(getattr(settings, name))
            resource = fhir_map.consent_of_choice(f"{patient_id}-{suffix}", allowed, choice, patient)
            line = f"{choice} : {'oui' if allowed else 'non'}"
            items.append(Exported(resource, (), line, SECTION))
    yield from items
