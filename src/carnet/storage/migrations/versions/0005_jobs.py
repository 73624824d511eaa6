"""jobs: one lease row per periodic job, so that workers on any database never run a job twice at once

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import carnet.storage.types

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_leases",
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("next_run_at", carnet.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("holder", sa.String(length=80), nullable=True),
        sa.Column("leased_until", carnet.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_started_at", carnet.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_finished_at", carnet.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_outcome", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_job_leases")),
    )


def downgrade() -> None:
    op.drop_table("job_leases")
