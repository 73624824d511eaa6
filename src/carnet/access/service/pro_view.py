"""The professional's side of the portal (ACC-1..4, TRC-2): find a patient by INS and identity traits, the
TD0.2 status of their space, "Mes patients", the emergency accesses a médecin traitant is told of, the
documents of a space (list, consultation, deposit) and its history — one use case per page, each in its own
unit of work, returning plain views.

Nothing here decides access: every patient-specific answer goes through the hall (``guard``) or
``access.status`` (which does); a professional learns a patient's name only where the policy lets them
open the space. These pages are for professionals: anyone else gets ``NotAProfessional``.
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
from carnet.bootstrap import Services
from carnet.errors import CarnetError
from carnet.hall import audit
from carnet.hall.actors import Actor, ActorKind
from carnet.hall.guard import AccessDenied, guard, refuse
from carnet.hall.policy import Action, Resource
from carnet.history import service as history
from carnet.people.model.professions import profession_label
from carnet.people.service import lookup as people
from carnet.people.tables import Patient, Professional
from carnet.storage.types import utcnow
from carnet.vault.model import documents as rules
from carnet.vault.service import documents as vault
from carnet.vault.service.documents import DocumentContent, DocumentView, Listing, SearchFilters

NO_SPACE = "Aucun espace santé ouvert ne correspond à cet INS."
TRAITS_MISMATCH = "Les traits d'identité ne correspondent pas à cet INS."
MY_PATIENTS_LIMIT = 50
EMERGENCY_WINDOW = timedelta(days=30)
EMERGENCY_KINDS = {"bris_de_glace": "bris de glace", "samu": "SAMU (régulation)"}


class NotAProfessional(CarnetError):
    """The professional's pages are for professionals: ``actor`` is sent to their own home."""

    def __init__(self, actor: Actor) -> None:
        super().__init__("Cette page est réservée aux professionnels de santé.")
        self.actor = actor

    def __reduce__(self) -> tuple[type[NotAProfessional], tuple[Actor]]:
        return (type(self), (self.actor,))


def _professionals_only(actor: Actor) -> None:
    if actor.kind != ActorKind.PROFESSIONAL:
        raise NotAProfessional(actor)


class SearchRefused(CarnetError):
    """A look-up that found nothing the professional may know of; ``message`` is French."""

    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code

    def __reduce__(self) -> tuple[type[SearchRefused], tuple[str, int]]:
        return (type(self), (self.message, self.status_code))


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


def _name(patient: access.Identity) -> str:
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


# ------------------------------------------------------------------ the pages' use cases


@dataclass(frozen=True)
class ProfessionalView:
    """Who is working, as their pages say it."""

    rpps: str | None
    profession: str
    specialty: str | None
    city: str | None
    samu_regulator: bool


def _professional_view(db: Session, actor: Actor) -> ProfessionalView | None:
    pro = db.get(Professional, actor.professional_id) if actor.professional_id else None
    if pro is None:
        return None
    return ProfessionalView(
        pro.rpps, profession_label(pro.profession_code), pro.specialty, pro.city, pro.samu_regulator
    )


@dataclass(frozen=True)
class SpaceStatus:
    """The professional's TD0.2 status in a space; ``patient`` is shown only when ``allowed``."""

    patient: access.Identity
    allowed: bool
    reason: str
    medecin_traitant: bool
    administrator: bool
    blocked: bool
    emergency_until: datetime | None
    emergency_possible: bool
    role: str


def _status_view(status: access.Status) -> SpaceStatus:
    return SpaceStatus(
        patient=status.patient,
        allowed=status.allowed,
        reason=status.reason,
        medecin_traitant=status.medecin_traitant,
        administrator=status.administrator,
        blocked=status.blocked,
        emergency_until=status.emergency_until,
        emergency_possible=status.emergency_possible,
        role=role_label(status),
    )


@dataclass(frozen=True)
class Space:
    """A page about one space: the professional's status there, and who they are."""

    status: SpaceStatus
    professional: ProfessionalView | None


def _space(db: Session, actor: Actor, patient_id: str, enter: bool = False) -> Space:
    status = open_space(db, actor, patient_id) if enter else status_of(db, actor, patient_id)
    return Space(_status_view(status), _professional_view(db, actor))


@dataclass(frozen=True)
class Home:
    professional: ProfessionalView | None
    patients: list[PatientLine]
    more_patients: bool
    emergencies: list[EmergencyLine]


def home(services: Services, actor: Actor) -> Home:
    """The professional's home: who they are, « Mes patients », the emergency accesses they are told of."""
    _professionals_only(actor)
    with services.db.unit_of_work() as db:
        patients, more = my_patients(db, actor)
        return Home(_professional_view(db, actor), patients, more, emergencies_for_my_patients(db, actor))


def find_space(services: Services, actor: Actor, ins: str, birth_name: str, first_name: str, birth_date: date) -> str:
    """TD0.2 from the portal: the id of the space found (``SearchRefused`` otherwise)."""
    _professionals_only(actor)
    with services.db.unit_of_work() as db:
        return find(db, actor, ins, birth_name, first_name, birth_date).patient.id


def space(services: Services, actor: Actor, patient_id: str) -> Space:
    """The status page of a space (and the deposit form): ``AccessDenied`` when it is not open."""
    _professionals_only(actor)
    with services.db.unit_of_work() as db:
        return _space(db, actor, patient_id)


def record_oral_consent(services: Services, actor: Actor, patient_id: str) -> None:
    """ACC-1: the professional records that the person said yes, orally."""
    _professionals_only(actor)
    with services.db.unit_of_work() as db:
        access.record_consent(db, actor, patient_id, "oral")


def start_emergency(services: Services, actor: Actor, patient_id: str, reason: str) -> None:
    """ACC-4: break-the-glass (or the SAMU regulator on a call); ``AccessError`` (French) for a bad reason."""
    _professionals_only(actor)
    with services.db.unit_of_work() as db:
        access.start_emergency(db, actor, patient_id, reason)


@dataclass(frozen=True)
class SpaceDocuments:
    space: Space
    listing: Listing


def documents(services: Services, actor: Actor, patient_id: str, filters: SearchFilters) -> SpaceDocuments:
    """The documents the policy lets this professional see in the space, one page of them."""
    _professionals_only(actor)
    with services.db.unit_of_work() as db:
        entered = _space(db, actor, patient_id, enter=True)
        return SpaceDocuments(entered, vault.search_page(services, db, actor, patient_id, filters))


@dataclass(frozen=True)
class Deposit:
    """A document deposited from the portal, as the form gave it."""

    filename: str
    mime_type: str  # what the file says it is (the vault checks the bytes)
    body: bytes
    type_code: str  # LOINC (JDV_J07)
    title: str = ""


def deposit(services: Services, actor: Actor, patient_id: str, sent: Deposit) -> bool:
    """ACC-3, VLT-2: professionals feed the space — even one who cannot read it (blocked, not authorised).
    ``True`` when the professional may read the space; ``DocumentError`` (French) when the document is refused."""
    _professionals_only(actor)
    with services.db.unit_of_work() as db:
        allowed = status_of(db, actor, patient_id).allowed
    doc_type = rules.document_type(rules.LOINC, sent.type_code)
    if sent.mime_type not in rules.UPLOAD_TYPES:  # the portal takes the patient's formats; CDA comes over MHD
        rules.check_body(sent.body, sent.mime_type)
    new = vault.NewDocument(
        patient_id=patient_id,
        type_system=rules.LOINC,
        type_code=sent.type_code,
        title=sent.title.strip() or doc_type.display,
        mime_type=sent.mime_type,
        body=sent.body,
        filename=sent.filename,
    )
    vault.deposit_many(services, actor, [new])
    return allowed


@dataclass(frozen=True)
class SpaceDocument:
    space: Space
    document: DocumentView
    kind: str | None  # how it is previewed (``rules.preview_kind``)
    text: str | None  # a text document, shown on the page itself


def document(services: Services, actor: Actor, patient_id: str, document_id: str) -> SpaceDocument:
    """One document's page: ``AccessDenied`` (with its reason) when the space may not be entered,
    ``DocumentNotFound`` when the document is not there or may not be read."""
    _professionals_only(actor)
    with services.db.unit_of_work() as db:
        entered = _space(db, actor, patient_id, enter=True)
        row, _, mime = vault.read(
            services,
            db,
            actor,
            document_id,
            preview=True,
            action="document.metadata",
            space=patient_id,
            with_body=False,
        )
        kind = rules.preview_kind(mime)
        text = None
        if kind == "text":  # shown on this page itself: this is the consultation
            _, body, _ = vault.read(services, db, actor, document_id, preview=True, space=patient_id)
            text = body.decode("utf-8", errors="replace")
        return SpaceDocument(entered, vault.view_of(row), kind, text)


def document_content(
    services: Services, actor: Actor, patient_id: str, document_id: str, *, preview: bool
) -> DocumentContent:
    """The document itself, for its preview (``document.read``) or its download (``document.download``)."""
    _professionals_only(actor)
    with services.db.unit_of_work() as db:
        open_space(db, actor, patient_id)
        action = "document.read" if preview else "document.download"
        return vault.read_content(services, db, actor, document_id, preview=preview, action=action, space=patient_id)


@dataclass(frozen=True)
class SpaceHistory:
    space: Space
    history: history.HistoryView


def space_history(services: Services, actor: Actor, patient_id: str, query: history.HistoryQuery) -> SpaceHistory:
    """TRC-2: the history of the space as the policy lets this professional read it (reading it is recorded)."""
    _professionals_only(actor)
    with services.db.unit_of_work() as db:
        status = status_of(db, actor, patient_id)
        view = history.history_view(db, actor, patient_id, query)
        return SpaceHistory(Space(_status_view(status), _professional_view(db, actor)), view)
