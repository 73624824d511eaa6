"""What every service needs, wired once by the composition root (web app, CLI, jobs)."""

from __future__ import annotations

from dataclasses import dataclass, field

from carnet.config import Settings
from carnet.identity.service.ratelimit import RateLimiter
from carnet.mail.outbound import OutboxMailer, SmtpMailer, make_mailer
from carnet.storage.blobs import BlobStore, LocalBlobStore
from carnet.storage.db import Database
from carnet.storage.keyring import Keyring
from carnet.storage.keys import InstanceKeys, load_instance_keys


@dataclass
class Services:
    settings: Settings
    db: Database
    keys: InstanceKeys
    mailer: OutboxMailer | SmtpMailer
    keyring: Keyring
    blobs: BlobStore
    ip_limiter: RateLimiter = field(default_factory=lambda: RateLimiter(20, 60.0))


def build_services(settings: Settings) -> Services:
    settings.resolved_data_dir.mkdir(parents=True, exist_ok=True)
    keys = load_instance_keys(settings.resolved_secret_key_file, settings.resolved_master_key_file)
    return Services(
        settings=settings,
        db=Database(settings.resolved_database_url),
        keys=keys,
        mailer=make_mailer(settings.smtp_url, settings.mail_from, settings.resolved_data_dir),
        keyring=Keyring(settings.resolved_master_key_file),
        blobs=LocalBlobStore(settings.resolved_data_dir / "blobs"),
        ip_limiter=RateLimiter(settings.login_ip_limit_per_minute, 60.0),
    )
