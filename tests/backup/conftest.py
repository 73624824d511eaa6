"""A fresh target for restores — a new data folder with its own SQLite file, or a new empty PostgreSQL database
(created here, dropped at the end) — and the helpers of the backup tests."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from carnet.bootstrap import Services
from carnet.config import Settings
from carnet.hall.actors import Actor
from carnet.identity.service import auth
from carnet.messaging.tables import Attachment
from carnet.people.tables import Account
from carnet.vault.model.documents import LOINC
from carnet.vault.service import documents as vault
from carnet.vault.tables import Document
from tests.conftest import make_settings
from tests.support.databases import another_database
from tests.support.documents import make_pdf


@pytest.fixture
def target(tmp_path: Path, database_url: str) -> Iterator[Settings]:
    """Where a restore goes: an empty data folder, and an empty database of the same kind as the source."""
    folder = tmp_path / "restauree"
    with another_database(database_url, folder / "carnet.sqlite3", "carnet_restore") as url:
        yield make_settings(folder, url)


def give_keys(source: Settings, target: Settings) -> None:
    """The operator brings the instance's key files (kept apart from the backup) to the new data folder."""
    keys = target.resolved_data_dir / "keys"
    keys.mkdir(parents=True, mode=0o700)
    target.resolved_data_dir.chmod(0o700)
    for path in source.resolved_master_key_file.parent.iterdir():
        shutil.copy2(path, keys / path.name)


def env_of(settings: Settings) -> dict[str, str]:
    return {
        "CARNET_DATA_DIR": str(settings.resolved_data_dir),
        "CARNET_DATABASE_URL": settings.resolved_database_url,
        "CARNET_ARGON2_PROFILE": "test",
    }


def actor_of(services: Services, login: str) -> Actor:
    with services.db.unit_of_work() as db:
        account = db.scalar(select(Account).where(Account.login == login))
        assert account is not None
        return auth.actor_for(db, account)


def deposit(services: Services, actor: Actor, patient_id: str, text: str, padding: int = 0) -> tuple[str, bytes]:
    """One document deposited through the vault service; (its id, its body)."""
    body = make_pdf(text, padding)
    (document,) = vault.deposit_many(
        services, actor, [vault.NewDocument(patient_id, LOINC, "11502-2", "Bilan sanguin", "application/pdf", body)]
    )
    return document.id, body


def referenced_blobs(services: Services) -> dict[str, str]:
    """Every blob key a row names → the row (documents' bodies and previews, messages' attachments)."""
    found: dict[str, str] = {}
    with services.db.unit_of_work() as db:
        for document in db.scalars(select(Document)):
            for key in (document.blob_key, document.preview_blob_key):
                if key:
                    found[key] = f"document {document.id}"
        for attachment in db.scalars(select(Attachment)):
            found[attachment.blob_key] = f"pièce jointe {attachment.id}"
    return found


def blob_hashes(services: Services, keys: list[str]) -> dict[str, str]:
    return {key: hashlib.sha256(services.blobs.get(key)).hexdigest() for key in keys}


def document_ids(services: Services) -> set[str]:
    with services.db.unit_of_work() as db:
        return set(db.scalars(select(Document.id)))


def read_all(services: Services) -> dict[str, bytes]:
    """Every document's clear body, read through the vault service."""
    bodies = {}
    with services.db.unit_of_work() as db:
        for document_id in db.scalars(select(Document.id)):
            bodies[document_id] = vault.read(services, db, Actor.system(), document_id)[1]
    return bodies
