"""campaigns: when the space-opening job walks each campaign's invitations next, and how far it has gone (#18, ENR-3)

The job (every minute) looked for the invitations whose objection deadline had passed with a query on columns no index
holds (the sending changes them: 0018), limited to 500 people a transaction: every minute it read the whole invitations
table before any deadline came, and once they came each transaction read again the rows already opened before finding
500 new ones — a region's 12 million invitations would have been read about 10,000 times. Now a campaign is walked
only when its earliest deadline to come falls due (``opening_due_at``), in the order of its invitations' ids from
where the last run stopped (``opening_cursor``), noting the next deadline to come as it goes (``opening_next_at``).

Existing campaigns are due at once: the first run walks each of them and sets its next time.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 20:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import carnet.storage.types

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch_op:
        batch_op.add_column(sa.Column("opening_due_at", carnet.storage.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("opening_cursor", sa.String(length=36), server_default="", nullable=False))
        batch_op.add_column(
            sa.Column("opening_next_at", carnet.storage.types.UTCDateTime(timezone=True), nullable=True)
        )
    op.execute("UPDATE campaigns SET opening_due_at = started_at")
    op.create_index("ix_campaigns_opening", "campaigns", ["opening_due_at"])


def downgrade() -> None:
    op.drop_index("ix_campaigns_opening", table_name="campaigns")
    with op.batch_alter_table("campaigns") as batch_op:
        batch_op.drop_column("opening_next_at")
        batch_op.drop_column("opening_cursor")
        batch_op.drop_column("opening_due_at")
