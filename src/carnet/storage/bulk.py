"""Bulk work on many rows (a campaign's invitations): the fastest way each database offers."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import Connection, Insert, Table, any_, bindparam, func, insert, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql import ColumnElement


def insert_new(connection: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> int:
    """Insert ``rows`` (same keys each), skipping those a unique key already holds, in the caller's transaction;
    returns how many were inserted.

    PostgreSQL: ``COPY`` into a temporary table, then one ``INSERT … SELECT … ON CONFLICT DO NOTHING`` — an
    ``executemany`` would run one INSERT a row. The values go to the driver as they are (no SQLAlchemy type
    processing): strings, numbers and timezone-aware datetimes. SQLite: one ``executemany``.
    """
    if not rows:
        return 0
    if connection.dialect.name != "postgresql":
        return connection.execute(sqlite_insert(table).on_conflict_do_nothing(), list(rows)).rowcount
    columns = [table.c[name].name for name in rows[0]]  # the table's own columns only (KeyError otherwise)
    names = ", ".join(f'"{name}"' for name in columns)
    staging = f"{table.name}_new"
    cursor: Any = connection.connection.cursor()  # psycopg 3, in the transaction of ``connection``
    try:
        cursor.execute(f'CREATE TEMPORARY TABLE "{staging}" (LIKE "{table.name}" INCLUDING DEFAULTS) ON COMMIT DROP')
        with cursor.copy(f'COPY "{staging}" ({names}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row([row[name] for name in columns])
        moved = f'INSERT INTO "{table.name}" ({names}) SELECT {names} FROM "{staging}" ON CONFLICT DO NOTHING'  # noqa: S608
        cursor.execute(moved)
        inserted: int = cursor.rowcount
        cursor.execute(f'DROP TABLE "{staging}"')
        return inserted
    finally:
        cursor.close()


def among(column: Any, values: Sequence[Any], postgresql: bool) -> ColumnElement[bool]:
    """``column IN values``. On PostgreSQL one array parameter (``= ANY(:values)``): the statement stays the same
    whatever the number of values, so SQLAlchemy's compiled form, psycopg's conversion and the server's prepared
    plan are reused, where an IN list is a new statement with a parameter per value at each call. SQLite: the list."""
    if not postgresql:
        return column.in_(values)
    return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))


def insert_spread(
    connection: Connection, table: Table, common: dict[str, Any], column: str, values: Sequence[Any]
) -> None:
    """Insert one row per value of ``column``, every other column given by ``common`` (a document's index terms), in
    the caller's transaction. PostgreSQL: one statement whatever the number of values (``unnest`` of one array
    parameter) — psycopg's ``executemany`` pipelines one INSERT a row, 1.2 against 0.5 ms of CPU for 40 terms.
    SQLite: one ``executemany``."""
    if not values:
        return
    if connection.dialect.name != "postgresql":
        connection.execute(insert(table), [{**common, column: value} for value in values])
        return
    connection.execute(_spread(table, tuple(common), column), {**common, column: list(values)})


@cache
def _spread(table: Table, common: tuple[str, ...], column: str) -> Insert:
    spread = func.unnest(bindparam(column, type_=ARRAY(table.c[column].type)))
    rows = select(*(bindparam(name, type_=table.c[name].type) for name in common), spread)
    return insert(table).from_select([*common, column], rows)
