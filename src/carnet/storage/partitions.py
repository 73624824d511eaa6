"""PostgreSQL tables that grow with the country, hash-partitioned by patient — rebuilt without stopping the service.

``rebuild_online`` turns a populated table into a partitioned one (or back) while the service keeps reading and
writing it (issue #18-2):

1. an empty twin ``<table>__new`` is created — partitioned by hash of the key into ``<table>_p0``…, or plain — with
   the table's columns, defaults, indexes, unique and foreign keys, and its primary key widened by the key;
2. a trigger on the table mirrors every insert, update and delete into the twin from then on;
3. the existing rows are copied in batches, each in its own short transaction, in primary-key order. A batch locks
   the rows it reads (``FOR SHARE``): a concurrent update or delete of one of them waits for the batch to commit and
   its mirror then finds the copy, so nothing copied goes stale and no deleted row comes back;
4. one short transaction takes the table's lock, drops it and gives the twin its name, its indexes' and constraints'
   names and the table's sequences. Readers and writers wait for that transaction only, not for the copy.

Interrupted (a stopped migration, a lost connection), it starts over: the next run drops the half-filled twin.

SQLite has no partitioning: the migrations that call this do nothing there.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Sequence

from psycopg.errors import DeadlockDetected, LockNotAvailable
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import OperationalError

PARTITIONS = 16
"""Hash partitions of each table. A power of two: a later rebuild with 64 splits each partition in four."""

PARTITION_NAME = re.compile(r"^.+_p\d+$")
"""``<table>_p<n>``: a partition. No table of the models is named so."""

_BATCH = 20_000
_LOCK_TIMEOUT = "1s"  # the swap waits that long for its locks, then tries again: writers never queue for long


def in_models(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic's ``include_name``: the schema comparison leaves the partitions out (their parent is the model)."""
    return not (type_ == "table" and name is not None and PARTITION_NAME.match(name))


def rebuild_online(
    engine: Engine,
    table: str,
    primary_key: Sequence[str],
    partition_by: str | None,
    partitions: int = PARTITIONS,
    batch: int = _BATCH,
    between_batches: Callable[[int], None] | None = None,
) -> int:
    """Rebuild ``table`` with ``primary_key``, hash-partitioned by ``partition_by`` (or plain when ``None``).

    Returns the rows copied. ``between_batches(copied)`` runs after each batch's commit (progress; the tests write
    concurrently there). Progress goes to standard error: table name and counts only.
    """
    twin = f"{table}__new"
    with engine.begin() as connection:
        connection.execute(text("SET LOCAL lock_timeout = '30s'"))
        _drop_twin(connection, table, twin)
        plan = _create_twin(connection, table, twin, primary_key, partition_by, partitions)
        _mirror(connection, table, twin, primary_key)
    key, backwards = _columns(plan.old_key), _columns(plan.old_key, descending=True)
    places = range(len(plan.old_key))
    with engine.connect() as connection:  # every row written from now on is mirrored: the copy stops at this one
        bound = connection.execute(
            text(f'SELECT {key} FROM "{table}" ORDER BY {backwards} LIMIT 1')  # noqa: S608
        ).first()
    started = said = time.monotonic()
    copied = 0
    last: tuple[object, ...] | None = None
    while bound is not None:
        within = f"({key}) <= ({', '.join(f':b{i}' for i in places)})"
        if last is not None:
            within += f" AND ({key}) > ({', '.join(f':a{i}' for i in places)})"
        with engine.begin() as connection:
            found = connection.execute(
                text(
                    f'WITH batch AS (SELECT * FROM "{table}" WHERE {within} '  # noqa: S608 — names from the catalog
                    f"ORDER BY {key} LIMIT {int(batch)} FOR SHARE), "
                    f'copied AS (INSERT INTO "{twin}" SELECT * FROM batch ON CONFLICT DO NOTHING) '
                    f"SELECT {key}, count(*) OVER () FROM batch ORDER BY {backwards} LIMIT 1"
                ),
                {f"b{i}": v for i, v in enumerate(bound)} | {f"a{i}": v for i, v in enumerate(last or ())},
            ).first()
        if found is None:
            break
        last, copied = tuple(found[:-1]), copied + found[-1]
        if between_batches:
            between_batches(copied)
        if time.monotonic() - said >= 5:
            said = time.monotonic()
            rate = copied / max(said - started, 1e-9)
            print(f"{table} : {copied:,} lignes copiées ({rate:,.0f} par seconde)", file=sys.stderr)
    _swap(engine, table, twin, plan)
    print(f"{table} : {copied:,} lignes copiées en {time.monotonic() - started:.1f} s", file=sys.stderr)
    with engine.begin() as connection:
        connection.execute(text(f'ANALYZE "{table}"'))  # the planner knows nothing of the new partitions yet
    return copied


def _columns(names: Sequence[str], descending: bool = False) -> str:
    return ", ".join(f'"{name}"' + (" DESC" if descending else "") for name in names)


class _Plan:
    """What the swap renames: the twin's indexes and constraints (temporary name → the table's own)."""

    def __init__(self) -> None:
        self.indexes: list[tuple[str, str]] = []
        self.constraints: list[tuple[str, str]] = []
        self.sequences: list[tuple[str, str]] = []  # (sequence, column) the table owns
        self.partitions: list[tuple[str, str]] = []
        self.old_key: list[str] = []  # the table's primary key: the copy walks it
        self.referenced: list[str] = []  # the other tables its foreign keys reference


def _drop_twin(connection: Connection, table: str, twin: str) -> None:
    connection.execute(text(f'DROP TRIGGER IF EXISTS "{table}__mirror" ON "{table}"'))
    connection.execute(text(f'DROP FUNCTION IF EXISTS "{table}__mirror"()'))
    connection.execute(text(f'DROP TABLE IF EXISTS "{twin}" CASCADE'))


def _create_twin(
    connection: Connection, table: str, twin: str, primary_key: Sequence[str], partition_by: str | None, partitions: int
) -> _Plan:
    plan = _Plan()
    partitioning = f' PARTITION BY HASH ("{partition_by}")' if partition_by else ""
    like = f'LIKE "{table}" INCLUDING DEFAULTS INCLUDING STORAGE'
    connection.execute(text(f'CREATE TABLE "{twin}" ({like}){partitioning}'))
    if partition_by:
        for number in range(partitions):
            name = f"{twin}_p{number}"
            connection.execute(
                text(
                    f'CREATE TABLE "{name}" PARTITION OF "{twin}" '
                    f"FOR VALUES WITH (MODULUS {int(partitions)}, REMAINDER {number})"
                )
            )
            plan.partitions.append((name, f"{table}_p{number}"))
    plan.old_key = list(
        connection.execute(
            text(
                "SELECT a.attname FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) "
                "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
                "WHERE i.indrelid = CAST(:table AS regclass) AND i.indisprimary ORDER BY k.n"
            ),
            {"table": table},
        ).scalars()
    )
    constraints = connection.execute(
        text(
            "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = CAST(:table AS regclass) AND contype IN ('p', 'u', 'f', 'c') ORDER BY contype, conname"
        ),
        {"table": table},
    ).all()
    for name, kind, definition in constraints:
        temporary = f"{name}__new"
        if kind == "p":
            definition = f"PRIMARY KEY ({_columns(primary_key)})"
        connection.execute(text(f'ALTER TABLE "{twin}" ADD CONSTRAINT "{temporary}" {definition}'))
        plan.constraints.append((temporary, name))
    indexes = connection.execute(
        text(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = CAST(:table AS regclass) AND NOT EXISTS "
            "(SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid) ORDER BY c.relname"
        ),
        {"table": table},
    ).all()
    for name, definition in indexes:
        temporary = f"{name}__new"
        statement = re.sub(r"^CREATE (UNIQUE )?INDEX \S+ ON (ONLY )?(\S+\.)?\S+ ", "", definition)
        unique = "UNIQUE " if definition.startswith("CREATE UNIQUE") else ""
        connection.execute(text(f'CREATE {unique}INDEX "{temporary}" ON "{twin}" {statement}'))
        plan.indexes.append((temporary, name))
    plan.referenced = list(
        connection.execute(
            text(
                "SELECT DISTINCT c.relname FROM pg_constraint k JOIN pg_class c ON c.oid = k.confrelid "
                "WHERE k.conrelid = CAST(:table AS regclass) AND k.contype = 'f' AND k.confrelid <> k.conrelid "
                "ORDER BY c.relname"
            ),
            {"table": table},
        ).scalars()
    )
    plan.sequences = [
        (str(sequence), str(column))
        for sequence, column in connection.execute(
            text(
                "SELECT s.relname, a.attname FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' "
                "JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid "
                "WHERE d.refobjid = CAST(:table AS regclass) AND d.deptype = 'a'"
            ),
            {"table": table},
        ).all()
    ]
    return plan


def _mirror(connection: Connection, table: str, twin: str, primary_key: Sequence[str]) -> None:
    """The trigger: from now on every write to ``table`` reaches the twin in the same transaction."""
    key = " AND ".join(f'"{name}" = OLD."{name}"' for name in primary_key)
    connection.execute(
        text(
            f'CREATE FUNCTION "{table}__mirror"() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN '  # noqa: S608
            f"IF TG_OP IN ('UPDATE', 'DELETE') THEN DELETE FROM \"{twin}\" WHERE {key}; END IF; "
            f"IF TG_OP IN ('INSERT', 'UPDATE') THEN "
            f'INSERT INTO "{twin}" SELECT (NEW).* ON CONFLICT DO NOTHING; END IF; '
            "RETURN NULL; END $$"
        )
    )
    connection.execute(
        text(
            f'CREATE TRIGGER "{table}__mirror" AFTER INSERT OR UPDATE OR DELETE ON "{table}" '
            f'FOR EACH ROW EXECUTE FUNCTION "{table}__mirror"()'
        )
    )


def _swap(engine: Engine, table: str, twin: str, plan: _Plan) -> None:
    """Give the twin the table's place in one short transaction; retried while the locks are busy.

    Dropping the table drops its foreign keys' triggers on the tables they reference, which takes those tables'
    exclusive lock too (``documents`` for ``document_terms``): they are locked first, in the order a deposit writes.
    A writer that takes them the other way round meets a deadlock; PostgreSQL cancels whichever waited first — the
    swap, which then tries again, or that writer's transaction, as any deadlock would.
    """
    for attempt in range(100):
        try:
            with engine.begin() as connection:
                connection.execute(text(f"SET LOCAL lock_timeout = '{_LOCK_TIMEOUT}'"))
                locked = ", ".join(f'"{name}"' for name in (*plan.referenced, table))
                connection.execute(text(f"LOCK TABLE {locked} IN ACCESS EXCLUSIVE MODE"))
                for sequence, column in plan.sequences:
                    connection.execute(text(f'ALTER SEQUENCE "{sequence}" OWNED BY "{twin}"."{column}"'))
                connection.execute(text(f'DROP TABLE "{table}"'))  # and its trigger
                connection.execute(text(f'DROP FUNCTION "{table}__mirror"()'))
                for (index,) in connection.execute(  # the partitions' own indexes, named after the twin
                    text(
                        "SELECT c.relname FROM pg_inherits i JOIN pg_index x ON x.indrelid = i.inhrelid "
                        "JOIN pg_class c ON c.oid = x.indexrelid WHERE i.inhparent = CAST(:twin AS regclass)"
                    ),
                    {"twin": twin},
                ).all():
                    if index.startswith(f"{twin}_"):
                        renamed = table + index[len(twin) :]
                        connection.execute(text(f'ALTER INDEX "{index}" RENAME TO "{renamed}"'))
                connection.execute(text(f'ALTER TABLE "{twin}" RENAME TO "{table}"'))
                for temporary, name in plan.partitions:
                    connection.execute(text(f'ALTER TABLE "{temporary}" RENAME TO "{name}"'))
                for temporary, name in plan.constraints:
                    connection.execute(text(f'ALTER TABLE "{table}" RENAME CONSTRAINT "{temporary}" TO "{name}"'))
                for temporary, name in plan.indexes:
                    connection.execute(text(f'ALTER INDEX "{temporary}" RENAME TO "{name}"'))
            return
        except OperationalError as error:  # a lock not granted in time, or a deadlock: writers go on, try again
            if not isinstance(error.orig, LockNotAvailable | DeadlockDetected) or attempt == 99:
                raise
            time.sleep(0.5)
