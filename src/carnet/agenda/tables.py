"""SQLAlchemy tables of the agenda and prevention (AGD-1..3). The schema itself is created by Alembic migrations."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from carnet.storage.base import Base
from carnet.storage.types import UTCDateTime, new_id, utcnow


class AgendaEvent(Base):
    """An appointment (with a professional or a service) or a reminder (AGD-1).

    What was written — title, place, comment, with whom, the FHIR resource as sent — is ``sealed`` with the
    patient's data key (associated data ``agenda:<id>``). In clear stay what the calendar views and the
    reminder job need: the kind, when, whether it is cancelled, who entered it.
    """

    __tablename__ = "agenda_events"
    __table_args__ = (Index("ix_agenda_events_patient", "patient_id", "starts_at"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(12))  # rendez_vous | rappel
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    all_day: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(12), default="prevu")  # prevu | annule
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    source: Mapped[str] = mapped_column(String(16))  # patient | professional | establishment | app
    author_id: Mapped[str | None] = mapped_column(String(64))
    author_label: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(default=1)


class CalendarFeed(Base):
    """A private iCalendar subscription URL (AGD-1): only the SHA-256 of its token is kept; revocable.
    Its events carry no health detail unless ``with_details`` (the person opted in)."""

    __tablename__ = "agenda_feeds"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    with_details: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by_label: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PreventionAnswers(Base):
    """What the person said about the recommended examinations (AGD-2: « réalisé » / « non réalisé », with a
    date): one sealed row per patient ``{code: {"answer": "fait"|"non_fait", "date": "AAAA-MM-JJ"}}``."""

    __tablename__ = "prevention_answers"
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), primary_key=True)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(default=1)


class Reminder(Base):
    """One reminder owed to a person (AGD-3), claimed before its e-mail is queued: the primary key makes the
    daily job idempotent. ``key_token`` is a blind token (HMAC under the patient's key) of what is reminded
    and for which due date — the table does not say which examination or appointment it is."""

    __tablename__ = "agenda_reminders"
    __table_args__ = (Index("ix_agenda_reminders_due", "due_on"),)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), primary_key=True)
    key_token: Mapped[str] = mapped_column(String(32), primary_key=True)
    due_on: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
