"""Blob stores: where the (already encrypted) bodies of documents live.

The vault seals every body with the patient's data key *before* handing it to a store
(``services.keyring.seal``), so a store only ever sees ciphertext. ``LocalBlobStore`` is the
embedded default (a folder); ``carnet.storage.s3.S3BlobStore`` keeps them in S3-compatible object storage. Which
one an instance uses is ``CARNET_BLOB_URL``'s choice (``blob_store_from``).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from carnet.errors import CarnetError, Unavailable

if TYPE_CHECKING:
    from carnet.config import Settings

KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,80}")


class BlobNotFound(Exception):
    """No blob is stored under this key."""


UNAVAILABLE = "Le stockage des documents est momentanément indisponible ; réessayez dans quelques minutes."


class BlobStoreUnavailable(Unavailable):
    """The store is down, unreachable or refuses (after its retries): nothing was written. ``message`` is for
    people (French, no detail); ``reason`` is the technical cause for the operator's log (no key, no data)."""

    def __init__(self, reason: str = "") -> None:
        super().__init__(UNAVAILABLE)
        self.reason = reason

    def __reduce__(self) -> tuple[type[BlobStoreUnavailable], tuple[str]]:
        return (type(self), (self.reason,))


class BlobUrlError(CarnetError):
    """``CARNET_BLOB_URL`` cannot be understood."""


def check_key(key: str) -> str:
    """Return ``key`` if it is a valid blob key (16–80 of ``A-Z a-z 0-9 _ -``), else raise ``ValueError``.

    Keys never contain ``/``, ``.`` or a line break, so they cannot escape the store's folder.
    """
    if not isinstance(key, str) or KEY_PATTERN.fullmatch(key) is None:
        raise ValueError("clé de blob invalide : 16 à 80 caractères parmi A-Z, a-z, 0-9, _ et -")
    return key


@runtime_checkable
class BlobStore(Protocol):
    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``, replacing any previous blob atomically."""
        ...

    def get(self, key: str) -> bytes:
        """The bytes stored under ``key``; ``BlobNotFound`` if there are none."""
        ...

    def delete(self, key: str) -> None:
        """Remove the blob; deleting a missing blob is not an error."""
        ...

    def exists(self, key: str) -> bool: ...

    def older_than(self, cutoff: datetime) -> Iterator[str]:
        """The keys of the blobs last written before ``cutoff`` (for sweeps of what a crash left); half-written
        temporary files that old are removed on the way."""
        ...


def blob_store_from(settings: Settings) -> BlobStore:
    """The store ``CARNET_BLOB_URL`` names: empty, the folder ``<data_dir>/blobs``; ``s3://bucket[/prefix]?endpoint=…
    &region=…``, S3-compatible object storage (credentials from the environment, boto3's usual chain)."""
    url = settings.blob_url.strip()
    if not url:
        return LocalBlobStore(settings.resolved_data_dir / "blobs")
    if url.startswith("s3://"):
        from carnet.storage.s3 import S3BlobStore  # boto3 is loaded only by instances that use it

        return S3BlobStore.from_url(url)
    raise BlobUrlError(
        "CARNET_BLOB_URL doit être vide (dossier local) ou de la forme s3://compartiment?endpoint=https://…"
    )


class LocalBlobStore:
    """Blobs as files ``root/<key[:2]>/<key[2:4]>/<key>`` (mode 0600, folders 0700), written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser().resolve()

    def path_of(self, key: str) -> Path:
        check_key(key)
        return self.root / key[:2] / key[2:4] / key

    def put(self, key: str, data: bytes) -> None:
        path = self.path_of(key)
        folder = path.parent
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        for level in (folder.parent, folder):  # each level 0700 (``parents=True`` would make them 0755)
            level.mkdir(exist_ok=True, mode=0o700)
        # mkstemp creates the file with mode 0600 in the same folder, so os.replace is atomic.
        fd, temp_name = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temp_name, 0o600)
            os.replace(temp_name, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp_name)
            raise
        _fsync_folder(folder)

    def get(self, key: str) -> bytes:
        path = self.path_of(key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise BlobNotFound(key) from None

    def delete(self, key: str) -> None:
        path = self.path_of(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        _fsync_folder(path.parent)

    def exists(self, key: str) -> bool:
        return self.path_of(key).is_file()

    def keys(self) -> Iterator[str]:
        """Every stored key, in order (half-written temporary files aside)."""
        if not self.root.is_dir():
            return
        for path in sorted(self.root.glob("??/??/*")):
            if KEY_PATTERN.fullmatch(path.name) and path.is_file():
                yield path.name

    def older_than(self, cutoff: datetime) -> Iterator[str]:
        limit = cutoff.timestamp()
        if not self.root.is_dir():
            return
        for path in sorted(self.root.glob("??/??/*")):
            try:
                if path.stat().st_mtime >= limit:
                    continue
            except FileNotFoundError:
                continue
            if path.name.startswith(".") and path.name.endswith(".tmp"):  # a write a crash interrupted
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            elif path.is_file():
                yield path.name


def _fsync_folder(folder: Path) -> None:
    """Make a rename or unlink durable (no-op where folders cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
