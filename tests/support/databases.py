"""A database of its own for a test that needs an empty one beside the session's (a restore, another instance, a
migration from an older revision): of the same kind as ``database_url``, dropped at the end."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from tests.conftest import PG_ADMIN_URL


@contextmanager
def another_database(database_url: str, sqlite_file: Path, prefix: str = "carnet_test") -> Iterator[str]:
    """The URL of a new, empty database: ``sqlite_file`` on SQLite, a database of the server on PostgreSQL."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{sqlite_file}"
        return
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield re.sub(r"/[^/]*$", f"/{name}", PG_ADMIN_URL)
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
