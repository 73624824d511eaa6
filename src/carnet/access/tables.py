"""SQLAlchemy tables of access. The schema itself is created by Alembic migrations."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    ForeignKey,
    Index,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from carnet.storage.base import Base
from carnet.storage.types import UTCDateTime, new_id, utcnow


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
