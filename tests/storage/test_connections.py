"""PostgreSQL: a pooled connection the server ended while it sat in the pool (a restart, ``pg_terminate_backend``)
is replaced before use — the request that takes it gets a new one, not an error — without the round trip
``pool_pre_ping`` paid at every checkout (issue #14). Each test runs on a database of its own."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import text

from carnet.storage import db as storage
from carnet.storage.db import Database
from tests.conftest import PG_ADMIN_URL, postgresql_database


@pytest.fixture
def database() -> Iterator[Database]:
    for url in postgresql_database("carnet_conn"):
        database = Database(url)
        yield database
        database.dispose()


def _backend(database: Database) -> int:
    with database.unit_of_work() as session:
        return int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _counting_pings(database: Database) -> list[object]:
    """The connections the engine pings from now on (the ping itself still sent)."""
    pings: list[object] = []
    ping = database.engine.dialect.do_ping

    def counted(connection: object) -> bool:
        pings.append(connection)
        return ping(connection)

    database.engine.dialect.do_ping = counted  # type: ignore[method-assign]
    return pings


def test_a_connection_the_server_ended_in_the_pool_is_replaced_before_use(database: Database) -> None:
    first = _backend(database)
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (first,))
        for _ in range(500):  # until the server has ended it
            if admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (first,)).fetchone() is None:
                break
            time.sleep(0.01)
    second = _backend(database)  # no error: the ended connection was dropped, a new one opened
    assert second != first
    assert database.engine.pool.checkedout() == 0


def test_a_connection_back_from_the_pool_at_once_is_not_pinged(database: Database) -> None:
    first = _backend(database)
    pings = _counting_pings(database)
    assert _backend(database) == first
    assert pings == []


def test_a_connection_idle_in_the_pool_for_long_is_pinged_first(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _backend(database)
    pings = _counting_pings(database)
    monkeypatch.setattr(storage, "IDLE_PING_SECONDS", 0.0)
    assert _backend(database) == first
    assert len(pings) == 1
