"""What every service needs, wired once by the composition root (web app, CLI, jobs)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from carnet.config import Settings
from carnet.errors import CarnetError
from carnet.hall.actors import Actor, ActorKind
from carnet.identity.service.ratelimit import RateLimiter
from carnet.mail.outbound import OutboxMailer, SmtpMailer, make_mailer
from carnet.storage.blobs import BlobStore, blob_store_from
from carnet.storage.db import Database
from carnet.storage.keyring import Keyring, foreign_master_key
from carnet.storage.keys import InstanceKeys, load_instance_keys
from carnet.storage.keys import secure_data_dir as _secure

logger = logging.getLogger("carnet")


@dataclass
class Services:
    settings: Settings
    db: Database
    keys: InstanceKeys
    mailer: OutboxMailer | SmtpMailer
    keyring: Keyring
    blobs: BlobStore
    ip_limiter: RateLimiter = field(default_factory=lambda: RateLimiter(20, 60.0))


def secure_data_dir(folder: Path) -> None:
    for path in _secure(folder):
        logger.warning("droits d'accès resserrés (0700/0600) sur %s : il était lisible par d'autres comptes", path.name)


def build_services(settings: Settings) -> Services:
    secure_data_dir(settings.resolved_data_dir)
    keys = load_instance_keys(settings.resolved_secret_key_file, settings.resolved_master_key_file)
    return Services(
        settings=settings,
        db=Database(settings.resolved_database_url),
        keys=keys,
        mailer=make_mailer(settings.smtp_url, settings.mail_from, settings.resolved_data_dir),
        keyring=Keyring(settings.resolved_master_key_file),
        blobs=blob_store_from(settings),
        ip_limiter=RateLimiter(settings.login_ip_limit_per_minute, 60.0),
    )


class WrongMasterKey(CarnetError):
    """The master key file is not the one that wraps this database's patient keys: nothing would open."""


def check_master_key(services: Services) -> None:
    """Refuse to serve with a master key that opens none of the patients' keys (``WrongMasterKey``): documents
    deposited then would be sealed under a key the rest of the space cannot share, and nothing already stored
    would open. Called by ``carnet serve`` and ``carnet worker`` after the schema is up to date."""
    with services.db.reading() as db:
        foreign = foreign_master_key(db, services.keyring)
    if foreign:
        raise WrongMasterKey(
            f"La clé maîtresse {services.settings.resolved_master_key_file} n'est pas celle qui protège les clés "
            f"des patients de cette base (clé attendue : {foreign}). Vérifiez CARNET_MASTER_KEY_FILE ; si ce fichier "
            "vient d'être créé parce qu'il manquait, supprimez-le et remettez le bon."
        )


# --- the operator's commands (CLI) ------------------------------------------------------------------------


def migrate(settings: Settings) -> None:
    """``carnet migrate``: create the data folder and, on first start, the keys; then bring the database schema
    up to date (Alembic ``upgrade head``). Safe to call again (nothing changes on an up-to-date instance)."""
    from carnet.storage.migrate import upgrade  # Alembic is loaded only by the commands that migrate

    secure_data_dir(settings.resolved_data_dir)
    load_instance_keys(settings.resolved_secret_key_file, settings.resolved_master_key_file)
    upgrade(settings.resolved_database_url)


@contextmanager
def operator_services(settings: Settings, *, migrate_schema: bool | None = None) -> Iterator[Services]:
    """The services of one operator command, released when it ends. The schema is brought up to date first:
    on the embedded default only (``None``), always (``True``) or never (``False``)."""
    services = build_services(settings)
    try:
        if migrate_schema or (migrate_schema is None and settings.is_embedded):
            migrate(settings)
        yield services
    finally:
        services.db.dispose()


def operator_actor() -> Actor:
    """The person at the command line, as the history names them (their system account)."""
    import getpass

    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = "inconnu"
    return Actor(ActorKind.OPERATOR, None, f"Opérateur (ligne de commande, compte système {user})")
