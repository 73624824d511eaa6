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
    """An invitation campaign over some départements (ENR-2).

    ``opening_due_at``: when the space-opening job (ENR-3) must next walk the campaign's invitations — the earliest
    objection deadline it may find past, NULL once no one is left waiting; ``opening_cursor``: how far the walk in
    progress has gone (invitation ids in order), so that a region's walk spans several runs and a restart resumes it;
    ``opening_next_at``: the earliest deadline still to come that this walk has met, the next ``opening_due_at``."""

    __tablename__ = "campaigns"
    __table_args__ = (Index("ix_campaigns_opening", "opening_due_at"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    departements: Mapped[list[str]] = mapped_column(JSON)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_by: Mapped[str] = mapped_column(String(200))
    opening_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    opening_cursor: Mapped[str] = mapped_column(String(36), default="", server_default="")
    opening_next_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


LETTER_BATCHED = "letter_batch IS NOT NULL"


class Invitation(Base):
    """One person's invitation: channel, activation code (hashed for look-up, sealed for letters), state.

    ``status``: pending (queued) → sent (e-mail) | letter (PDF produced) ; bounced e-mails fall back to a
    letter. ``objection_deadline`` = sending day + 7 days + 6 weeks (ENR-3, ``model.opposition``).

    No index holds a column the sending changes (``status``, ``sent_at``, ``objection_deadline``…), and on
    PostgreSQL the table keeps a third of each page free (``fillfactor`` 70, migration 0018): marking an e-mail sent
    is then a HOT update, which writes no index entry. The e-mails still to send are listed apart, in
    ``invitation_emails``.
    """

    __tablename__ = "invitations"
    __table_args__ = (
        Index("ix_invitations_campaign", "campaign_id", "channel"),
        # The letters' batches (a letter claimed or printed): the other rows are left out.
        Index(
            "ix_invitations_letter_batch",
            "letter_batch",
            postgresql_where=text(LETTER_BATCHED),
            sqlite_where=text(LETTER_BATCHED),
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


class QueuedEmail(Base):
    """An invitation e-mail still to send (ENR-2): the sending's queue, walked in id order by its claims. A row
    leaves it when its e-mail is delivered, refused for good or given up (a letter instead)."""

    __tablename__ = "invitation_emails"
    invitation_id: Mapped[str] = mapped_column(ForeignKey("invitations.id", ondelete="CASCADE"), primary_key=True)


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
