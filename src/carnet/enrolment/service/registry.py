"""Import of the insured-persons registry from a CSV file (ENR-1).

The file is streamed (``csv`` module, one line at a time) and upserted in batches of 5,000 rows, one
transaction each, with ``INSERT … ON CONFLICT (ins) DO UPDATE`` on SQLite and PostgreSQL alike:
importing the same file again updates the persons, never duplicates them.  Memory stays flat apart
from one integer per INS seen (to refuse an INS repeated further down the file, ≈ 60 bytes a row)
and the refused lines themselves.

1. A first binary pass checks the whole file is UTF-8 (with or without BOM) and hashes it, before
   anything is written: a file in another encoding is refused at once (:class:`RegistryFileError`).
2. The header picks the separator (``;`` or ``,``, whichever splits it more) and must hold the
   registry's 14 columns (:func:`carnet.enrolment.model.registry.check_header`).
3. Each line is validated by :func:`carnet.enrolment.model.registry.parse_row`; a refused line is reported
   with its number and reason, the other lines are still loaded.
4. New persons get the status ``registered`` (their space is not open yet); for persons already
   known, traits and contact details are updated from the file (an empty cell empties the field),
   and the status is never touched — an ``active``, ``closed`` or ``opposed`` person stays so.
5. Each minor with an ``ouvrant_droit_ins`` is attached to the patient holding that INS
   (``attached_to_id``) as their batch is written, whatever the order: a parent already in the
   database or earlier in the batch is resolved before the upsert; when a parent arrives later, the
   children waiting for it (a small partial index, ``ix_patients_awaiting_parent``) are attached
   with its batch.  The work stays per batch, whatever the table's size (#18).  A child whose parent
   INS is in no row is loaded, left unattached and reported as a warning.  An empty
   ``ins_ouvrant_droit`` detaches: the registry decides who a minor is attached to.  An adult is
   never attached, and is detached if they were: the policy gives a parent nothing over an adult's
   space, and the coming-of-age job (``family``) would detach them again and write to the parents.
6. One audit entry for the whole import, on the no-patient chain (``registry.import``), with the
   counts and the file's SHA-256 — no names, no INS.

Speed (see ``bench/registry_import.py``): the statements are compiled once by SQLAlchemy and run by
the driver with prepared tuples (``executemany`` on SQLite; ``COPY`` into a temporary table then
one ``INSERT … SELECT … ON CONFLICT`` on PostgreSQL); new patients get time-ordered ids so the
primary-key index is appended to; and, where forking is safe (the CLI on Linux with 2+ cores), the
file is parsed in a forked worker process while this one writes — validation is the larger half of
the work, and threads would not help (the GIL).

If the process stops half-way, the batches already committed stay; importing the file again
finishes the job (the audit entry is written with the last transaction).
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import gc
import hashlib
import io
import json
import multiprocessing
import os
import threading
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from multiprocessing.connection import Connection as MpConnection
from pathlib import Path
from typing import Any, Final, cast

from sqlalchemy import Column, Connection, Engine, MetaData, Table, func, literal_column, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.dml import Insert

from carnet.enrolment.model.registry import (
    COLUMNS,
    HeaderError,
    RegistryRow,
    RowError,
    RowWarning,
    check_header,
    parse_row,
)
from carnet.errors import CarnetError
from carnet.hall import audit
from carnet.hall.actors import Actor
from carnet.people.model.identifiers import born_adult_by
from carnet.people.tables import Patient
from carnet.storage.db import Database
from carnet.storage.types import TimeOrderedIds, utcnow

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
# Inserted columns, in the table's order (the order SQLAlchemy gives the VALUES clause).
_INSERTED_COLUMNS: Final = (
    "id",
    "ins",
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
    "attached_to_id",
    "status",
    "ouvrant_droit_ins",
    "created_at",
)
_ID, _INS, _BORN, _ATTACHED, _PARENT = (
    _INSERTED_COLUMNS.index(name) for name in ("id", "ins", "birth_date", "attached_to_id", "ouvrant_droit_ins")
)
_ASCII_UPPER: Final = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_CORSICA: Final = {"2A": 1, "2B": 2}
# SQLite's page cache during an import (the default 2 MB makes every insert into the id and ins
# indexes read pages back from the OS); reset to the default afterwards.
_SQLITE_IMPORT_CACHE_KIB: Final = 65536


class RegistryFileError(CarnetError):
    """The file as a whole cannot be imported (unreadable, not UTF-8, empty, wrong header).

    Raised before anything is written; ``message`` (also ``str(exc)``) is in French.
    """


@dataclass
class ImportReport:
    """What an import did. ``total`` counts the data lines read (blank lines aside)."""

    total: int = 0
    inserted: int = 0
    updated: int = 0
    rejected: list[RowError] = field(default_factory=list)
    warnings: list[RowWarning] = field(default_factory=list)
    attached: int = 0  # attachments set or changed
    without_vitale: int = 0  # people loaded without a carte Vitale serial (they activate without it, issue #15-9)

    @property
    def summary(self) -> str:
        """The report's first line, in French — the same for the command and the console."""
        return (
            f"{self.total} lignes lues, {self.inserted} ajoutées, {self.updated} mises à jour, "
            f"{len(self.rejected)} rejetées."
        )

    @property
    def vitale_note(self) -> str | None:
        """What to know about the people loaded without a carte Vitale serial, if any."""
        return NO_VITALE.format(n=self.without_vitale) if self.without_vitale else None


@dataclass(frozen=True)
class _FileFacts:
    size: int
    sha256: str
    delimiter: str


def unreadable(path: Path, exc: OSError) -> str:
    """Why a file given on the command line cannot be read, in French (shared by the directory import)."""
    if isinstance(exc, FileNotFoundError):
        why = "il n'existe pas"
    elif isinstance(exc, IsADirectoryError):
        why = "c'est un dossier, pas un fichier"
    elif isinstance(exc, PermissionError):
        why = "accès refusé"
    else:
        why = exc.strerror or type(exc).__name__
    return f"Impossible de lire le fichier « {path} » : {why}."


def _unreadable(path: Path, exc: OSError) -> RegistryFileError:
    return RegistryFileError(unreadable(path, exc))


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
    # The parent resolved by _Writer.write, or none: an empty ins_ouvrant_droit detaches, a parent still
    # unknown is attached with its own batch.
    changes["attached_to_id"] = statement.excluded.attached_to_id
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


def _records(text: io.TextIOBase, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(first line number, fields) of each non-blank record after the header, which is yielded first."""
    reader = csv.reader(text, delimiter=delimiter)
    last_line = 0
    try:
        for fields in reader:
            start, last_line = last_line + 1, reader.line_num
            if fields and "".join(fields).strip():  # spreadsheets export empty rows as ";;;;"
                yield start, fields
    except csv.Error as exc:  # a quote never closed swallows the rest of the file into one field
        why = (
            "un guillemet ouvert n'est jamais refermé, ou une valeur dépasse 131 072 caractères"
            if "field limit" in str(exc)
            else "format CSV invalide"
        )
        raise RegistryFileError(
            f"Le fichier est illisible à partir de la ligne {last_line + 1} ({why}). Les lignes précédentes ont "
            "pu être chargées : corrigez le fichier puis importez-le de nouveau (rien n'est chargé en double)."
        ) from None


class _Writer:
    """The batch statements, compiled once by SQLAlchemy for the database's dialect, run by the
    driver with parameters prepared here (no per-row SQLAlchemy processing).

    * SQLite: ``executemany`` of ``INSERT … VALUES (?, …) ON CONFLICT (ins) DO UPDATE``, with a larger
      page cache while importing;
    * PostgreSQL: ``COPY`` of the batch into a temporary table, then one
      ``INSERT … SELECT … ON CONFLICT (ins) DO UPDATE`` (one statement per row costs the client and
      the server several times more).
    """

    def __init__(self, engine: Engine, created_at: datetime, today: date) -> None:
        dialect = engine.dialect
        self.sqlite = dialect.name == "sqlite"
        if self.sqlite:
            compiled = _on_conflict_update(sqlite_insert(_PATIENTS)).compile(
                dialect=dialect, column_keys=list(_INSERTED_COLUMNS)
            )
            # qmark: the tuples built by params() must follow the statement's order.
            if tuple(compiled.positiontup or ()) != _INSERTED_COLUMNS:
                raise RuntimeError(f"ordre de colonnes inattendu : {compiled.positiontup}")
        else:
            # How many rows were known, from the upsert itself (a second probe of the ins index a row costs more):
            # a row updated by ON CONFLICT carries this transaction in xmax, an inserted one 0.
            statement = pg_insert(_PATIENTS).from_select(list(_INSERTED_COLUMNS), select(*_PG_BATCH_TABLE.c))
            upserted = _on_conflict_update(statement).returning(literal_column("xmax <> '0'::xid").label("known")).cte()
            compiled = select(func.count().filter(upserted.c.known)).compile(dialect=dialect)
        self.upsert_sql = str(compiled)
        # Look-ups by a batch's INS (constants only): a JSON array on SQLite, an array parameter on PostgreSQL.
        value = "?" if self.sqlite else "%s"
        among = "IN (SELECT value FROM json_each(?))" if self.sqlite else "= ANY(%s)"
        self.known_sql = f"SELECT ins, attached_to_id FROM patients WHERE ins {among}"  # noqa: S608 — constants
        self.ids_sql = f"SELECT ins, id FROM patients WHERE ins {among}"  # noqa: S608
        self.waiting_sql = (  # walks the partial index ix_patients_awaiting_parent: minors not attached yet
            "UPDATE patients SET attached_to_id = parent.id FROM patients AS parent "  # noqa: S608
            f"WHERE patients.ouvrant_droit_ins {among} AND patients.ouvrant_droit_ins IS NOT NULL "
            f"AND patients.attached_to_id IS NULL AND patients.birth_date > {value} "
            "AND parent.ins = patients.ouvrant_droit_ins"
        )
        process = _PATIENTS.c.birth_date.type.dialect_impl(dialect).bind_processor(dialect)
        self.birth_date: Callable[[date], Any] = process or (lambda value: value)
        self.adult = born_adult_by(today)  # born on or before: an adult, never attached
        self.adult_bound = self.birth_date(self.adult)  # the same, as the driver compares it with birth_date
        process = _PATIENTS.c.created_at.type.dialect_impl(dialect).bind_processor(dialect)
        self.created_at = process(created_at) if process else created_at
        self.new_id = TimeOrderedIds()

    def params(self, row: RegistryRow) -> tuple[Any, ...]:
        """The values of :data:`_INSERTED_COLUMNS` for one row, ready for the driver."""
        return (
            self.new_id(),
            row.ins,
            row.ins_oid,
            row.birth_name,
            row.first_names,
            self.birth_date(row.birth_date),
            row.sex,
            row.birth_place,
            row.email,
            row.phone,
            row.address,
            row.postal_code,
            row.city,
            row.departement,
            row.vitale_serial,
            None,
            "registered",
            row.ouvrant_droit_ins,
            self.created_at,
        )

    def write(self, connection: Connection, keys: list[str], params: list[tuple[Any, ...]]) -> tuple[int, int]:
        """Upsert one batch inside the caller's transaction, attaching its children to their parents; returns how many
        of its INS were already known and how many persons were attached (or attached elsewhere).

        A child is written attached when its parent is in the database or earlier in the batch (SQLite checks the
        foreign key after each row); the others wait in ix_patients_awaiting_parent until their parent's batch.
        """
        children = [row[_INS] for row in params if row[_PARENT] is not None]
        # Their attachment before this batch (ins → attached_to_id); on SQLite every row's, to count the known ones.
        before: dict[str, str | None] = dict(
            connection.exec_driver_sql(self.known_sql, (self._members(keys if self.sqlite else children),)).all()
        )
        wanted = list({row[_PARENT] for row in params if row[_PARENT] is not None})
        parents: dict[str, str] = {}
        if wanted:
            parents.update(connection.exec_driver_sql(self.ids_sql, (self._members(wanted),)).all())
        attached = 0
        for index, row in enumerate(params):
            parent = parents.get(row[_PARENT]) if row[_PARENT] is not None else None
            if parent is not None and row[_BORN] > self.adult_bound:
                attached += before.get(row[_INS]) != parent
                params[index] = (*row[:_ATTACHED], parent, *row[_ATTACHED + 1 :])
            parents.setdefault(row[_INS], row[_ID])  # the parent of the rows after it, unless already in the database
        if self.sqlite:
            connection.exec_driver_sql(f"PRAGMA cache_size=-{_SQLITE_IMPORT_CACHE_KIB}")
            connection.exec_driver_sql(self.upsert_sql, params)
            known = len(before)
        else:
            cursor: Any = connection.connection.cursor()  # psycopg 3, in the transaction of ``connection``
            cursor.execute("CREATE TEMPORARY TABLE registry_batch (LIKE patients INCLUDING DEFAULTS) ON COMMIT DROP")
            with cursor.copy(f"COPY registry_batch ({', '.join(_INSERTED_COLUMNS)}) FROM STDIN") as copy:
                for row in params:
                    copy.write_row(row)
            cursor.execute(self.upsert_sql)
            known = cursor.fetchone()[0]
            cursor.close()
        # The children already written (earlier batches, files or rows) whose parent is in this batch.
        waiting = connection.exec_driver_sql(self.waiting_sql, (self._members(keys), self.adult_bound))
        attached += waiting.rowcount
        return known, attached

    def _members(self, keys: list[str]) -> Any:
        return json.dumps(keys) if self.sqlite else keys

    def done(self, connection: Connection) -> None:
        if self.sqlite:
            connection.exec_driver_sql("PRAGMA cache_size=-2000")
        else:  # fresh statistics after a bulk load, autovacuum or not (a sample: about a second, whatever the size)
            connection.exec_driver_sql("ANALYZE patients")


@dataclass
class _Batch:
    """Up to ``batch_size`` parsed lines, ready to write: what the parsing side hands to the writer."""

    position: int  # bytes of the file read so far
    lines: int  # data lines read for this batch (refused ones included)
    keys: list[str] = field(default_factory=list)  # the INS of ``params``, in order
    params: list[tuple[Any, ...]] = field(default_factory=list)
    rejected: list[RowError] = field(default_factory=list)
    without_vitale: int = 0  # lines loaded without a carte Vitale serial


_DUPLICATE: Final = "ins figure déjà plus haut dans le fichier (ligne en double)"
NO_VITALE: Final = (
    "{n} personne(s) chargée(s) sans numero_serie_vitale : elles activeront leur espace avec leur code, leur date "
    "de naissance et leur NIR, sans numéro de carte Vitale."
)


def _batches(
    path: Path, facts: _FileFacts, writer: _Writer, today: date, batch_size: int
) -> Generator[_Batch, None, None]:
    """Read, validate and prepare the file's lines, one batch at a time (the last one may be empty)."""
    seen: set[int] = set()  # the INS already met, as integers: a repeated INS is refused
    width = len(COLUMNS)
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
            batch = _Batch(0, 0)
            for line, fields in records:
                batch.lines += 1
                if len(fields) != width:
                    batch.rejected.append(RowError.wrong_field_count(line, len(fields), width))
                    continue
                try:
                    parsed = parse_row(line, dict(zip(header, fields, strict=True)), today=today)
                except RowError as error:
                    # Kept without traceback or context: their frames would keep every refused row alive.
                    error.__context__ = None
                    batch.rejected.append(error.with_traceback(None))
                else:
                    key = _ins_number(parsed.ins)
                    if key in seen:
                        batch.rejected.append(RowError(line, _DUPLICATE))
                    else:
                        seen.add(key)
                        batch.without_vitale += parsed.vitale_serial is None
                        batch.keys.append(parsed.ins)
                        batch.params.append(writer.params(parsed))
                if len(batch.params) + len(batch.rejected) >= batch_size:
                    batch.position = raw.tell()
                    yield batch
                    batch = _Batch(0, 0)
            batch.position = facts.size
            yield batch
    except OSError as exc:
        raise _unreadable(path, exc) from None
    except UnicodeDecodeError:  # the file changed since the UTF-8 check
        raise RegistryFileError("Le fichier n'est pas encodé en UTF-8 ; rien de plus n'a été importé.") from None


def _parse_in_worker(send: MpConnection, writer: _Writer, batches: Callable[[], Iterator[_Batch]]) -> None:
    """Body of the forked parsing process: sends each batch (a blocking send keeps it one batch ahead)."""
    gc.disable()  # nothing here makes cycles; and no finaliser inherited from the parent may run
    writer.new_id = TimeOrderedIds()  # never share randomness with the parent
    try:
        for batch in batches():
            send.send(("batch", batch))
        send.send(("done", None))
    except RegistryFileError as exc:
        send.send(("file", exc.message))
    except BaseException as exc:  # reported to the parent, which raises it
        with contextlib.suppress(OSError):
            send.send(("crash", f"{type(exc).__name__}: {exc}"))
    finally:
        send.close()


def _batches_from_worker(writer: _Writer, batches: Callable[[], Iterator[_Batch]]) -> Generator[_Batch, None, None]:
    """The same batches, parsed by a forked process while this one writes to the database."""
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    worker = context.Process(
        target=_parse_in_worker, args=(send, writer, batches), name="carnet-registry-parser", daemon=True
    )
    worker.start()
    send.close()
    try:
        while True:
            try:
                kind, payload = receive.recv()
            except EOFError:
                raise RuntimeError("le processus d'analyse du registre s'est arrêté sans finir") from None
            if kind == "batch":
                yield payload
            elif kind == "done":
                return
            elif kind == "file":
                raise RegistryFileError(payload)
            else:
                raise RuntimeError(f"échec de l'analyse du registre : {payload}")
    finally:
        receive.close()  # a worker still sending gets a broken pipe and stops
        worker.join(timeout=10)
        if worker.is_alive():
            worker.terminate()
            worker.join()


def _fork_is_safe() -> bool:
    """Parse in a second process only where forking is safe and useful: Linux-like ``fork``, at least
    two cores, and a single thread in this process (the CLI; a threaded web server stays serial)."""
    return (
        (os.cpu_count() or 1) >= 2
        and "fork" in multiprocessing.get_all_start_methods()
        and threading.active_count() == 1
    )


def _unattached_children(database: Database, adult: date) -> set[str]:
    """INS of the minors with an ouvrant_droit_ins still unattached after the last batch: their parent is in no row
    (the partial index ix_patients_awaiting_parent, a few rows whatever the table's size). Only those of this file
    are reported (:func:`_warnings_for`)."""
    query = select(_PATIENTS.c.ins).where(
        _PATIENTS.c.ouvrant_droit_ins.is_not(None), _PATIENTS.c.attached_to_id.is_(None), _PATIENTS.c.birth_date > adult
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
    parallel: bool | None = None,
) -> ImportReport:
    """Import the registry CSV at ``path`` (see the module docstring).

    ``progress`` is called after each batch with the number of bytes of the file handled since its
    previous call (their sum is the file size). Raises :class:`RegistryFileError` when the file as a
    whole cannot be imported; nothing has been written then.  ``parallel``: parse in a forked
    process while this one writes (default: when it is safe, see :func:`_fork_is_safe`).
    """
    facts = _inspect(path)
    report = ImportReport()
    today = today or date.today()
    writer = _Writer(database.engine, utcnow(), today)

    def parse() -> Generator[_Batch, None, None]:
        return _batches(path, facts, writer, today, batch_size)

    if parallel is None:
        parallel = _fork_is_safe()
    reported = 0
    without_vitale = 0
    source = _batches_from_worker(writer, parse) if parallel else parse()
    with contextlib.closing(source):  # on an error, the worker is stopped here, not at garbage collection
        for batch in source:
            report.total += batch.lines
            report.rejected += batch.rejected
            without_vitale += batch.without_vitale
            if batch.params:
                with database.unit_of_work() as session:
                    known, attached = writer.write(session.connection(), batch.keys, batch.params)
                report.updated += known
                report.attached += attached
                report.inserted += len(batch.params) - known
            if progress is not None and batch.position > reported:
                progress(batch.position - reported)
                reported = batch.position

    unattached = _unattached_children(database, writer.adult)
    children = _warnings_for(path, facts, unattached, {error.line for error in report.rejected})
    report.warnings = children
    report.without_vitale = without_vitale
    with database.unit_of_work() as session:
        connection = session.connection()
        writer.done(connection)
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
                "unattached_children": len(children),
                "without_vitale": without_vitale,
                "file_sha256": facts.sha256,
                "file_bytes": facts.size,
            },
        )
    return report
