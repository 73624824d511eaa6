"""documents: index (patient_id, master_identifier) — the masterIdentifier looked up at every ITI-65 deposit (#14)

Built without stopping the service: on PostgreSQL ``CREATE INDEX CONCURRENTLY`` (outside a transaction; deposits go
on while it is built), on SQLite a plain index (one process owns the file).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 05:50:00
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

NAME = "ix_documents_patient_master"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            op.create_index(
                NAME, "documents", ["patient_id", "master_identifier"], postgresql_concurrently=True, if_not_exists=True
            )
    else:
        op.create_index(NAME, "documents", ["patient_id", "master_identifier"])


def downgrade() -> None:
    op.drop_index(NAME, table_name="documents")
