"""SQLAlchemy tables of Carnet. The schema itself is created by Alembic migrations."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from carnet.storage.types import UTCDateTime, new_id, utcnow

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Patient(Base):
    """An insured person, identified by INS (matricule + the five traits)."""

    __tablename__ = "patients"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    ins: Mapped[str] = mapped_column(String(15), unique=True)
    ins_oid: Mapped[str] = mapped_column(String(40), default="1.2.250.1.213.1.4.8")
    birth_name: Mapped[str] = mapped_column(String(100))
    first_names: Mapped[str] = mapped_column(String(200))
    used_name: Mapped[str | None] = mapped_column(String(100))
    birth_date: Mapped[date] = mapped_column(Date)
    sex: Mapped[str] = mapped_column(String(1))
    birth_place: Mapped[str] = mapped_column(String(5))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(20))
    address: Mapped[str | None] = mapped_column(String(300))
    postal_code: Mapped[str | None] = mapped_column(String(5))
    city: Mapped[str | None] = mapped_column(String(100))
    departement: Mapped[str | None] = mapped_column(String(3), index=True)
    vitale_serial: Mapped[str | None] = mapped_column(String(13))
    attached_to_id: Mapped[str | None] = mapped_column(ForeignKey("patients.id"), index=True)
    # registered (imported) → active (space open) | opposed ; active → closed (archived) → active ;
    # deleted (keys destroyed). Only "active" spaces can be used (policy rule unknown_space).
    status: Mapped[str] = mapped_column(String(20), default="active")
    ouvrant_droit_ins: Mapped[str | None] = mapped_column(String(15))
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PatientSettings(Base):
    """The patient's choices: masking by default (VLT-5) and notifications per kind (TRC-3)."""

    __tablename__ = "patient_settings"
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), primary_key=True)
    mask_new_documents: Mapped[bool] = mapped_column(default=False)
    notify_documents: Mapped[bool] = mapped_column(default=True)
    notify_messages: Mapped[bool] = mapped_column(default=True)
    notify_exams: Mapped[bool] = mapped_column(default=True)
    notify_screening: Mapped[bool] = mapped_column(default=True)
    # ACC-4: emergency access by the SAMU regulator, by other professionals, and whether masked
    # documents are shown in an emergency.
    emergency_samu: Mapped[bool] = mapped_column(default=True)
    emergency_professionals: Mapped[bool] = mapped_column(default=True)
    emergency_masked: Mapped[bool] = mapped_column(default=False)


class Establishment(Base):
    __tablename__ = "establishments"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    finess: Mapped[str] = mapped_column(String(9), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(40))
    city: Mapped[str | None] = mapped_column(String(100))
    departement: Mapped[str | None] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Professional(Base):
    """A health professional from the directory, identified by RPPS."""

    __tablename__ = "professionals"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    rpps: Mapped[str] = mapped_column(String(11), unique=True)
    last_name: Mapped[str] = mapped_column(String(100))
    first_name: Mapped[str] = mapped_column(String(100))
    profession_code: Mapped[str] = mapped_column(String(4))
    specialty: Mapped[str | None] = mapped_column(String(100))
    practice_address: Mapped[str | None] = mapped_column(String(300))
    city: Mapped[str | None] = mapped_column(String(100))
    establishment_id: Mapped[str | None] = mapped_column(ForeignKey("establishments.id"))
    samu_regulator: Mapped[bool] = mapped_column(default=False)  # médecin régulateur du SAMU (ACC-4)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Account(Base):
    """A login: a patient's or a professional's (or an operator's)."""

    __tablename__ = "accounts"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(20))
    login: Mapped[str] = mapped_column(String(100), unique=True)
    email: Mapped[str] = mapped_column(String(254))
    password_hash: Mapped[str] = mapped_column(String(200))
    patient_id: Mapped[str | None] = mapped_column(ForeignKey("patients.id"), index=True)
    professional_id: Mapped[str | None] = mapped_column(ForeignKey("professionals.id"), index=True)
    display_name: Mapped[str] = mapped_column(String(200))
    totp_secret: Mapped[str | None] = mapped_column(String(200))
    totp_last_step: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LoginThrottle(Base):
    """Failed-login counters keyed by the login typed (existing or not) — no enumeration."""

    __tablename__ = "login_throttle"
    login_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OneTimeCode(Base):
    __tablename__ = "one_time_codes"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(20))
    code_hash: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebSession(Base):
    """Server-side session; the cookie carries a random token whose SHA-256 is the key."""

    __tablename__ = "web_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    stage: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AuditEntry(Base):
    """Append-only, hash-chained per patient (chain "-" for events about no patient)."""

    __tablename__ = "audit_entries"
    __table_args__ = (
        UniqueConstraint("chain", "seq", name="uq_audit_entries_chain_seq"),
        Index("ix_audit_entries_patient_at", "patient_id", "at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    chain: Mapped[str] = mapped_column(String(36))
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_kind: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[str | None] = mapped_column(String(36))
    actor_label: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(60))
    patient_id: Mapped[str | None] = mapped_column(String(36))
    resource_type: Mapped[str | None] = mapped_column(String(40))
    resource_id: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """Last sequence number and hash of each chain: removing the newest entry is detected too."""

    __tablename__ = "audit_heads"
    chain: Mapped[str] = mapped_column(String(36), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    hash: Mapped[str] = mapped_column(String(64), default="")


class PatientKey(Base):
    """A patient's data key (AES-256), wrapped by the master key identified by ``master_key_id``."""

    __tablename__ = "patient_keys"
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), primary_key=True)
    wrapped_key: Mapped[str | None] = mapped_column(String(200))
    master_key_id: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    destroyed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Folder(Base):
    __tablename__ = "folders"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Document(Base):
    """Metadata of one document of the vault; the body is an encrypted blob (VLT-8)."""

    __tablename__ = "documents"
    # Covers the listing and its count: filter, order and the policy's scopes (author; a profession's
    # categories and masked documents) without reading the rows.
    __table_args__ = (
        Index(
            "ix_documents_patient_date", "patient_id", "status", "created_at", "id", "author_id", "category", "masked"
        ),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    master_identifier: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(20), default="current")
    category: Mapped[str] = mapped_column(String(20))
    type_system: Mapped[str] = mapped_column(String(60))
    type_code: Mapped[str] = mapped_column(String(20))
    type_display: Mapped[str] = mapped_column(String(200))
    class_code: Mapped[str | None] = mapped_column(String(40))
    format_code: Mapped[str | None] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(300))
    mime_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    body_mac: Mapped[str] = mapped_column(String(64))  # HMAC(data key, body): no confirmation attack
    blob_key: Mapped[str] = mapped_column(String(80))
    preview_mime_type: Mapped[str | None] = mapped_column(String(100))
    preview_blob_key: Mapped[str | None] = mapped_column(String(80))
    confidentiality: Mapped[list[str]] = mapped_column(JSON, default=list)
    masked: Mapped[bool] = mapped_column(default=False)
    mask_reason: Mapped[str | None] = mapped_column(String(300))
    source: Mapped[str] = mapped_column(String(20))
    author_kind: Mapped[str] = mapped_column(String(20))
    author_id: Mapped[str | None] = mapped_column(String(36))
    author_label: Mapped[str] = mapped_column(String(200))
    author_rpps: Mapped[str | None] = mapped_column(String(11))
    author_finess: Mapped[str | None] = mapped_column(String(9))
    client_id: Mapped[str | None] = mapped_column(String(64))
    folder_id: Mapped[str | None] = mapped_column(ForeignKey("folders.id", ondelete="SET NULL"))
    replaces_id: Mapped[str | None] = mapped_column(ForeignKey("documents.id"))
    submission_set_id: Mapped[str | None] = mapped_column(String(128))
    service_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reveal_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DocumentTerm(Base):
    """Blind search index: HMAC (patient data key) of each stemmed, unaccented word of a document."""

    __tablename__ = "document_terms"
    __table_args__ = (Index("ix_document_terms_patient_term", "patient_id", "term"),)
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True)
    term: Mapped[str] = mapped_column(String(24), primary_key=True)
    patient_id: Mapped[str] = mapped_column(String(36))


class ApiClient(Base):
    """A system (establishment or professional software) calling the FHIR API with client credentials."""

    __tablename__ = "api_clients"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    establishment_id: Mapped[str | None] = mapped_column(ForeignKey("establishments.id"))
    professional_id: Mapped[str | None] = mapped_column(ForeignKey("professionals.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AccessToken(Base):
    __tablename__ = "access_tokens"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("api_clients.id", ondelete="CASCADE"), index=True)
    scope: Mapped[str] = mapped_column(String(300))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Campaign(Base):
    """An invitation campaign over some départements (ENR-2)."""

    __tablename__ = "campaigns"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    departements: Mapped[list[str]] = mapped_column(JSON)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_by: Mapped[str] = mapped_column(String(200))


class Invitation(Base):
    """One person's invitation: channel, activation code (hashed for look-up, sealed for letters), state.

    ``status``: pending (queued) → sent (e-mail) | letter (PDF produced) ; bounced e-mails fall back to a
    letter. ``objection_deadline`` = sending + 6 weeks (ENR-3).
    """

    __tablename__ = "invitations"
    __table_args__ = (Index("ix_invitations_status", "status", "campaign_id"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), unique=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"))
    channel: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(12), default="pending")
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    code_sealed: Mapped[str] = mapped_column(String(200))
    code_expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    code_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    objection_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)
    letter_batch: Mapped[str | None] = mapped_column(String(36))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(300))


class Objection(Base):
    """An objection to the creation of the space (ENR-3); withdrawn when the person changes their mind."""

    __tablename__ = "objections"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(10))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    recorded_by: Mapped[str] = mapped_column(String(200))
    receipt_number: Mapped[str] = mapped_column(String(20), unique=True)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CareTeam(Base):
    """A named group of professionals at an establishment, authorised as a whole (ACC-1)."""

    __tablename__ = "care_teams"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    establishment_id: Mapped[str | None] = mapped_column(ForeignKey("establishments.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CareTeamMember(Base):
    __tablename__ = "care_team_members"
    team_id: Mapped[str] = mapped_column(ForeignKey("care_teams.id", ondelete="CASCADE"), primary_key=True)
    professional_id: Mapped[str] = mapped_column(ForeignKey("professionals.id", ondelete="CASCADE"), primary_key=True)


class AccessGrant(Base):
    """A patient's authorisation of a professional or a care team (ACC-1), or a higher status (ACC-2).

    ``role``: reader (consent) | administrator | medecin_traitant. ``origin``: patient (given in the
    portal) | oral (recorded by the professional) | fhir (POST /fhir/Consent). Revoked, never deleted.
    """

    __tablename__ = "access_grants"
    __table_args__ = (Index("ix_access_grants_patient_pro", "patient_id", "professional_id"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    professional_id: Mapped[str | None] = mapped_column(ForeignKey("professionals.id"))
    care_team_id: Mapped[str | None] = mapped_column(ForeignKey("care_teams.id"))
    role: Mapped[str] = mapped_column(String(20), default="reader")
    origin: Mapped[str] = mapped_column(String(10), default="patient")
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    granted_by: Mapped[str] = mapped_column(String(200))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by: Mapped[str | None] = mapped_column(String(200))


class AccessBlock(Base):
    """A professional the patient blocked (ACC-3): no reading, even if authorised; deposits still work."""

    __tablename__ = "access_blocks"
    __table_args__ = (Index("ix_access_blocks_patient_pro", "patient_id", "professional_id"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    professional_id: Mapped[str] = mapped_column(ForeignKey("professionals.id"))
    blocked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class EmergencyAccess(Base):
    """A time-limited emergency access (ACC-4): break-the-glass by a professional, or the SAMU regulator."""

    __tablename__ = "emergency_accesses"
    __table_args__ = (Index("ix_emergency_accesses_patient_pro", "patient_id", "professional_id"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    professional_id: Mapped[str] = mapped_column(ForeignKey("professionals.id"))
    kind: Mapped[str] = mapped_column(String(20))  # bris_de_glace | samu
    reason: Mapped[str] = mapped_column(String(500))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class FirstAccess(Base):
    """The first consultation of a space by a professional, so that the patient is told once (TRC-3)."""

    __tablename__ = "first_accesses"
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), primary_key=True)
    professional_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LegalRepresentative(Base):
    """A second legal representative of a minor, besides the parent the child is attached to (FAM-1)."""

    __tablename__ = "legal_representatives"
    minor_id: Mapped[str] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), primary_key=True)
    representative_id: Mapped[str] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), primary_key=True)
    since: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SpaceInvitation(Base):
    """An expiring invitation sent by e-mail: second legal representative (FAM-1) or caregiver (FAM-3).

    The invitee proves who they are by logging in to their own space; for a legal representative the
    space's NIR must match ``nir``. The link carries a random token whose SHA-256 is ``token_hash``.
    """

    __tablename__ = "space_invitations"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(20))  # representative | caregiver
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    invited_by: Mapped[str] = mapped_column(String(36))
    email: Mapped[str] = mapped_column(String(254))
    nir: Mapped[str | None] = mapped_column(String(15))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Caregiver(Base):
    """A caregiver (aidant) helping a person (FAM-3): at most 3 per person, 5 people per caregiver."""

    __tablename__ = "caregivers"
    helped_id: Mapped[str] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), primary_key=True)
    caregiver_id: Mapped[str] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), primary_key=True)
    since: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AccessReport(Base):
    """A history entry the patient reported as suspicious ("Signaler", TRC-2)."""

    __tablename__ = "access_reports"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    audit_entry_id: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(String(1000), default="")
    reported_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
