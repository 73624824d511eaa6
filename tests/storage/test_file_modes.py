"""The data folder is the service's alone (issue #15-6): 0700 folders, 0600 files — the SQLite database and its
journals, keys, blobs, outbox e-mails (login codes, names) — and put back so at start-up when found wider."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

from carnet.bootstrap import build_services
from carnet.mail.outbound import Mail
from tests.conftest import make_settings
from tests.test_cli import carnet


def modes(folder: Path) -> dict[str, int]:
    found = {".": stat.S_IMODE(folder.stat().st_mode)}
    for path in folder.rglob("*"):
        found[str(path.relative_to(folder))] = stat.S_IMODE(path.stat().st_mode)
    return found


def test_everything_carnet_writes_is_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    carnet("demo", data_dir=data)  # database (+ -wal/-shm while open), keys
    services = build_services(make_settings(data, ""))
    services.blobs.put("0123456789abcdef-body", b"sealed bytes")  # a document's body, as the vault stores it
    services.mailer.send(Mail("marie-ange.santoni@exemple.fr", "Votre code de connexion", "Code : 123456"))
    with services.db.unit_of_work() as db:  # the database open: its -wal and -shm files exist
        db.connection()
        seen = modes(data)
    services.db.dispose()
    assert any(name.endswith(".eml") for name in seen) and any(name.endswith("-wal") for name in seen)
    assert any(name.startswith("blobs/") for name in seen) and any(name.startswith("keys/") for name in seen)
    wide = {name: oct(mode) for name, mode in seen.items() if mode & 0o077}
    assert wide == {}


def test_a_folder_left_readable_is_closed_again_at_start_up(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = tmp_path / "data"
    build_services(make_settings(data, "")).db.dispose()
    database = data / "carnet.sqlite3"
    database.chmod(0o644)  # as an older version, a copy or a restore would leave it
    data.chmod(0o755)
    with caplog.at_level(logging.WARNING, logger="carnet"):
        build_services(make_settings(data, "")).db.dispose()
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    assert "carnet.sqlite3" in caplog.text and "resserrés" in caplog.text
