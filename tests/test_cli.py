"""The ``carnet`` command on a real data folder (SQLite) and on the run's PostgreSQL database."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text, update

from carnet.hall.tables import AuditEntry
from carnet.schema import metadata
from carnet.storage.db import Database


def carnet(*args: str, data_dir: Path, database_url: str = "", check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CARNET_DATA_DIR": str(data_dir),
        "CARNET_DATABASE_URL": database_url,
        "CARNET_ARGON2_PROFILE": "test",
    }
    result = subprocess.run(
        [sys.executable, "-m", "carnet", *args], env=env, capture_output=True, text=True, timeout=120
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def url(database_url: str) -> str:
    """The run's PostgreSQL database emptied for this test (its data was sealed under another data folder's
    master key), or "" for the SQLite file of the test's own data folder."""
    if not database_url.startswith("postgresql"):
        return ""
    database = Database(database_url)
    tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with database.engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    database.dispose()
    return database_url


def test_help_reads_in_french(tmp_path: Path) -> None:
    out = carnet("--help", data_dir=tmp_path).stdout
    for command in ("serve", "migrate", "demo", "audit"):
        assert command in out
    assert "CARNET_DATA_DIR" in out


def test_demo_is_idempotent_and_prints_the_logins(tmp_path: Path, url: str) -> None:
    first = carnet("demo", data_dir=tmp_path, database_url=url).stdout
    second = carnet("demo", data_dir=tmp_path, database_url=url).stdout
    assert first == second
    assert "marie-ange.santoni" in first and "dr.ferracci" in first
    verify = carnet("audit", "verify", data_dir=tmp_path, database_url=url)
    assert "intègre" in verify.stdout


def test_keys_are_generated_in_the_data_folder_readable_by_the_owner_only(tmp_path: Path) -> None:
    carnet("migrate", data_dir=tmp_path)
    carnet("demo", data_dir=tmp_path)
    key = tmp_path / "keys" / "master.key"
    assert key.exists()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_two_instances_with_different_data_folders_do_not_touch_each_other(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    carnet("demo", data_dir=one)
    carnet("migrate", data_dir=two)
    assert (one / "carnet.sqlite3").exists() and (two / "carnet.sqlite3").exists()
    assert (one / "keys" / "master.key").read_bytes() != (two / "keys" / "master.key").read_bytes()
    assert "0 chaîne" in carnet("audit", "verify", data_dir=two).stdout


def test_audit_verify_fails_loudly_on_a_tampered_log(tmp_path: Path, url: str) -> None:
    carnet("demo", data_dir=tmp_path, database_url=url)
    db = Database(url or f"sqlite:///{tmp_path / 'carnet.sqlite3'}")
    with db.unit_of_work() as session:
        session.execute(update(AuditEntry).values(actor_label="falsifié"))
    db.dispose()
    result = carnet("audit", "verify", data_dir=tmp_path, database_url=url, check=False)
    assert result.returncode == 1
    assert "ALTÉRÉ" in result.stderr
