"""Consistent online backup and restore of a whole instance (issue #18-4).

A backup folder holds:

- the database, as one consistent snapshot: ``pg_dump -Fc`` on PostgreSQL (``base.dump``), the SQLite online backup
  API on SQLite (``base.sqlite3``) — the patients' data keys are in it, wrapped by the master key;
- every blob a row of that snapshot names, copied as stored (ciphertext) through the ``BlobStore`` protocol, so a
  folder store and an S3 store are backed up alike (``fichiers-chiffres/…``), listed with their size and SHA-256 in
  ``fichiers-chiffres.jsonl`` (one JSON line per blob: a manifest of millions of blobs would not fit in memory);
- ``manifest.json``: format version, date, Carnet version, database kind, Alembic revision, the master key's
  IDENTIFIER (never the key) and those of the keys wrapping the patients' keys in the snapshot, the instance secret's
  identifier, and the size and SHA-256 of the database file and of the blob list.

Consistency rule. Blobs are written before their row commits, and deleted only after their row's deletion commits
(vault, messaging, enrolment erasure) or when their row never committed (a failed deposit; the housekeeping sweeps,
which only remove blobs no row names and older than an hour). So the snapshot is taken FIRST, then every blob a row
of the snapshot names is copied (the names are read from the snapshot itself: in the exported PostgreSQL snapshot the
dump was taken from, or from the SQLite copy). A blob written after the snapshot is not needed; a blob named by the
snapshot exists unless its row was deleted after the snapshot. In that case the attempt is thrown away and a new
snapshot is taken (at most ``MAX_ATTEMPTS`` times), and the report names each row concerned; if the row still exists
in the live database, its blob is really lost: the backup is refused, naming the rows. A finished backup therefore
never holds a row whose blob is missing.

Restore checks everything before writing anything: the manifest, the SHA-256 of every file, the Alembic revision,
the configured keys (the master key — or a key its keyring still knows — must be the one of the manifest, the instance
secret the same), an empty database and an empty blob store. It then puts the blobs back first (rows never name a
missing blob), restores the database (``pg_restore`` in one transaction, or the SQLite file put in place atomically),
removes the blobs it wrote if that fails, and checks the audit log.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

import carnet
from carnet.config import Settings
from carnet.errors import CarnetError
from carnet.storage.blobs import BlobNotFound, BlobStore, check_key
from carnet.storage.db import normalise_url
from carnet.storage.keyring import Keyring

__all__ = [
    "BackupError",
    "BackupReport",
    "RestoreReport",
    "blob_columns",
    "create_backup",
    "restore_backup",
]

FORMAT = "carnet-sauvegarde"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SQLITE_FILE = "base.sqlite3"
POSTGRESQL_FILE = "base.dump"
BLOB_INDEX = "fichiers-chiffres.jsonl"
BLOB_FOLDER = "fichiers-chiffres"
MAX_ATTEMPTS = 3
PROGRESS_EVERY = 1000
CHUNK = 1 << 20
SECRET_ID_LABEL = b"carnet-secret-key-id"

Progress = Callable[[str], None]


class BackupError(CarnetError):
    """A backup or a restore could not be done; the French message says why and what to do."""


@dataclass(frozen=True)
class LostBlob:
    """A row of the snapshot whose blob was not found in the store."""

    table: str
    row: str
    key: str

    def describe(self) -> str:
        return f"table {self.table}, ligne {self.row} (fichier chiffré {self.key})"


@dataclass(frozen=True)
class BackupReport:
    folder: Path
    database_kind: str
    database_bytes: int
    blobs: int
    blob_bytes: int
    revision: str
    master_key_id: str
    attempts: int
    deleted_meanwhile: tuple[str, ...]  # rows deleted during the backup (a new snapshot was taken for them)


@dataclass(frozen=True)
class RestoreReport:
    database_kind: str
    blobs: int
    blob_bytes: int
    revision: str
    needs_migration: bool  # the backup's schema is older than this Carnet's: run ``carnet migrate``
    audit_chains: int
    audit_breaks: tuple[str, ...]


def _quiet(_message: str) -> None:
    return None


# --- what names a blob ---------------------------------------------------------------------------------------------


def blob_columns() -> list[tuple[str, tuple[str, ...], str]]:
    """Every column of the schema that names a blob (``blob_key`` or ``…_blob_key``): (table, primary key, column).

    Read from the metadata, so a capability that adds a blob column is backed up without a change here."""
    from carnet.schema import metadata  # every capability's tables: only the commands that need them load them

    found = []
    for table in metadata.tables.values():
        for column in table.columns:
            if column.name == "blob_key" or column.name.endswith("_blob_key"):
                found.append((table.name, tuple(c.name for c in table.primary_key.columns), column.name))
    return sorted(found)


def _referenced(conn: Connection) -> Iterator[tuple[str, str, str]]:
    """(table, row id, blob key) of every row of the database ``conn`` reads that names a blob."""
    for table, primary_key, column in blob_columns():
        ids = ", ".join(f'"{c}"' for c in primary_key)
        result = conn.execution_options(stream_results=True, yield_per=2000).execute(
            text(f'SELECT "{column}", {ids} FROM "{table}" WHERE "{column}" IS NOT NULL ORDER BY "{column}"')  # noqa: S608
        )
        for row in result:
            yield table, "/".join(str(value) for value in row[1:]), str(row[0])


# --- files ---------------------------------------------------------------------------------------------------------


def _sha256_of(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _create_private(path: Path) -> None:
    """An empty file 0600 (refused if it exists)."""
    os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _blob_path(folder: Path, key: str) -> Path:
    check_key(key)
    return folder / BLOB_FOLDER / key[:2] / key[2:4] / key


def _key_file(path: Path) -> bytes | None:
    try:
        raw = base64.b64decode(path.read_text().strip(), validate=True)
    except FileNotFoundError:
        return None
    except (binascii.Error, ValueError):
        raise BackupError(f"{path} : le fichier de clé n'est pas lisible (base64 de 32 octets attendu).") from None
    return raw


def secret_key_id(secret: bytes) -> str:
    """A public fingerprint of the instance secret (not the one of the master key: another label)."""
    return hashlib.sha256(SECRET_ID_LABEL + secret).hexdigest()[:16]


def _kind(settings: Settings) -> str:
    return "sqlite" if settings.is_embedded else "postgresql"


def _sqlite_path(settings: Settings) -> Path:
    database = make_url(normalise_url(settings.resolved_database_url)).database
    if not database or database == ":memory:":
        raise BackupError("La base SQLite configurée n'est pas un fichier : rien à sauvegarder ni à restaurer.")
    return Path(database)


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """The database's address for pg_dump / pg_restore, the password passed in the environment (not visible in
    the process list)."""
    parsed = make_url(normalise_url(url))
    env = dict(os.environ)
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(f"Commande {name} introuvable : installez le client PostgreSQL (paquet postgresql-client).")
    return path


def _run(command: list[str], env: dict[str, str], what: str) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise BackupError(f"{what} a échoué : {detail[-1] if detail else f'code {done.returncode}'}")


# --- backup --------------------------------------------------------------------------------------------------------


@dataclass
class _Snapshot:
    conn: Connection
    file: Path


@contextlib.contextmanager
def _sqlite_snapshot(settings: Settings, folder: Path) -> Iterator[_Snapshot]:
    """The SQLite online backup API: one consistent copy while others keep writing; names read from the copy."""
    source_path = _sqlite_path(settings)
    if not source_path.is_file():
        raise BackupError(f"Base SQLite introuvable : {source_path}")
    target = folder / SQLITE_FILE
    _create_private(target)
    source = sqlite3.connect(source_path, timeout=30)
    try:
        source.execute("PRAGMA busy_timeout=30000")
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)  # all pages in one step: one read transaction, one snapshot
            copy.execute("PRAGMA journal_mode=DELETE")  # a single file, without -wal / -shm beside it
        finally:
            copy.close()
    finally:
        source.close()
    engine = create_engine(f"sqlite:///{target}", poolclass=NullPool)
    try:
        with engine.connect() as conn:
            yield _Snapshot(conn, target)
    finally:
        engine.dispose()


@contextlib.contextmanager
def _postgresql_snapshot(settings: Settings, folder: Path) -> Iterator[_Snapshot]:
    """A REPEATABLE READ transaction exports its snapshot; pg_dump dumps that very snapshot and the blob names are
    read in it, so the dump and the list of blobs agree exactly."""
    pg_dump = _tool("pg_dump")
    target = folder / POSTGRESQL_FILE
    _create_private(target)
    address, env = _libpq(settings.resolved_database_url)
    engine = create_engine(normalise_url(settings.resolved_database_url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            with conn.begin():
                snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
                _run(
                    [pg_dump, "--format=custom", f"--snapshot={snapshot}", f"--file={target}", f"--dbname={address}"],
                    env,
                    "pg_dump",
                )
                yield _Snapshot(conn, target)
    except SQLAlchemyError as exc:
        raise BackupError(f"Base PostgreSQL injoignable : {type(exc).__name__}") from None
    finally:
        engine.dispose()


def _copy_blobs(
    conn: Connection, store: BlobStore, folder: Path, progress: Progress
) -> tuple[int, int, list[LostBlob]]:
    """Copy every blob the snapshot names; write their list; return (count, bytes, the lost ones)."""
    count = total = 0
    lost: list[LostBlob] = []
    (folder / BLOB_FOLDER).mkdir(mode=0o700)
    fd = os.open(folder / BLOB_INDEX, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as index:
        for table, row, key in _referenced(conn):
            try:
                path = _blob_path(folder, key)
                data = store.get(key)
            except BlobNotFound:
                lost.append(LostBlob(table, row, key))
                continue
            except ValueError:
                raise BackupError(
                    f"Nom de fichier chiffré invalide dans la base : table {table}, ligne {row}."
                ) from None
            for level in (path.parent.parent, path.parent):
                level.mkdir(mode=0o700, exist_ok=True)
            if not path.exists():  # the same blob named twice is copied once
                _write_private(path, data)
            index.write(json.dumps({"key": key, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}) + "\n")
            count += 1
            total += len(data)
            if count % PROGRESS_EVERY == 0:
                progress(f"  {count} fichier(s) chiffré(s) copié(s)…")
    return count, total, lost


def _still_there(settings: Settings, lost: list[LostBlob]) -> list[LostBlob]:
    """The lost blobs whose row still exists in the live database (really lost, not deleted meanwhile)."""
    columns = {table: column for table, _, column in blob_columns()}
    engine = create_engine(normalise_url(settings.resolved_database_url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return [
                item
                for item in lost
                if conn.execute(
                    text(f'SELECT 1 FROM "{item.table}" WHERE "{columns[item.table]}" = :key'),  # noqa: S608
                    {"key": item.key},
                ).first()
                is not None
            ]
    finally:
        engine.dispose()


def _empty_folder(folder: Path) -> None:
    for path in folder.iterdir():
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def _prepare_destination(destination: Path) -> Path:
    folder = destination.expanduser().absolute()
    if folder.exists():
        if not folder.is_dir():
            raise BackupError(f"{folder} existe et n'est pas un dossier.")
        if any(folder.iterdir()):
            raise BackupError(f"Le dossier {folder} n'est pas vide : choisissez un dossier neuf pour la sauvegarde.")
    else:
        folder.mkdir(parents=True, mode=0o700)
    folder.chmod(0o700)
    return folder


def _open_store(settings: Settings) -> tuple[BlobStore, Callable[[], None]]:
    """The configured blob store (folder or S3), built as every command builds it; and what releases it."""
    from carnet.bootstrap import build_services

    services = build_services(settings)
    return services.blobs, services.db.dispose


def _current_keys(settings: Settings) -> tuple[Keyring, bytes]:
    """The configured keys, never created here (a backup or restore must find them, not make new ones)."""
    try:
        keyring = Keyring(settings.resolved_master_key_file)
    except FileNotFoundError:
        raise BackupError(
            f"Clé maîtresse introuvable : {settings.resolved_master_key_file} (CARNET_MASTER_KEY_FILE)."
        ) from None
    except ValueError as exc:
        raise BackupError(str(exc)) from None
    secret = _key_file(settings.resolved_secret_key_file)
    if secret is None:
        raise BackupError(
            f"Secret de l'instance introuvable : {settings.resolved_secret_key_file} (CARNET_SECRET_KEY_FILE)."
        )
    return keyring, secret


@dataclass(frozen=True)
class _Copy:
    """One attempt: the snapshot's facts, the blobs copied, the rows whose blob was not found."""

    revision: str | None
    wrapped_by: list[str]
    blobs: int
    blob_bytes: int
    lost: list[LostBlob]


def _attempt(settings: Settings, kind: str, store: BlobStore, folder: Path, progress: Progress) -> _Copy:
    _empty_folder(folder)
    snapshotting = _sqlite_snapshot if kind == "sqlite" else _postgresql_snapshot
    with snapshotting(settings, folder) as snapshot:
        revision = snapshot.conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        wrapped_by = sorted(
            snapshot.conn.execute(
                text("SELECT DISTINCT master_key_id FROM patient_keys WHERE wrapped_key IS NOT NULL")
            ).scalars()
        )
        progress(f"Instantané de la base écrit ({kind}) ; copie des fichiers chiffrés qu'il référence…")
        count, total, lost = _copy_blobs(snapshot.conn, store, folder, progress)
    return _Copy(revision, wrapped_by, count, total, lost)


def _copy_consistently(
    settings: Settings, kind: str, store: BlobStore, folder: Path, progress: Progress
) -> tuple[_Copy, int, list[str]]:
    """Attempts until no row of the snapshot misses its blob: (the good one, its number, the rows deleted meanwhile)."""
    deleted: list[str] = []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        copy = _attempt(settings, kind, store, folder, progress)
        if not copy.lost:
            return copy, attempt, deleted
        really_lost = _still_there(settings, copy.lost)
        if really_lost:
            raise BackupError(
                f"Sauvegarde refusée : {len(really_lost)} fichier(s) chiffré(s) manquent dans le stockage alors "
                "que leur ligne existe toujours (perte antérieure à la sauvegarde) : "
                + " ; ".join(item.describe() for item in really_lost[:20])
                + (" ; …" if len(really_lost) > 20 else "")
            )
        deleted += [item.describe() for item in copy.lost]
        progress(
            f"{len(copy.lost)} fichier(s) supprimé(s) pendant la sauvegarde avec leur ligne "
            f"({'; '.join(item.describe() for item in copy.lost[:5])}) : nouvel instantané (essai {attempt + 1})."
        )
    raise BackupError(
        f"Sauvegarde abandonnée après {MAX_ATTEMPTS} essais : des documents sont supprimés plus vite que la "
        "copie ne se fait. Relancez la commande à un moment plus calme."
    )


def _write_manifest(folder: Path, kind: str, copy: _Copy, keyring: Keyring, secret: bytes) -> int:
    """The manifest, written last (a folder without one is not a backup); returns the database file's size."""
    database_file = folder / (SQLITE_FILE if kind == "sqlite" else POSTGRESQL_FILE)
    files = []
    for path in (database_file, folder / BLOB_INDEX):
        size, digest = _sha256_of(path)
        files.append({"path": path.name, "size": size, "sha256": digest})
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "carnet_version": carnet.__version__,
        "database": {"kind": kind, "file": database_file.name, "alembic_revision": copy.revision},
        "master_key_id": keyring.current_id,
        "patient_keys_wrapped_by": copy.wrapped_by,
        "secret_key_id": secret_key_id(secret),
        "blobs": {"count": copy.blobs, "bytes": copy.blob_bytes, "index": BLOB_INDEX, "folder": BLOB_FOLDER},
        "files": files,
    }
    temporary = folder / f".{MANIFEST}.tmp"
    _write_private(temporary, json.dumps(manifest, indent=2, ensure_ascii=False).encode() + b"\n")
    os.replace(temporary, folder / MANIFEST)
    return int(files[0]["size"])  # type: ignore[call-overload]


def create_backup(settings: Settings, destination: Path, progress: Progress = _quiet) -> BackupReport:
    """Back the instance up into ``destination`` (a new or empty folder) while it keeps running."""
    keyring, secret = _current_keys(settings)
    folder = _prepare_destination(destination)
    kind = _kind(settings)
    store, release = _open_store(settings)
    try:
        copy, attempts, deleted = _copy_consistently(settings, kind, store, folder, progress)
        if copy.revision is None:
            raise BackupError("La base n'a pas de révision Alembic : lancez d'abord « carnet migrate ».")
        database_bytes = _write_manifest(folder, kind, copy, keyring, secret)
    except BaseException:
        with contextlib.suppress(OSError):
            _empty_folder(folder)
        raise
    finally:
        release()
    progress("Sauvegarde terminée.")
    return BackupReport(
        folder=folder,
        database_kind=kind,
        database_bytes=database_bytes,
        blobs=copy.blobs,
        blob_bytes=copy.blob_bytes,
        revision=copy.revision,
        master_key_id=keyring.current_id,
        attempts=attempts,
        deleted_meanwhile=tuple(deleted),
    )


# --- restore -------------------------------------------------------------------------------------------------------


def _read_manifest(folder: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupError(f"{folder} n'est pas une sauvegarde Carnet complète : {MANIFEST} absent.") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BackupError(f"{MANIFEST} illisible : la sauvegarde est abîmée.") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{MANIFEST} n'est pas celui d'une sauvegarde Carnet.")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(
            f"Format de sauvegarde {manifest.get('format_version')!r} inconnu de cette version de Carnet "
            f"(format {FORMAT_VERSION} attendu)."
        )
    try:
        kind = manifest["database"]["kind"]
        files = {entry["path"]: (int(entry["size"]), str(entry["sha256"])) for entry in manifest["files"]}
        str(manifest["database"]["alembic_revision"])
        str(manifest["master_key_id"])
        list(manifest["patient_keys_wrapped_by"])
        str(manifest["secret_key_id"])
    except (KeyError, TypeError, ValueError):
        raise BackupError(f"{MANIFEST} incomplet : la sauvegarde est abîmée.") from None
    expected = {SQLITE_FILE if kind == "sqlite" else POSTGRESQL_FILE, BLOB_INDEX}
    if kind not in {"sqlite", "postgresql"} or set(files) != expected:
        raise BackupError(f"{MANIFEST} ne décrit pas les fichiers attendus : la sauvegarde est abîmée.")
    return manifest


def _index(folder: Path) -> Iterator[tuple[str, int, str]]:
    with (folder / BLOB_INDEX).open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            try:
                entry = json.loads(line)
                yield check_key(entry["key"]), int(entry["size"]), str(entry["sha256"])
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                raise BackupError(f"{BLOB_INDEX}, ligne {number} : illisible — la sauvegarde est abîmée.") from None


def _verify(folder: Path, manifest: dict[str, Any], progress: Progress) -> tuple[int, int]:
    """Every file's size and SHA-256, before anything is written; (blobs, bytes)."""
    bad: list[str] = []
    for entry in manifest["files"]:
        path = folder / entry["path"]
        try:
            found = _sha256_of(path)
        except FileNotFoundError:
            bad.append(f"{entry['path']} (absent)")
            continue
        if found != (int(entry["size"]), entry["sha256"]):
            bad.append(entry["path"])
    if bad:  # the blob list itself may be altered: stop before reading it
        raise BackupError(
            "Sauvegarde refusée, fichiers altérés ou absents : " + ", ".join(bad) + ". Rien n'a été écrit."
        )
    count = total = 0
    for key, size, digest in _index(folder):
        path = _blob_path(folder, key)
        try:
            found = _sha256_of(path)
        except FileNotFoundError:
            bad.append(f"{BLOB_FOLDER}/…/{key} (absent)")
            continue
        if found != (size, digest):
            bad.append(f"{BLOB_FOLDER}/…/{key}")
        count += 1
        total += size
        if count % PROGRESS_EVERY == 0:
            progress(f"  {count} fichier(s) chiffré(s) vérifié(s)…")
    blobs = manifest.get("blobs") or {}
    if not bad and (blobs.get("count"), blobs.get("bytes")) != (count, total):
        bad.append(f"{BLOB_INDEX} (nombre de fichiers différent du manifeste)")
    if bad:
        shown = ", ".join(bad[:10]) + (f" et {len(bad) - 10} autre(s)" if len(bad) > 10 else "")
        raise BackupError(f"Sauvegarde refusée, fichiers altérés ou absents : {shown}. Rien n'a été écrit.")
    return count, total


def _revision_state(settings: Settings, revision: str) -> bool:
    """Whether the backup's schema needs ``carnet migrate`` after the restore; refused when this Carnet does not
    know the revision (a backup of a newer Carnet)."""
    from alembic.script import ScriptDirectory
    from alembic.util.exc import CommandError

    from carnet.storage.migrate import alembic_config

    script = ScriptDirectory.from_config(alembic_config(settings.resolved_database_url))
    try:
        known = script.get_revision(revision)
    except CommandError:
        known = None
    if known is None:
        raise BackupError(
            f"La sauvegarde vient d'une version plus récente de Carnet (révision de schéma {revision} inconnue) : "
            "restaurez-la avec cette version-là."
        )
    return revision not in script.get_heads()


def _check_keys(settings: Settings, manifest: dict[str, Any]) -> None:
    keyring, secret = _current_keys(settings)
    needed = set(manifest["patient_keys_wrapped_by"]) or {manifest["master_key_id"]}
    unknown = needed - keyring.known_ids
    if unknown:
        raise BackupError(
            f"Clé maîtresse différente : la sauvegarde a été faite avec la clé {manifest['master_key_id']}, "
            f"la clé configurée ({settings.resolved_master_key_file}) est {keyring.current_id}. Fournissez le fichier "
            "de clé maîtresse de l'instance sauvegardée (ou celui qui l'a remplacé par une rotation, avec son "
            "fichier .previous). Rien n'a été écrit."
        )
    if secret_key_id(secret) != manifest["secret_key_id"]:
        raise BackupError(
            f"Secret de l'instance différent ({settings.resolved_secret_key_file}) : fournissez le fichier de "
            "l'instance sauvegardée (sans lui, les seconds facteurs TOTP et les e-mails en attente seraient "
            "illisibles). Rien n'a été écrit."
        )


def _check_empty_database(settings: Settings, kind: str) -> None:
    if kind != _kind(settings):
        names = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
        raise BackupError(
            f"La sauvegarde vient d'une base {names[kind]} ; la base configurée (CARNET_DATABASE_URL) est "
            f"{names[_kind(settings)]}. Rien n'a été écrit."
        )
    if kind == "sqlite":
        path = _sqlite_path(settings)
        if not path.exists() or path.stat().st_size == 0:
            return
        try:
            connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                tables = connection.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
            finally:
                connection.close()
        except sqlite3.DatabaseError:
            tables = 1
        if tables:
            raise BackupError(
                f"La base {path} n'est pas vide : la restauration se fait dans un dossier de données neuf. "
                "Rien n'a été écrit."
            )
        return
    engine = create_engine(normalise_url(settings.resolved_database_url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            tables = conn.execute(
                text(
                    "SELECT count(*) FROM pg_catalog.pg_class c "
                    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') "
                    "AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'"
                )
            ).scalar_one()
    except SQLAlchemyError as exc:
        raise BackupError(f"Base PostgreSQL injoignable : {type(exc).__name__}. Rien n'a été écrit.") from None
    finally:
        engine.dispose()
    if tables:
        raise BackupError(
            "La base PostgreSQL configurée n'est pas vide : la restauration se fait dans une base neuve "
            "(créée vide, sans « carnet migrate »). Rien n'a été écrit."
        )


def _check_empty_store(store: BlobStore) -> None:
    if next(iter(store.older_than(datetime.now(UTC) + timedelta(days=36500))), None) is not None:
        raise BackupError(
            "Le stockage des fichiers chiffrés configuré n'est pas vide : la restauration se fait sur un stockage "
            "neuf. Rien n'a été écrit."
        )


def _put_blobs(folder: Path, store: BlobStore, written: list[str], progress: Progress) -> None:
    for key, size, digest in _index(folder):
        data = _blob_path(folder, key).read_bytes()
        if (len(data), hashlib.sha256(data).hexdigest()) != (size, digest):  # changed since it was checked
            raise BackupError(f"Le fichier chiffré {key} a changé pendant la restauration : restauration annulée.")
        written.append(key)
        store.put(key, data)
        if len(written) % PROGRESS_EVERY == 0:
            progress(f"  {len(written)} fichier(s) chiffré(s) remis…")


def _restore_sqlite(settings: Settings, folder: Path) -> None:
    target = _sqlite_path(settings)
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out, (folder / SQLITE_FILE).open("rb") as source:
            shutil.copyfileobj(source, out, CHUNK)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o600)
        for suffix in ("-wal", "-shm", "-journal"):  # what an empty database may have left
            with contextlib.suppress(FileNotFoundError):
                Path(f"{target}{suffix}").unlink()
        os.replace(temporary, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def _restore_postgresql(settings: Settings, folder: Path) -> None:
    pg_restore = _tool("pg_restore")
    address, env = _libpq(settings.resolved_database_url)
    _run(
        [
            pg_restore,
            "--no-owner",
            "--no-privileges",
            "--single-transaction",
            "--exit-on-error",
            f"--dbname={address}",
            str(folder / POSTGRESQL_FILE),
        ],
        env,
        "pg_restore",
    )


def restore_backup(settings: Settings, source: Path, progress: Progress = _quiet) -> RestoreReport:
    """Restore the backup in ``source`` onto the configured (empty) database and blob store."""
    from carnet.maintenance import verify_audit_log

    folder = source.expanduser().absolute()
    manifest = _read_manifest(folder)
    kind = manifest["database"]["kind"]
    revision = str(manifest["database"]["alembic_revision"])
    progress("Vérification des empreintes SHA-256 de chaque fichier de la sauvegarde…")
    count, total = _verify(folder, manifest, progress)
    needs_migration = _revision_state(settings, revision)
    _check_keys(settings, manifest)
    _check_empty_database(settings, kind)
    store, release = _open_store(settings)
    try:
        _check_empty_store(store)
        written: list[str] = []
        try:
            progress(f"Remise des {count} fichier(s) chiffré(s)…")
            _put_blobs(folder, store, written, progress)
            progress("Restauration de la base…")
            (_restore_sqlite if kind == "sqlite" else _restore_postgresql)(settings, folder)
        except BaseException:
            for key in written:
                with contextlib.suppress(Exception):
                    store.delete(key)
            raise
    finally:
        release()
    progress("Vérification du journal d'audit…")
    check = verify_audit_log(settings)
    return RestoreReport(
        database_kind=kind,
        blobs=count,
        blob_bytes=total,
        revision=revision,
        needs_migration=needs_migration,
        audit_chains=check.chains,
        audit_breaks=tuple(f"chaîne {b.chain}, entrée n° {b.seq} : {b.problem}" for b in check.breaks),
    )
