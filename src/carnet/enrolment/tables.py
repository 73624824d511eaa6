"""SQLAlchemy tables of enrolment. The schema itself is created by Alembic migrations."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    Integer,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from carnet.storage.base import Base
from carnet.storage.types import UTCDateTime, new_id, utcnow


class Campaign(Base):
    """An invitation campaign over some départements (ENR-2)."""

    __tablename__ = "campaigns"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    departements: Mapped[list[str]] = mapped_column(JSON)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_by: Mapped[str] = mapped_column(String(200))


EMAIL_QUEUED = "status = 'pending' AND channel = 'email'"  # the partial index's rows (literals: see the claim)


class Invitation(Base):
    """One person's invitation: channel, activation code (hashed for look-up, sealed for letters), state.

    ``status``: pending (queued) → sent (e-mail) | letter (PDF produced) ; bounced e-mails fall back to a
    letter. ``objection_deadline`` = sending day + 7 days + 6 weeks (ENR-3, ``model.opposition``).
    """

    __tablename__ = "invitations"
    __table_args__ = (
        Index("ix_invitations_status", "status", "campaign_id"),
        # The e-mails still queued, walked forward by the sending claims (migration 0015).
        Index(
            "ix_invitations_email_queue",
            "id",
            postgresql_where=text(EMAIL_QUEUED),
            sqlite_where=text(EMAIL_QUEUED),
        ),
    )
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
