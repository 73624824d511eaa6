"""The durable queue of e-mails a relay outage held back. The schema itself is created by Alembic migrations."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from carnet.storage.base import Base
from carnet.storage.types import UTCDateTime, new_id, utcnow


class QueuedMail(Base):
    """One e-mail the relay refused or could not be reached for (issue #15-3), sent again by the job worker.

    The message — address, subject, text, which may carry a login code — is sealed with the instance secret;
    a message past ``discard_after`` (a code that has expired) is dropped rather than sent late."""

    __tablename__ = "mail_queue"
    __table_args__ = (Index("ix_mail_queue_next", "next_attempt_at"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    sealed: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    discard_after: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str] = mapped_column(String(250), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
