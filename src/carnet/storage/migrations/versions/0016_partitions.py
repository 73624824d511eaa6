"""PostgreSQL: the tables that grow with every act hash-partitioned by patient, without stopping the service (#18-2)

- ``document_terms`` (the blind search terms: the biggest table, ≈ 75 rows a document), by ``patient_id``;
- ``profile_entries`` (allergies, treatments, measures…), by ``patient_id``;
- ``message_attachments``, by ``patient_id``;
- ``audit_entries`` (the history), by ``chain`` — the patient's id, or ``-`` for events about no patient.

Every per-patient query names the key, so it reads one partition of sixteen. Each primary key gains the partition
key (PostgreSQL wants it in every unique key); a look-up by id alone still walks the primary key's index, one probe a
partition. The rows are copied while the service runs: ``carnet.storage.partitions.rebuild_online``.

SQLite: nothing changes.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 16:00:00
"""

from __future__ import annotations

from alembic import op

from carnet.storage.partitions import rebuild_online

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

# table: (primary key before, partition key)
TABLES = {
    "document_terms": (("document_id", "term"), "patient_id"),
    "profile_entries": (("id",), "patient_id"),
    "message_attachments": (("id",), "patient_id"),
    "audit_entries": (("id",), "chain"),
}


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    with op.get_context().autocommit_block():
        for table, (key, partition_by) in TABLES.items():
            rebuild_online(bind.engine, table, (*key, partition_by), partition_by)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    with op.get_context().autocommit_block():
        for table, (key, _) in TABLES.items():
            rebuild_online(bind.engine, table, key, None)
