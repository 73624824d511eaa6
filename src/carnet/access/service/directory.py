"""The professional directory (ACC-1): add one professional, import the Annuaire Santé extract.

Adding (``carnet professionals add``) is an upsert by RPPS: a new number creates the professional, a
known one updates the names and the profession; the specialty and the SAMU regulator flag are only
changed when given.  The Luhn key of the RPPS (:func:`carnet.access.model.directory.check_rpps`) is
checked for a new number only: a professional already in the directory (the demo's, loaded before
the rule) can still be corrected.  One audit entry per call, on the no-patient chain.

Both are asked of the policy first (``Action.DIRECTORY_MANAGE``: the service's operators and its automatic
work only; a refusal is recorded and raises :class:`carnet.hall.guard.AccessDenied`, nothing is written).

Importing (``carnet professionals import``) reads the public extract of the Annuaire Santé
(``PS_LibreAcces_Personne_activite_<date>.txt``, one line per person and activity; columns and
mapping: :mod:`carnet.access.model.directory`):

1. A first binary pass hashes the file and checks its encoding: UTF-8 (with or without BOM), or else
   Windows-1252 (older extracts); nothing is written for a file that is neither.
2. The header locates the columns (:func:`carnet.access.model.directory.read_header`).
3. The file is streamed line by line; each line is validated (:func:`parse_activity`).  The first
   valid line of a person wins (its address is the practice address); later lines of the same RPPS
   are other activities of a professional already read and are counted, not loaded; lines of a person
   without an RPPS (an ADELI number) are counted as skipped.  Refused lines are reported with their
   number and reason, the others still load.  Memory: one integer per RPPS seen (≈ 60 bytes).
4. Batches of :data:`BATCH_SIZE` professionals are upserted, one transaction each, with
   ``INSERT … ON CONFLICT (rpps) DO UPDATE`` (SQLAlchemy Core, SQLite and PostgreSQL alike): names,
   profession, specialty, address and city are refreshed from the file (columns missing from the
   header are left alone); the SAMU regulator flag and the establishment are never touched.
5. One audit entry for the whole import (``directory.import``) with the counts and the file's SHA-256.

If the process stops half-way, the batches already committed stay; importing the file again finishes.
"""

from __future__ import annotations

import codecs
import hashlib
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, cast

from sqlalchemy import Table, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert

from carnet.access.model.directory import (
    DirectoryError,
    ExtractLayout,
    ProfessionalEntry,
    check_email,
    check_professional,
    parse_activity,
    read_header,
)
from carnet.enrolment.model.registry import HeaderError, RowError
from carnet.enrolment.service.registry import unreadable
from carnet.errors import CarnetError
from carnet.hall import audit
from carnet.hall.actors import Actor
from carnet.hall.guard import guard
from carnet.hall.policy import Action, Resource
from carnet.people.model.identifiers import IdentifierError, validate_finess, validate_rpps
from carnet.people.tables import Establishment, Professional
from carnet.storage.db import Database
from carnet.storage.types import utcnow

__all__ = [
    "BATCH_SIZE",
    "AddedProfessional",
    "DirectoryError",
    "DirectoryFileError",
    "DirectoryImportReport",
    "add_professional",
    "import_directory",
]

BATCH_SIZE: Final = 2000
_CHUNK: Final = 1 << 20
_PROFESSIONALS: Final = cast(Table, Professional.__table__)
# The five bytes Windows-1252 leaves undefined: a file holding one is not Windows-1252 either.
_CP1252_UNDEFINED: Final = re.compile(rb"[\x81\x8d\x8f\x90\x9d]")


class DirectoryFileError(CarnetError):
    """The file as a whole cannot be imported (unreadable, empty, wrong encoding or header).

    Raised before anything is written; ``message`` (also ``str(exc)``) is in French.
    """


def _may_manage(db: Session, actor: Actor, what: str) -> None:
    """ACC-1: the policy decides who keeps the directory (a refusal is recorded, ``AccessDenied`` raised)."""
    guard(db, actor, audit.NO_PATIENT_CHAIN, Action.DIRECTORY_MANAGE, Resource(what))


@dataclass(frozen=True)
class AddedProfessional:
    id: str
    rpps: str
    last_name: str
    first_name: str
    profession_code: str
    created: bool
    samu_regulator: bool
    email: str | None = None


def add_professional(
    db: Session,
    actor: Actor,
    *,
    rpps: str,
    last_name: str,
    first_name: str,
    profession_code: str,
    specialty: str | None = None,
    samu_regulator: bool | None = None,
    email: str | None = None,
) -> AddedProfessional:
    """Add or update (by RPPS) one professional, in ``db``'s transaction; :class:`DirectoryError` if refused.
    ``email``: their secure-mail address (MSG-3), kept when omitted."""
    _may_manage(db, actor, "professional")
    address = check_email(email) if email else None
    try:
        number = validate_rpps(rpps)
    except IdentifierError as exc:
        raise DirectoryError(exc.message) from None
    professional = db.scalar(select(Professional).where(Professional.rpps == number))
    entry = check_professional(
        number, last_name, first_name, profession_code, specialty, check_key=professional is None
    )
    created = professional is None
    if professional is None:
        professional = Professional(
            rpps=entry.rpps,
            last_name=entry.last_name,
            first_name=entry.first_name,
            profession_code=entry.profession_code,
            specialty=entry.specialty,
            samu_regulator=bool(samu_regulator),
            email=address,
        )
        db.add(professional)
        db.flush()
        changed = ["created"]
    else:
        changes: dict[str, Any] = {
            "last_name": entry.last_name,
            "first_name": entry.first_name,
            "profession_code": entry.profession_code,
        }
        if entry.specialty is not None:
            changes["specialty"] = entry.specialty
        if samu_regulator is not None:
            changes["samu_regulator"] = samu_regulator
        if address is not None:
            changes["email"] = address
        changed = sorted(name for name, value in changes.items() if getattr(professional, name) != value)
        for name, value in changes.items():
            setattr(professional, name, value)
        db.flush()
    audit.record(
        db,
        actor,
        "directory.professional_added" if created else "directory.professional_updated",
        resource_type="professional",
        resource_id=professional.id,
        details={
            "rpps": entry.rpps,
            "profession_code": entry.profession_code,
            "samu_regulator": professional.samu_regulator,
            "changed": changed,
        },
    )
    return AddedProfessional(
        professional.id,
        entry.rpps,
        entry.last_name,
        entry.first_name,
        entry.profession_code,
        created,
        professional.samu_regulator,
        professional.email,
    )


@dataclass(frozen=True)
class AddedEstablishment:
    id: str
    finess: str
    name: str
    email: str | None
    created: bool


def add_establishment(
    db: Session, actor: Actor, *, finess: str, name: str, email: str | None = None
) -> AddedEstablishment:
    """Add or update (by FINESS) one establishment and its secure-mail address (MSG-3), in ``db``'s transaction."""
    _may_manage(db, actor, "establishment")
    try:
        number = validate_finess(finess)
    except IdentifierError as exc:
        raise DirectoryError(exc.message) from None
    clean_name = " ".join(name.split())[:200]
    if not clean_name:
        raise DirectoryError("Indiquez le nom de l'établissement.")
    address = check_email(email) if email else None
    establishment = db.scalar(select(Establishment).where(Establishment.finess == number))
    created = establishment is None
    if establishment is None:
        establishment = Establishment(finess=number, name=clean_name, kind="établissement", email=address)
        db.add(establishment)
    else:
        establishment.name = clean_name
        if address is not None:
            establishment.email = address
    db.flush()
    audit.record(
        db,
        actor,
        "directory.establishment_added" if created else "directory.establishment_updated",
        resource_type="establishment",
        resource_id=establishment.id,
        details={"finess": number},
    )
    return AddedEstablishment(establishment.id, number, clean_name, establishment.email, created)


# --- import of the Annuaire Santé extract ----------------------------------------------------------


@dataclass
class DirectoryImportReport:
    """What an import did. ``total`` counts the data lines read (blank lines aside)."""

    total: int = 0
    inserted: int = 0  # professionals added
    updated: int = 0  # professionals already in the directory, refreshed
    other_activities: int = 0  # further lines of a professional already read
    without_rpps: int = 0  # lines of a person identified by an ADELI number, skipped
    rejected: list[RowError] = field(default_factory=list)
    encoding: str = "utf-8"


@dataclass(frozen=True)
class _FileFacts:
    size: int
    sha256: str
    encoding: str


def _unreadable(path: Path, exc: OSError) -> DirectoryFileError:
    return DirectoryFileError(unreadable(path, exc))


def _inspect(path: Path) -> _FileFacts:
    """Binary pass over the whole file: size, SHA-256 and encoding (UTF-8, else Windows-1252)."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    digest = hashlib.sha256()
    size = lines_before = 0
    utf8_error_line = cp1252_error_line = 0
    try:
        with path.open("rb") as raw:
            while chunk := raw.read(_CHUNK):
                digest.update(chunk)
                if not utf8_error_line:
                    try:
                        decoder.decode(chunk)
                    except UnicodeDecodeError as exc:
                        utf8_error_line = lines_before + chunk[: max(exc.start, 0)].count(b"\n") + 1
                if not cp1252_error_line and (undefined := _CP1252_UNDEFINED.search(chunk)):
                    cp1252_error_line = lines_before + chunk[: undefined.start()].count(b"\n") + 1
                lines_before += chunk.count(b"\n")
                size += len(chunk)
    except OSError as exc:
        raise _unreadable(path, exc) from None
    if not utf8_error_line:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            utf8_error_line = lines_before + 1
    if size == 0:
        raise DirectoryFileError("Le fichier est vide : la première ligne doit être l'en-tête des colonnes.")
    if not utf8_error_line:
        return _FileFacts(size, digest.hexdigest(), "utf-8")
    if not cp1252_error_line:
        return _FileFacts(size, digest.hexdigest(), "cp1252")
    raise DirectoryFileError(
        f"Le fichier n'est encodé ni en UTF-8 ni en Windows-1252 (octet invalide vers la ligne {utf8_error_line}) ; "
        "rien n'a été importé."
    )


def _upsert_statement(dialect: str, layout: ExtractLayout) -> Insert:
    """``INSERT … ON CONFLICT (rpps) DO UPDATE`` of the columns the file provides (never the SAMU flag)."""
    statement = (pg_insert if dialect == "postgresql" else sqlite_insert)(_PROFESSIONALS)
    refreshed = ["last_name", "first_name", "profession_code"]
    if layout.has_specialty:
        refreshed.append("specialty")
    if layout.has_address:
        refreshed.append("practice_address")
    if layout.has_city:
        refreshed.append("city")
    return cast(
        Insert,
        statement.on_conflict_do_update(
            index_elements=[_PROFESSIONALS.c.rpps], set_={name: statement.excluded[name] for name in refreshed}
        ),
    )


def _write(database: Database, statement: Insert, rows: list[dict[str, Any]]) -> int:
    """Upsert one batch in its own transaction; returns how many of its RPPS were already known."""
    keys = [row["rpps"] for row in rows]
    with database.unit_of_work() as session:
        connection = session.connection()
        known = connection.execute(
            select(func.count()).select_from(_PROFESSIONALS).where(_PROFESSIONALS.c.rpps.in_(keys))
        ).scalar_one()
        connection.execute(statement, rows)
    return int(known)


def import_directory(
    database: Database,
    path: Path,
    actor: Actor,
    progress: Callable[[int], None] | None = None,
    *,
    batch_size: int = BATCH_SIZE,
) -> DirectoryImportReport:
    """Import the Annuaire Santé extract at ``path`` (see the module docstring).

    ``progress`` is called after each batch with the number of bytes handled since its previous call
    (their sum is the file size).  Raises :class:`DirectoryFileError` when the file as a whole cannot
    be imported; nothing has been written then.
    """
    with database.unit_of_work() as session:  # the policy first: a refused import reads nothing
        _may_manage(session, actor, "directory")
    facts = _inspect(path)
    try:
        raw = path.open("rb")
    except OSError as exc:
        raise _unreadable(path, exc) from None
    with raw:
        layout = _layout(raw.readline(), facts.encoding)
        loader = _Loader(database, _upsert_statement(database.engine.dialect.name, layout), progress, batch_size)
        loader.report.encoding = facts.encoding
        line = 1
        while raw_line := raw.readline():
            line += 1
            try:
                text = raw_line.decode(facts.encoding).rstrip("\r\n")
            except UnicodeDecodeError:  # the file changed since the encoding check
                raise DirectoryFileError(
                    f"La ligne {line} n'est plus lisible (fichier modifié pendant l'import ?) ; "
                    "les lignes précédentes ont été importées."
                ) from None
            if loader.take(line, text, layout):
                loader.flush(raw.tell())
        loader.flush(facts.size)
    _record_import(database, actor, loader.report, facts)
    return loader.report


def _layout(header_line: bytes, encoding: str) -> ExtractLayout:
    header = header_line.decode(encoding, "replace").removeprefix("\ufeff").rstrip("\r\n")
    if not header.strip():
        raise DirectoryFileError("Le fichier est vide : la première ligne doit être l'en-tête des colonnes.")
    try:
        return read_header(header.split("|"))
    except HeaderError as exc:
        raise DirectoryFileError(exc.message) from None


class _Loader:
    """The lines read so far: the batch waiting to be written, the RPPS already seen, the counts."""

    def __init__(
        self, database: Database, statement: Insert, progress: Callable[[int], None] | None, batch_size: int
    ) -> None:
        self.database = database
        self.statement = statement
        self.progress = progress
        self.batch_size = batch_size
        self.report = DirectoryImportReport()
        self.created_at = utcnow()
        self.seen: set[int] = set()
        self.rows: list[dict[str, Any]] = []
        self.reported = 0

    def take(self, line: int, text: str, layout: ExtractLayout) -> bool:
        """Read one line of the file; ``True`` when the batch is full (time to flush)."""
        if not text.strip():
            return False
        self.report.total += 1
        try:
            entry = parse_activity(line, text.split("|"), layout)
        except RowError as error:
            # Kept without traceback or context: their frames would keep every refused line alive.
            error.__context__ = None
            self.report.rejected.append(error.with_traceback(None))
            return False
        if entry is None:
            self.report.without_rpps += 1
            return False
        key = int(entry.rpps)
        if key in self.seen:
            self.report.other_activities += 1
            return False
        self.seen.add(key)
        self.rows.append(_row(entry, self.created_at))
        return len(self.rows) >= self.batch_size

    def flush(self, position: int) -> None:
        """Write the batch (its own transaction), then tell ``progress`` how many bytes were handled."""
        if self.rows:
            known = _write(self.database, self.statement, self.rows)
            self.report.updated += known
            self.report.inserted += len(self.rows) - known
            self.rows.clear()
        if self.progress is not None and position > self.reported:
            self.progress(position - self.reported)
            self.reported = position


def _record_import(database: Database, actor: Actor, report: DirectoryImportReport, facts: _FileFacts) -> None:
    """One audit entry for the whole import, on the no-patient chain."""
    with database.unit_of_work() as session:
        audit.record(
            session,
            actor,
            "directory.import",
            resource_type="directory",
            details={
                "lines": report.total,
                "inserted": report.inserted,
                "updated": report.updated,
                "other_activities": report.other_activities,
                "without_rpps": report.without_rpps,
                "rejected": len(report.rejected),
                "file_sha256": facts.sha256,
                "file_bytes": facts.size,
                "encoding": facts.encoding,
            },
        )


def _row(entry: ProfessionalEntry, created_at: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "rpps": entry.rpps,
        "last_name": entry.last_name,
        "first_name": entry.first_name,
        "profession_code": entry.profession_code,
        "specialty": entry.specialty,
        "practice_address": entry.practice_address,
        "city": entry.city,
        "establishment_id": None,
        "samu_regulator": False,
        "created_at": created_at,
    }
