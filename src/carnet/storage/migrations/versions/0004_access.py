"""access: consent, care teams, blocking, emergency, representatives, caregivers, reports

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 03:48:23.227907
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import carnet.storage.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


COVERING = ["patient_id", "status", "created_at", "id", "author_id"]


def upgrade() -> None:
    # The listing index also covers the professional scope (category, masked): ITI-67 stays index-only.
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.drop_index("ix_documents_patient_date")
        batch_op.create_index("ix_documents_patient_date", [*COVERING, "category", "masked"], unique=False)
    op.create_table(
        "access_reports",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("patient_id", sa.String(length=36), nullable=False),
        sa.Column("audit_entry_id", sa.Integer(), nullable=False),
        sa.Column("comment", sa.String(length=1000), nullable=False),
        sa.Column("reported_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", carnet.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_access_reports_patient_id_patients"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_reports")),
    )
    with op.batch_alter_table("access_reports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_access_reports_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "care_teams",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("establishment_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", carnet.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["establishment_id"], ["establishments.id"], name=op.f("fk_care_teams_establishment_id_establishments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_care_teams")),
    )
    op.create_table(
        "caregivers",
        sa.Column("helped_id", sa.String(length=36), nullable=False),
        sa.Column("caregiver_id", sa.String(length=36), nullable=False),
        sa.Column("since", carnet.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["caregiver_id"], ["patients.id"], name=op.f("fk_caregivers_caregiver_id_patients"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["helped_id"], ["patients.id"], name=op.f("fk_caregivers_helped_id_patients"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("helped_id", "caregiver_id", name=op.f("pk_caregivers")),
    )
    op.create_table(
        "first_accesses",
        sa.Column("patient_id", sa.String(length=36), nullable=False),
        sa.Column("professional_id", sa.String(length=36), nullable=False),
        sa.Column("at", carnet.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("notified_at", carnet.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_first_accesses_patient_id_patients"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("patient_id", "professional_id", name=op.f("pk_first_accesses")),
    )
    op.create_table(
        "legal_representatives",
        sa.Column("minor_id", sa.String(length=36), nullable=False),
        sa.Column("representative_id", sa.String(length=36), nullable=False),
        sa.Column("since", carnet.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["minor_id"], ["patients.id"], name=op.f("fk_legal_representatives_minor_id_patients"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["representative_id"],
            ["patients.id"],
            name=op.f("fk_legal_representatives_representative_id_patients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("minor_id", "representative_id", name=op.f("pk_legal_representatives")),
    )
    op.create_table(
        "space_invitations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("patient_id", sa.String(length=36), nullable=False),
        sa.Column("invited_by", sa.String(length=36), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("nir", sa.String(length=15), nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", carnet.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", carnet.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", carnet.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", carnet.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_space_invitations_patient_id_patients"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_space_invitations")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_space_invitations_token_hash")),
    )
    with op.batch_alter_table("space_invitations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_space_invitations_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "access_blocks",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("patient_id", sa.String(length=36), nullable=False),
        sa.Column("professional_id", sa.String(length=36), nullable=False),
        sa.Column("blocked_at", carnet.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("lifted_at", carnet.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_access_blocks_patient_id_patients"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["professional_id"], ["professionals.id"], name=op.f("fk_access_blocks_professional_id_professionals")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_blocks")),
    )
    with op.batch_alter_table("access_blocks", schema=None) as batch_op:
        batch_op.create_index("ix_access_blocks_patient_pro", ["patient_id", "professional_id"], unique=False)

    op.create_table(
        "access_grants",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("patient_id", sa.String(length=36), nullable=False),
        sa.Column("professional_id", sa.String(length=36), nullable=True),
        sa.Column("care_team_id", sa.String(length=36), nullable=True),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("origin", sa.String(length=10), nullable=False),
        sa.Column("granted_at", carnet.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("granted_by", sa.String(length=200), nullable=False),
        sa.Column("revoked_at", carnet.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["care_team_id"], ["care_teams.id"], name=op.f("fk_access_grants_care_team_id_care_teams")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_access_grants_patient_id_patients"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["professional_id"], ["professionals.id"], name=op.f("fk_access_grants_professional_id_professionals")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_grants")),
    )
    with op.batch_alter_table("access_grants", schema=None) as batch_op:
        batch_op.create_index("ix_access_grants_patient_pro", ["patient_id", "professional_id"], unique=False)

    op.create_table(
        "care_team_members",
        sa.Column("team_id", sa.String(length=36), nullable=False),
        sa.Column("professional_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["professional_id"],
            ["professionals.id"],
            name=op.f("fk_care_team_members_professional_id_professionals"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["care_teams.id"], name=op.f("fk_care_team_members_team_id_care_teams"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("team_id", "professional_id", name=op.f("pk_care_team_members")),
    )
    op.create_table(
        "emergency_accesses",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("patient_id", sa.String(length=36), nullable=False),
        sa.Column("professional_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("started_at", carnet.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", carnet.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("notified_at", carnet.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_emergency_accesses_patient_id_patients"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["professional_id"], ["professionals.id"], name=op.f("fk_emergency_accesses_professional_id_professionals")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_emergency_accesses")),
    )
    with op.batch_alter_table("emergency_accesses", schema=None) as batch_op:
        batch_op.create_index("ix_emergency_accesses_patient_pro", ["patient_id", "professional_id"], unique=False)

    with op.batch_alter_table("patient_settings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("emergency_samu", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch_op.add_column(
            sa.Column("emergency_professionals", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch_op.add_column(sa.Column("emergency_masked", sa.Boolean(), nullable=False, server_default=sa.false()))

    with op.batch_alter_table("professionals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("samu_regulator", sa.Boolean(), nullable=False, server_default=sa.false()))

    # ### end Alembic commands ###


def downgrade() -> None:
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.drop_index("ix_documents_patient_date")
        batch_op.create_index("ix_documents_patient_date", COVERING, unique=False)
    with op.batch_alter_table("professionals", schema=None) as batch_op:
        batch_op.drop_column("samu_regulator")

    with op.batch_alter_table("patient_settings", schema=None) as batch_op:
        batch_op.drop_column("emergency_masked")
        batch_op.drop_column("emergency_professionals")
        batch_op.drop_column("emergency_samu")

    with op.batch_alter_table("emergency_accesses", schema=None) as batch_op:
        batch_op.drop_index("ix_emergency_accesses_patient_pro")

    op.drop_table("emergency_accesses")
    op.drop_table("care_team_members")
    with op.batch_alter_table("access_grants", schema=None) as batch_op:
        batch_op.drop_index("ix_access_grants_patient_pro")

    op.drop_table("access_grants")
    with op.batch_alter_table("access_blocks", schema=None) as batch_op:
        batch_op.drop_index("ix_access_blocks_patient_pro")

    op.drop_table("access_blocks")
    with op.batch_alter_table("space_invitations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_space_invitations_patient_id"))

    op.drop_table("space_invitations")
    op.drop_table("legal_representatives")
    op.drop_table("first_accesses")
    op.drop_table("caregivers")
    op.drop_table("care_teams")
    with op.batch_alter_table("access_reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_access_reports_patient_id"))

    op.drop_table("access_reports")
    # ### end Alembic commands ###
