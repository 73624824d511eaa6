"""The schema comes from Alembic migrations, on SQLite and PostgreSQL, and matches the models."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, insert, inspect, select, text

from carnet.enrolment.tables import Campaign, Invitation
from carnet.people.model.identifiers import nir_from_body
from carnet.people.tables import Patient
from carnet.schema import metadata
from carnet.storage.db import make_engine
from carnet.storage.migrate import downgrade, upgrade
from carnet.storage.partitions import in_models, in_models_object
from carnet.vault.tables import Document
from tests.support.databases import another_database


def test_migrations_create_exactly_the_models_schema(database_url: str) -> None:
    engine = make_engine(database_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_name": in_models, "include_object": in_models_object}
        )
        differences = compare_metadata(context, metadata)
        tables = set(inspect(connection).get_table_names())
    engine.dispose()
    assert differences == []
    assert {"patients", "accounts", "audit_entries", "audit_heads", "alembic_version"} <= tables


def test_migrations_go_down_and_up_again(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/roundtrip.sqlite3"
    upgrade(url)
    downgrade(url, "base")
    engine = make_engine(url)
    with engine.connect() as connection:
        assert set(inspect(connection).get_table_names()) == {"alembic_version"}
    engine.dispose()
    upgrade(url)


def test_the_partial_indexes_have_the_models_predicates(database_url: str) -> None:
    """compare_metadata compares index names and columns, not their WHERE: the import's look-ups of the registry's
    waiting children rely on it (#18, migration 0017), and the letters' batches (0018)."""
    engine = make_engine(database_url)
    query = (
        "SELECT indexdef FROM pg_indexes WHERE indexname = :name"
        if engine.dialect.name == "postgresql"
        else "SELECT sql FROM sqlite_master WHERE name = :name"
    )
    checked = set()
    with engine.connect() as connection:
        for index in (*metadata.tables["patients"].indexes, *metadata.tables["invitations"].indexes):
            where = index.dialect_options[engine.dialect.name]["where"]
            if where is None:
                continue
            definition = connection.execute(text(query), {"name": index.name}).scalar_one()
            assert _bare(definition).endswith("WHERE" + _bare(str(where))), index.name
            checked.add(index.name)
    engine.dispose()
    assert checked == {"ix_patients_attached_to_id", "ix_patients_awaiting_parent", "ix_invitations_letter_batch"}


def _bare(sql: str) -> str:
    return "".join(character for character in sql.upper() if character not in "() \n")


def test_0018_lists_the_emails_still_to_send_in_their_queue(database_url: str, tmp_path: Path) -> None:
    """#18: an invitation e-mail queued (or claimed, on SQLite) before the upgrade is in ``invitation_emails`` after
    it; one sent, or a letter, is not. The downgrade keeps every invitation."""
    with another_database(database_url, tmp_path / "0017.sqlite3") as url:
        upgrade(url, "0017")
        engine = make_engine(url)
        now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
        states = {"a": ("email", "pending"), "b": ("email", "sending"), "c": ("email", "sent")}
        states["d"] = ("letter", "pending")
        with engine.begin() as connection:
            connection.execute(  # by its columns of then (the model has more now)
                text("INSERT INTO campaigns (id, departements, started_at, started_by) VALUES ('c1', '[]', :at, 'op')"),
                {"at": now},
            )
            for number, (key, (channel, status)) in enumerate(states.items()):
                person = add_patient(connection, number)
                connection.execute(
                    insert(Invitation).values(
                        id=f"i-{key}",
                        patient_id=person,
                        campaign_id="c1",
                        channel=channel,
                        status=status,
                        code_hash=key,
                        code_sealed="x",
                        code_expires_at=now,
                        attempts=0,
                    )
                )
        engine.dispose()

        upgrade(url)
        engine = make_engine(url)
        with engine.connect() as connection:
            queued = set(connection.scalars(text("SELECT invitation_id FROM invitation_emails")))
        engine.dispose()
        assert queued == {"i-a", "i-b"}

        downgrade(url, "0017")
        engine = make_engine(url)
        with engine.connect() as connection:
            kept = dict(connection.execute(text("SELECT id, status FROM invitations")).all())
        engine.dispose()
        assert kept == {f"i-{key}": status for key, (_, status) in states.items()}


def test_0019_lists_what_is_still_due_for_the_documents(database_url: str, tmp_path: Path) -> None:
    """#18, TRC-3, VLT-6: after the upgrade, the documents whose patient is not yet told have a ``tell`` timer, those
    kept for a consultation not yet revealed a ``reveal`` timer at their reveal; the others none."""
    with another_database(database_url, tmp_path / "0018.sqlite3") as url:
        upgrade(url, "0018")
        engine = make_engine(url)
        deposit = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
        reveal = datetime(2026, 12, 31, 9, 0, tzinfo=UTC)
        documents = {  # id: (notified_at, reveal_at, labels)
            "told": (deposit, None, []),
            "untold": (None, None, []),
            "kept": (None, reveal, ["INVISIBLE_PATIENT"]),
            "kept-told": (deposit, reveal, ["INVISIBLE_PATIENT"]),
            "revealed": (deposit, None, []),
        }
        with engine.begin() as connection:
            person = add_patient(connection, 0)
            for key, (notified, reveal_at, labels) in documents.items():
                connection.execute(
                    insert(Document).values(
                        id=key,
                        patient_id=person,
                        category="bio",
                        type_system="http://loinc.org",
                        type_code="11502-2",
                        type_display="CR de biologie",
                        title=key,
                        mime_type="application/pdf",
                        size=1,
                        body_mac="m",
                        blob_key=f"{key}b",
                        confidentiality=labels,
                        source="professional",
                        author_kind="establishment",
                        author_label="Laboratoire",
                        document_date=deposit,
                        created_at=deposit,
                        notified_at=notified,
                        reveal_at=reveal_at,
                    )
                )
        engine.dispose()

        upgrade(url)
        engine = make_engine(url)
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT document_id, kind, due_at FROM document_timers")).all()
        engine.dispose()
        due = {(key, kind): at if isinstance(at, datetime) else datetime.fromisoformat(at) for key, kind, at in rows}
        assert {key: at.replace(tzinfo=at.tzinfo or UTC) for key, at in due.items()} == {
            ("untold", "tell"): deposit,
            ("kept", "tell"): deposit,  # the job puts it back to its two weeks when it meets it
            ("kept", "reveal"): reveal,
            ("kept-told", "reveal"): reveal,
        }
        downgrade(url, "0018")
        engine = make_engine(url)
        with engine.connect() as connection:
            assert "document_timers" not in inspect(connection).get_table_names()
            assert connection.scalar(text("SELECT count(*) FROM documents")) == len(documents)
        engine.dispose()


def test_0020_makes_every_campaign_due_for_the_space_opening_walk(database_url: str, tmp_path: Path) -> None:
    """#18, ENR-3: after the upgrade each existing campaign is due at once (its start), its walk not begun."""
    with another_database(database_url, tmp_path / "0019.sqlite3") as url:
        upgrade(url, "0019")
        engine = make_engine(url)
        started = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)
        with engine.begin() as connection:
            connection.execute(
                text("INSERT INTO campaigns (id, departements, started_at, started_by) VALUES ('c1', '[]', :at, 'op')"),
                {"at": started},
            )
        engine.dispose()
        upgrade(url)
        engine = make_engine(url)
        with engine.connect() as connection:
            row = connection.execute(
                select(Campaign.opening_due_at, Campaign.opening_cursor, Campaign.opening_next_at)
            ).one()
        engine.dispose()
        assert tuple(row) == (started, "", None)
        downgrade(url, "0019")


def add_patient(connection: Connection, number: int) -> str:
    patient_id = f"p-{number}"
    connection.execute(
        insert(Patient).values(
            id=patient_id,
            ins=nir_from_body(f"285032A004{number:03d}"),
            ins_oid="1.2.250.1.213.1.4.8",
            birth_name="NOM",
            first_names="Anna",
            birth_date=date(1985, 3, 14),
            sex="F",
            birth_place="2A004",
            status="registered",
        )
    )
    return patient_id
