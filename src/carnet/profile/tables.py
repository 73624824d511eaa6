"""SQLAlchemy tables of the medical profile. The schema itself is created by Alembic migrations."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from carnet.storage.base import Base
from carnet.storage.types import UTCDateTime, new_id, utcnow


class ProfileEntry(Base):
    """One item of the profile (PRF-1) or one measure (PRF-2, ``section == "measures"``).

    What the person or the professional wrote — the fields, the measured value, the FHIR resource as sent —
    is ``sealed`` with the patient's data key (AES-256-GCM, the entry id as associated data). In clear stay
    what lists, sorts and filters need, as for documents: the section, the measure's kind (one of the
    fourteen of the catalogue), the date, who entered it and whether it is masked. A coded item's code is
    kept only as a blind token (HMAC under the patient's key) for FHIR searches by code.
    """

    __tablename__ = "profile_entries"
    __table_args__ = (
        Index("ix_profile_entries_section", "patient_id", "section", "effective_at"),
        Index("ix_profile_entries_measure", "patient_id", "measure", "effective_at"),
        Index("ix_profile_entries_code", "patient_id", "code_token"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    section: Mapped[str] = mapped_column(String(24))
    measure: Mapped[str | None] = mapped_column(String(24))
    code_token: Mapped[str | None] = mapped_column(String(32))
    effective_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    source: Mapped[str] = mapped_column(String(16))  # patient | professional | establishment | app
    author_id: Mapped[str | None] = mapped_column(String(64))
    author_label: Mapped[str] = mapped_column(String(200))
    masked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(default=1)


class MeasureTarget(Base):
    """A target the person (or their doctor) set for a measure — HbA1c's, PRF-2."""

    __tablename__ = "measure_targets"
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), primary_key=True)
    measure: Mapped[str] = mapped_column(String(24), primary_key=True)
    value: Mapped[float] = mapped_column(Float)
    set_by_label: Mapped[str] = mapped_column(String(200))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
