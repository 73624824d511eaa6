"""SQLAlchemy tables of the messaging (MSG-1..4). The schema itself is created by Alembic migrations.

What people wrote — subjects, texts, file names — is ``sealed`` with the patient's data key (associated data
``message:<id>`` / ``thread:<id>`` / ``attachment:<id>``, so rows cannot be swapped); attachment bodies are blobs
sealed the same way. In clear stay what the lists, the unread counts, the quota and the threading of mail need.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, ForeignKeyConstraint, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from carnet.storage.base import Base
from carnet.storage.types import UTCDateTime, new_id, utcnow


class Thread(Base):
    """A conversation between one space and one professional (or establishment), started by them (MSG-1)."""

    __tablename__ = "message_threads"
    __table_args__ = (
        Index("ix_message_threads_patient", "patient_id", "last_message_at"),
        Index("ix_message_threads_counterpart", "counterpart_id", "last_message_at"),
        # What the messages' foreign key points at (partitioned by patient on PostgreSQL, issue #18-2).
        Index("uq_message_threads_id_patient", "id", "patient_id", unique=True),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    counterpart_kind: Mapped[str] = mapped_column(String(16))  # professional | establishment
    counterpart_id: Mapped[str] = mapped_column(String(36))  # the professional's or the establishment's id
    counterpart_label: Mapped[str] = mapped_column(String(200))
    counterpart_email: Mapped[str | None] = mapped_column(String(254))  # where the space's answers are sent
    sealed: Mapped[bytes] = mapped_column(LargeBinary)  # {"subject": …}
    status: Mapped[str] = mapped_column(String(8), default="ouvert")  # ouvert | clos
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by_label: Mapped[str | None] = mapped_column(String(200))
    space_unread: Mapped[int] = mapped_column(Integer, default=0)  # messages the space has not opened
    counterpart_unread: Mapped[int] = mapped_column(Integer, default=0)  # answers the professional has not opened
    messages: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_message_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Message(Base):
    """One message of a conversation; ``notified_at`` empty until the job has told the space (MSG-4)."""

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_thread", "thread_id", "created_at"),
        Index("ix_messages_patient_mail_id", "patient_id", "mail_id"),
        Index("ix_messages_notify", "notified_at", "direction"),
        Index("uq_messages_id_patient", "id", "patient_id", unique=True),  # what the attachments' key points at
        ForeignKeyConstraint(
            ["thread_id", "patient_id"], ["message_threads.id", "message_threads.patient_id"], ondelete="CASCADE"
        ),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    thread_id: Mapped[str] = mapped_column(String(36))
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    direction: Mapped[str] = mapped_column(String(20))  # vers_patient | vers_professionnel
    author_id: Mapped[str | None] = mapped_column(String(64))
    author_label: Mapped[str] = mapped_column(String(200))
    via: Mapped[str] = mapped_column(String(8))  # portail | smtp
    mail_id: Mapped[str] = mapped_column(String(250))  # the RFC 5322 Message-ID, to thread mail answers
    sealed: Mapped[bytes] = mapped_column(LargeBinary)  # {"text": …}
    attachments: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Attachment(Base):
    """A file of a message (MSG-2): its body a sealed blob, its name and type sealed; ``size`` counts in the
    space's quota; ``document_id`` once it was added to the documents."""

    __tablename__ = "message_attachments"
    __table_args__ = (
        Index("ix_message_attachments_patient", "patient_id"),
        ForeignKeyConstraint(["message_id", "patient_id"], ["messages.id", "messages.patient_id"], ondelete="CASCADE"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    message_id: Mapped[str] = mapped_column(String(36), index=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    blob_key: Mapped[str] = mapped_column(String(80))
    size: Mapped[int] = mapped_column(Integer)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)  # {"name": …, "type": …}
    document_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
