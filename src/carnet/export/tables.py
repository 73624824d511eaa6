"""SQLAlchemy table of the export (ENR-7). The schema itself is created by Alembic migrations."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from carnet.storage.base import Base
from carnet.storage.types import UTCDateTime, new_id, utcnow


class Export(Base):
    """One archive asked for: who asked (to rebuild their view of the space in the job, and to tell them), its state
    ``demandee → en_cours → prete → expiree`` (or ``echec``), the sealed file's name under ``<data>/exports/``."""

    __tablename__ = "exports"
    __table_args__ = (Index("ix_exports_patient", "patient_id", "requested_at"), Index("ix_exports_status", "status"))
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    requester_account_id: Mapped[str] = mapped_column(String(36))
    requester_patient_id: Mapped[str] = mapped_column(String(36))  # the requester's own space (a parent's)
    requester_label: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(12), default="demandee")
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ready_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    size: Mapped[int] = mapped_column(Integer, default=0)  # bytes of the ZIP the person downloads
    files: Mapped[int] = mapped_column(Integer, default=0)
    resources: Mapped[int] = mapped_column(Integer, default=0)
    downloads: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(250))
