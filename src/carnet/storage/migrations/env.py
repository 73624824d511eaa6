"""Alembic environment: batch mode on SQLite so ALTERs work there too."""

from __future__ import annotations

from alembic import context
from sqlalchemy import pool

from carnet.schema import metadata
from carnet.storage.db import make_engine
from carnet.storage.partitions import in_models, in_models_object

config = context.config
url = config.get_main_option("sqlalchemy.url") or ""


def run_migrations_online() -> None:
    engine = make_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # Batch mode rebuilds a table (copy, drop, rename). With foreign keys on, SQLite's DROP TABLE deletes the
            # rows first and their ON DELETE CASCADE would empty the tables that reference it. Off for the
            # migration (outside a transaction, or SQLite ignores it), checked at the end.
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            include_name=in_models,
            include_object=in_models_object,
        )
        with context.begin_transaction():
            context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                if broken:
                    raise RuntimeError(f"clés étrangères rompues après la migration : {broken[:5]}")
    engine.dispose()


if context.is_offline_mode():
    context.configure(url=url, target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
