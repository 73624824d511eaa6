"""The operator's maintenance work that belongs to no capability: the integrity of the audit log
(``carnet audit verify``), the rotation of the master key (``carnet keys rotate``), the move of the documents'
blobs to object storage (``carnet blobs move-to-s3``) and the demo data (``carnet demo``).

Checking the log and rotating the key only need the database: they open it from the settings, without
building the services — so they never create a missing key file (a rotation must find the current key; a
check must leave the data folder as it is).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from carnet.errors import CarnetError
from carnet.hall import audit
from carnet.hall.chain import ChainBreak
from carnet.storage.db import Database
from carnet.storage.keyring import Keyring
from carnet.storage.keyring import rotate_master_key as _rotate

if TYPE_CHECKING:
    from carnet.bootstrap import Services
    from carnet.config import Settings
    from carnet.demo import DemoLogin
    from carnet.storage.blob_move import BlobMove

__all__ = [
    "AuditCheck",
    "KeyRotation",
    "KeyRotationError",
    "load_demo",
    "prepare_blob_move",
    "rotate_master_key",
    "verify_audit_log",
]


@dataclass(frozen=True)
class AuditCheck:
    """What ``carnet audit verify`` found: the chains checked, and every break (none when the log is intact)."""

    chains: int
    breaks: tuple[ChainBreak, ...]


def verify_audit_log(settings: Settings) -> AuditCheck:
    """Check every chain of the audit log (read only)."""
    database = Database(settings.resolved_database_url)
    try:
        with database.unit_of_work() as db:
            chains, breaks = audit.verify(db)
    finally:
        database.dispose()
    return AuditCheck(chains, tuple(breaks))


class KeyRotationError(CarnetError):
    """The master key could not be rotated (missing key file, rotation already running, unknown key…)."""


@dataclass(frozen=True)
class KeyRotation:
    rewrapped: int  # patients' data keys re-wrapped by this run
    key_id: str  # the new current master key


def rotate_master_key(settings: Settings, batch_size: int = 500) -> KeyRotation:
    """Rotate the master key online (resumable: running it again finishes an interrupted rotation)."""
    database = Database(settings.resolved_database_url)
    try:
        count = _rotate(database, settings.resolved_master_key_file, batch_size=batch_size)
    except (RuntimeError, KeyError, FileNotFoundError) as exc:
        raise KeyRotationError(str(exc.args[0] if exc.args else exc)) from None
    finally:
        database.dispose()
    return KeyRotation(count, Keyring(settings.resolved_master_key_file).current_id)


def prepare_blob_move(settings: Settings, url: str | None = None) -> BlobMove:
    """The move of the local folder's blobs (``<data_dir>/blobs``) to the S3 store ``url`` (by default the one
    CARNET_BLOB_URL names); ``BlobMove.run`` does it. Only the data folder is read: no database is opened. Every
    failure is a ``CarnetError`` with a French message (``BlobMoveError``, ``BlobStoreUnavailable``…)."""
    from carnet.storage import blob_move  # boto3 is loaded only by this command
    from carnet.storage.blobs import LocalBlobStore
    from carnet.storage.s3 import S3BlobStore

    address = (url or settings.blob_url).strip()
    if not address.startswith("s3://"):
        raise blob_move.BlobMoveError(
            "indiquez le stockage objet de destination : --vers s3://compartiment?endpoint=https://…"
            " (ou CARNET_BLOB_URL)"
        )
    try:
        target = S3BlobStore.from_url(address)
    except CarnetError as exc:
        raise blob_move.BlobMoveError(exc.message) from None
    source = LocalBlobStore(settings.resolved_data_dir / "blobs")
    return blob_move.prepare_move(settings.resolved_data_dir, source, target)


def load_demo(services: Services) -> list[DemoLogin]:
    """Create or refresh the demo data (idempotent), in one transaction; returns the logins to print."""
    from carnet.demo import load_agenda_demo, load_messaging_demo, load_profile_demo
    from carnet.demo import load_demo as load  # the demo data set imports half of Carnet: only for this command

    with services.db.unit_of_work() as db:
        logins = load(services, db)
    load_profile_demo(services)
    load_agenda_demo(services)
    load_messaging_demo(services)
    return logins
