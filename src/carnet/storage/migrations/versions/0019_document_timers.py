"""document_timers: what falls due for a document (its patient told, its reveal), read by due time (#18, TRC-3, VLT-6)

The notifications job (every 15 s) looked for ``documents.notified_at IS NULL`` and the reveal job (every 5 min) for
``documents.reveal_at <= now``, neither indexed: each run read the whole documents table, which grows with the
country (420 million documents a year in France). And the first job took the 5,000 oldest documents not yet told,
documents kept for a consultation (INVISIBLE_PATIENT, told only at two weeks) included: 5,000 of those at once, and
no one was told of anything any more. Now each document's due events are rows of ``document_timers``, written with
the document, indexed by (kind, due time), taken out as the jobs handle them.

The table is filled from the documents still to tell or to reveal (one read of the documents table, which does not
stop the service). Upgrade with the old servers stopped: a document deposited by the old code after the filling
would have no timer, and its patient would not be told of it.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 19:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import carnet.storage.types

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "document_timers",
        sa.Column("document_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("patient_id", sa.String(length=36), nullable=False),
        sa.Column("due_at", carnet.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id", "patient_id"],
            ["documents.id", "documents.patient_id"],
            name=op.f("fk_document_timers_document_id_documents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("document_id", "kind", name=op.f("pk_document_timers")),
    )
    # Due at the deposit: the job puts a document kept for a consultation back to its two weeks when it meets it.
    op.execute(
        "INSERT INTO document_timers (document_id, kind, patient_id, due_at) "
        "SELECT id, 'tell', patient_id, created_at FROM documents WHERE notified_at IS NULL"
    )
    op.execute(
        "INSERT INTO document_timers (document_id, kind, patient_id, due_at) "
        "SELECT id, 'reveal', patient_id, reveal_at FROM documents WHERE reveal_at IS NOT NULL"
    )
    op.create_index("ix_document_timers_due", "document_timers", ["kind", "due_at"])


def downgrade() -> None:
    op.drop_index("ix_document_timers_due", table_name="document_timers")
    op.drop_table("document_timers")
