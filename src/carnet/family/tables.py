"""SQLAlchemy tables of family. The schema itself is created by Alembic migrations."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    ForeignKey,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from carnet.storage.base import Base
from carnet.storage.types import UTCDateTime, new_id, utcnow


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
