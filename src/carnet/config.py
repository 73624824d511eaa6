"""Configuration read from ``CARNET_*`` environment variables, with embedded defaults.

The embedded default needs nothing installed: a SQLite file and an encrypted blob folder
inside ``CARNET_DATA_DIR`` and mail kept in a local outbox. Every command reads the same
settings, so two instances with different data folders never touch each other.
"""

from __future__ import annotations

import ipaddress
from functools import cached_property
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """All tunables of one Carnet instance (prefix ``CARNET_``)."""

    model_config = SettingsConfigDict(env_prefix="CARNET_", extra="ignore")

    data_dir: Path = Field(default=Path("carnet-data"), description="Dossier des données locales")
    database_url: str = Field(default="", description="URL SQLAlchemy; SQLite dans data_dir par défaut")
    # Where the sealed bodies live: empty, the folder <data_dir>/blobs; s3://bucket[/prefix]?endpoint=…&region=…,
    # S3-compatible object storage, credentials from the environment (AWS_ACCESS_KEY_ID…) — issue #18-1
    blob_url: str = Field(default="", description="Stockage des documents : vide (dossier local) ou s3://…")
    smtp_url: str = Field(default="outbox:", description="smtp://user:pass@host:port ou outbox:")
    mail_from: str = "Carnet <ne-pas-repondre@carnet.localhost>"
    base_url: str = "http://127.0.0.1:8000"
    support_phone: str = Field(default="36 46", description="Téléphone des conseillers (courriers, oppositions)")
    master_key_file: Path | None = None
    secret_key_file: Path | None = None
    dev_pages: bool | None = None
    session_idle_minutes: int = 15
    session_max_hours: int = 12
    login_max_failures: int = 5
    login_lockout_minutes: int = 15
    login_ip_limit_per_minute: int = 20
    # Addresses of the reverse proxies whose X-Forwarded-For / -Proto are believed (comma-separated IPs or
    # networks); empty: none, the peer's address is the client's (issue #15-7).
    trusted_proxies: str = ""
    # MSG-3: patients' addresses are <INS>@<messaging_domain>; the gateway's size limit and each space's quota
    messaging_domain: str = "patient.carnet.localhost"
    messaging_quota_mb: int = Field(default=200, ge=1)
    # STARTTLS on the gateway when both are set (PEM files)
    gateway_tls_cert: Path | None = None
    gateway_tls_key: Path | None = None
    otp_ttl_minutes: int = 10
    argon2_profile: str = Field(default="standard", pattern="^(standard|test)$")
    log_level: str = "INFO"

    @cached_property
    def resolved_data_dir(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.resolved_data_dir / 'carnet.sqlite3'}"

    @property
    def resolved_master_key_file(self) -> Path:
        return self.master_key_file or self.resolved_data_dir / "keys" / "master.key"

    @property
    def resolved_secret_key_file(self) -> Path:
        return self.secret_key_file or self.resolved_data_dir / "keys" / "secret.key"

    @property
    def is_embedded(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def https(self) -> bool:
        return self.base_url.startswith("https://")

    @property
    def show_dev_pages(self) -> bool:
        """The dev-only outbox page (it shows login codes) exists only when mail goes to the local outbox and
        the base URL's host is the loopback (127.0.0.0/8, ::1, localhost), unless forced by CARNET_DEV_PAGES."""
        if self.dev_pages is not None:
            return self.dev_pages
        return self.smtp_url.startswith("outbox:") and not self.https and _is_loopback(self.base_url)


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
