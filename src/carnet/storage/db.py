"""Database engine and sessions for SQLite (embedded default) and PostgreSQL (scale-out)."""

from __future__ import annotations

import contextlib
import os
import select
import tempfile
import threading
import time
import weakref
from collections.abc import Generator, Hashable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql import Executable

try:
    import fcntl
except ImportError:  # Windows: the threads' lock only
    fcntl = None  # type: ignore[assignment]

_units = threading.local()  # how many units of work this thread has open (SQLite: only the outer one is IMMEDIATE)


def normalise_url(url: str) -> str:
    """Use the psycopg 3 driver for plain ``postgresql://`` URLs."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # Created 0600 before SQLite opens it: its -wal and -shm files take the database file's mode.
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        engine = create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, hide_parameters=True, **kwargs
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()
            # SQLAlchemy, not the driver, opens transactions (below): the driver's own deferred BEGIN is off.
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def _sqlite_begin(connection: Any) -> None:
            # Every transaction takes SQLite's write lock when it begins, waiting up to busy_timeout for it: a
            # deferred one that read first could not take it later, after another process committed, and would
            # fail at once with « database is locked » (several server processes, or the worker beside them). A unit
            # of work opened inside another of the same thread (a read while the outer one holds the lock) begins
            # deferred: it could never take the lock its own thread holds.
            # A read (``Database.reading``) begins deferred too: WAL lets it read beside the writer.
            immediate = getattr(_units, "depth", 0) <= 1 and not getattr(_units, "reading", 0)
            connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    if "poolclass" not in kwargs:
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 10)
    engine = create_engine(url, hide_parameters=True, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        _ping_when_in_doubt(engine)
    return engine


IDLE_PING_SECONDS = 10.0


def _ping_when_in_doubt(engine: Engine) -> None:
    """A pooled connection is pinged before use only when it may be dead: it sat in the pool more than
    ``IDLE_PING_SECONDS`` (a firewall's idle cut, a failover), or the server sent it something meanwhile — a restart
    or ``pg_terminate_backend`` sends an error, then closes the socket —, seen by polling its socket, without a round
    trip. SQLAlchemy's ``pool_pre_ping`` pings at every checkout: one round trip a transaction, four an ITI-65 deposit
    (8 % of its CPU, issue #14). A dead connection found is replaced, as ``pool_pre_ping`` does; one that dies while
    in use fails its request, with or without the ping."""

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_connection: Any, record: Any) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.pop("returned_at", None)
        if returned is None:  # just connected
            return
        if time.monotonic() - returned < IDLE_PING_SECONDS and not _has_news(dbapi_connection):
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # the pool drops this connection and checks out another (or connects anew)
            raise DisconnectionError("connexion à la base perdue") from exc


def _has_news(dbapi_connection: Any) -> bool:
    """Whether an idle connection's socket has something to read (or is closed): a healthy idle PostgreSQL
    connection receives nothing."""
    try:
        if dbapi_connection.closed:
            return True
        poller = select.poll()
        poller.register(dbapi_connection.pgconn.socket, select.POLLIN | select.POLLERR | select.POLLHUP)
        return bool(poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll here (Windows), another driver, a closed socket
        return True


class CommittedFacts:
    """What a process may remember once it is committed and can no longer become false — an action already in
    today's history, a professional's first consultation of a space — so that it is not looked up at every request.
    Remembered only when the transaction that saw it commits (what it saw may be its own work, undone by a rollback);
    kept per database engine (forgotten with it); bounded (emptied when full)."""

    def __init__(self, size: int) -> None:
        self._known: weakref.WeakKeyDictionary[object, dict[Hashable, object]] = weakref.WeakKeyDictionary()
        self._size = size

    def get(self, db: Session, key: Hashable) -> object | None:
        known = self._known.get(db.get_bind())
        return known.get(key) if known else None

    def remember(self, db: Session, key: Hashable, value: object = True) -> None:
        bind = db.get_bind()

        def keep(_session: Session) -> None:
            known = self._known.setdefault(bind, {})
            if len(known) >= self._size:
                known.clear()
            known[key] = value

        event.listen(db, "after_commit", keep, once=True)


class _WriterLock:
    """The writer's turn on one SQLite database: a re-entrant lock for the threads of this process and, for the
    outermost holder, ``flock`` on ``<database>.writer-lock`` for the processes (the kernel wakes the next one as
    soon as the file is unlocked). Without a file (in memory) or without ``fcntl``, the threads' lock only."""

    def __init__(self, database: str | None) -> None:
        self._threads = threading.RLock()
        self._depth = 0
        self._path = f"{database}.writer-lock" if database and database != ":memory:" and fcntl else None
        self._fd: int | None = None

    def __enter__(self) -> None:
        self._threads.acquire()
        self._depth += 1
        if self._depth == 1 and self._path:
            try:
                if self._fd is None:
                    self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except BaseException:
                self._depth -= 1
                self._threads.release()
                raise

    def __exit__(self, *_: object) -> None:
        try:
            if self._depth == 1 and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._depth -= 1
            self._threads.release()


@contextmanager
def _opened() -> Iterator[None]:
    _units.depth = getattr(_units, "depth", 0) + 1
    try:
        yield
    finally:
        _units.depth -= 1


class Database:
    """An engine plus a session factory; ``unit_of_work`` is one transaction."""

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        self.engine = make_engine(self.url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer at a time and nearly every request writes (the audit log): queueing the
        # threads of this process on a lock, then the processes on a lock file beside the database, is fairer and
        # faster than SQLite's busy handler, which sleeps up to 100 ms between tries (issue #14: several server
        # processes on the embedded default).
        self._sqlite_lock = _WriterLock(self.engine.url.database) if self.is_sqlite else None
        # PostgreSQL: a read needs no transaction of its own (READ COMMITTED takes a snapshot per statement anyway);
        # without it, no BEGIN and no COMMIT round trip (issue #14: three reads for every ITI-65 deposit).
        self._reads = self.engine if self.is_sqlite else self.engine.execution_options(isolation_level="AUTOCOMMIT")

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """One transaction: committed when the block ends normally, rolled back otherwise.

        Work that must survive a rollback (the audit entry of a refused access) registers a callback in
        ``session.info["after_rollback"]``; it runs in a fresh transaction once the rollback is done.
        """
        with _opened():
            session = self.sessions()
            try:
                # SQLite: the writer's turn is held from BEGIN to COMMIT (or ROLLBACK) only; the session is closed
                # and its connection returned to the pool after it is given back (issue #14: with 8 clients the turn
                # is what every deposit queues for).
                with self._sqlite_lock or nullcontext(), session.begin():
                    yield session
            except BaseException:
                survivors = session.info.pop("after_rollback", [])
                session.close()
                if survivors:
                    with self._sqlite_lock or nullcontext(), self.sessions() as again, again.begin():
                        for callback in survivors:
                            callback(again)
                raise
            finally:
                session.info.pop("after_rollback", None)
                session.close()

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A read for look-ups that write nothing (a bearer token at every API request): on SQLite a read-only
        transaction that neither queues on this process's writer lock nor takes the database's, so it never waits for
        a writer; on PostgreSQL no transaction at all (each statement commits by itself): nothing may be written in
        it."""
        _units.reading = getattr(_units, "reading", 0) + 1
        try:
            with self.sessions(bind=self._reads) as session, session.begin():
                yield session
        finally:
            _units.reading -= 1

    def pages(self, statement: Executable, size: int) -> Generator[Sequence[Any], None, None]:
        """The rows of one read, ``size`` at a time, streamed (a server-side cursor on PostgreSQL): memory stays flat
        however many rows there are, and the caller may write each page in its own ``unit_of_work`` meanwhile.

        The read is one read-only transaction (one snapshot); on SQLite it begins deferred, like ``reading``, and
        the units of work opened meanwhile still take the write lock at once."""
        _units.reading = getattr(_units, "reading", 0) + 1
        session = self.sessions()
        try:
            try:
                result = session.execute(statement, execution_options={"yield_per": size})
            finally:
                _units.reading -= 1  # only this read's BEGIN was to be deferred
            yield from result.partitions()
        finally:
            session.close()

    def spooled_pages(self, statement: Executable, size: int) -> Generator[list[list[Any]], None, None]:
        """The rows of one read (JSON values: strings, numbers), ``size`` at a time, like ``pages``; but the rows are
        first written to a private temporary file and the read's snapshot released, before the first page is
        given. A long walk over them (the letters of a region, rendered for an hour) then holds no snapshot on
        PostgreSQL, which would keep every row version updated meanwhile from being pruned: the sending's updates
        would stop being HOT, and vacuum could not clean behind them."""
        with tempfile.TemporaryFile() as spool:
            with contextlib.closing(self.pages(statement, size)) as pages:
                for page in pages:
                    spool.write(orjson.dumps([list(row) for row in page]) + b"\n")
            spool.seek(0)
            for line in spool:
                yield orjson.loads(line)

    def analyze(self, *tables: str) -> None:
        """Refresh PostgreSQL's statistics of these tables after a bulk write (autovacuum does it, but later: the plans
        made meanwhile would take a table of millions of rows for an empty one)."""
        if self.is_sqlite:
            return
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            for table in tables:
                connection.exec_driver_sql(f'ANALYZE "{table}"')

    def dispose(self) -> None:
        self.engine.dispose()
