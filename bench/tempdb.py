"""A temporary PostgreSQL database for one benchmark run (``--database-url``): created on that server, named in the
run's environment, dropped at the end."""

from __future__ import annotations

import re
import uuid


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
