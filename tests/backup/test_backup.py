"""Issue #18-4: a consistent online backup (database snapshot + the blobs it names + a manifest with the master key's
identifier, never the key) and its restore onto a fresh data folder or an empty database — byte-exact, readable
through the services, the audit log intact; a tampered backup, a wrong key or a non-empty target refused with nothing
written; deposits (and a deletion) during the backup leave no row without its blob. On SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
import os
import stat
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from carnet.backup.service import BackupError, blob_columns, create_backup, restore_backup
from carnet.bootstrap import Services, build_services
from carnet.cli import app
from carnet.config import Settings
from carnet.demo import load_messaging_demo
from carnet.hall.tables import AuditEntry
from carnet.storage.keyring import master_key_id
from carnet.storage.migrate import upgrade
from carnet.vault.model.documents import PATIENT_TYPE_SYSTEM
from carnet.vault.service import documents as vault
from tests.backup.conftest import (
    actor_of,
    blob_hashes,
    deposit,
    document_ids,
    env_of,
    give_keys,
    read_all,
    referenced_blobs,
)
from tests.support.documents import make_pdf


@pytest.fixture
def source(demo: Services) -> Services:
    """The demo instance, with messages and an attachment, and documents of several sizes deposited by the GP."""
    load_messaging_demo(demo)
    doctor = actor_of(demo, "dr.ferracci")
    marie = actor_of(demo, "marie-ange.santoni")
    assert marie.patient_id
    for index, padding in enumerate((0, 2_000, 300_000)):
        deposit(demo, doctor, marie.patient_id, f"Bilan n° {index}", padding)
    return demo


def restored(target: Settings) -> Services:
    return build_services(target)


def nothing_written(target: Settings) -> None:
    """The target is as it was: an empty database, no blob."""
    if target.is_embedded:
        path = Path(target.resolved_database_url.split("///", 1)[1])
        assert not path.exists() or path.stat().st_size == 0
    else:
        from sqlalchemy import create_engine, inspect
        from sqlalchemy.pool import NullPool

        engine = create_engine(
            target.resolved_database_url.replace("postgresql://", "postgresql+psycopg://"), poolclass=NullPool
        )
        try:
            assert inspect(engine).get_table_names() == []
        finally:
            engine.dispose()
    blobs = target.resolved_data_dir / "blobs"
    assert not blobs.exists() or not [p for p in blobs.rglob("*") if p.is_file()]


def test_the_blob_columns_are_found_in_the_schema() -> None:
    """#18-4: every column naming a blob is backed up — found from the schema, so a new one cannot be forgotten."""
    assert {(table, column) for table, _, column in blob_columns()} >= {
        ("documents", "blob_key"),
        ("documents", "preview_blob_key"),
        ("message_attachments", "blob_key"),
    }


def test_backup_then_restore_is_byte_exact_and_the_audit_log_intact(
    source: Services, target: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """#18-4: `carnet backup create` then `carnet backup restore` on a fresh data folder / empty database with the same
    master key: every blob byte-exact (by hash), every document readable through the vault, history kept,
    `carnet audit verify` clean; files 0600, folder 0700; the manifest names the key, never holds it."""
    monkeypatch.delenv("CARNET_MASTER_KEY_FILE", raising=False)
    monkeypatch.delenv("CARNET_SECRET_KEY_FILE", raising=False)
    blobs = referenced_blobs(source)
    assert any(row.startswith("pièce jointe") for row in blobs.values()) and len(blobs) >= 4
    hashes = blob_hashes(source, sorted(blobs))
    bodies = read_all(source)
    with source.db.unit_of_work() as db:
        history = db.scalar(select(func.count()).select_from(AuditEntry))
    folder = tmp_path / "sauvegarde"

    result = CliRunner().invoke(app, ["backup", "create", str(folder)], env=env_of(source.settings))

    assert result.exit_code == 0, result.output
    assert "Sauvegarde écrite dans" in result.stdout and f"{len(blobs)} fichier(s) chiffré(s)" in result.stdout
    assert "Instantané de la base écrit" in result.stderr  # progress on stderr
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for path in folder.rglob("*"):
        assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600), path
    manifest = json.loads((folder / "manifest.json").read_text())
    master = base64.b64decode(source.settings.resolved_master_key_file.read_text())
    assert manifest["master_key_id"] == master_key_id(master)
    assert manifest["database"]["kind"] == ("sqlite" if source.settings.is_embedded else "postgresql")
    key_text = source.settings.resolved_master_key_file.read_text().strip().encode()
    for path in folder.rglob("*"):
        if path.is_file():
            assert key_text not in path.read_bytes() and master not in path.read_bytes(), path

    give_keys(source.settings, target)
    result = CliRunner().invoke(app, ["backup", "restore", str(folder)], env=env_of(target))

    assert result.exit_code == 0, result.output
    assert "Sauvegarde restaurée" in result.stdout and "Journal d'audit intègre" in result.stdout
    again = restored(target)
    try:
        assert referenced_blobs(again) == blobs
        assert blob_hashes(again, sorted(blobs)) == hashes
        with again.db.unit_of_work() as db:
            assert db.scalar(select(func.count()).select_from(AuditEntry)) == history
        assert read_all(again) == bodies
    finally:
        again.db.dispose()
    verify = CliRunner().invoke(app, ["audit", "verify"], env=env_of(target))
    assert verify.exit_code == 0 and "Journal d'audit intègre" in verify.stdout


@pytest.mark.parametrize("altered", ["base", "fichier chiffré", "liste"])
def test_a_tampered_backup_is_refused_and_nothing_is_written(
    source: Services, target: Settings, tmp_path: Path, altered: str
) -> None:
    """#18-4: every file's SHA-256 is checked before anything is written: one altered byte anywhere is refused."""
    folder = tmp_path / "sauvegarde"
    create_backup(source.settings, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    if altered == "base":
        victim = folder / manifest["database"]["file"]
    elif altered == "liste":
        victim = folder / manifest["blobs"]["index"]
    else:
        victim = max(
            (p for p in (folder / "fichiers-chiffres").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size
        )
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    give_keys(source.settings, target)

    result = CliRunner().invoke(app, ["backup", "restore", str(folder)], env=env_of(target))

    assert result.exit_code == 1
    assert "Restauration impossible" in result.stderr and "altérés" in result.stderr
    assert "Rien n'a été écrit" in result.stderr
    nothing_written(target)


def test_a_backup_without_its_manifest_is_refused(source: Services, target: Settings, tmp_path: Path) -> None:
    """#18-4: a folder whose manifest is missing (an interrupted backup) is not a backup."""
    folder = tmp_path / "sauvegarde"
    create_backup(source.settings, folder)
    (folder / "manifest.json").unlink()
    give_keys(source.settings, target)
    with pytest.raises(BackupError, match=r"manifest\.json absent"):
        restore_backup(target, folder)
    nothing_written(target)


def test_a_wrong_master_key_is_refused(source: Services, target: Settings, tmp_path: Path) -> None:
    """#18-4: the configured master key must be the backup's (its identifier is in the manifest)."""
    folder = tmp_path / "sauvegarde"
    create_backup(source.settings, folder)
    give_keys(source.settings, target)
    target.resolved_master_key_file.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")

    result = CliRunner().invoke(app, ["backup", "restore", str(folder)], env=env_of(target))

    assert result.exit_code == 1
    assert "Clé maîtresse différente" in result.stderr and "Rien n'a été écrit" in result.stderr
    nothing_written(target)


def test_a_missing_key_file_is_refused_and_not_created(source: Services, target: Settings, tmp_path: Path) -> None:
    """#18-4: without the key files the restore stops (it never makes new keys the backup could not use)."""
    folder = tmp_path / "sauvegarde"
    create_backup(source.settings, folder)
    with pytest.raises(BackupError, match="Clé maîtresse introuvable"):
        restore_backup(target, folder)
    assert not target.resolved_master_key_file.exists()
    nothing_written(target)


def test_the_key_a_rotation_replaced_still_restores(source: Services, target: Settings, tmp_path: Path) -> None:
    """#18-4: after `carnet keys rotate`, the new key file with its `.previous` still restores an older backup."""
    from carnet.maintenance import rotate_master_key

    folder = tmp_path / "sauvegarde"
    create_backup(source.settings, folder)
    bodies = read_all(source)
    rotate_master_key(source.settings)
    give_keys(source.settings, target)  # master.key (new) and master.key.previous (the backup's)

    report = restore_backup(target, folder)

    assert report.audit_breaks == () and report.blobs >= 4
    again = restored(target)
    try:
        assert read_all(again) == bodies
    finally:
        again.db.dispose()


def test_a_non_empty_database_is_refused(source: Services, target: Settings, tmp_path: Path) -> None:
    """#18-4: the restore goes into an empty database only (one `carnet migrate` already makes it non-empty)."""
    folder = tmp_path / "sauvegarde"
    create_backup(source.settings, folder)
    give_keys(source.settings, target)
    upgrade(target.resolved_database_url)

    result = CliRunner().invoke(app, ["backup", "restore", str(folder)], env=env_of(target))

    assert result.exit_code == 1
    assert "n'est pas vide" in result.stderr and "Rien n'a été écrit" in result.stderr
    assert not (target.resolved_data_dir / "blobs").exists()


def test_a_non_empty_blob_store_is_refused(source: Services, target: Settings, tmp_path: Path) -> None:
    """#18-4: the blob store must be empty too."""
    folder = tmp_path / "sauvegarde"
    create_backup(source.settings, folder)
    give_keys(source.settings, target)
    services = build_services(target)
    services.blobs.put("autre-fichier-0000000", b"ancien contenu")
    services.db.dispose()

    with pytest.raises(BackupError, match="stockage des fichiers chiffrés configuré n'est pas vide"):
        restore_backup(target, folder)
    assert [p.name for p in (target.resolved_data_dir / "blobs").rglob("*") if p.is_file()] == ["autre-fichier-0000000"]


def test_a_backup_goes_only_into_a_new_or_empty_folder(source: Services, tmp_path: Path) -> None:
    """#18-4: an existing backup (or anything else) is never overwritten."""
    folder = tmp_path / "sauvegarde"
    folder.mkdir()
    (folder / "notes.txt").write_text("à garder")
    result = CliRunner().invoke(app, ["backup", "create", str(folder)], env=env_of(source.settings))
    assert result.exit_code == 1 and "n'est pas vide" in result.stderr
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]


def test_deposits_during_the_backup_leave_a_consistent_restore(
    source: Services, target: Settings, tmp_path: Path
) -> None:
    """#18-4: documents deposited while the backup runs — some between the snapshot and the copy of the blobs —
    never leave a restored row without its blob: every restored document opens."""
    doctor = actor_of(source, "dr.ferracci")
    patient = actor_of(source, "pierre-paul.luciani").patient_id
    assert patient
    stop = threading.Event()
    deposited: list[tuple[str, bytes]] = []
    more = threading.Semaphore(0)
    errors: list[BaseException] = []

    def keep_depositing() -> None:
        try:
            while not stop.is_set():
                deposited.append(deposit(source, doctor, patient, f"Dépôt concurrent {len(deposited)}", 5_000))
                more.release()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
            more.release()

    def during(message: str) -> None:
        if message.startswith("Instantané"):  # the snapshot is taken; the blobs are not copied yet
            for _ in range(3):
                assert more.acquire(timeout=60)

    depositor = threading.Thread(target=keep_depositing)
    depositor.start()
    assert more.acquire(timeout=60)
    try:
        report = create_backup(source.settings, tmp_path / "sauvegarde", progress=during)
    finally:
        stop.set()
        depositor.join(timeout=120)
    assert not errors, errors
    give_keys(source.settings, target)
    restore = restore_backup(target, tmp_path / "sauvegarde")

    assert restore.audit_breaks == () and restore.blobs == report.blobs
    again = restored(target)
    try:
        names = referenced_blobs(again)
        assert all(again.blobs.exists(key) for key in names), "une ligne restaurée sans son fichier chiffré"
        bodies = read_all(again)
    finally:
        again.db.dispose()
    everything = read_all(source)
    assert set(bodies) < set(everything)  # some deposits came after the snapshot: not in the backup
    assert all(everything[document_id] == body for document_id, body in bodies.items())
    assert any(document_id in bodies for document_id, _ in deposited)  # some came before it


def test_a_document_deleted_during_the_backup_is_said_and_left_out(
    source: Services, target: Settings, tmp_path: Path
) -> None:
    """#18-4: a document deleted (row, then blob) after the snapshot was taken: a new snapshot is taken, the report
    names the row, and the restored instance has neither the row nor a missing blob."""
    marie = actor_of(source, "marie-ange.santoni")
    assert marie.patient_id
    (own,) = vault.deposit_many(
        source,
        marie,
        [
            vault.NewDocument(
                marie.patient_id, PATIENT_TYPE_SYSTEM, "DOCPAT05", "Ordonnance", "application/pdf", make_pdf("x")
            )
        ],
    )
    deleted: list[str] = []

    def during(message: str) -> None:
        if message.startswith("Instantané") and not deleted:
            vault.delete_documents(source, marie, [own.id])
            deleted.append(own.id)

    report = create_backup(source.settings, tmp_path / "sauvegarde", progress=during)

    assert report.attempts == 2
    assert len(report.deleted_meanwhile) == 1 and f"ligne {own.id}" in report.deleted_meanwhile[0]
    give_keys(source.settings, target)
    restore_backup(target, tmp_path / "sauvegarde")
    again = restored(target)
    try:
        assert own.id not in document_ids(again)
        assert all(again.blobs.exists(key) for key in referenced_blobs(again))
        assert read_all(again) == read_all(source)
    finally:
        again.db.dispose()


def test_a_blob_lost_before_the_backup_is_refused_by_name(source: Services, tmp_path: Path) -> None:
    """#18-4: a row whose blob is missing while the row still exists (a loss, not a deletion) is never backed up as
    if nothing happened: the backup is refused, naming the row, and the folder is left empty."""
    blobs = referenced_blobs(source)
    key, row = next((k, r) for k, r in sorted(blobs.items()) if r.startswith("document"))
    source.blobs.delete(key)
    folder = tmp_path / "sauvegarde"

    result = CliRunner().invoke(app, ["backup", "create", str(folder)], env=env_of(source.settings))

    assert result.exit_code == 1
    assert "Sauvegarde impossible" in result.stderr and key in result.stderr and row.split()[1] in result.stderr
    assert list(folder.iterdir()) == []
