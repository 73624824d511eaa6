"""Import of the insured-persons registry from a CSV file (ENR-1).

The file is streamed (``csv`` module, one line at a time) and upserted in batches, one transaction
each, with ``INSERT … ON CONFLICT (ins) DO UPDATE`` on SQLite and PostgreSQL alike: importing the
same file again updates the persons, never duplicates them.  Memory stays flat apart from one
integer per INS seen (to refuse an INS repeated further down the file, ≈ 60 bytes a row) and the
refused lines themselves.

1. A first binary pass checks the whole file is UTF-8 (with or without BOM) and hashes it, before
   anything is written: a file in another encoding is refused at once (:class:`RegistryFileError`).
2. The header picks the separator (``;`` or ``,``, whichever splits it more) and must hold the
   registry's 14 columns (:func:`carnet.domain.registry.check_header`).
3. Each line is validated by :func:`carnet.domain.registry.parse_row`; a refused line is reported
   with its number and reason, the other lines are still loaded.
4. New persons get the status ``registered`` (their space is not open yet); for persons already
   known, traits and contact details are updated from the file (an empty cell empties the field),
   and the status is never touched — an ``active``, ``closed`` or ``opposed`` person stays so.
5. Second pass, set-based: every person with an ``ouvrant_droit_ins`` is attached to the patient
   holding that INS (``attached_to_id``); a child whose parent INS is in no row is loaded, left
   unattached and reported as a warning.  An empty ``ins_ouvrant_droit`` detaches: the registry
   decides who a minor is attached to.
6. One audit entry for the whole import, on the no-patient chain (``registry.import``), with the
   counts and the file's SHA-256 — no names, no INS.

If the process stops half-way, the batches already committed stay; importing the file again
finishes the job (the audit entry is written with the last transaction).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from operator import itemgetter
from pathlib import Path
from typing import Any, Final, cast

from sqlalchemy import Column, Connection, Engine, MetaData, Table, case, exists, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.dml import Insert

from carnet.domain.actors import Actor
from carnet.domain.registry import (
    COLUMNS,
    HeaderError,
    RegistryRow,
    RowError,
    RowWarning,
    check_header,
    parse_row,
)
from carnet.services import audit
from carnet.storage.db import Database
from carnet.storage.tables import Patient
from carnet.storage.types import utcnow

__all__ = ["BATCH_SIZE", "ImportReport", "RegistryFileError", "import_registry"]

BATCH_SIZE: Final = 5000
_CHUNK: Final = 1 << 20
_PATIENTS: Final = cast(Table, Patient.__table__)
# Columns refreshed from the file when the person is already known (never status, id, created_at).
_UPDATED_COLUMNS: Final = (
    "ins_oid",
    "birth_name",
    "first_names",
    "birth_date",
    "sex",
    "birth_place",
    "email",
    "phone",
    "address",
    "postal_code",
    "city",
    "departement",
    "vitale_serial",
    "ouvrant_droit_ins",
)
_INSERTED_COLUMNS: Final = ("id", "ins", *_UPDATED_COLUMNS[1:], "ins_oid", "attached_to_id", "status", "created_at")
_ASCII_UPPER: Final = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_CORSICA: Final = {"2A": 1, "2B": 2}
# SQLite's page cache during an import (the default 2 MB makes every insert into the id and ins
# indexes read pages back from the OS); reset to the default afterwards.
_SQLITE_IMPORT_CACHE_KIB: Final = 65536


class RegistryFileError(Exception):
    """The file as a whole cannot be imported (unreadable, not UTF-8, empty, wrong header).

    Raised before anything is written; ``message`` (also ``str(exc)``) is in French.
    """

    message: str

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


@dataclass
class ImportReport:
    """What an import did. ``total`` counts the data lines read (blank lines aside)."""

    total: int = 0
    inserted: int = 0
    updated: int = 0
    rejected: list[RowError] = field(default_factory=list)
    warnings: list[RowWarning] = field(default_factory=list)
    attached: int = 0  # attachments set or changed by the second pass


@dataclass(frozen=True)
class _FileFacts:
    size: int
    sha256: str
    delimiter: str


def _unreadable(path: Path, exc: OSError) -> RegistryFileError:
    if isinstance(exc, FileNotFoundError):
        why = "il n'existe pas"
    elif isinstance(exc, IsADirectoryError):
        why = "c'est un dossier, pas un fichier"
    elif isinstance(exc, PermissionError):
        why = "accès refusé"
    else:
        why = exc.strerror or type(exc).__name__
    return RegistryFileError(f"Impossible de lire le fichier « {path} » : {why}.")


def _inspect(path: Path) -> _FileFacts:
    """Binary pass over the whole file: size, SHA-256, UTF-8 check, separator from the header line."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    digest = hashlib.sha256()
    size = 0
    lines_before = 0
    first_line = ""
    first_line_complete = False
    try:
        with path.open("rb") as raw:
            while chunk := raw.read(_CHUNK):
                digest.update(chunk)
                try:
                    text = decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    line = lines_before + chunk[: max(exc.start, 0)].count(b"\n") + 1
                    raise RegistryFileError(
                        f"Le fichier n'est pas encodé en UTF-8 (octet invalide vers la ligne {line}). "
                        "Enregistrez-le en « CSV UTF-8 » puis recommencez ; rien n'a été importé."
                    ) from None
                if not first_line_complete:
                    newline = text.find("\n")
                    first_line += text if newline < 0 else text[:newline]
                    first_line_complete = newline >= 0
                lines_before += chunk.count(b"\n")
                size += len(chunk)
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                raise RegistryFileError(
                    "Le fichier n'est pas encodé en UTF-8 (il se termine au milieu d'un caractère). "
                    "Enregistrez-le en « CSV UTF-8 » puis recommencez ; rien n'a été importé."
                ) from None
    except OSError as exc:
        raise _unreadable(path, exc) from None
    header = first_line.removeprefix("\ufeff")
    if not header.strip():
        raise RegistryFileError("Le fichier est vide : la première ligne doit être l'en-tête des colonnes.")
    delimiter = ";" if header.count(";") > header.count(",") else ","
    return _FileFacts(size, digest.hexdigest(), delimiter)


def _on_conflict_update(statement: Any) -> Insert:
    """``… ON CONFLICT (ins) DO UPDATE``: traits and contact details, never id, status or created_at."""
    changes: dict[str, Any] = {name: statement.excluded[name] for name in _UPDATED_COLUMNS}
    # An empty ins_ouvrant_droit detaches now; a new or changed one is resolved by the second pass.
    changes["attached_to_id"] = case(
        (statement.excluded.ouvrant_droit_ins.is_(None), None), else_=_PATIENTS.c.attached_to_id
    )
    return cast(Insert, statement.on_conflict_do_update(index_elements=[_PATIENTS.c.ins], set_=changes))


_PG_BATCH_TABLE: Final = Table(
    "registry_batch", MetaData(), *(Column(name, _PATIENTS.c[name].type) for name in _INSERTED_COLUMNS)
)


def _ins_number(ins: str) -> int:
    """An exact, compact key for a valid INS: its 13-character body as an integer (2A / 2B kept apart)."""
    departement = ins[5:7]
    corsica = _CORSICA.get(departement)
    if corsica is None:
        return int(ins[:13])
    return corsica * 10**13 + int(ins[:5] + "00" + ins[7:13])


def _time_ordered_id() -> str:
    """A UUID with the layout of version 7: 48-bit millisecond clock, then 74 random bits.

    New patients of one import get ids that sort together, so inserting them appends to the
    primary-key index instead of writing to a random page of it for every row (uuid4).  The ids
    stay as unguessable as a uuid4 for anyone who does not know the import time to the millisecond.
    """
    random_bits = int.from_bytes(os.urandom(10), "big")
    value = (
        (time.time_ns() // 1_000_000) << 80
        | 0x7 << 76
        | (random_bits >> 68) << 64
        | 0b10 << 62
        | (random_bits & ((1 << 62) - 1))
    )
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def _records(text: io.TextIOBase, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(first line number, fields) of each non-blank record after the header, which is yielded first."""
    reader = csv.reader(text, delimiter=delimiter)
    last_line = 0
    for fields in reader:
        start, last_line = last_line + 1, reader.line_num
        if fields and "".join(fields).strip():  # spreadsheets export empty rows as ";;;;"
            yield start, fields


class _Writer:
    """The batch statements, compiled once by SQLAlchemy for the database's dialect, run by the
    driver with parameters prepared here (no per-row SQLAlchemy processing).

    * SQLite: ``executemany`` of ``INSERT … VALUES (?, …) ON CONFLICT (ins) DO UPDATE``, with a larger
      page cache while importing;
    * PostgreSQL: ``COPY`` of the batch into a temporary table, then one
      ``INSERT … SELECT … ON CONFLICT (ins) DO UPDATE`` (one statement per row costs the client and
      the server several times more).
    """

    def __init__(self, engine: Engine, created_at: datetime) -> None:
        dialect = engine.dialect
        self.sqlite = dialect.name == "sqlite"
        if self.sqlite:
            compiled = _on_conflict_update(sqlite_insert(_PATIENTS)).compile(
                dialect=dialect, column_keys=list(_INSERTED_COLUMNS)
            )
            assert compiled.positiontup is not None  # qmark: tuples in the statement's order
            self.to_params: Callable[[dict[str, Any]], Any] = itemgetter(*compiled.positiontup)
        else:
            statement = pg_insert(_PATIENTS).from_select(list(_INSERTED_COLUMNS), select(*_PG_BATCH_TABLE.c))
            compiled = _on_conflict_update(statement).compile(dialect=dialect)
            self.to_params = itemgetter(*_INSERTED_COLUMNS)  # COPY's column order
        self.upsert_sql = str(compiled)

        def processor(name: str) -> Callable[[Any], Any]:
            process = _PATIENTS.c[name].type.dialect_impl(dialect).bind_processor(dialect)
            return process or (lambda value: value)

        self.birth_date = processor("birth_date")
        self.created_at = processor("created_at")(created_at)

    def params(self, row: RegistryRow) -> Any:
        return self.to_params(
            {
                "id": _time_ordered_id(),
                "ins": row.ins,
                "ins_oid": row.ins_oid,
                "birth_name": row.birth_name,
                "first_names": row.first_names,
                "birth_date": self.birth_date(row.birth_date),
                "sex": row.sex,
                "birth_place": row.birth_place,
                "email": row.email,
                "phone": row.phone,
                "address": row.address,
                "postal_code": row.postal_code,
                "city": row.city,
                "departement": row.departement,
                "vitale_serial": row.vitale_serial,
                "ouvrant_droit_ins": row.ouvrant_droit_ins,
                "attached_to_id": None,
                "status": "registered",
                "created_at": self.created_at,
            }
        )

    def write(self, connection: Connection, keys: list[str], params: list[Any]) -> int:
        """Upsert one batch inside the caller's transaction; returns how many of its INS were already known."""
        if self.sqlite:
            connection.exec_driver_sql(f"PRAGMA cache_size=-{_SQLITE_IMPORT_CACHE_KIB}")
            known = connection.exec_driver_sql(
                "SELECT count(*) FROM patients WHERE ins IN (SELECT value FROM json_each(?))", (json.dumps(keys),)
            ).scalar_one()
            connection.exec_driver_sql(self.upsert_sql, params)
            return int(known)
        cursor: Any = connection.connection.cursor()  # psycopg 3, in the transaction of ``connection``
        cursor.execute("CREATE TEMPORARY TABLE registry_batch (LIKE patients INCLUDING DEFAULTS) ON COMMIT DROP")
        with cursor.copy(f"COPY registry_batch ({', '.join(_INSERTED_COLUMNS)}) FROM STDIN") as copy:
            for row in params:
                copy.write_row(row)
        cursor.execute("SELECT count(*) FROM registry_batch JOIN patients ON patients.ins = registry_batch.ins")
        known = cursor.fetchone()[0]
        cursor.execute(self.upsert_sql)
        cursor.close()
        return int(known)

    def done(self, connection: Connection) -> None:
        if self.sqlite:
            connection.exec_driver_sql("PRAGMA cache_size=-2000")


class _Importer:
    def __init__(self, database: Database, report: ImportReport, today: date) -> None:
        self.database = database
        self.report = report
        self.today = today
        self.writer = _Writer(database.engine, utcnow())
        self.seen: set[int] = set()
        self.keys: list[str] = []
        self.batch: list[Any] = []

    def add(self, line: int, row: dict[str, str | None]) -> None:
        report = self.report
        try:
            parsed = parse_row(line, row, today=self.today)
        except RowError as error:
            report.rejected.append(error)
            return
        key = _ins_number(parsed.ins)
        if key in self.seen:
            report.rejected.append(RowError(line, "ins figure déjà plus haut dans le fichier (ligne en double)"))
            return
        self.seen.add(key)
        self.keys.append(parsed.ins)
        self.batch.append(self.writer.params(parsed))

    def flush(self) -> None:
        """Write the pending batch in one transaction."""
        if not self.batch:
            return
        keys, batch = self.keys, self.batch
        self.keys, self.batch = [], []
        with self.database.unit_of_work() as session:
            known = self.writer.write(session.connection(), keys, batch)
        self.report.updated += known
        self.report.inserted += len(batch) - known


def _unattached_children(database: Database) -> set[str]:
    """INS of persons whose ouvrant_droit_ins belongs to no patient (read-only, before the second pass)."""
    parent = _PATIENTS.alias("parent")
    query = select(_PATIENTS.c.ins).where(
        _PATIENTS.c.ouvrant_droit_ins.is_not(None),
        ~exists().where(parent.c.ins == _PATIENTS.c.ouvrant_droit_ins),
    )
    with database.unit_of_work() as session:
        return set(session.execute(query).scalars())


def _warnings_for(path: Path, facts: _FileFacts, unattached: set[str], rejected: set[int]) -> list[RowWarning]:
    """Find the file lines of the unattached children (a second, cheap read; only when there are some)."""
    warnings: list[RowWarning] = []
    if not unattached:
        return warnings
    with path.open(encoding="utf-8-sig", newline="") as text:
        records = _records(text, facts.delimiter)
        header = check_header(next(records)[1])
        position = header.index("ins")
        for line, fields in records:
            if line in rejected or len(fields) != len(header):
                continue
            ins = "".join(fields[position].split()).translate(_ASCII_UPPER)
            if ins in unattached:
                unattached.discard(ins)
                warnings.append(
                    RowWarning(
                        line,
                        "ins_ouvrant_droit n'est l'INS d'aucune personne du registre — "
                        "personne chargée mais rattachée à personne",
                    )
                )
    return warnings


def import_registry(
    database: Database,
    path: Path,
    actor: Actor,
    progress: Callable[[int], None] | None = None,
    *,
    batch_size: int = BATCH_SIZE,
    today: date | None = None,
) -> ImportReport:
    """Import the registry CSV at ``path`` (see the module docstring).

    ``progress`` is called after each batch with the number of bytes of the file handled since its
    previous call (their sum is the file size). Raises :class:`RegistryFileError` when the file as a
    whole cannot be imported; nothing has been written then.
    """
    facts = _inspect(path)
    report = ImportReport()
    importer = _Importer(database, report, today or date.today())
    reported = 0
    try:
        with path.open("rb") as raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as text:
            records = _records(text, facts.delimiter)
            first = next(records, None)
            if first is None:
                raise RegistryFileError("Le fichier est vide : la première ligne doit être l'en-tête des colonnes.")
            try:
                header = check_header(first[1])
            except HeaderError as exc:
                raise RegistryFileError(exc.message) from None
            width = len(COLUMNS)
            for line, fields in records:
                report.total += 1
                if len(fields) != width:
                    report.rejected.append(RowError.wrong_field_count(line, len(fields), width))
                    continue
                importer.add(line, dict(zip(header, fields, strict=True)))
                if len(importer.batch) >= batch_size:
                    importer.flush()
                    if progress is not None:
                        position = raw.tell()
                        progress(position - reported)
                        reported = position
            importer.flush()
    except OSError as exc:
        raise _unreadable(path, exc) from None
    except UnicodeDecodeError:  # the file changed since the UTF-8 check
        raise RegistryFileError("Le fichier n'est pas encodé en UTF-8 ; rien de plus n'a été importé.") from None
    if progress is not None and facts.size > reported:
        progress(facts.size - reported)

    unattached = _unattached_children(database)
    report.warnings = _warnings_for(path, facts, unattached, {error.line for error in report.rejected})
    parent = _PATIENTS.alias("parent")
    parent_id = select(parent.c.id).where(parent.c.ins == _PATIENTS.c.ouvrant_droit_ins).scalar_subquery()
    attach = (
        update(_PATIENTS)
        .where(_PATIENTS.c.ouvrant_droit_ins.is_not(None), _PATIENTS.c.attached_to_id.is_distinct_from(parent_id))
        .values(attached_to_id=parent_id)
    )
    with database.unit_of_work() as session:
        connection = session.connection()
        report.attached = connection.execute(attach).rowcount
        importer.writer.done(connection)
        audit.record(
            session,
            actor,
            "registry.import",
            resource_type="registry",
            details={
                "lines": report.total,
                "inserted": report.inserted,
                "updated": report.updated,
                "rejected": len(report.rejected),
                "attached": report.attached,
                "unattached_children": len(report.warnings),
                "file_sha256": facts.sha256,
                "file_bytes": facts.size,
            },
        )
    return report
