"""Importing a person's archive into another Carnet (ENR-7, item 5): a round trip — a space with documents of every
kind, folders, profile entries, appointments, messages and attachments, exported, then imported into a fresh
instance (its own database, data folder and master key), then exported again — gives everything back, byte-exact;
the history comes along as imported entries in front of the new chain; a tampered archive is refused naming the
file and changes nothing; an INS the instance already has is refused; the person gets an activation code by e-mail,
without health content, and activates their moved space."""

from __future__ import annotations

import re
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from carnet.bootstrap import Services, build_services, operator_actor
from carnet.cli import app as cli_app
from carnet.enrolment.service import activation
from carnet.export.model.archive import ArchiveError
from carnet.export.model.restoring import RestoreError
from carnet.export.service import build, importing, requests
from carnet.hall.actors import Actor, ActorKind
from carnet.hall.tables import AuditEntry
from carnet.history import service as history
from carnet.people.tables import Account, Patient
from carnet.vault.tables import Document
from tests.conftest import last_code_for, make_settings, outbox_messages
from tests.export.test_exported_resources import Space, actor_of, everything
from tests.support.actors import PATIENT, Feeders
from tests.support.databases import another_database
from tests.support.documents import document_entry, make_pdf, provide_bundle

pytestmark = pytest.mark.usefixtures("demo")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
COMPARED = (
    "DocumentReference",
    "List",
    "Observation",
    "AllergyIntolerance",
    "Condition",
    "FamilyMemberHistory",
    "MedicationStatement",
    "Immunization",
    "Appointment",
    "Communication",
)


@pytest.fixture
def fresh(tmp_path: Path, database_url: str) -> Iterator[Services]:
    """Another Carnet: its own database (same kind as the first), data folder and master key."""
    from carnet.storage.migrate import upgrade

    with another_database(database_url, tmp_path / "autre.sqlite3") as url:
        upgrade(url)
        services = build_services(make_settings(tmp_path / "autre", url))
        yield services
        services.db.dispose()


def archive_of(services: Services, actor: Actor, folder: Path) -> Path:
    """The space's archive as the person downloads it, saved as a file."""
    assert actor.patient_id
    asked, _ = requests.request(services, actor, actor.patient_id)
    build.run(services)
    requests.send_code(services, actor, actor.patient_id)
    code = last_code_for(services, f"{PATIENT}@exemple.fr")
    downloaded = requests.download(services, actor, actor.patient_id, asked.id, code)
    path = folder / "archive.zip"
    path.write_bytes(b"".join(downloaded.chunks))
    return path


def normalised(value: Any) -> Any:
    """A resource with what differs between two instances taken out: ids, references, versions, the archive's
    facts and the hashes computed when read (compared through the files instead)."""
    if isinstance(value, dict):
        return {
            k: normalised(v)
            for k, v in value.items()
            if k not in {"id", "meta", "reference", "hash"}
            and not (k == "url" and isinstance(v, str) and "archive-facts" in v)
        }
    if isinstance(value, list):
        return [normalised(v) for v in value if not (isinstance(v, dict) and "archive-facts" in str(v.get("url")))]
    if isinstance(value, str):
        return UUID.sub("<id>", value)
    return value


def contents(services: Services, actor: Actor) -> tuple[dict[str, list[Any]], dict[str, bytes]]:
    """What an export of the space holds, resources by type (normalised, in order) and files by name."""
    resources: dict[str, list[Any]] = {kind: [] for kind in COMPARED}
    files: dict[str, bytes] = {}
    assert actor.patient_id
    for item in everything(services, actor, actor.patient_id):
        for file in item.files:
            files[UUID.sub("<id>", file.path)] = file.read()
        kind = item.resource["resourceType"]
        if kind in resources:
            resources[kind].append(normalised(item.resource))
    return resources, files


def test_a_space_exported_then_imported_into_another_carnet_comes_back_whole(
    demo: Services, fresh: Services, space: Space, tmp_path: Path
) -> None:
    before, before_files = contents(demo, space.marie)
    path = archive_of(demo, space.marie, tmp_path)
    imported = importing.import_archive(fresh, operator_actor(), path)

    moved = Actor(ActorKind.PATIENT, None, "Marie-Ange SANTONI", patient_id=imported.patient_id)
    after, after_files = contents(fresh, moved)
    assert after_files == before_files and len(before_files) >= 4  # every file, byte-exact
    for kind in COMPARED:
        assert after[kind] == before[kind], kind
    assert before["DocumentReference"] and before["Observation"] and before["Appointment"]
    assert before["Communication"] and before["List"]
    assert imported.counts["documents"] == len(before["DocumentReference"])
    assert imported.counts["messages"] == len(before["Communication"])

    with fresh.db.unit_of_work() as db:
        patient = db.get(Patient, imported.patient_id)
        assert patient is not None and patient.ins == imported.ins and patient.status == "active"
        sealed = db.scalars(select(Document.blob_key).where(Document.patient_id == imported.patient_id)).all()
        entries = db.scalars(
            select(AuditEntry).where(AuditEntry.chain == imported.patient_id).order_by(AuditEntry.seq)
        ).all()
    for key in sealed:  # sealed with the new instance's key: the original bytes are nowhere in clear
        assert all(body not in fresh.blobs.get(key) for body in before_files.values())
    kinds = [entry.action for entry in entries]
    first_own = kinds.index("space.import")
    assert first_own == imported.counts["historique"] > 0
    assert set(kinds[:first_own]) == {"history.imported"}  # the old history, in front of the new chain
    lines = [history.describe(entry, moved) for entry in entries[:first_own]]
    assert all("entrée importée d'un autre service Carnet" in line.what for line in lines)
    assert any("Dr" in line.who for line in lines)


def test_the_moved_person_gets_a_code_without_health_content_and_activates_their_space(
    demo: Services, fresh: Services, space: Space, tmp_path: Path
) -> None:
    path = archive_of(demo, space.marie, tmp_path)
    imported = importing.import_archive(fresh, operator_actor(), path)
    assert imported.code_sent_by == "email"
    (mail,) = outbox_messages(fresh)
    text = mail.get_body(preferencelist=("plain",)).get_content()  # type: ignore[attr-defined]
    assert "transféré" in text and "Bilan" not in text and "diab" not in text.lower()
    code = re.search(r"code : (\S+)", text)
    assert code
    with fresh.db.unit_of_work() as db:
        patient = db.get(Patient, imported.patient_id)
        assert patient is not None
        nir, born = patient.ins, patient.birth_date
    state = activation.check_identity(fresh, code.group(1), born, nir, "")
    state = activation.send_contact_code(fresh, state, "marie-ange@ailleurs.fr")
    state = activation.check_contact_code(fresh, state, last_code_for(fresh, "marie-ange@ailleurs.fr"))
    login = activation.create_account(fresh, state, "marie-ange.s", "Un-Mot-De-Passe-2026!", "Un-Mot-De-Passe-2026!")
    with fresh.db.unit_of_work() as db:
        account = db.scalar(select(Account).where(Account.login == login))
        assert account is not None and account.patient_id == imported.patient_id


def tampered(path: Path, target: str, folder: Path) -> Path:
    """The archive with one byte of ``target`` (a path starting with it) changed."""
    changed = folder / "modifiee.zip"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(changed, "w") as copy:
        for info in source.infolist():
            body = source.read(info)
            if info.filename.startswith(f"carnet-export/{target}") and target:
                body = bytes([body[0] ^ 1]) + body[1:]
            copy.writestr(info, body)
    return changed


def nothing_in(services: Services) -> None:
    with services.db.unit_of_work() as db:
        assert db.scalar(select(func.count()).select_from(Patient)) == 0
        assert db.scalar(select(func.count()).select_from(Document)) == 0
    blobs = services.settings.resolved_data_dir / "blobs"
    assert not blobs.exists() or not any(p.is_file() for p in blobs.rglob("*"))


@pytest.mark.parametrize("target", ["documents/", "messages/", "bundle.json"])
def test_a_tampered_archive_is_refused_naming_the_file_and_nothing_changes(
    demo: Services, fresh: Services, space: Space, tmp_path: Path, target: str
) -> None:
    changed = tampered(archive_of(demo, space.marie, tmp_path), target, tmp_path)
    with pytest.raises(ArchiveError) as refused:
        importing.import_archive(fresh, operator_actor(), changed)
    assert target in refused.value.message and "empreinte" in refused.value.message
    nothing_in(fresh)


def test_a_file_added_or_removed_and_a_file_that_is_no_zip_are_refused(
    demo: Services, fresh: Services, space: Space, tmp_path: Path
) -> None:
    path = archive_of(demo, space.marie, tmp_path)
    added = tmp_path / "ajout.zip"
    shutil.copy(path, added)
    with zipfile.ZipFile(added, "a") as zipped:
        zipped.writestr("carnet-export/documents/intrus.pdf", b"%PDF-1.4 intrus")
    with pytest.raises(ArchiveError, match=r"intrus\.pdf"):
        importing.import_archive(fresh, operator_actor(), added)
    removed = tmp_path / "retrait.zip"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(removed, "w") as copy:
        names = [i for i in source.infolist() if i.filename.startswith("carnet-export/documents/")]
        for info in source.infolist():
            if info is not names[0]:
                copy.writestr(info, source.read(info))
    with pytest.raises(ArchiveError, match="absent de l'archive"):
        importing.import_archive(fresh, operator_actor(), removed)
    not_zip = tmp_path / "pas-un-zip.zip"
    not_zip.write_bytes(b"bonjour")
    with pytest.raises(ArchiveError, match="ZIP"):
        importing.import_archive(fresh, operator_actor(), not_zip)
    nothing_in(fresh)


def test_an_ins_the_instance_already_has_is_refused(demo: Services, space: Space, tmp_path: Path) -> None:
    path = archive_of(demo, space.marie, tmp_path)
    with demo.db.unit_of_work() as db:
        documents = db.scalar(select(func.count()).select_from(Document))
    with pytest.raises(RestoreError, match="existe déjà"):
        importing.import_archive(demo, operator_actor(), path)
    with demo.db.unit_of_work() as db:
        assert db.scalar(select(func.count()).select_from(Document)) == documents


def test_the_command_imports_and_explains_a_refusal_in_french(
    demo: Services, fresh: Services, space: Space, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = archive_of(demo, space.marie, tmp_path)
    settings = fresh.settings
    monkeypatch.setenv("CARNET_DATA_DIR", str(settings.resolved_data_dir))
    monkeypatch.setenv("CARNET_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("CARNET_SMTP_URL", "outbox:")
    monkeypatch.setenv("CARNET_ARGON2_PROFILE", "test")
    runner = CliRunner()
    refused = runner.invoke(cli_app, ["spaces", "import", str(tampered(path, "documents/", tmp_path))])
    assert refused.exit_code == 1 and "Rien n'a été importé" in refused.output and "empreinte" in refused.output
    done = runner.invoke(cli_app, ["spaces", "import", str(path)])
    assert done.exit_code == 0, done.output
    assert "Espace recréé pour l'INS" in done.output and "par e-mail" in done.output


def test_a_document_deposited_over_mhd_comes_back_as_it_was_sent(
    demo: Services, fresh: Services, feeders: Feeders, tmp_path: Path
) -> None:
    body = make_pdf("compte rendu")
    bundle = provide_bundle(document_entry(feeders.ins, body, title="Compte rendu de biologie"))
    sent = feeders.client.post("/fhir", json=bundle, headers={**feeders.lab, "Content-Type": "application/fhir+json"})
    assert sent.status_code == 200, sent.text
    marie = actor_of(demo, PATIENT)
    before, before_files = contents(demo, marie)
    imported = importing.import_archive(fresh, operator_actor(), archive_of(demo, marie, tmp_path))
    moved = Actor(ActorKind.PATIENT, None, "Marie-Ange SANTONI", patient_id=imported.patient_id)
    after, after_files = contents(fresh, moved)
    assert after["DocumentReference"] == before["DocumentReference"] and len(before["DocumentReference"]) == 1
    assert before["DocumentReference"][0]["masterIdentifier"]  # as sent, kept
    assert after_files == before_files
    with fresh.db.unit_of_work() as db:
        kept = db.scalar(select(Document.metadata_sealed).where(Document.patient_id == imported.patient_id))
    assert kept is not None  # MHD gives it back as sent on the new instance too
