"""SQLAlchemy tables of the app catalogue (CAT-1..3). The schema itself is created by Alembic migrations.

Secrets are never stored: client secrets, authorisation codes, access and refresh tokens are kept as their
SHA-256. One table holds both kinds of token (``kind`` access | refresh): a token belongs to one consent and
one ``family`` (the authorisation code it descends from), so a reused refresh token or code revokes the family,
and a disconnection or a suspension cuts every token of a consent or an app.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from carnet.storage.base import Base
from carnet.storage.types import UTCDateTime, new_id, utcnow


class App(Base):
    """A referenced app (CAT-1): what its editor declared, the operator's decision, its OAuth client."""

    __tablename__ = "catalogue_apps"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    secret_hash: Mapped[str | None] = mapped_column(String(64))  # None: a public client (PKCE only)
    name: Mapped[str] = mapped_column(String(120))
    editor: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    purpose: Mapped[str] = mapped_column(Text, default="")  # the data read and written, and why
    retention: Mapped[str] = mapped_column(Text, default="")
    consent_wording: Mapped[str] = mapped_column(Text, default="")
    security: Mapped[str] = mapped_column(Text, default="")  # the editor's answers to the security questions
    logo_url: Mapped[str | None] = mapped_column(String(500))
    category: Mapped[str] = mapped_column(String(60), default="")
    scope: Mapped[str] = mapped_column(Text)  # the SMART scopes referenced (the most it may be granted)
    scope_version: Mapped[int] = mapped_column(Integer, default=1)  # bumped when the scopes change: re-consent
    status: Mapped[str] = mapped_column(String(16), default="PRESERIE", index=True)
    referenced_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RedirectUri(Base):
    """Where the app may be sent back to: matched exactly, never a prefix."""

    __tablename__ = "catalogue_redirect_uris"
    app_id: Mapped[str] = mapped_column(ForeignKey("catalogue_apps.id", ondelete="CASCADE"), primary_key=True)
    uri: Mapped[str] = mapped_column(String(500), primary_key=True)


class AppConsent(Base):
    """A person connected an app to a space (CAT-2); live until disconnected (``revoked_at``)."""

    __tablename__ = "catalogue_consents"
    __table_args__ = (Index("ix_catalogue_consents_space", "patient_id", "app_id"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("catalogue_apps.id", ondelete="CASCADE"), index=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(Text)
    scope_version: Mapped[int] = mapped_column(Integer)
    granted_by_label: Mapped[str] = mapped_column(String(200))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuthorizationCode(Base):
    """One code of the authorisation-code flow: single use, 60 seconds, bound to its redirect URI and PKCE."""

    __tablename__ = "catalogue_codes"
    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    consent_id: Mapped[str] = mapped_column(ForeignKey("catalogue_consents.id", ondelete="CASCADE"), index=True)
    redirect_uri: Mapped[str] = mapped_column(String(500))
    code_challenge: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AppToken(Base):
    """An access token (1 hour) or a refresh token (rotating: used once, then replaced) of one consent."""

    __tablename__ = "catalogue_tokens"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # access | refresh
    consent_id: Mapped[str] = mapped_column(ForeignKey("catalogue_consents.id", ondelete="CASCADE"), index=True)
    family: Mapped[str] = mapped_column(String(64), index=True)  # the hash of the code it descends from
    scope: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # a refresh token already exchanged
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AppReport(Base):
    """« Signaler » : a person reports an app to the operator (CAT-2)."""

    __tablename__ = "catalogue_reports"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("catalogue_apps.id", ondelete="CASCADE"), index=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AppsSummary(Base):
    """When a space's person was last sent the list of their connected apps (TRC-3: every 90 days)."""

    __tablename__ = "catalogue_summaries"
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), primary_key=True)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)
