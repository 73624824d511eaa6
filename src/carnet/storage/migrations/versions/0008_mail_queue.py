"""mail queue: e-mails a relay outage held back (issue #15-3); access token scopes unbounded

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 06:03:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import carnet.storage.types

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mail_queue",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", carnet.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("discard_after", carnet.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=250), nullable=False),
        sa.Column("created_at", carnet.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_queue")),
    )
    with op.batch_alter_table("mail_queue", schema=None) as batch_op:
        batch_op.create_index("ix_mail_queue_next", ["next_attempt_at"], unique=False)
    with op.batch_alter_table("access_tokens", schema=None) as batch_op:
        batch_op.alter_column("scope", type_=sa.Text(), existing_type=sa.String(length=300), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("access_tokens", schema=None) as batch_op:
        batch_op.alter_column("scope", type_=sa.String(length=300), existing_type=sa.Text(), existing_nullable=False)
    with op.batch_alter_table("mail_queue", schema=None) as batch_op:
        batch_op.drop_index("ix_mail_queue_next")

    op.drop_table("mail_queue")
