"""Issue #18-4: rotating the master key while deposits run loses nothing — a thread deposits documents (for people
who already have a data key and for new people whose key is created meanwhile) while `carnet keys rotate` runs,
three times in a row; afterwards every document opens, with the running services and with fresh ones, and every
data key is under the newest master key or the one it replaced. On SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import date

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from carnet.bootstrap import Services, build_services
from carnet.cli import app
from carnet.people.model.identifiers import nir_from_body
from carnet.people.tables import Patient
from carnet.storage.keyring import Keyring
from carnet.storage.tables import PatientKey
from tests.backup.conftest import actor_of, deposit, env_of, read_all

ROTATIONS = 3


def new_patient(services: Services, index: int) -> str:
    with services.db.unit_of_work() as db:
        patient = Patient(
            ins=nir_from_body(f"19001750{index % 100:02d}{(index + 1) % 1000:03d}"),
            birth_name="PAOLI",
            first_names="Ghjuvanni",
            birth_date=date(1990, 1, 1),
            sex="M",
            birth_place="2A004",
        )
        db.add(patient)
        db.flush()
        return patient.id


def test_key_rotation_while_deposits_run_loses_nothing(demo: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """#18-4: documents deposited during three successive rotations all open afterwards."""
    monkeypatch.delenv("CARNET_MASTER_KEY_FILE", raising=False)
    doctor = actor_of(demo, "dr.ferracci")
    marie = actor_of(demo, "marie-ange.santoni").patient_id
    assert marie
    stop = threading.Event()
    deposited: dict[str, bytes] = {}
    progress = threading.Semaphore(0)
    errors: list[BaseException] = []

    def keep_depositing() -> None:
        index = 0
        try:
            while not stop.is_set():
                index += 1
                patient = marie if index % 2 else new_patient(demo, index)  # every other one: a new data key
                document_id, body = deposit(demo, doctor, patient, f"Dépôt pendant la rotation {index}")
                deposited[document_id] = body
                progress.release()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
            progress.release()

    depositor = threading.Thread(target=keep_depositing)
    depositor.start()
    outputs = []
    try:
        for _ in range(ROTATIONS):
            assert progress.acquire(timeout=60)  # deposits are running
            result = CliRunner().invoke(app, ["keys", "rotate", "--batch-size", "1"], env=env_of(demo.settings))
            outputs.append(result)
        for _ in range(2):
            assert progress.acquire(timeout=60)  # and went on after the last rotation
    finally:
        stop.set()
        depositor.join(timeout=120)
    assert not errors, errors
    assert all(result.exit_code == 0 for result in outputs), [r.output for r in outputs]
    assert len(deposited) >= ROTATIONS + 2

    keyring = Keyring(demo.settings.resolved_master_key_file)
    with demo.db.unit_of_work() as db:
        used = set(db.scalars(select(PatientKey.master_key_id).where(PatientKey.wrapped_key.is_not(None))))
    assert used <= keyring.known_ids
    bodies = read_all(demo)  # the running services (their keyring was made before the rotations)
    assert all(bodies[document_id] == body for document_id, body in deposited.items())
    fresh = build_services(demo.settings)  # and a process started afterwards
    try:
        assert read_all(fresh) == bodies
    finally:
        fresh.db.dispose()
