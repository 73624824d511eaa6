"""SQLAlchemy tables of people. The schema itself is created by Alembic migrations."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from carnet.hall.vocabulary import PatientStatus
from carnet.storage.base import Base
from carnet.storage.types import UTCDateTime, new_id, utcnow


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
    attached_to_id: Mapped[str | None] = mapped_column(ForeignKey("patients.id"))
    # registered (imported) → active (space open) | opposed ; active → closed (archived) → active ;
    # deleted (keys destroyed). Only "active" spaces can be used (policy rule unknown_space).
    status: Mapped[str] = mapped_column(String(20), default=PatientStatus.ACTIVE.value)
    ouvrant_droit_ins: Mapped[str | None] = mapped_column(String(15))
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        # A parent's children (only they are in it: an import's look-ups of the unattached cannot wander into it).
        Index(
            "ix_patients_attached_to_id",
            "attached_to_id",
            postgresql_where=text("attached_to_id IS NOT NULL"),
            sqlite_where=text("attached_to_id IS NOT NULL"),
        ),
        # The registry's children waiting for their parent (ENR-1): few rows whatever the table's size — plus the
        # adults the registry lists with an ouvrant droit, who are never attached.
        Index(
            "ix_patients_awaiting_parent",
            "ouvrant_droit_ins",
            postgresql_where=text("ouvrant_droit_ins IS NOT NULL AND attached_to_id IS NULL"),
            sqlite_where=text("ouvrant_droit_ins IS NOT NULL AND attached_to_id IS NULL"),
        ),
    )


class PatientSettings(Base):
    """The patient's choices: masking by default (VLT-5) and notifications per kind (TRC-3)."""

    __tablename__ = "patient_settings"
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), primary_key=True)
    mask_new_documents: Mapped[bool] = mapped_column(default=False)
    notify_documents: Mapped[bool] = mapped_column(default=True)
    notify_messages: Mapped[bool] = mapped_column(default=True)
    notify_exams: Mapped[bool] = mapped_column(default=True)
    notify_screening: Mapped[bool] = mapped_column(default=True)
    # AGD-3: reminders of appointments, how many days ahead, and whether they may name the examination or
    # the appointment (off: « vous avez un rendez-vous le … », nothing more)
    notify_appointments: Mapped[bool] = mapped_column(default=True)
    reminder_days: Mapped[int] = mapped_column(default=7)
    reminder_details: Mapped[bool] = mapped_column(default=False)
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
    # MSG-3: the establishment's secure-mail address (lowercase); mail from it reaches the patients' messaging
    email: Mapped[str | None] = mapped_column(String(254), index=True)
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
    # MSG-3: the professional's secure-mail (MSSanté) address, lowercase: their mail reaches the patients' messaging,
    # and the patients' answers are sent there
    email: Mapped[str | None] = mapped_column(String(254), index=True)
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
