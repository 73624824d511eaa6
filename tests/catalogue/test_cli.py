"""CAT-1 at the command line: ``carnet apps register`` prints the client id (and a confidential client's secret) as
JSON; ``publish``, ``suspend``, ``dereference`` decide; a wrong input or a decision the status forbids is a French
error and exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

from tests.catalogue.conftest import REDIRECT
from tests.test_cli import carnet, url  # noqa: F401  (the run's database, emptied, or a SQLite file)


def test_cat1_an_editor_registers_and_the_operator_publishes_suspends_and_dereferences(
    tmp_path: Path,
    url: str,  # noqa: F811 (the fixture of tests/test_cli.py)
) -> None:
    carnet("migrate", data_dir=tmp_path, database_url=url)
    made = carnet(
        "apps", "register", "--nom", "Tensio", "--redirect-uri", REDIRECT, "--redirect-uri", "http://127.0.0.1:9000/cb",
        "--scope", "patient/Observation.cru", "--confidentiel", data_dir=tmp_path, database_url=url,
    )  # fmt: skip
    app = json.loads(made.stdout)
    assert app["client_id"].startswith("app-") and app["client_secret"] and app["statut"] == "PRESERIE"
    assert app["scope"] == "patient/Observation.cru"
    for decision, status in (("publish", "EN_LIGNE"), ("suspend", "SUSPENDUE"), ("dereference", "DEREFERENCEE")):
        answer = json.loads(carnet("apps", decision, app["client_id"], data_dir=tmp_path, database_url=url).stdout)
        assert answer["statut"] == status
    again = carnet("apps", "publish", app["id"], data_dir=tmp_path, database_url=url, check=False)
    assert again.returncode == 2 and "Impossible de passer" in again.stderr


def test_cat1_a_wrong_scope_or_redirect_uri_is_refused_in_french(tmp_path: Path, url: str) -> None:  # noqa: F811
    carnet("migrate", data_dir=tmp_path, database_url=url)
    for args, words in (
        (("--redirect-uri", REDIRECT, "--scope", "system/Observation.r"), "Portée non reconnue"),
        (
            ("--redirect-uri", "http://appli.exemple.fr/cb", "--scope", "patient/Observation.r"),
            "Adresse de retour refusée",
        ),
    ):
        answer = carnet("apps", "register", "--nom", "X", *args, data_dir=tmp_path, database_url=url, check=False)
        assert answer.returncode == 2 and words in answer.stderr
