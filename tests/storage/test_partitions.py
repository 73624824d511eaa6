"""PostgreSQL: the tables that grow are hash-partitioned by patient, and migration 0016 gets there on a populated
database while it is being written (issue #18-2). Every test here runs on a database of its own, created at
revision 0015 and dropped at the end; SQLite has no partitioning (migration 0016 does nothing there, and the other
tests of the suite run on both)."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from carnet.schema import metadata
from carnet.storage.db import make_engine
from carnet.storage.migrate import downgrade, upgrade
from carnet.storage.partitions import PARTITIONS, in_models, rebuild_online
from tests.conftest import PG_ADMIN_URL, _pg_problem

GROWING = {"document_terms": "patient_id", "profile_entries": "patient_id", "message_attachments": "patient_id"}
GROWING["audit_entries"] = "chain"
AT = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


@pytest.fixture
def at_0015() -> Iterator[str]:
    if _pg_problem:
        pytest.skip(f"PostgreSQL injoignable — exécution PostgreSQL NON faite ({_pg_problem[0]})")
    name = f"carnet_part_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = re.sub(r"/[^/]*$", f"/{name}", PG_ADMIN_URL)
    try:
        upgrade(url, "0015")
        yield url
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _entry(chain: str, seq: int, reason: str) -> dict[str, object]:
    return {
        "chain": chain,
        "seq": seq,
        "at": AT,
        "actor_kind": "system",
        "actor_label": "test",
        "action": "test",
        "outcome": "allow",
        "reason": reason,
        "details": "{}",
        "prev_hash": "0" * 64,
        "hash": "1" * 64,
    }


INSERT_ENTRY = text(
    "INSERT INTO audit_entries (chain, seq, at, actor_kind, actor_label, action, outcome, reason, details, "
    "prev_hash, hash) VALUES (:chain, :seq, :at, :actor_kind, :actor_label, :action, :outcome, :reason, "
    "CAST(:details AS json), :prev_hash, :hash) RETURNING id"
)


def _entries(engine: Engine) -> dict[int, tuple[str, int, str]]:
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT id, chain, seq, reason FROM audit_entries")).all()
    return {row.id: (row.chain, row.seq, row.reason) for row in rows}


def _kind_and_partitions(engine: Engine, table: str) -> tuple[str, int]:
    with engine.connect() as connection:
        kind = connection.execute(text("SELECT relkind FROM pg_class WHERE relname = :t"), {"t": table}).scalar_one()
        count = connection.execute(
            text("SELECT count(*) FROM pg_inherits WHERE inhparent = CAST(:t AS regclass)"), {"t": table}
        ).scalar_one()
    return str(kind), int(count)


def _schema_differences(engine: Engine) -> list[object]:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "include_name": in_models})
        return list(compare_metadata(context, metadata))


def test_writes_during_the_copy_are_all_kept_on_rows_copied_or_not_yet(at_0015: str) -> None:
    """Between two batches of the copy, another connection inserts, updates and deletes rows on both sides of the
    copy's position: the partitioned table ends up exactly as those writes left the data."""
    engine = make_engine(at_0015)
    expected: dict[int, tuple[str, int, str]] = {}
    with engine.begin() as connection:
        for n in range(600):
            chain = f"patient-{n % 40}"
            entry_id = connection.execute(INSERT_ENTRY, _entry(chain, n, "avant")).scalar_one()
            expected[entry_id] = (chain, n, "avant")
    ids = sorted(expected)
    writes: list[int] = []

    def write_meanwhile(copied: int) -> None:
        turn = len(writes)
        behind, ahead = ids[turn * 7], ids[-1 - turn * 7]  # one row copied already, one not yet (id order)
        with engine.begin() as connection:
            for entry_id in (behind, ahead):
                connection.execute(
                    text("UPDATE audit_entries SET reason = :r WHERE id = :id"), {"r": f"changé {turn}", "id": entry_id}
                )
                expected[entry_id] = (*expected[entry_id][:2], f"changé {turn}")
            for entry_id in (ids[turn * 7 + 1], ids[-2 - turn * 7]):
                connection.execute(text("DELETE FROM audit_entries WHERE id = :id"), {"id": entry_id})
                expected.pop(entry_id)
            chain = f"nouveau-{turn}"
            entry_id = connection.execute(INSERT_ENTRY, _entry(chain, 1000 + turn, "pendant")).scalar_one()
            expected[entry_id] = (chain, 1000 + turn, "pendant")
        writes.append(copied)

    copied = rebuild_online(
        engine, "audit_entries", ("id", "chain"), "chain", batch=50, between_batches=write_meanwhile
    )

    assert len(writes) >= 12  # the writes really fell between batches of the copy
    assert copied >= 600 - 2 * len(writes)
    assert _kind_and_partitions(engine, "audit_entries") == ("p", PARTITIONS)
    assert _entries(engine) == expected
    with engine.begin() as connection:  # the id sequence went along with the table: a new entry gets the next id
        new_id = connection.execute(INSERT_ENTRY, _entry("après", 1, "après")).scalar_one()
        assert new_id > max(expected)
    with pytest.raises(IntegrityError, match="duplicate key"), engine.begin() as connection:
        connection.execute(INSERT_ENTRY, _entry("après", 1, "doublon"))  # the chain's unique key still holds
    with engine.connect() as connection:
        names = connection.execute(
            text("SELECT conname FROM pg_constraint WHERE conrelid = CAST('audit_entries' AS regclass)")
        ).scalars()
        assert set(names) == {"pk_audit_entries", "uq_audit_entries_chain_seq"}
    engine.dispose()


def test_migration_0016_partitions_a_table_written_all_along_and_0015_undoes_it(at_0015: str) -> None:
    """A writer keeps adding history entries from its own connection while ``carnet migrate`` runs: every entry it
    committed is in the partitioned table afterwards; the schema is the models' one; going down gives plain tables
    with the same rows."""
    engine = make_engine(at_0015)
    with engine.begin() as connection:
        connection.execute(INSERT_ENTRY, [_entry(f"p-{n % 500}", n, "avant") for n in range(30_000)])
    committed: list[int] = []
    stop = threading.Event()

    def writer() -> None:
        n = 0
        while not stop.is_set():
            with engine.begin() as connection:
                committed.append(connection.execute(INSERT_ENTRY, _entry("écrivain", n, "pendant")).scalar_one())
            n += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        upgrade(at_0015, "0016")
    finally:
        stop.set()
        thread.join()

    entries = _entries(engine)
    assert len(committed) > 10  # the writer wrote during the migration
    assert set(committed) <= set(entries)
    assert len(entries) == 30_000 + len(committed)
    for table in GROWING:
        assert _kind_and_partitions(engine, table) == ("p", PARTITIONS), table
    assert _schema_differences(engine) == []

    downgrade(at_0015, "0015")
    for table in GROWING:
        assert _kind_and_partitions(engine, table) == ("r", 0), table
    assert _entries(engine) == entries
    assert _schema_differences(engine) == []
    engine.dispose()
