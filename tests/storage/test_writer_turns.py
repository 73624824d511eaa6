"""Several server processes on the embedded default (issue #14): their write transactions queue on a lock file beside
the SQLite database instead of SQLite's sleeping busy handler; each gets its turn, nothing is lost, and a read never
waits for a writer. Two ``Database`` objects on one file open the lock file twice, as two processes do."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from carnet.storage.db import Database


def test_a_second_writer_waits_for_the_first_to_finish_and_both_commit(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'carnet.sqlite3'}"
    first, second = Database(url), Database(url)
    with first.unit_of_work() as db:
        db.execute(text("CREATE TABLE t (n INTEGER)"))
    inside, release = threading.Event(), threading.Event()
    order: list[str] = []

    def hold() -> None:
        with first.unit_of_work() as db:
            db.execute(text("INSERT INTO t VALUES (1)"))
            inside.set()
            release.wait(10)
            order.append("first leaves")

    def write() -> None:
        with second.unit_of_work() as db:
            order.append("second enters")
            db.execute(text("INSERT INTO t VALUES (2)"))

    holder = threading.Thread(target=hold)
    holder.start()
    assert inside.wait(10)
    writer = threading.Thread(target=write)
    writer.start()
    writer.join(0.3)
    assert writer.is_alive() and order == []  # queued behind the first writer's turn
    with second.reading() as db:  # a read meanwhile does not wait (WAL)
        assert db.scalar(text("SELECT count(*) FROM t")) == 0
    release.set()
    holder.join(10)
    writer.join(10)
    assert order == ["first leaves", "second enters"]
    with first.reading() as db:
        assert sorted(db.scalars(text("SELECT n FROM t"))) == [1, 2]
    lock = tmp_path / "carnet.sqlite3.writer-lock"
    assert stat.S_IMODE(lock.stat().st_mode) == 0o600
    first.dispose()
    second.dispose()


def test_a_failed_transaction_gives_the_turn_back(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'carnet.sqlite3'}"
    first, second = Database(url), Database(url)
    with pytest.raises(OperationalError, match="missing_table"), first.unit_of_work() as db:
        db.execute(text("SELECT * FROM missing_table"))
    done = threading.Event()

    def write() -> None:
        with second.unit_of_work() as db:
            db.execute(text("CREATE TABLE t (n INTEGER)"))
        done.set()

    threading.Thread(target=write).start()
    assert done.wait(10)
    first.dispose()
    second.dispose()
