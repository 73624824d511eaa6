"""The schema comes from Alembic migrations, on SQLite and PostgreSQL, and matches the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from carnet.schema import metadata
from carnet.storage.db import make_engine
from carnet.storage.migrate import downgrade, upgrade
from carnet.storage.partitions import in_models, in_models_object


def test_migrations_create_exactly_the_models_schema(database_url: str) -> None:
    engine = make_engine(database_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_name": in_models, "include_object": in_models_object}
        )
        differences = compare_metadata(context, metadata)
        tables = set(inspect(connection).get_table_names())
    engine.dispose()
    assert differences == []
    assert {"patients", "accounts", "audit_entries", "audit_heads", "alembic_version"} <= tables


def test_migrations_go_down_and_up_again(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/roundtrip.sqlite3"
    upgrade(url)
    downgrade(url, "base")
    engine = make_engine(url)
    with engine.connect() as connection:
        assert set(inspect(connection).get_table_names()) == {"alembic_version"}
    engine.dispose()
    upgrade(url)
