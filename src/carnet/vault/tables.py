"""SQLAlchemy tables of vault. The schema itself is created by Alembic migrations."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from carnet.storage.base import Base
from carnet.storage.types import UTCDateTime, new_id, utcnow


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
        # A deposit's masterIdentifier is unique for the patient (MHD): looked up at every ITI-65, whatever the
        # number of documents the patient has.
        Index("ix_documents_patient_master", "patient_id", "master_identifier"),
        # What the search terms' foreign key points at: on PostgreSQL the table is partitioned by patient, and a
        # foreign key to it must name the partition key (issue #18-2).
        Index("uq_documents_id_patient", "id", "patient_id", unique=True),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    master_identifier: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(20), default="current")
    category: Mapped[str] = mapped_column(String(20))
    type_system: Mapped[str] = mapped_column(String(60))
    type_code: Mapped[str] = mapped_column(String(20))
    type_display: Mapped[str] = mapped_column(String(200))
    class_system: Mapped[str | None] = mapped_column(String(200))
    class_code: Mapped[str | None] = mapped_column(String(40))
    format_system: Mapped[str | None] = mapped_column(String(200))
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
    # The document this one replaces: of the same patient, checked by the deposit (``documents._replaced``). No
    # foreign key: the partitions are copied in id order, and a replaced document may come after its replacement.
    replaces_id: Mapped[str | None] = mapped_column(String(36))
    submission_set_id: Mapped[str | None] = mapped_column(String(128))
    service_date: Mapped[datetime | None] = mapped_column(UTCDateTime)  # context.period: start…
    service_end: Mapped[datetime | None] = mapped_column(UTCDateTime)  # …and end (exclusive)
    document_date: Mapped[datetime] = mapped_column(UTCDateTime)  # DocumentReference.date (the deposit time if none)
    creation_date: Mapped[datetime | None] = mapped_column(UTCDateTime)  # content.attachment.creation
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)  # the deposit
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the last change (labels, status)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")  # FHIR meta.versionId, ETag
    # The DocumentReference as sent over MHD (without its payload), sealed with the patient's data key
    # (associated data ``metadata:<id>``): given back as sent (issue #14-3).
    metadata_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    reveal_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DocumentTerm(Base):
    """Blind search index: HMAC (patient data key) of each stemmed, unaccented word of a document, and of the coded
    metadata FHIR searches by token (``event|<system>|<code>``…: ``carnet.vault.model.mhd_metadata``)."""

    __tablename__ = "document_terms"
    __table_args__ = (
        Index("ix_document_terms_patient_term", "patient_id", "term"),
        ForeignKeyConstraint(
            ["document_id", "patient_id"], ["documents.id", "documents.patient_id"], ondelete="CASCADE"
        ),
    )
    document_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    term: Mapped[str] = mapped_column(String(24), primary_key=True)
    patient_id: Mapped[str] = mapped_column(String(36))


class DocumentTimer(Base):
    """What falls due for a document, and when: its patient told of it (``tell``, TRC-3 — at the deposit, or two weeks
    later for a document kept for a consultation, INVISIBLE_PATIENT) or it shown to the patient (``reveal``, VLT-6: a
    month after the deposit). The jobs' queue: they read it by due time and empty it as they go, and so never walk the
    documents table, which grows with the country (issue #18). Written in the deposit's transaction."""

    __tablename__ = "document_timers"
    __table_args__ = (
        Index("ix_document_timers_due", "kind", "due_at"),
        ForeignKeyConstraint(
            ["document_id", "patient_id"], ["documents.id", "documents.patient_id"], ondelete="CASCADE"
        ),
    )
    document_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10), primary_key=True)
    patient_id: Mapped[str] = mapped_column(String(36))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
