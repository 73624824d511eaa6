"""PostgreSQL: the tables that grow with every act hash-partitioned by patient, without stopping the service (#18-2)

Partitioned by ``patient_id`` into 16 (``carnet.storage.partitions``), rows copied while the service runs:
- ``documents`` with ``document_terms`` (its blind search terms, ≈ 75 rows a document: the biggest table);
- ``message_threads`` with ``messages`` and ``message_attachments``;
- ``profile_entries`` (allergies, treatments, measures…);
- ``audit_entries`` (the history), by ``chain`` — the patient's id, or ``-`` for events about no patient.

PostgreSQL wants the partition key in every unique key, and so in every foreign key to a partitioned table: each
primary key gains it (the id stays first, so a read by id alone still walks that index, one probe a partition), and
the foreign keys between these tables become ``(…_id, patient_id)``, on SQLite too, where a unique index
``(id, patient_id)`` backs them. ``documents.replaces_id`` loses its foreign key (the copy goes in id order; a
replaced document may come after its replacement): the deposit checks it.

SQLite: the foreign keys change (tables rebuilt by batch mode, foreign keys off meanwhile: ``env.py``); nothing is
partitioned.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 16:00:00
"""

from __future__ import annotations

from alembic import op

from carnet.storage.partitions import Rebuild, rebuild_online

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

# (unique index, table): what the composite foreign keys point at
KEYS = [
    ("uq_documents_id_patient", "documents"),
    ("uq_message_threads_id_patient", "message_threads"),
    ("uq_messages_id_patient", "messages"),
]
# (table, foreign key, its columns, referenced table) — before: the first column alone
FOREIGN_KEYS = [
    ("document_terms", "fk_document_terms_document_id_documents", "document_id", "documents"),
    ("messages", "fk_messages_thread_id_message_threads", "thread_id", "message_threads"),
    ("message_attachments", "fk_message_attachments_message_id_messages", "message_id", "messages"),
]
REPLACES = "fk_documents_replaces_id_documents"


def _foreign_key(column: str, referenced: str, composite: bool) -> str:
    if composite:
        return f"FOREIGN KEY ({column}, patient_id) REFERENCES {referenced} (id, patient_id) ON DELETE CASCADE"
    return f"FOREIGN KEY ({column}) REFERENCES {referenced} (id) ON DELETE CASCADE"


def _groups(partitioned: bool) -> list[list[Rebuild]]:
    def key(*columns: str) -> tuple[str, ...]:
        return (*columns, "patient_id") if partitioned else columns

    by = "patient_id" if partitioned else None
    fks = {
        table: {name: _foreign_key(column, referenced, partitioned)} for table, name, column, referenced in FOREIGN_KEYS
    }
    return [
        [
            Rebuild("documents", key("id"), by),
            Rebuild("document_terms", key("document_id", "term"), by, fks["document_terms"]),
        ],
        [
            Rebuild("message_threads", key("id"), by),
            Rebuild("messages", key("id"), by, fks["messages"]),
            Rebuild("message_attachments", key("id"), by, fks["message_attachments"]),
        ],
        [Rebuild("profile_entries", key("id"), by)],
        [Rebuild("audit_entries", ("id", "chain") if partitioned else ("id",), "chain" if partitioned else None)],
    ]


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        for name, table in KEYS:
            op.create_index(name, table, ["id", "patient_id"], unique=True)
        with op.batch_alter_table("documents") as batch:
            batch.drop_constraint(REPLACES, type_="foreignkey")
        for table, name, column, referenced in FOREIGN_KEYS:
            with op.batch_alter_table(table) as batch:
                batch.drop_constraint(name, type_="foreignkey")
                batch.create_foreign_key(
                    name, referenced, [column, "patient_id"], ["id", "patient_id"], ondelete="CASCADE"
                )
        return
    with op.get_context().autocommit_block():
        for name, table in KEYS:
            op.create_index(
                name, table, ["id", "patient_id"], unique=True, postgresql_concurrently=True, if_not_exists=True
            )
        op.execute(f"ALTER TABLE documents DROP CONSTRAINT IF EXISTS {REPLACES}")
        for group in _groups(partitioned=True):
            rebuild_online(bind.engine, group)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        for table, name, column, referenced in reversed(FOREIGN_KEYS):
            with op.batch_alter_table(table) as batch:
                batch.drop_constraint(name, type_="foreignkey")
                batch.create_foreign_key(name, referenced, [column], ["id"], ondelete="CASCADE")
        with op.batch_alter_table("documents") as batch:
            batch.create_foreign_key(REPLACES, "documents", ["replaces_id"], ["id"])
        for name, table in reversed(KEYS):
            op.drop_index(name, table_name=table)
        return
    with op.get_context().autocommit_block():
        for group in _groups(partitioned=False):
            rebuild_online(bind.engine, group)
        for name, _ in reversed(KEYS):
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
        op.execute(
            f"ALTER TABLE documents ADD CONSTRAINT {REPLACES} "
            "FOREIGN KEY (replaces_id) REFERENCES documents (id) NOT VALID"
        )
        op.execute(f"ALTER TABLE documents VALIDATE CONSTRAINT {REPLACES}")
