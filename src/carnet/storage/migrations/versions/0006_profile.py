"""profile: items and measures of the medical profile, targets

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import carnet.storage.types

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "measure_targets",
        sa.Column("patient_id", sa.String(length=36), nullable=False),
        sa.Column("measure", sa.String(length=24), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("set_by_label", sa.String(length=200), nullable=False),
        sa.Column("set_at", carnet.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_measure_targets_patient_id_patients"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("patient_id", "measure", name=op.f("pk_measure_targets")),
    )
    op.create_table(
        "profile_entries",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("patient_id", sa.String(length=36), nullable=False),
        sa.Column("section", sa.String(length=24), nullable=False),
        sa.Column("measure", sa.String(length=24), nullable=True),
        sa.Column("code_token", sa.String(length=32), nullable=True),
        sa.Column("effective_at", carnet.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("author_id", sa.String(length=64), nullable=True),
        sa.Column("author_label", sa.String(length=200), nullable=False),
        sa.Column("masked", sa.Boolean(), nullable=False),
        sa.Column("created_at", carnet.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", carnet.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_profile_entries_patient_id_patients"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_profile_entries")),
    )
    with op.batch_alter_table("profile_entries", schema=None) as batch_op:
        batch_op.create_index("ix_profile_entries_code", ["patient_id", "code_token"], unique=False)
        batch_op.create_index("ix_profile_entries_measure", ["patient_id", "measure", "effective_at"], unique=False)
        batch_op.create_index("ix_profile_entries_section", ["patient_id", "section", "effective_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("profile_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_profile_entries_section")
        batch_op.drop_index("ix_profile_entries_measure")
        batch_op.drop_index("ix_profile_entries_code")

    op.drop_table("profile_entries")
    op.drop_table("measure_targets")
