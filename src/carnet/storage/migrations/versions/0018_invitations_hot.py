"""invitations: the e-mails to send in a queue of their own; no index on what the sending changes (#18, ENR-2)

Marking an e-mail sent changed ``status``, which two indexes held (``ix_invitations_status`` and the predicate of the
queue's partial index, ``ix_invitations_email_queue``): on PostgreSQL each of the 9.8 million e-mails of
Île-de-France then wrote a new entry into every index of the table, two of them on random keys (the code's hash,
the patient). Now:
- the e-mails still to send are listed in ``invitation_emails`` (one id a row), which the sending walks and empties;
- ``invitations`` keeps indexes on what the sending does not change: the campaign and channel (the letters, the
  counts) and, for the letters claimed, their batch (partial);
- on PostgreSQL the table's new pages are filled to 70 % (``fillfactor``): the e-mail's new row version fits in its
  page, so the update is HOT and writes no index entry at all.

Built without stopping the service: on PostgreSQL the indexes are built and dropped ``CONCURRENTLY``; the queue is
filled from the old partial index before it is dropped. Upgrade with no ``carnet campaign send`` running: an e-mail
sent by the old code after the queue was filled would stay listed (the claims skip it: its status is no longer
pending).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 16:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

QUEUED = sa.text("status = 'pending' AND channel = 'email'")
BATCHED = sa.text("letter_batch IS NOT NULL")
FILLFACTOR = 70


def upgrade() -> None:
    op.create_table(
        "invitation_emails",
        sa.Column("invitation_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["invitation_id"],
            ["invitations.id"],
            name=op.f("fk_invitation_emails_invitation_id_invitations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("invitation_id", name=op.f("pk_invitation_emails")),
    )
    # « sending »: an e-mail claimed on SQLite and not yet marked (a crashed worker's, sent again after its lease)
    op.execute(
        "INSERT INTO invitation_emails (invitation_id) SELECT id FROM invitations "
        "WHERE channel = 'email' AND status IN ('pending', 'sending')"
    )
    if op.get_bind().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            op.create_index(
                "ix_invitations_campaign",
                "invitations",
                ["campaign_id", "channel"],
                postgresql_concurrently=True,
                if_not_exists=True,
            )
            op.create_index(
                "ix_invitations_letter_batch",
                "invitations",
                ["letter_batch"],
                postgresql_where=BATCHED,
                postgresql_concurrently=True,
                if_not_exists=True,
            )
            op.drop_index("ix_invitations_email_queue", table_name="invitations", postgresql_concurrently=True)
            op.drop_index("ix_invitations_status", table_name="invitations", postgresql_concurrently=True)
        op.execute(f"ALTER TABLE invitations SET (fillfactor = {FILLFACTOR})")
    else:
        op.create_index("ix_invitations_campaign", "invitations", ["campaign_id", "channel"])
        op.create_index("ix_invitations_letter_batch", "invitations", ["letter_batch"], sqlite_where=BATCHED)
        op.drop_index("ix_invitations_email_queue", table_name="invitations")
        op.drop_index("ix_invitations_status", table_name="invitations")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE invitations RESET (fillfactor)")
    op.create_index("ix_invitations_status", "invitations", ["status", "campaign_id"])
    op.create_index("ix_invitations_email_queue", "invitations", ["id"], postgresql_where=QUEUED, sqlite_where=QUEUED)
    op.drop_index("ix_invitations_letter_batch", table_name="invitations")
    op.drop_index("ix_invitations_campaign", table_name="invitations")
    op.drop_table("invitation_emails")
