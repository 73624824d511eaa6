"""The schema comes from Alembic migrations, on SQLite and PostgreSQL, and matches the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

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


def test_the_partial_indexes_of_patients_have_the_models_predicates(database_url: str) -> None:
    """compare_metadata compares index names and columns, not their WHERE: the import's look-ups of the registry's
    waiting children rely on it (#18, migration 0017)."""
    engine = make_engine(database_url)
    query = (
        "SELECT indexdef FROM pg_indexes WHERE indexname = :name"
        if engine.dialect.name == "postgresql"
        else "SELECT sql FROM sqlite_master WHERE name = :name"
    )
    checked = set()
    with engine.connect() as connection:
        for index in metadata.tables["patients"].indexes:
            where = index.dialect_options[engine.dialect.name]["where"]
            if where is None:
                continue
            definition = connection.execute(text(query), {"name": index.name}).scalar_one()
            assert _bare(definition).endswith("WHERE" + _bare(str(where))), index.name
            checked.add(index.name)
    engine.dispose()
    assert checked == {"ix_patients_attached_to_id", "ix_patients_awaiting_parent"}


def _bare(sql: str) -> str:
    return "".join(character for character in sql.upper() if character not in "() \n")
