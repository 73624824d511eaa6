"""Encryption at rest (VLT-8 / SEC-1): patient data keys, master-key wrapping, sealed blobs.

Envelope encryption in two levels:

- every patient has a 32-byte *data key* (AES-256); document bodies are sealed with it
  (AES-256-GCM, the document id as associated data so blobs cannot be swapped between documents),
  and the blind search index is keyed by a subkey of it;
- data keys are stored in ``patient_keys`` only *wrapped* (AES-256-GCM) by the *master key*, which
  lives outside the database in ``settings.resolved_master_key_file`` (base64 of 32 bytes, 0600).

The database alone holds only wrapped keys, the blob folder only ciphertext: neither is readable
without the master key file. Destroying a patient's row key (``destroy_data_key``) makes all their
blobs unreadable wherever copies live (crypto-shredding).

Master-key rotation (``rotate_master_key``) is online: the new key is written to ``<file>.next``,
every data key is re-wrapped under it in small transactions, then the old key is kept as
``<file>.previous`` and ``<file>.next`` becomes ``<file>``. Running processes follow because a
``Keyring`` re-reads the files when it meets an unknown master key id, and before wrapping when the
master file changed. The files are always read in the order ``.next``, current, ``.previous`` and the
current file is replaced atomically (never absent), so a reader racing a rotation never misses a key.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import secrets
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import CursorResult, Insert, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from carnet.errors import CarnetError
from carnet.storage.base import columns
from carnet.storage.db import Database
from carnet.storage.tables import PatientKey
from carnet.storage.types import utcnow

try:  # POSIX only; without it two simultaneous rotations are not prevented.
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "DataKeyMissing",
    "DecryptionError",
    "KeyDestroyed",
    "Keyring",
    "blind_term",
    "data_key",
    "destroy_data_key",
    "master_key_id",
    "open_sealed",
    "rotate_master_key",
    "seal",
]

KEY_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16
SEALED_VERSION = 0x01
WRAP_AAD = b"carnet-data-key"
SEARCH_SUBKEY_LABEL = b"carnet-search-index-v1"
BLIND_TERM_LENGTH = 24


class DecryptionError(CarnetError):
    """A sealed body or a wrapped key could not be decrypted (wrong key, wrong AAD, altered bytes)."""


class KeyDestroyed(Exception):
    """The patient's data key was destroyed: their documents can no longer be read (crypto-shredding)."""


class DataKeyMissing(LookupError):
    """The patient has no data key yet and ``create=False`` was asked."""


def master_key_id(key: bytes) -> str:
    """A public fingerprint of a master key: the first 16 hex characters of its SHA-256."""
    return hashlib.sha256(key).hexdigest()[:16]


def _check_key(key: bytes, what: str) -> None:
    if not isinstance(key, bytes | bytearray) or len(key) != KEY_SIZE:
        raise ValueError(f"{what} doit faire {KEY_SIZE} octets")


# --- key files ---------------------------------------------------------------------------------


def _sidecar(path: Path, suffix: str) -> Path:
    return path.with_name(f"{path.name}.{suffix}")


def _read_key_file(path: Path) -> bytes | None:
    """The 32-byte key of a base64 key file, or None if the file does not exist."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except binascii.Error:
        raise ValueError(f"{path} : le fichier de clé n'est pas en base64") from None
    if len(key) != KEY_SIZE:
        raise ValueError(f"{path} : la clé doit faire {KEY_SIZE} octets")
    return key


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _write_key_file(path: Path, key: bytes, *, exclusive: bool = False) -> bool:
    """Write a key file atomically (0600). With ``exclusive``, never replace an existing file.

    Returns False when ``exclusive`` and the file already existed (nothing written).
    """
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(base64.b64encode(key) + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_name, 0o600)
        if exclusive:
            try:
                os.link(temp_name, path)  # atomic, fails if the file exists
            except FileExistsError:
                return False
            except OSError:  # pragma: no cover - file systems without hard links
                if path.exists():
                    return False
                os.replace(temp_name, path)
        else:
            os.replace(temp_name, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
    _fsync_folder(path.parent)
    return True


def _file_signature(path: Path) -> tuple[int, int, int, int] | None:
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    return (info.st_dev, info.st_ino, info.st_mtime_ns, info.st_size)


# --- wrapping ----------------------------------------------------------------------------------


def _wrap_with(master: bytes, data_key: bytes) -> str:
    _check_key(data_key, "la clé de patient")
    nonce = secrets.token_bytes(NONCE_SIZE)
    wrapped = AESGCM(master).encrypt(nonce, bytes(data_key), WRAP_AAD)
    return base64.b64encode(nonce + wrapped).decode("ascii")


def _unwrap_with(master: bytes, token: str) -> bytes:
    try:
        raw = base64.b64decode(token.encode("ascii"), validate=True)
        data_key = AESGCM(master).decrypt(raw[:NONCE_SIZE], raw[NONCE_SIZE:], WRAP_AAD)
    except (InvalidTag, ValueError, TypeError, UnicodeEncodeError):
        raise DecryptionError("clé de patient illisible : mauvaise clé maîtresse ou clé altérée") from None
    if len(data_key) != KEY_SIZE:
        raise DecryptionError("clé de patient de taille inattendue")
    return data_key


class Keyring:
    """The master keys of this instance: the current one, plus ``<file>.next`` / ``<file>.previous``.

    Thread-safe. Wraps with the current key; unwraps with whichever known key the row names,
    re-reading the files once when the id is unknown (another process may have rotated).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._keys: dict[str, bytes] = {}
        self._current = b""
        self._current_id = ""
        self._signature: tuple[int, int, int, int] | None = None
        if not self._load():
            raise FileNotFoundError(f"clé maîtresse introuvable : {self.path}")

    def _load(self) -> bool:
        """(Re)read the key files; False if the current file is missing (the known keys are kept)."""
        with self._lock:
            # Order matters: .next, then current, then .previous (see the module docstring).
            next_key = _read_key_file(_sidecar(self.path, "next"))
            signature = _file_signature(self.path)
            current = _read_key_file(self.path)
            previous = _read_key_file(_sidecar(self.path, "previous"))
            for key in (previous, next_key, current):
                if key is not None:
                    self._keys[master_key_id(key)] = key
            if current is None:
                return False
            self._current, self._current_id, self._signature = current, master_key_id(current), signature
            return True

    def _refresh_if_changed(self) -> None:
        if _file_signature(self.path) != self._signature:
            self._load()

    @property
    def current_id(self) -> str:
        with self._lock:
            self._refresh_if_changed()
            return self._current_id

    @property
    def known_ids(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._keys)

    def wrap(self, data_key: bytes) -> tuple[str, str]:
        """Wrap a data key with the current master key: (base64 token, master key id)."""
        _check_key(data_key, "la clé de patient")
        with self._lock:
            self._refresh_if_changed()  # never wrap with a key a rotation has already retired
            master, key_id = self._current, self._current_id
        return _wrap_with(master, data_key), key_id

    def _master(self, key_id: str) -> bytes:
        with self._lock:
            key = self._keys.get(key_id)
            if key is None:
                self._load()
                key = self._keys.get(key_id)
        if key is None:
            raise KeyError(
                f"clé maîtresse « {key_id} » inconnue : absente de {self.path} et de ses fichiers "
                ".next / .previous (mauvais fichier de clé, ou clé retirée par deux rotations successives ?)"
            )
        return key

    def unwrap(self, token: str, master_key_id: str) -> bytes:
        """The data key wrapped in ``token`` by the master key ``master_key_id``."""
        return _unwrap_with(self._master(master_key_id), token)


# --- patient data keys -------------------------------------------------------------------------


def foreign_master_key(db: Session, keyring: Keyring) -> str | None:
    """The id of a master key that wraps patients' keys in this database and that the key files do not hold — the
    sign of a wrong ``CARNET_MASTER_KEY_FILE`` (a missing file is created with a fresh key on first start) — or None.
    One row is enough: a wrong file knows none of them. During a rotation both ids are known (``.previous``)."""
    row = db.execute(select(PatientKey.master_key_id).where(PatientKey.wrapped_key.is_not(None)).limit(1)).first()
    if row is None or row[0] in keyring.known_ids:
        return None
    keyring._load()  # another process may have rotated since this keyring read the files
    return None if row[0] in keyring.known_ids else str(row[0])


def _insert_ignoring_conflict(db: Session, values: dict[str, Any]) -> Insert:
    dialect = db.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(PatientKey).values(**values).on_conflict_do_nothing(index_elements=["patient_id"])
    if dialect == "sqlite":
        return sqlite.insert(PatientKey).values(**values).on_conflict_do_nothing(index_elements=["patient_id"])
    raise NotImplementedError(f"base de données non prise en charge : {dialect}")  # pragma: no cover


_KEY = columns(PatientKey)
_KEY_ROW = select(_KEY.wrapped_key, _KEY.master_key_id, _KEY.destroyed_at).where(
    _KEY.patient_id == bindparam("patient")
)  # built once: read at every deposit, search by words and document read


def _key_row(db: Session, patient_id: str) -> Any:
    return db.execute(_KEY_ROW, {"patient": patient_id}).first()


def data_key(db: Session, keyring: Keyring, patient_id: str, create: bool = True) -> bytes:
    """The patient's (unwrapped) data key, created on first use when ``create``.

    Two transactions creating the same patient's key at once end with one key: the insert does
    nothing on conflict and the row is read again. Raises ``KeyDestroyed`` after
    ``destroy_data_key`` and ``DataKeyMissing`` when there is no key and ``create`` is False.
    """
    row = _key_row(db, patient_id)
    if row is None:
        if not create:
            raise DataKeyMissing(f"aucune clé de chiffrement pour le patient {patient_id}")
        fresh = secrets.token_bytes(KEY_SIZE)
        token, key_id = keyring.wrap(fresh)
        db.execute(
            _insert_ignoring_conflict(
                db, {"patient_id": patient_id, "wrapped_key": token, "master_key_id": key_id, "created_at": utcnow()}
            )
        )
        row = _key_row(db, patient_id)
        if row is None:  # pragma: no cover - the insert or a concurrent one made it
            raise RuntimeError("la clé du patient n'a pas pu être créée")
        if row.wrapped_key == token and row.destroyed_at is None:
            return fresh
    if row.destroyed_at is not None or row.wrapped_key is None:
        raise KeyDestroyed(f"la clé de chiffrement du patient {patient_id} a été détruite")
    return keyring.unwrap(row.wrapped_key, row.master_key_id)


def destroy_data_key(db: Session, patient_id: str) -> None:
    """Crypto-shredding: forget the patient's wrapped key for good (a tombstone if there was none).

    The tombstone means no new key can be created afterwards for this patient by ``data_key``.
    """
    now = utcnow()
    db.execute(
        _insert_ignoring_conflict(
            db,
            {
                "patient_id": patient_id,
                "wrapped_key": None,
                "master_key_id": "",
                "created_at": now,
                "destroyed_at": now,
            },
        )
    )
    db.execute(
        update(PatientKey)
        .where(PatientKey.patient_id == patient_id, PatientKey.destroyed_at.is_(None))
        .values(wrapped_key=None, destroyed_at=now)
    )


# --- sealed bodies and blind index -------------------------------------------------------------


def seal(data_key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """AES-256-GCM: ``0x01`` ‖ 12-byte random nonce ‖ ciphertext+tag. ``aad`` is the document id."""
    _check_key(data_key, "la clé de patient")
    nonce = secrets.token_bytes(NONCE_SIZE)
    return bytes([SEALED_VERSION]) + nonce + AESGCM(bytes(data_key)).encrypt(nonce, plaintext, aad)


def open_sealed(data_key: bytes, sealed: bytes, aad: bytes) -> bytes:
    """The plaintext of ``seal``; ``DecryptionError`` on any failure (wrong key, wrong AAD, altered)."""
    if len(sealed) < 1 + NONCE_SIZE + TAG_SIZE or sealed[0] != SEALED_VERSION:
        raise DecryptionError("contenu chiffré illisible (format inconnu ou tronqué)")
    try:
        _check_key(data_key, "la clé de patient")
        return AESGCM(bytes(data_key)).decrypt(bytes(sealed[1 : 1 + NONCE_SIZE]), bytes(sealed[1 + NONCE_SIZE :]), aad)
    except (InvalidTag, ValueError, TypeError):
        raise DecryptionError("contenu chiffré illisible : mauvaise clé, mauvais document ou contenu altéré") from None


def blind_term(data_key: bytes, term: str) -> str:
    """Blind index entry of one (already normalised) word: HMAC-SHA256 under a search subkey, 24 hex."""
    _check_key(data_key, "la clé de patient")
    subkey = hmac.new(bytes(data_key), SEARCH_SUBKEY_LABEL, hashlib.sha256).digest()
    return hmac.new(subkey, term.encode("utf-8"), hashlib.sha256).hexdigest()[:BLIND_TERM_LENGTH]


# --- master key rotation -----------------------------------------------------------------------


@contextlib.contextmanager
def _rotation_lock(path: Path) -> Iterator[None]:
    """One rotation at a time on this host (an exclusive lock on the keys folder)."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError("une rotation de la clé maîtresse est déjà en cours") from None
        yield
    finally:
        os.close(fd)  # releases the lock


def _next_key(path: Path) -> bytes:
    """The key of ``<path>.next``, generated (0600) unless an interrupted rotation left one."""
    next_path = _sidecar(path, "next")
    existing = _read_key_file(next_path)
    if existing is not None:
        return existing
    _write_key_file(next_path, secrets.token_bytes(KEY_SIZE), exclusive=True)  # keeps one written meanwhile
    key = _read_key_file(next_path)
    assert key is not None
    return key


def _rewrap_batch(database: Database, keyring: Keyring, new_key: bytes, batch_size: int) -> tuple[int, int]:
    """Re-wrap up to ``batch_size`` keys not yet under ``new_key``, in one transaction.

    Returns (rows seen, rows re-wrapped). Each update is a compare-and-set on the old token, so a key
    destroyed or re-wrapped concurrently is never resurrected or overwritten.
    """
    new_id = master_key_id(new_key)
    seen = rewrapped = 0
    with database.unit_of_work() as db:
        rows = db.execute(
            select(PatientKey.patient_id, PatientKey.wrapped_key, PatientKey.master_key_id)
            .where(PatientKey.wrapped_key.is_not(None), PatientKey.master_key_id != new_id)
            .order_by(PatientKey.patient_id)
            .limit(batch_size)
        ).all()
        for patient_id, token, key_id in rows:
            seen += 1
            new_token = _wrap_with(new_key, keyring.unwrap(cast(str, token), key_id))
            result = cast(
                CursorResult[Any],
                db.execute(
                    update(PatientKey)
                    .where(
                        PatientKey.patient_id == patient_id,
                        PatientKey.wrapped_key == token,
                        PatientKey.master_key_id == key_id,
                    )
                    .values(wrapped_key=new_token, master_key_id=new_id)
                    .execution_options(synchronize_session=False)
                ),
            )
            rewrapped += result.rowcount
    return seen, rewrapped


def _promote(path: Path) -> None:
    """``<path>`` → ``<path>.previous`` and ``<path>.next`` → ``<path>``; ``<path>`` is never absent."""
    next_path = _sidecar(path, "next")
    new_key = _read_key_file(next_path)
    if new_key is None:  # pragma: no cover - checked by the caller
        return
    current = _read_key_file(path)
    if current is not None and current != new_key:
        _write_key_file(_sidecar(path, "previous"), current)  # replaces an older .previous
    os.replace(next_path, path)
    _fsync_folder(path.parent)


def rotate_master_key(database: Database, keyring_path: Path, batch_size: int = 500) -> int:
    """Rotate the master key online; returns how many data keys were re-wrapped by this run.

    Resumable: an interrupted run leaves ``<path>.next``, which the next run reuses and finishes.
    """
    if batch_size < 1:
        raise ValueError("batch_size doit être positif")
    path = Path(keyring_path)
    if _read_key_file(path) is None:
        raise FileNotFoundError(f"clé maîtresse introuvable : {path}")
    with _rotation_lock(path):
        new_key = _next_key(path)
        keyring = Keyring(path)  # knows .next, current and .previous
        total = 0
        while True:
            seen, rewrapped = _rewrap_batch(database, keyring, new_key, batch_size)
            total += rewrapped
            if seen == 0:
                break
        _promote(path)
    return total
