"""agenda: appointments, calendar feeds, prevention answers, reminders

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 05:40:00

The three settings columns get server defaults: the migration applies to a populated database.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import carnet.storage.types

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agenda_events",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("patient_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("starts_at", carnet.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", carnet.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("all_day", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("author_id", sa.String(length=64), nullable=True),
        sa.Column("author_label", sa.String(length=200), nullable=False),
        sa.Column("created_at", carnet.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", carnet.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_agenda_events_patient_id_patients"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agenda_events")),
    )
    with op.batch_alter_table("agenda_events", schema=None) as batch_op:
        batch_op.create_index("ix_agenda_events_patient", ["patient_id", "starts_at"], unique=False)

    op.create_table(
        "agenda_feeds",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("patient_id", sa.String(length=36), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("with_details", sa.Boolean(), nullable=False),
        sa.Column("created_by_label", sa.String(length=200), nullable=False),
        sa.Column("created_at", carnet.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", carnet.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", carnet.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_agenda_feeds_patient_id_patients"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agenda_feeds")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_agenda_feeds_token_hash")),
    )
    with op.batch_alter_table("agenda_feeds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_agenda_feeds_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "agenda_reminders",
        sa.Column("patient_id", sa.String(length=36), nullable=False),
        sa.Column("key_token", sa.String(length=32), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("created_at", carnet.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", carnet.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_agenda_reminders_patient_id_patients"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("patient_id", "key_token", name=op.f("pk_agenda_reminders")),
    )
    with op.batch_alter_table("agenda_reminders", schema=None) as batch_op:
        batch_op.create_index("ix_agenda_reminders_due", ["due_on"], unique=False)

    op.create_table(
        "prevention_answers",
        sa.Column("patient_id", sa.String(length=36), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", carnet.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_prevention_answers_patient_id_patients"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("patient_id", name=op.f("pk_prevention_answers")),
    )
    with op.batch_alter_table("patient_settings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("notify_appointments", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch_op.add_column(sa.Column("reminder_days", sa.Integer(), nullable=False, server_default="7"))
        batch_op.add_column(sa.Column("reminder_details", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("patient_settings", schema=None) as batch_op:
        batch_op.drop_column("reminder_details")
        batch_op.drop_column("reminder_days")
        batch_op.drop_column("notify_appointments")

    op.drop_table("prevention_answers")
    with op.batch_alter_table("agenda_reminders", schema=None) as batch_op:
        batch_op.drop_index("ix_agenda_reminders_due")

    op.drop_table("agenda_reminders")
    with op.batch_alter_table("agenda_feeds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agenda_feeds_patient_id"))

    op.drop_table("agenda_feeds")
    with op.batch_alter_table("agenda_events", schema=None) as batch_op:
        batch_op.drop_index("ix_agenda_events_patient")

    op.drop_table("agenda_events")
