"""PostgreSQL tables that grow with the country, hash-partitioned by patient — rebuilt without stopping the service.

``rebuild_online`` turns populated tables into partitioned ones (or back) while the service keeps reading and
writing them (issue #18-2). For each table of a group (parents before the tables that reference them):

1. an empty twin ``<table>__new`` is created — partitioned by hash of the key into ``<table>_p0``…, or plain — with
   the table's columns, defaults, indexes and unique keys, and its primary key widened by the key;
2. a trigger on the table mirrors every insert, update and delete into the twin from then on — switched on when the
   table's copy starts, once its parents' twins are complete, so a mirrored row always finds its parent;
3. the rows that were there before are copied in batches, each in its own short transaction, in primary-key order.
   A batch locks the rows it reads (``FOR SHARE``): a concurrent update or delete of one of them waits for the batch
   to commit and its mirror then finds the copy, so nothing copied goes stale and no deleted row comes back;
4. the foreign keys come after the copy (those between tables of the group point at the twins): on each partition
   ``NOT VALID`` (checked for new rows from then on), then validated while writes go on, then declared on the twin,
   which adopts the partitions' without checking again — the copy does not look up each row's parent, which made it
   three times slower;
5. one short transaction takes the locks, drops the tables and gives the twins their names, their indexes' and
   constraints' names and the tables' sequences. Readers and writers wait for that transaction only, not the copy.

Every step that takes a lock (the twin, the trigger, the foreign keys, the swap) waits for it a fifth of
``deadlock_timeout`` at most (200 ms by default), then gives up and tries again (``_briefly``): a deposit never queues
long behind the migration, nor dies in a deadlock with it.

Interrupted (a stopped migration, a lost connection), it starts over: the next run drops the half-filled twins.
SQLite has no partitioning: the migrations that call this do not call it there.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from psycopg.errors import DeadlockDetected, LockNotAvailable
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import OperationalError

PARTITIONS = 16
"""Hash partitions of each table. A power of two: a later rebuild with 64 splits each partition in four."""

PARTITION_NAME = re.compile(r"^.+_p\d+$")
"""``<table>_p<n>``: a partition. No table of the models is named so."""

_BATCH = 20_000
_ATTEMPTS = 1000  # ≈ 12 min of trying (0.7 s an attempt at most) before giving up: the copy would have to start over
_SHORT_WAIT = (  # a fifth of deadlock_timeout (1 s by default): see _briefly
    "SELECT set_config('lock_timeout', "
    "CAST(CAST(EXTRACT(EPOCH FROM CAST(current_setting('deadlock_timeout') AS interval)) * 200 AS integer) AS text) "
    "|| 'ms', true)"
)


def in_models(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic's ``include_name``: the schema comparison leaves the partitions out (their parent is the model)."""
    return not (type_ == "table" and name is not None and PARTITION_NAME.match(name))


def in_models_object(item: Any, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    """Alembic's ``include_object``: a foreign key to a partitioned table shows, besides itself, one foreign key to
    each of its partitions (PostgreSQL's own) — those are left out."""
    return not (type_ == "foreign_key_constraint" and reflected and PARTITION_NAME.match(item.referred_table.name))


@dataclass(frozen=True)
class Rebuild:
    """One table of a rebuild: its new primary key, hash-partitioned by ``partition_by`` (plain when ``None``).

    ``constraints`` replace the table's own by name, or add one (a definition), or drop one (``None``). A foreign key
    to a table of the same rebuild points at its twin during the copy, and at the new table after the swap.
    """

    table: str
    primary_key: tuple[str, ...]
    partition_by: str | None
    constraints: Mapping[str, str | None] = field(default_factory=dict)


def rebuild_online(
    engine: Engine,
    tables: Sequence[Rebuild],
    partitions: int = PARTITIONS,
    batch: int = _BATCH,
    between_batches: Callable[[int], None] | None = None,
) -> int:
    """Rebuild ``tables`` together (parents before the tables whose foreign keys reference them); rows copied.

    A table's mirror is switched on when its copy starts, after its parents' copies: every row its twin receives then
    finds its parent in the parent's twin. ``between_batches(copied)`` runs after each batch's commit (the tests
    write concurrently there). Progress goes to standard error: table names and counts only.
    """
    group = {rebuild.table: f"{rebuild.table}__new" for rebuild in tables}
    plans: list[_Plan] = []

    def create(connection: Connection) -> None:
        plans.clear()
        for rebuild in reversed(tables):
            _drop_twin(connection, rebuild.table)
        plans.extend(_create_twin(connection, rebuild, group, partitions) for rebuild in tables)

    _briefly(engine, create)
    copied = 0
    for plan in plans:
        copied += _copy(engine, plan, batch, between_batches)
        _add_foreign_keys(engine, plan)
    _swap(engine, plans)
    with engine.begin() as connection:
        for plan in plans:
            connection.execute(text(f'ANALYZE "{plan.table}"'))  # the planner knows nothing of the new partitions yet
    return copied


def _copy(engine: Engine, plan: _Plan, batch: int, between_batches: Callable[[int], None] | None) -> int:
    """Switch the mirror on, then copy the rows that were there before it, in primary-key order."""
    table, twin = plan.table, plan.twin
    _briefly(engine, lambda connection: _mirror(connection, plan))
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
    print(f"{table} : {copied:,} lignes copiées en {time.monotonic() - started:.1f} s", file=sys.stderr)
    return copied


def _add_foreign_keys(engine: Engine, plan: _Plan) -> None:
    """The twin's foreign keys, once its rows are there: ``NOT VALID`` on each partition (a catalog change, under a
    short lock of the referenced table), validated there (a scan that lets writes go on), then on the twin itself,
    which adopts its partitions' validated keys instead of scanning again — under an exclusive lock of the referenced
    table and its partitions, for an instant.

    The referenced table is locked first: a writer takes it (its foreign key check, or the mirror of a parent's row)
    before the twin (the mirror of its own row). Locked the other way round, the two wait for each other."""
    started = time.monotonic()
    for name, definition, referenced in plan.foreign_keys:
        for partition, _ in plan.partitions or [(plan.twin, plan.table)]:
            _briefly(
                engine,
                f'LOCK TABLE "{referenced}" IN SHARE ROW EXCLUSIVE MODE',
                f'ALTER TABLE "{partition}" ADD CONSTRAINT "{name}" {definition} NOT VALID',
            )
            with engine.begin() as connection:
                connection.execute(text(f'ALTER TABLE "{partition}" VALIDATE CONSTRAINT "{name}"'))
        if plan.partitions:
            _briefly(
                engine,
                f'LOCK TABLE "{referenced}" IN ACCESS EXCLUSIVE MODE',
                f'ALTER TABLE "{plan.twin}" ADD CONSTRAINT "{name}" {definition}',
            )
    if plan.foreign_keys:
        elapsed = time.monotonic() - started
        print(f"{plan.table} : clés étrangères vérifiées en {elapsed:.1f} s", file=sys.stderr)


def _briefly(engine: Engine, *work: str | Callable[[Connection], None]) -> None:
    """Statements (or a transaction's work) that need locks for an instant, in one transaction, tried again while a
    lock is busy.

    Each lock is waited for a fifth of ``deadlock_timeout`` at most (200 ms by default). Writers queue behind a
    waiting lock, so they never wait longer than that; and when a writer and the migration wait for each other (a
    writer takes ``documents`` before the ``patients`` its foreign key checks; the swap takes them the other way
    round), the migration gives up before PostgreSQL's deadlock check would run in the writer, which it might cancel:
    the migration is the one that tries again, never a deposit."""
    for attempt in range(_ATTEMPTS):
        try:
            with engine.begin() as connection:
                connection.execute(text(_SHORT_WAIT))
                for step in work:
                    if isinstance(step, str):
                        connection.execute(text(step))
                    else:
                        step(connection)
            return
        except OperationalError as error:  # a lock not granted in time, or a deadlock: writers go on, try again
            if not isinstance(error.orig, LockNotAvailable | DeadlockDetected) or attempt == _ATTEMPTS - 1:
                raise
            time.sleep(0.5)


def _referenced(foreign_key: str) -> str:
    found = re.search(r'REFERENCES "?(\w+)"?', foreign_key)
    assert found, foreign_key  # pg_get_constraintdef always names it
    return found[1]


def _columns(names: Sequence[str], descending: bool = False) -> str:
    return ", ".join(f'"{name}"' + (" DESC" if descending else "") for name in names)


class _Plan:
    """One table's twin: what the copy walks and what the swap renames (temporary name → the table's own)."""

    def __init__(self, table: str, twin: str, primary_key: Sequence[str]) -> None:
        self.table, self.twin, self.primary_key = table, twin, tuple(primary_key)
        self.columns: list[str] = []
        self.indexes: list[tuple[str, str]] = []
        self.constraints: list[tuple[str, str]] = []
        self.foreign_keys: list[tuple[str, str, str]] = []  # (temporary name, definition, referenced): after the copy
        self.sequences: list[tuple[str, str]] = []  # (sequence, column) the table owns
        self.partitions: list[tuple[str, str]] = []
        self.old_key: list[str] = []  # the table's primary key: the copy walks it
        self.referenced: list[str] = []  # the other tables its foreign keys reference


def _drop_twin(connection: Connection, table: str) -> None:
    """What an interrupted rebuild left: the mirror and the half-filled twin."""
    connection.execute(text(f'DROP TRIGGER IF EXISTS "{table}__mirror" ON "{table}"'))
    connection.execute(text(f'DROP FUNCTION IF EXISTS "{table}__mirror"()'))
    connection.execute(text(f'DROP TABLE IF EXISTS "{table}__new" CASCADE'))


def _create_twin(connection: Connection, rebuild: Rebuild, group: Mapping[str, str], partitions: int) -> _Plan:
    table, twin, partition_by = rebuild.table, group[rebuild.table], rebuild.partition_by
    plan = _Plan(table, twin, rebuild.primary_key)
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
    plan.columns = list(
        connection.execute(
            text(
                "SELECT attname FROM pg_attribute WHERE attrelid = CAST(:table AS regclass) AND attnum > 0 "
                "AND NOT attisdropped ORDER BY attnum"
            ),
            {"table": table},
        ).scalars()
    )
    definitions = {
        name: f"PRIMARY KEY ({_columns(rebuild.primary_key)})" if kind == "p" else definition
        for name, kind, definition in connection.execute(
            text(
                "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = CAST(:table AS regclass) AND conparentid = 0 AND contype IN ('p', 'u', 'f', 'c') "
                "ORDER BY contype, conname"
            ),
            {"table": table},
        ).all()
    } | dict(rebuild.constraints)
    first = ("PRIMARY KEY", "UNIQUE", "CHECK", "FOREIGN KEY")  # the keys before the foreign keys that need them
    ordered = sorted(
        ((name, definition) for name, definition in definitions.items() if definition is not None),
        key=lambda item: next(n for n, start in enumerate((*first, "")) if item[1].startswith(start)),
    )
    for name, definition in ordered:
        temporary = f"{name}__new"
        plan.constraints.append((temporary, name))
        if definition.startswith("FOREIGN KEY"):  # one to a table of the group points at its twin
            referenced = _referenced(definition)
            referenced = group.get(referenced, referenced)
            pointed = re.sub(r'REFERENCES "?\w+"?', f'REFERENCES "{referenced}"', definition, count=1)
            plan.foreign_keys.append((temporary, pointed, referenced))
        else:
            connection.execute(text(f'ALTER TABLE "{twin}" ADD CONSTRAINT "{temporary}" {definition}'))
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
                "WHERE k.conrelid = CAST(:table AS regclass) AND k.contype = 'f' AND k.conparentid = 0 "
                "AND NOT c.relname = ANY(:group) "
                "ORDER BY c.relname"
            ),
            {"table": table, "group": list(group)},
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


def _mirror(connection: Connection, plan: _Plan) -> None:
    """The trigger: from now on every write to the table reaches the twin in the same transaction. An update is an
    update there too (a delete and an insert would cascade to the children's twins)."""
    table, twin = plan.table, plan.twin
    key = " AND ".join(f'"{name}" = OLD."{name}"' for name in plan.primary_key)
    assignments = ", ".join(f'"{name}" = NEW."{name}"' for name in plan.columns)
    connection.execute(
        text(
            f'CREATE FUNCTION "{table}__mirror"() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN '  # noqa: S608
            f"IF TG_OP = 'DELETE' THEN DELETE FROM \"{twin}\" WHERE {key}; "
            f"ELSIF TG_OP = 'UPDATE' THEN UPDATE \"{twin}\" SET {assignments} WHERE {key}; "
            f'ELSE INSERT INTO "{twin}" SELECT (NEW).* ON CONFLICT DO NOTHING; END IF; '
            "RETURN NULL; END $$"
        )
    )
    connection.execute(
        text(
            f'CREATE TRIGGER "{table}__mirror" AFTER INSERT OR UPDATE OR DELETE ON "{table}" '
            f'FOR EACH ROW EXECUTE FUNCTION "{table}__mirror"()'
        )
    )


def _swap(engine: Engine, plans: Sequence[_Plan]) -> None:
    """Give the twins the tables' places in one short transaction; retried while the locks are busy.

    Dropping a table drops its foreign keys' triggers on the tables they reference, which takes those tables'
    exclusive lock too (``patients`` for ``documents``): they are locked first, then the tables, parents first. A
    writer that holds one of the tables and waits for ``patients`` makes the swap give up and try again
    (``_briefly``).
    """
    referenced = sorted({name for plan in plans for name in plan.referenced})
    tables = [plan.table for plan in plans]

    def swap(connection: Connection) -> None:
        connection.execute(text(f"LOCK TABLE {_columns([*referenced, *tables])} IN ACCESS EXCLUSIVE MODE"))
        for plan in plans:
            for sequence, column in plan.sequences:
                connection.execute(text(f'ALTER SEQUENCE "{sequence}" OWNED BY "{plan.twin}"."{column}"'))
        connection.execute(text(f"DROP TABLE {_columns(tables)}"))  # and their mirrors
        for plan in plans:
            connection.execute(text(f'DROP FUNCTION "{plan.table}__mirror"()'))
            _rename(connection, plan)

    _briefly(engine, swap)


def _rename(connection: Connection, plan: _Plan) -> None:
    """The twin, its partitions, indexes and constraints (theirs too) take the table's names."""
    table, twin = plan.table, plan.twin
    indexes = connection.execute(  # a partition's own index is named after the twin
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_index x ON x.indrelid = i.inhrelid "
            "JOIN pg_class c ON c.oid = x.indexrelid WHERE i.inhparent = CAST(:twin AS regclass)"
        ),
        {"twin": twin},
    ).scalars()
    for index in indexes.all():
        if index.startswith(f"{twin}_"):
            connection.execute(text(f'ALTER INDEX "{index}" RENAME TO "{table}{index[len(twin) :]}"'))
    constraints = connection.execute(  # a partition's copy of a foreign key keeps the twin's name for it
        text(
            "SELECT t.relname, k.conname FROM pg_inherits i JOIN pg_constraint k ON k.conrelid = i.inhrelid "
            "JOIN pg_class t ON t.oid = i.inhrelid WHERE i.inhparent = CAST(:twin AS regclass)"
        ),
        {"twin": twin},
    ).all()
    for partition, constraint in constraints:
        if constraint.endswith("__new"):
            renamed = constraint.removesuffix("__new")
            connection.execute(text(f'ALTER TABLE "{partition}" RENAME CONSTRAINT "{constraint}" TO "{renamed}"'))
    connection.execute(text(f'ALTER TABLE "{twin}" RENAME TO "{table}"'))
    for temporary, name in plan.partitions:
        connection.execute(text(f'ALTER TABLE "{temporary}" RENAME TO "{name}"'))
    for temporary, name in plan.constraints:
        connection.execute(text(f'ALTER TABLE "{table}" RENAME CONSTRAINT "{temporary}" TO "{name}"'))
    for temporary, name in plan.indexes:
        connection.execute(text(f'ALTER INDEX "{temporary}" RENAME TO "{name}"'))
