"""invitations: partial index (id) of the e-mails still queued — the sending claims walk it forward (#18, ENR-2)

Each claim reads the next queued e-mails in id order from where the previous one stopped. Without it, on PostgreSQL a
claim walked every queued entry of the status index (all of them while the planner had no statistics) and, once
sending, the dead entries of those already claimed: 0.35 s a claim at 1.5 million invitations, growing with the
campaign. A partial index keeps only the queued e-mails; a row that leaves the queue adds no entry to it.

Built without stopping the service: on PostgreSQL ``CREATE INDEX CONCURRENTLY``, on SQLite a plain index.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 08:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

NAME = "ix_invitations_email_queue"
QUEUED = sa.text("status = 'pending' AND channel = 'email'")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            op.create_index(
                NAME, "invitations", ["id"], postgresql_where=QUEUED, postgresql_concurrently=True, if_not_exists=True
            )
    else:
        op.create_index(NAME, "invitations", ["id"], sqlite_where=QUEUED)


def downgrade() -> None:
    op.drop_index(NAME, table_name="invitations")
