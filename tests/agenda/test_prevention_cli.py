"""``carnet prevention``: the engine on the command line (issue #11, point 3) — the table, the JSON list, and a
French message with exit code 2 on bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from carnet.cli import app

runner = CliRunner()


def prevention(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["prevention", *args])
    return result.exit_code, result.stdout, result.stderr


def test_prints_every_item_with_code_status_due_date_and_the_version() -> None:
    code, out, err = prevention("--naissance", "2025-01-15", "--sexe", "F", "--le", "2025-03-15")
    assert code == 0, err
    assert "Calendrier de prévention 2025" in out
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith(("VAC-", "EXAMEN-"))}
    assert "à planifier" in lines["VAC-HEXA-1"] and "15/03/2025" in lines["VAC-HEXA-1"]
    assert "Hexavalent" in lines["VAC-HEXA-1"]
    assert "en retard" in lines["EXAMEN-ENFANT-2M"]
    assert "VAC-ROR-1" not in lines


def test_fait_takes_codes_and_vaccine_families() -> None:
    code, out, err = prevention(
        "--naissance", "1958-03-01", "--sexe", "m", "--le", "2025-11-15",
        "--fait", "GRIPPE=2025-10-20", "--fait", "dep-colorectal=2025-01-10", "--non-fait", "VAC-ZONA-1=2025-06-01",
    )  # fmt: skip
    assert code == 0, err
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith(("VAC-", "DEP-"))}
    assert "réalisé" in lines["VAC-GRIPPE"] and "fait le 20/10/2025" in lines["VAC-GRIPPE"]
    assert "réalisé" in lines["DEP-COLORECTAL"] and "10/01/2027" in lines["DEP-COLORECTAL"]
    assert "non réalisé" in lines["VAC-ZONA-1"]
    assert "en retard" in lines["VAC-DTP-65"]


def test_json_is_a_list_of_objects_with_code_libelle_statut_echeance() -> None:
    code, out, err = prevention("--naissance", "2008-05-10", "--sexe", "F", "--le", "2025-09-01", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert isinstance(rows, list) and rows
    for row in rows:
        assert {"code", "libelle", "statut", "echeance", "calendrier"} <= set(row)
        assert row["echeance"] is None or len(row["echeance"]) == 10
        assert row["calendrier"] == "2025"
    hpv = {row["code"]: row for row in rows}["VAC-HPV-3"]
    assert (hpv["statut"], hpv["statut_libelle"], hpv["rattrapage"], hpv["doses"]) == (
        "en_retard",
        "en retard",
        True,
        3,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--naissance", "2025-13-01", "--sexe", "F"], "--naissance : date invalide « 2025-13-01 »"),
        (["--naissance", "15/01/2025", "--sexe", "F"], "format attendu AAAA-MM-JJ"),
        (["--naissance", "2000-01-01", "--sexe", "X"], "« X » n'est pas un sexe connu (F ou M)"),
        (["--naissance", "2000-01-01", "--sexe", "F", "--le", "demain"], "--le : date invalide"),
        (["--naissance", "2000-01-01", "--sexe", "F", "--fait", "VAC-FOO=2020-01-01"], "code inconnu"),
        (["--naissance", "2000-01-01", "--sexe", "F", "--fait", "VAC-ROR-1"], "--fait attend CODE=AAAA-MM-JJ"),
        (["--naissance", "2000-01-01", "--sexe", "F", "--fait", "ROR=2020-02-30"], "--fait ROR : date invalide"),
        (
            ["--naissance", "2000-01-01", "--sexe", "F", "--le", "2025-01-01", "--fait", "ROR=2026-01-01"],
            "n'est pas entre",
        ),
        (["--naissance", "2026-01-01", "--sexe", "F", "--le", "2025-01-01"], "postérieure au jour du calcul"),
        (["--naissance", "2000-01-01", "--sexe", "F", "--non-fait", "ROR=2020-01-01"], "pas une famille"),
        (["--naissance", "2000-01-01", "--sexe", "F", "--calendrier", "1999"], "Calendrier de prévention inconnu"),
        (["--sexe", "F"], "sont obligatoires"),
    ],
)
def test_bad_input_is_a_french_error_and_exit_code_2(args: list[str], message: str) -> None:
    code, out, err = prevention(*args)
    assert code == 2
    assert err.startswith("Erreur : ") and message in err, err
    assert out == ""


def test_the_installed_command_answers_in_french_with_exit_code_2() -> None:
    env = {**os.environ, "CARNET_ARGON2_PROFILE": "test"}
    bad = subprocess.run(
        [sys.executable, "-m", "carnet", "prevention", "--naissance", "2000-01-01", "--sexe", "Z"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert bad.returncode == 2 and "n'est pas un sexe connu" in bad.stderr
    good = subprocess.run(
        [sys.executable, "-m", "carnet", "prevention", "--naissance", "1973-03-01", "--sexe", "F",
         "--le", "2025-09-01", "--json"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert good.returncode == 0, good.stderr
    assert {"DEP-SEIN", "DEP-COLORECTAL"} <= {row["code"] for row in json.loads(good.stdout)}
