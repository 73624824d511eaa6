"""The ``carnet`` command on a real data folder (SQLite) and on the run's PostgreSQL database."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from sqlalchemy import update
from typer.testing import CliRunner

from carnet.hall.tables import AuditEntry
from carnet.storage.db import Database
from tests.conftest import empty_database


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
    empty_database(database.engine)
    database.dispose()
    return database_url


ENGLISH = (
    "Usage",
    "Show this message",
    "Commands",
    "[required]",
    "[default",
    "env var",
    "Error",
    "Try ",
    "for help",
    "Missing",
    "Invalid value",
    "No such",
    "Got unexpected",
    "requires an",
    "Input should",
    "Did you mean",
    "<str>",
    "<int",
    "<float",
    "<bool>",
    "<path>",
    " range>",
)


def english_in(text: str) -> list[str]:
    return [words for words in ENGLISH if words in text]


def test_help_reads_in_french(tmp_path: Path) -> None:
    out = carnet("--help", data_dir=tmp_path).stdout
    for command in ("serve", "migrate", "demo", "audit"):
        assert command in out
    assert "CARNET_DATA_DIR" in out
    assert "Utilisation : " in out and "[OPTIONS] COMMANDE [ARGUMENTS]" in out
    assert "Affiche cette aide et quitte." in out
    assert "Commandes" in out and english_in(out) == []


def command_paths(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        found += command_paths(sub, (*path, name))
    return found


def test_every_commands_help_and_usage_errors_are_in_french() -> None:
    """Issue #15-13: Typer's own words (« Usage », « Show this message and exit », panel titles, type labels,
    « [required] », « [default: …] », usage errors) are French for every command, those of every capability."""
    from carnet.cli import app

    runner = CliRunner()
    paths = command_paths(typer.main.get_command(app))
    assert len(paths) > 20 and ("registry", "import") in paths and ("campaign", "start") in paths
    for path in paths:
        shown = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "100"})
        assert shown.exit_code == 0, (path, shown.output)
        assert "Affiche cette aide et quitte." in shown.output, path
        assert english_in(shown.output) == [], (path, shown.output)
    for args, french in (
        (["campaign", "start"], "Option obligatoire manquante : '--departements'."),
        (["campaign", "start", "--departements", "2A", "--connexions", "0"], "la valeur doit être au moins 1"),
        (["serve", "--port", "x"], "Valeur invalide pour '--port' : un nombre entier est attendu"),
        (["campain"], "Commande inconnue : 'campain'. Vouliez-vous dire : 'campaign' ?"),
        (["demo", "--inconnue"], "Option inconnue : --inconnue."),
        (["registry", "import", "a.csv", "b.csv"], "Argument(s) en trop : b.csv."),
        (["campaign", "start", "--departements"], "L'option '--departements' attend une valeur."),
    ):
        refused = runner.invoke(app, args, env={"COLUMNS": "200"})
        assert refused.exit_code == 2, (args, refused.output)
        assert french in refused.output and "Erreur" in refused.output, (args, refused.output)
        assert english_in(refused.output) == [], (args, refused.output)


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


def test_a_wrong_master_key_file_stops_the_worker_and_the_server_before_anything(tmp_path: Path, url: str) -> None:
    """SEC-1 (#18-3): a missing key file is created with a fresh key on start; a fresh key opens none of the
    patients' keys, so `carnet worker` and `carnet serve` refuse to start, in French, naming the variable."""
    carnet("demo", data_dir=tmp_path, database_url=url)
    key = tmp_path / "keys" / "master.key"
    right = key.read_bytes()
    key.unlink()
    for command in (("worker", "--une-fois"), ("serve", "--port", "1")):
        refused = carnet(*command, data_dir=tmp_path, database_url=url, check=False)
        assert refused.returncode == 1, refused.stdout
        assert "Démarrage refusé" in refused.stderr and "CARNET_MASTER_KEY_FILE" in refused.stderr
    assert key.read_bytes() != right  # the fresh key the start created, refused
    key.write_bytes(right)
    assert carnet("worker", "--une-fois", data_dir=tmp_path, database_url=url).returncode == 0
