"""patients: the registry's children waiting for their parent in a partial index; a parent's children in another (#18)

A registry import used to attach every child in one statement over the whole table after the last batch, and to
list the unattached ones with another: both grew with the table (10 s at 1.5 M people, 23 s at 6 M). Children are now
attached batch by batch; a child whose parent comes later waits in ``ix_patients_awaiting_parent``
(``ouvrant_droit_ins`` set, ``attached_to_id`` empty), which holds a few rows whatever the table's size.

``ix_patients_attached_to_id`` becomes partial (``attached_to_id IS NOT NULL``): every look-up by parent implies it;
it shrinks to the children; and a query for the unattached can no longer be planned on it (with stale statistics,
PostgreSQL did, and walked millions of entries).

Built without stopping the service: on PostgreSQL ``CREATE INDEX CONCURRENTLY`` (outside a transaction) under a
temporary name, the old index dropped concurrently, the new one renamed; on SQLite plain statements (one process owns
the file).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 23:00:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

AWAITING = "ix_patients_awaiting_parent"
CHILDREN = "ix_patients_attached_to_id"
WAITING = sa.text("ouvrant_droit_ins IS NOT NULL AND attached_to_id IS NULL")
ATTACHED = sa.text("attached_to_id IS NOT NULL")


def _replace_children_index(where: sa.TextClause | None) -> None:
    kwargs: dict[str, Any] = {} if where is None else {"postgresql_where": where, "sqlite_where": where}
    if op.get_bind().dialect.name != "postgresql":
        op.drop_index(CHILDREN, table_name="patients")
        op.create_index(CHILDREN, "patients", ["attached_to_id"], **kwargs)
        return
    with op.get_context().autocommit_block():
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {CHILDREN}_new")  # left by an interrupted run
        op.create_index(f"{CHILDREN}_new", "patients", ["attached_to_id"], postgresql_concurrently=True, **kwargs)
        # IF EXISTS: a run interrupted after this drop is run again from the start
        op.drop_index(CHILDREN, table_name="patients", postgresql_concurrently=True, if_exists=True)
        op.execute(f"ALTER INDEX {CHILDREN}_new RENAME TO {CHILDREN}")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            op.create_index(
                AWAITING,
                "patients",
                ["ouvrant_droit_ins"],
                postgresql_where=WAITING,
                postgresql_concurrently=True,
                if_not_exists=True,
            )
    else:
        op.create_index(AWAITING, "patients", ["ouvrant_droit_ins"], sqlite_where=WAITING)
    _replace_children_index(ATTACHED)


def downgrade() -> None:
    _replace_children_index(None)
    op.drop_index(AWAITING, table_name="patients")
