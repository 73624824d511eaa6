"""PostgreSQL: the tables that grow are hash-partitioned by patient, and migration 0016 gets there on a populated
database while it is being written (issue #18-2); on SQLite it changes the foreign keys only, and loses no row.
Every test here runs on a database of its own, created at revision 0015 and dropped at the end."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from carnet.schema import metadata
from carnet.storage.db import make_engine
from carnet.storage.migrate import downgrade, upgrade
from carnet.storage.partitions import PARTITIONS, Rebuild, in_models, in_models_object, rebuild_online
from tests.conftest import postgresql_database

GROWING = [
    "documents",
    "document_terms",
    "message_threads",
    "messages",
    "message_attachments",
    "profile_entries",
    "audit_entries",
]
AT = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_at_0015(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'carnet.sqlite3'}"
        upgrade(url, "0015")
        yield url
    else:
        yield from _postgresql_at_0015()


@pytest.fixture
def at_0015() -> Iterator[str]:
    yield from _postgresql_at_0015()


def _postgresql_at_0015() -> Iterator[str]:
    for url in postgresql_database("carnet_part"):
        upgrade(url, "0015")
        yield url


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


def _loose_foreign_keys(engine: Engine) -> list[str]:
    """Foreign keys a rebuild could leave wrong: not validated, or a partition's own instead of its table's (which
    the table's would not govern)."""
    with engine.connect() as connection:
        return list(
            connection.execute(
                text(
                    "SELECT CAST(k.conrelid AS regclass)::text || ' ' || k.conname FROM pg_constraint k "
                    "JOIN pg_class c ON c.oid = k.conrelid "
                    "WHERE k.contype = 'f' AND (NOT k.convalidated OR (c.relispartition AND k.conparentid = 0))"
                )
            ).scalars()
        )


def _schema_differences(engine: Engine) -> list[object]:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_name": in_models, "include_object": in_models_object}
        )
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
        engine, [Rebuild("audit_entries", ("id", "chain"), "chain")], batch=50, between_batches=write_meanwhile
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
    """A writer keeps depositing — a document, its search terms and a history entry in one transaction — from its own
    connection while ``carnet migrate`` runs: none of its transactions fails (no deadlock with the migration's
    locks), everything it committed is in the partitioned tables afterwards; the schema is the models' one; going
    down gives plain tables with the same rows (0015's schema: not the models' any more)."""
    engine = make_engine(at_0015)
    with engine.begin() as connection:
        connection.execute(INSERT_ENTRY, [_entry(f"p-{n % 500}", n, "avant") for n in range(30_000)])
        connection.execute(text(SPACE[0]))
    committed: list[int] = []
    failed: list[BaseException] = []
    stop = threading.Event()

    def writer() -> None:
        n = 0
        while not stop.is_set():
            try:
                with engine.begin() as connection:
                    connection.execute(text(SPACE[1].format(doc=f"w{n}")))
                    connection.execute(text(SPACE[2].format(doc=f"w{n}")))
                    committed.append(connection.execute(INSERT_ENTRY, _entry("écrivain", n, "pendant")).scalar_one())
            except Exception as error:  # reported by the test below
                failed.append(error)
            n += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        upgrade(at_0015, "0016")
    finally:
        stop.set()
        thread.join()

    entries = _entries(engine)
    assert failed == []
    assert len(committed) > 10  # the writer wrote during the migration
    assert set(committed) <= set(entries)
    assert len(entries) == 30_000 + len(committed)
    with engine.connect() as connection:
        kept = connection.execute(text("SELECT count(*) FROM documents"))
        assert kept.scalar_one() == len(committed)
        terms = connection.execute(text("SELECT count(*) FROM document_terms"))
        assert terms.scalar_one() == 2 * len(committed)
    for table in GROWING:
        assert _kind_and_partitions(engine, table) == ("p", PARTITIONS), table
    assert _loose_foreign_keys(engine) == []
    upgrade(at_0015, "head")  # the later migrations apply on top, and the result is the models' schema
    assert _schema_differences(engine) == []

    downgrade(at_0015, "0015")
    for table in GROWING:
        assert _kind_and_partitions(engine, table) == ("r", 0), table
    assert _entries(engine) == entries
    assert _loose_foreign_keys(engine) == []
    engine.dispose()


SPACE = [
    "INSERT INTO patients (id, ins, ins_oid, birth_name, first_names, birth_date, sex, birth_place, status, "
    "created_at) VALUES ('p1', '1234567890123', '1.2.250.1.213.1.4.8', 'NOM', 'Prénom', '1970-01-01', 'F', '2A004', "
    "'active', '2026-12-06 12:00:00+00')",
    "INSERT INTO documents (id, patient_id, status, category, type_system, type_code, type_display, title, "
    "mime_type, size, body_mac, blob_key, confidentiality, masked, source, author_kind, author_label, created_at, "
    "document_date, version) VALUES ('{doc}', 'p1', 'current', 'report', 'http://loinc.org', '11488-4', 'CR', 'T', "
    "'application/pdf', 1, 'mac', 'k-{doc}', '[]', false, 'mhd', 'professional', 'Dr X', '2026-12-06 12:00:00+00', "
    "'2026-12-06 12:00:00+00', 1)",
    "INSERT INTO document_terms (document_id, term, patient_id) VALUES ('{doc}', 'a', 'p1'), ('{doc}', 'b', 'p1')",
    "INSERT INTO message_threads (id, patient_id, counterpart_kind, counterpart_id, counterpart_label, sealed, status, "
    "space_unread, counterpart_unread, messages, created_at, last_message_at) VALUES ('{thread}', 'p1', "
    "'professional', 'pro', 'Dr X', 'x', 'ouvert', 0, 0, 1, '2026-12-06 12:00:00+00', '2026-12-06 12:00:00+00')",
    "INSERT INTO messages (id, thread_id, patient_id, direction, author_label, via, mail_id, sealed, attachments, "
    "created_at) VALUES ('{message}', '{thread}', 'p1', 'vers_patient', 'Dr X', 'portail', '<m>', 'x', 1, "
    "'2026-12-06 12:00:00+00')",
    "INSERT INTO message_attachments (id, message_id, patient_id, blob_key, size, sealed, created_at) VALUES "
    "('{attachment}', '{message}', 'p1', 'k', 1, 'x', '2026-12-06 12:00:00+00')",
]
COUNTED = ["documents", "document_terms", "message_threads", "messages", "message_attachments"]


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {table: connection.execute(text(f'SELECT count(*) FROM "{table}"')).scalar_one() for table in COUNTED}


def test_0016_keeps_every_row_and_the_cascades_follow_the_new_keys(any_at_0015: str) -> None:
    """Two documents with their terms, two conversations with a message and an attachment each: all still there
    after 0016 (on SQLite, rebuilding a table whose rows others reference must not cascade their deletion), and
    deleting a document or a conversation still takes what hangs off it, through the composite foreign keys."""
    engine = make_engine(any_at_0015)
    with engine.begin() as connection:
        for n, statement in enumerate(SPACE * 2):
            if statement.startswith("INSERT INTO patients") and n:
                continue
            names = {"doc": f"d{n // len(SPACE)}", "thread": f"t{n // len(SPACE)}"}
            names |= {"message": f"m{n // len(SPACE)}", "attachment": f"a{n // len(SPACE)}"}
            connection.execute(text(statement.format(**names)))
    before = _counts(engine)
    assert before == {
        "documents": 2,
        "document_terms": 4,
        "message_threads": 2,
        "messages": 2,
        "message_attachments": 2,
    }

    upgrade(any_at_0015, "0016")
    assert _counts(engine) == before
    upgrade(any_at_0015, "head")
    assert _schema_differences(engine) == []
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM documents WHERE id = 'd0'"))
        connection.execute(text("DELETE FROM message_threads WHERE id = 't1'"))
        with pytest.raises(IntegrityError), connection.begin_nested():  # a term naming another patient: refused
            connection.execute(
                text("INSERT INTO document_terms (document_id, term, patient_id) VALUES ('d1', 'c', 'p2')")
            )
    assert _counts(engine) == {
        "documents": 1,
        "document_terms": 2,
        "message_threads": 1,
        "messages": 1,
        "message_attachments": 1,
    }
    engine.dispose()
