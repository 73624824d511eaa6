"""VLT-8 / SEC-1: document bodies are encrypted at rest under per-patient keys wrapped by a master key.

Every test runs on SQLite and on PostgreSQL (``services`` fixture).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import stat
import threading
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from carnet.bootstrap import Services
from carnet.hall.actors import Actor, ActorKind
from carnet.people.model.identifiers import nir_from_body
from carnet.people.tables import Patient
from carnet.storage import keyring as keyring_module
from carnet.storage.base import Base
from carnet.storage.blobs import LocalBlobStore
from carnet.storage.db import Database
from carnet.storage.keyring import (
    DataKeyMissing,
    DecryptionError,
    KeyDestroyed,
    Keyring,
    blind_term,
    data_key,
    destroy_data_key,
    master_key_id,
    open_sealed,
    rotate_master_key,
    seal,
)
from carnet.storage.tables import PatientKey
from carnet.vault.model.documents import PATIENT_TYPE_SYSTEM
from carnet.vault.service import documents as vault
from carnet.vault.tables import Document

WORD = "hémoglobine"
PDF = (
    "%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
    "4 0 obj << /Length 88 >> stream\nBT /F1 12 Tf 72 712 Td "
    f"(Compte rendu de biologie : {WORD} glyquée 6,1 %) Tj ET\nendstream endobj\n%%EOF\n"
).encode()
FORBIDDEN_WORDS = [WORD.encode("utf-8"), WORD.encode("latin-1"), b"moglobine", b"%PDF", b"glyqu"]


@pytest.fixture
def master_file(services: Services) -> Path:
    return services.settings.resolved_master_key_file


@pytest.fixture
def keyring(master_file: Path) -> Keyring:
    return Keyring(master_file)


@pytest.fixture
def blobs(services: Services) -> LocalBlobStore:
    return LocalBlobStore(services.settings.resolved_data_dir / "blobs")


def make_patients(services: Services, count: int) -> list[str]:
    ids: list[str] = []
    with services.db.unit_of_work() as db:
        for index in range(count):
            patient = Patient(
                ins=nir_from_body(f"28506750{index:02d}{index + 1:03d}"),
                birth_name="SANTONI",
                first_names="Marie-Ange",
                birth_date=date(1985, 6, 1),
                sex="F",
                birth_place="75056",
            )
            db.add(patient)
            db.flush()
            ids.append(patient.id)
    return ids


def make_keys(services: Services, keyring: Keyring, patient_ids: list[str]) -> dict[str, bytes]:
    with services.db.unit_of_work() as db:
        return {pid: data_key(db, keyring, pid) for pid in patient_ids}


def read_keys(services: Services, keyring: Keyring, patient_ids: list[str]) -> dict[str, bytes]:
    with services.db.unit_of_work() as db:
        return {pid: data_key(db, keyring, pid, create=False) for pid in patient_ids}


def key_rows(services: Services) -> list[PatientKey]:
    with services.db.unit_of_work() as db:
        return list(db.scalars(select(PatientKey).order_by(PatientKey.patient_id)))


def database_dump(services: Services) -> bytes:
    """Every value of every table (what an attacker with only the database sees)."""
    chunks: list[bytes] = []
    with services.db.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in conn.execute(select(table)):
                for value in row:
                    chunks.append(value if isinstance(value, bytes) else str(value).encode("utf-8"))
    return b"\n".join(chunks)


def files_under(folder: Path) -> Iterator[Path]:
    return (path for path in folder.rglob("*") if path.is_file())


def key_encodings(key: bytes) -> list[bytes]:
    return [key, key.hex().encode(), base64.b64encode(key), base64.urlsafe_b64encode(key).rstrip(b"=")]


def store_document(services: Services, keyring: Keyring, blobs: LocalBlobStore, patient_id: str) -> Document:
    """Through the real vault: the patient uploads a PDF (sealed with their key, indexed blindly)."""
    actor = Actor(ActorKind.PATIENT, "compte-patient", "Marie-Ange SANTONI", patient_id=patient_id)
    new = vault.NewDocument(
        patient_id=patient_id,
        type_system=PATIENT_TYPE_SYSTEM,
        type_code="DOCPAT05",
        title="Bilan sanguin",
        mime_type="application/pdf",
        body=PDF,
        filename="bilan.pdf",
    )
    (document,) = vault.deposit_many(services, actor, [new])
    return document


def test_seal_and_open_round_trip_with_a_patient_key(services: Services, keyring: Keyring) -> None:
    (patient,) = make_patients(services, 1)
    with services.db.unit_of_work() as db:
        key = data_key(db, keyring, patient)
    assert len(key) == 32
    with services.db.unit_of_work() as db:
        assert data_key(db, keyring, patient) == key  # created once, then read back
    sealed = seal(key, PDF, b"doc-1")
    assert sealed[0] == 0x01 and len(sealed) == 1 + 12 + len(PDF) + 16
    assert seal(key, PDF, b"doc-1") != sealed  # random nonce
    assert open_sealed(key, sealed, b"doc-1") == PDF
    assert open_sealed(key, seal(key, b"", b"doc-2"), b"doc-2") == b""
    big = secrets.token_bytes(5 * 1024 * 1024)
    assert open_sealed(key, seal(key, big, b"doc-3"), b"doc-3") == big


def test_missing_key_without_create(services: Services, keyring: Keyring) -> None:
    (patient,) = make_patients(services, 1)
    with services.db.unit_of_work() as db, pytest.raises(DataKeyMissing):
        data_key(db, keyring, patient, create=False)
    assert key_rows(services) == []


def test_blind_terms_are_keyed_per_patient(services: Services, keyring: Keyring) -> None:
    one, two = make_keys(services, keyring, make_patients(services, 2)).values()
    term = blind_term(one, "hemoglobin")
    assert len(term) == 24 and int(term, 16) >= 0
    assert blind_term(one, "hemoglobin") == term
    assert blind_term(two, "hemoglobin") != term
    assert blind_term(one, "glyque") != term


def test_no_plaintext_nor_key_in_the_blob_or_the_database(
    services: Services, keyring: Keyring, blobs: LocalBlobStore, master_file: Path
) -> None:
    (patient,) = make_patients(services, 1)
    document = store_document(services, keyring, blobs, patient)
    with services.db.unit_of_work() as db:
        key = data_key(db, keyring, patient)

    raw = blobs.path_of(document.blob_key).read_bytes()
    assert stat.S_IMODE(blobs.path_of(document.blob_key).stat().st_mode) == 0o600
    for word in FORBIDDEN_WORDS:
        assert word not in raw
    assert open_sealed(key, raw, document.id.encode()) == PDF

    dump = database_dump(services)
    assert document.id.encode() in dump and b"Bilan sanguin" in dump  # the dump really holds the rows
    master = base64.b64decode(master_file.read_text())
    for secret in [*FORBIDDEN_WORDS, b"hemoglobin", *key_encodings(key), *key_encodings(master)]:
        assert secret not in dump, secret


def test_the_database_alone_cannot_unwrap_a_data_key(
    services: Services, keyring: Keyring, master_file: Path, tmp_path: Path
) -> None:
    (patient,) = make_patients(services, 1)
    keys = make_keys(services, keyring, [patient])
    (row,) = key_rows(services)
    assert row.wrapped_key is not None and row.master_key_id == master_key_id(base64.b64decode(master_file.read_text()))

    # Without the master key file there is no keyring at all…
    hidden = tmp_path / "ailleurs.key"
    master_file.rename(hidden)
    try:
        with pytest.raises(FileNotFoundError):
            Keyring(master_file)
    finally:
        hidden.rename(master_file)
    # …and another master key (an attacker's own file) does not know the id, nor decrypts the token.
    other_file = tmp_path / "autre" / "master.key"
    other_file.parent.mkdir()
    other_file.write_text(base64.b64encode(secrets.token_bytes(32)).decode())
    with services.db.unit_of_work() as db, pytest.raises(KeyError, match="inconnue"):
        data_key(db, Keyring(other_file), patient)
    with pytest.raises(DecryptionError):
        keyring_module._unwrap_with(secrets.token_bytes(32), row.wrapped_key)
    # the legitimate keyring still works
    assert read_keys(services, keyring, [patient]) == keys


def test_the_blob_folder_alone_decrypts_nothing(
    services: Services, keyring: Keyring, blobs: LocalBlobStore, master_file: Path
) -> None:
    patients = make_patients(services, 2)
    documents = [store_document(services, keyring, blobs, patient) for patient in patients]
    keys = read_keys(services, keyring, patients)
    master = base64.b64decode(master_file.read_text())
    assert not master_file.is_relative_to(blobs.root)

    stolen = {path: path.read_bytes() for path in files_under(blobs.root)}
    assert len(stolen) == 2
    for content in stolen.values():
        for secret in [*FORBIDDEN_WORDS, *key_encodings(master), *(e for k in keys.values() for e in key_encodings(k))]:
            assert secret not in content
    # Whatever an attacker can derive from the folder itself (file names, sizes) is not a key.
    for path, content in stolen.items():
        for guess in (hashlib.sha256(path.name.encode()).digest(), bytes(32), content[1:33].ljust(32, b"\0")):
            for document in documents:
                with pytest.raises(DecryptionError):
                    open_sealed(guess, content, document.id.encode())


def test_a_wrong_aad_or_altered_blob_is_refused(services: Services, keyring: Keyring, blobs: LocalBlobStore) -> None:
    (patient,) = make_patients(services, 1)
    first = store_document(services, keyring, blobs, patient)
    second = store_document(services, keyring, blobs, patient)
    (key,) = read_keys(services, keyring, [patient]).values()
    sealed = blobs.get(first.blob_key)

    assert open_sealed(key, sealed, first.id.encode()) == PDF
    with pytest.raises(DecryptionError):  # blob swapped between two documents of the same patient
        open_sealed(key, sealed, second.id.encode())
    with pytest.raises(DecryptionError):
        open_sealed(key, sealed, b"")
    altered = bytearray(sealed)
    altered[40] ^= 0x01
    with pytest.raises(DecryptionError):
        open_sealed(key, bytes(altered), first.id.encode())
    with pytest.raises(DecryptionError):
        open_sealed(key, b"\x02" + sealed[1:], first.id.encode())
    with pytest.raises(DecryptionError):
        open_sealed(key, sealed[:20], first.id.encode())
    with pytest.raises(DecryptionError):
        open_sealed(secrets.token_bytes(32), sealed, first.id.encode())
    with pytest.raises(DecryptionError):
        open_sealed(key[:16], sealed, first.id.encode())


def test_destroying_the_patient_key_shreds_their_documents(
    services: Services, keyring: Keyring, blobs: LocalBlobStore
) -> None:
    patient, other = make_patients(services, 2)
    document = store_document(services, keyring, blobs, patient)
    store_document(services, keyring, blobs, other)
    key = read_keys(services, keyring, [patient])[patient]
    other_key = read_keys(services, keyring, [other])[other]

    with services.db.unit_of_work() as db:
        destroy_data_key(db, patient)
    for create in (True, False):
        with services.db.unit_of_work() as db, pytest.raises(KeyDestroyed):
            data_key(db, keyring, patient, create=create)
    rows = {row.patient_id: row for row in key_rows(services)}
    assert rows[patient].wrapped_key is None and rows[patient].destroyed_at is not None
    assert len(rows) == 2  # no new key was created for the shredded patient
    # The blob is still there, but nothing anywhere holds the key any more.
    assert blobs.exists(document.blob_key)
    for encoding in key_encodings(key):
        assert encoding not in database_dump(services)
    # The other patient is untouched.
    assert read_keys(services, keyring, [other])[other] == other_key
    # Destroying again is harmless.
    with services.db.unit_of_work() as db:
        destroy_data_key(db, patient)


def test_destroying_a_key_that_never_existed_prevents_its_creation(services: Services, keyring: Keyring) -> None:
    (patient,) = make_patients(services, 1)
    with services.db.unit_of_work() as db:
        destroy_data_key(db, patient)
    with services.db.unit_of_work() as db, pytest.raises(KeyDestroyed):
        data_key(db, keyring, patient)


class RendezvousKeyring(Keyring):
    """Both threads have seen 'no key yet' and wrap a fresh key before either inserts."""

    def __init__(self, path: Path, parties: int) -> None:
        super().__init__(path)
        self.barrier = threading.Barrier(parties, timeout=20)

    def wrap(self, data_key: bytes) -> tuple[str, str]:
        result = super().wrap(data_key)
        self.barrier.wait()
        return result


def race_to_create(services: Services, keyring: Keyring, patient: str) -> list[bytes]:
    """Two threads, each with its own database handle (as two server processes would have), create the
    same patient's key at the same time."""
    results: list[bytes] = []
    errors: list[BaseException] = []

    def create(database: Database) -> None:
        try:
            with database.unit_of_work() as db:
                key = data_key(db, keyring, patient)
            results.append(key)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            database.dispose()

    threads = [threading.Thread(target=create, args=(Database(services.db.url),)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    return results


def test_concurrent_creation_yields_a_single_key(services: Services, master_file: Path) -> None:
    patients = make_patients(services, 3)
    # PostgreSQL: both transactions see « no key yet » and wrap one each (the rendezvous); SQLite: each transaction
    # takes the write lock as it begins (BEGIN IMMEDIATE), so the second waits and finds the first's key.
    parties = 1 if services.db.is_sqlite else 2
    for patient in patients:
        keyring = RendezvousKeyring(master_file, parties=parties)
        results = race_to_create(services, keyring, patient)
        assert len(results) == 2 and results[0] == results[1]
        assert read_keys(services, keyring, [patient])[patient] == results[0]
    with services.db.unit_of_work() as db:
        assert db.scalar(select(func.count()).select_from(PatientKey)) == 3


def test_rotation_rewraps_every_key(services: Services, keyring: Keyring, master_file: Path) -> None:
    patients = make_patients(services, 31)
    before = make_keys(services, keyring, patients[:30])
    with services.db.unit_of_work() as db:
        destroy_data_key(db, patients[30])
    old_text = master_file.read_text()

    assert rotate_master_key(services.db, master_file, batch_size=7) == 30

    new_key = base64.b64decode(master_file.read_text())
    assert master_file.read_text() != old_text
    previous = master_file.with_name(master_file.name + ".previous")
    assert previous.read_text() == old_text
    assert not master_file.with_name(master_file.name + ".next").exists()
    for path in (master_file, previous):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    live = [row for row in key_rows(services) if row.wrapped_key is not None]
    assert len(live) == 30 and {row.master_key_id for row in live} == {master_key_id(new_key)}
    assert read_keys(services, Keyring(master_file), patients[:30]) == before

    # The previous key is no longer needed: the keys unwrap with the new master key alone.
    previous.unlink()
    assert read_keys(services, Keyring(master_file), patients[:30]) == before
    # A second rotation works the same way.
    assert rotate_master_key(services.db, master_file) == 30
    assert previous.read_text() == base64.b64encode(new_key).decode() + "\n"
    assert read_keys(services, Keyring(master_file), patients[:30]) == before


def test_a_keyring_made_before_rotation_keeps_working(services: Services, master_file: Path) -> None:
    running = Keyring(master_file)  # a server started before the rotation
    patients = make_patients(services, 5)
    before = make_keys(services, running, patients[:4])
    old_id = running.current_id

    rotate_master_key(services.db, master_file)

    assert read_keys(services, running, patients[:4]) == before  # unknown id → files re-read
    new_id = master_key_id(base64.b64decode(master_file.read_text()))
    assert new_id != old_id and running.current_id == new_id
    make_keys(services, running, patients[4:])  # new keys are wrapped with the new master key
    assert {row.master_key_id for row in key_rows(services)} == {new_id}


class InjectedFailure(Exception):
    pass


def test_an_interrupted_rotation_finishes_when_run_again(
    services: Services, master_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    running = Keyring(master_file)
    patients = make_patients(services, 31)
    before = make_keys(services, running, patients[:30])
    old_text = master_file.read_text()
    real_batch = keyring_module._rewrap_batch
    calls = {"n": 0}

    def failing_batch(*args: object, **kwargs: object) -> tuple[int, int]:
        calls["n"] += 1
        if calls["n"] == 2:
            raise InjectedFailure("coupure de courant")
        return real_batch(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(keyring_module, "_rewrap_batch", failing_batch)
    with pytest.raises(InjectedFailure):
        rotate_master_key(services.db, master_file, batch_size=10)
    monkeypatch.undo()

    next_file = master_file.with_name(master_file.name + ".next")
    next_text = next_file.read_text()
    next_id = master_key_id(base64.b64decode(next_text))
    assert master_file.read_text() == old_text  # not promoted yet
    ids = [row.master_key_id for row in key_rows(services)]
    assert ids.count(next_id) == 10 and len(ids) == 30
    # Half-way, every key still unwraps, for running servers and newly started ones alike.
    assert read_keys(services, running, patients[:30]) == before
    assert read_keys(services, Keyring(master_file), patients[:30]) == before
    # A server keeps creating keys meanwhile (under the current, old, master key).
    before.update(make_keys(services, running, patients[30:]))

    assert rotate_master_key(services.db, master_file, batch_size=10) == 21

    assert master_file.read_text() == next_text  # the .next key was reused, not regenerated
    assert master_file.with_name(master_file.name + ".previous").read_text() == old_text
    assert not next_file.exists()
    assert {row.master_key_id for row in key_rows(services)} == {next_id}
    assert read_keys(services, running, patients) == before
    assert read_keys(services, Keyring(master_file), patients) == before


def test_a_rotation_interrupted_before_the_file_swap_finishes(services: Services, master_file: Path) -> None:
    keyring = Keyring(master_file)
    patients = make_patients(services, 12)
    before = make_keys(services, keyring, patients)
    old_text = master_file.read_text()
    # The first run generated .next and re-wrapped everything, then stopped before renaming the files.
    new_key = keyring_module._next_key(master_file)
    while keyring_module._rewrap_batch(services.db, Keyring(master_file), new_key, 5)[0]:
        pass
    assert {row.master_key_id for row in key_rows(services)} == {master_key_id(new_key)}
    assert read_keys(services, Keyring(master_file), patients) == before  # served from .next meanwhile

    assert rotate_master_key(services.db, master_file) == 0

    assert base64.b64decode(master_file.read_text()) == new_key
    assert master_file.with_name(master_file.name + ".previous").read_text() == old_text
    assert read_keys(services, keyring, patients) == before


def test_only_one_rotation_at_a_time(services: Services, master_file: Path) -> None:
    with keyring_module._rotation_lock(master_file), pytest.raises(RuntimeError, match="déjà en cours"):
        rotate_master_key(services.db, master_file)


def test_carnet_keys_rotate_command(
    services: Services, keyring: Keyring, master_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from carnet.cli import app

    patients = make_patients(services, 3)
    before = make_keys(services, keyring, patients)
    monkeypatch.setenv("CARNET_DATA_DIR", str(services.settings.resolved_data_dir))
    monkeypatch.setenv("CARNET_DATABASE_URL", services.settings.resolved_database_url)
    monkeypatch.delenv("CARNET_MASTER_KEY_FILE", raising=False)

    result = CliRunner().invoke(app, ["keys", "rotate"])

    assert result.exit_code == 0, result.output
    new_id = master_key_id(base64.b64decode(master_file.read_text()))
    assert "3 clé(s) de patient re-chiffrée(s)" in result.output and new_id in result.output
    assert read_keys(services, keyring, patients) == before
