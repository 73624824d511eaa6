"""A temporary PostgreSQL database for one benchmark run (``--database-url``): created on that server, named in the
run's environment, dropped at the end."""

from __future__ import annotations

import os
import re
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def create_database(admin_url: str, env: dict[str, str]) -> str | None:
    """With ``admin_url``, a new database on that server, its URL set as ``CARNET_DATABASE_URL`` in ``env``; its name
    (for ``drop_database``), or None without ``admin_url`` (the embedded default)."""
    if not admin_url:
        return None
    import psycopg

    name = f"carnet_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    env["CARNET_DATABASE_URL"] = re.sub(r"/[^/]*$", f"/{name}", admin_url)
    return name


def drop_database(admin_url: str, name: str | None) -> None:
    if name:
        import psycopg

        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


SERIES = {  # the numbers 1..:n as one SELECT, as each database writes it (bulk fills written in SQL)
    "postgresql": "SELECT generate_series(1, :n) AS i",
    "sqlite": "SELECT value AS i FROM (WITH RECURSIVE s(value) AS (SELECT 1 UNION ALL SELECT value + 1 FROM s "
    "WHERE value < :n) SELECT value FROM s)",
}


@contextmanager
def carnet_services(admin_url: str, prefix: str) -> Iterator[Any]:
    """Carnet's services on a new, migrated database — a temporary one on ``admin_url``'s PostgreSQL server (dropped
    at the end), or the embedded default in a temporary data folder — for benchmarks that call the services
    in-process."""
    from carnet.bootstrap import build_services
    from carnet.config import Settings
    from carnet.storage.migrate import upgrade

    env: dict[str, str] = {}
    name = create_database(admin_url, env)
    os.environ.update({"CARNET_DATA_DIR": tempfile.mkdtemp(prefix=prefix), "CARNET_LOG_LEVEL": "WARNING"})
    try:
        settings = Settings(database_url=env["CARNET_DATABASE_URL"]) if name else Settings()
        upgrade(settings.resolved_database_url)
        services = build_services(settings)
        try:
            yield services
        finally:
            services.db.dispose()
    finally:
        drop_database(admin_url, name)
