"""ENR-1: importing the insured-persons registry, on SQLite and PostgreSQL, through the service and the CLI."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from carnet.bootstrap import Services
from carnet.config import Settings
from carnet.enrolment.model.registry import COLUMNS, REQUIRED_COLUMNS
from carnet.enrolment.service.registry import ImportReport, RegistryFileError, import_registry
from carnet.hall import audit
from carnet.hall.actors import Actor, ActorKind
from carnet.hall.tables import AuditEntry
from carnet.people.model.identifiers import INS_NIA_OID, nir_from_body
from carnet.people.tables import Patient

HEADER = list(COLUMNS)


def person(
    body: str,
    name: str = "Santoni",
    first: str = "Jean",
    born: str | None = None,
    *,
    parent: str = "",
    email: str = "",
    departement: str = "2A",
) -> dict[str, str]:
    """A valid line for the NIR body (sex and date of birth are taken from it when months are 01-12)."""
    ins = nir_from_body(body)
    year = int(body[1:3])
    century = 2000 if year <= 25 else 1900
    return {
        "ins": ins,
        "nom_naissance": name,
        "prenoms": first,
        "date_naissance": born or f"{century + year}-{body[3:5]}-15",
        "sexe": "M" if body[0] in "137" else "F",
        "lieu_naissance": body[5:10],
        "email": email,
        "telephone": "",
        "adresse": "3 rue Fesch",
        "code_postal": "20000",
        "commune": "Ajaccio",
        "departement": departement,
        "numero_serie_vitale": "" if parent else "123456789",
        "ins_ouvrant_droit": parent,
    }


PARENT = person("1850320004123", "Santoni", "Jean Pierre", email="jp@exemple.fr")
OTHER = person("2900620004045", "Casanova", "Marie", departement="2B")
CHILD = person("2150520004045", "Santoni", "Lisa", parent=PARENT["ins"])


def write_csv(
    path: Path,
    rows: Iterable[dict[str, str] | str],
    *,
    delimiter: str = ";",
    bom: bool = False,
    header: list[str] = HEADER,
) -> Path:
    lines = [delimiter.join(header)]
    for row in rows:
        lines.append(row if isinstance(row, str) else delimiter.join(row[column] for column in header))
    path.write_text(("\ufeff" if bom else "") + "\r\n".join(lines) + "\r\n", encoding="utf-8")
    return path


def run_import(services: Services, path: Path, **kwargs: Any) -> ImportReport:
    return import_registry(services.db, path, Actor.system("Opérateur de test"), **kwargs)


def patients(services: Services) -> dict[str, Patient]:
    with services.db.unit_of_work() as db:
        return {patient.ins: patient for patient in db.scalars(select(Patient))}


def registry_audit(services: Services) -> list[AuditEntry]:
    with services.db.unit_of_work() as db:
        return list(db.scalars(select(AuditEntry).where(AuditEntry.action == "registry.import")))


# --- service ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("delimiter", "bom"), [(";", True), (",", False), (";", False), (",", True)])
def test_both_separators_with_or_without_bom(services: Services, tmp_path: Path, delimiter: str, bom: bool) -> None:
    other = dict(OTHER, adresse='"12, route du Salario"' if delimiter == "," else "12, route du Salario")
    path = write_csv(tmp_path / "registre.csv", [PARENT, other, CHILD], delimiter=delimiter, bom=bom)
    report = run_import(services, path)
    assert (report.total, report.inserted, report.updated, report.rejected) == (3, 3, 0, [])
    loaded = patients(services)
    assert loaded[OTHER["ins"]].address == "12, route du Salario"
    parent = loaded[PARENT["ins"]]
    assert (parent.birth_name, parent.first_names, parent.status) == ("SANTONI", "Jean Pierre", "registered")
    assert (parent.email, parent.vitale_serial, parent.departement) == ("jp@exemple.fr", "123456789", "2A")


def test_reimport_updates_and_never_duplicates(services: Services, tmp_path: Path) -> None:
    first = run_import(services, write_csv(tmp_path / "a.csv", [PARENT, OTHER]))
    assert (first.inserted, first.updated) == (2, 0)
    moved = dict(OTHER, email="marie@exemple.fr", adresse="1 cours Napoléon", commune="Bastia", code_postal="20200")
    again = run_import(services, write_csv(tmp_path / "b.csv", [moved, PARENT, CHILD]))
    assert (again.total, again.inserted, again.updated, again.rejected) == (3, 1, 2, [])
    loaded = patients(services)
    assert len(loaded) == 3
    assert (loaded[OTHER["ins"]].email, loaded[OTHER["ins"]].city) == ("marie@exemple.fr", "Bastia")
    with services.db.unit_of_work() as db:
        assert db.scalar(select(func.count()).select_from(Patient)) == 3


@pytest.mark.parametrize("parallel", [False, True], ids=["serial", "parsing-worker"])
def test_invalid_rows_are_rejected_with_their_line_valid_rows_still_load(
    services: Services, tmp_path: Path, parallel: bool
) -> None:
    bad_key = dict(OTHER, ins=OTHER["ins"][:13] + "00")
    bad_date = dict(person("1700120004001"), date_naissance="1970-02-30")
    bad_sex = dict(person("1700120004002"), sexe="H")
    rows: list[dict[str, str] | str] = [PARENT, bad_key, bad_date, "", CHILD, bad_sex, "a;b", PARENT]
    report = run_import(services, write_csv(tmp_path / "r.csv", rows, bom=True), parallel=parallel)
    assert report.total == 7  # the blank line 5 is not a row
    assert (report.inserted, report.updated) == (2, 0)
    assert [(error.line, error.reason.split(" ")[0]) for error in report.rejected] == [
        (3, "ins"),
        (4, "date_naissance"),
        (7, "sexe"),
        (8, "la"),
        (9, "ins"),
    ]
    messages = [error.message for error in report.rejected]
    assert "la clé est invalide" in messages[0]
    assert messages[1] == "ligne 4 : date_naissance « 1970-02-30 » n'existe pas"
    assert messages[2].startswith("ligne 7 : sexe doit être M ou F")
    assert messages[3].startswith("ligne 8 : la ligne comporte 2 champ(s) au lieu de 14")
    assert messages[4] == "ligne 9 : ins figure déjà plus haut dans le fichier (ligne en double)"
    assert set(patients(services)) == {PARENT["ins"], CHILD["ins"]}


@pytest.mark.parametrize("parallel", [False, True], ids=["serial", "parsing-worker"])
def test_duplicates_are_caught_across_batches(services: Services, tmp_path: Path, parallel: bool) -> None:
    rows = [person(f"17001200040{n:02d}") for n in range(1, 8)]
    path = write_csv(tmp_path / "r.csv", [*rows, rows[0], rows[5]])
    report = run_import(services, path, batch_size=3, parallel=parallel)
    assert (report.inserted, report.updated) == (7, 0)
    assert [error.line for error in report.rejected] == [9, 10]


@pytest.mark.parametrize(
    ("order", "batch_size", "parallel"),
    [
        ("child first", 1, False),  # the parent two batches later
        ("child first", 1, True),
        ("child first", 100, False),  # the parent later in the same batch
        ("parent first", 100, False),  # earlier in the same batch
        ("parent first", 1, True),  # in an earlier batch
    ],
)
def test_a_child_is_attached_to_its_parent_whatever_the_order(
    services: Services, tmp_path: Path, order: str, batch_size: int, parallel: bool
) -> None:
    rows = [CHILD, OTHER, PARENT] if order == "child first" else [PARENT, OTHER, CHILD]
    report = run_import(services, write_csv(tmp_path / "r.csv", rows), batch_size=batch_size, parallel=parallel)
    assert report.attached == 1 and report.warnings == []
    loaded = patients(services)
    assert loaded[CHILD["ins"]].attached_to_id == loaded[PARENT["ins"]].id
    assert loaded[CHILD["ins"]].ouvrant_droit_ins == PARENT["ins"]
    assert loaded[PARENT["ins"]].attached_to_id is None


def test_a_parent_from_an_earlier_import_is_found(services: Services, tmp_path: Path) -> None:
    run_import(services, write_csv(tmp_path / "parents.csv", [PARENT]))
    report = run_import(services, write_csv(tmp_path / "children.csv", [CHILD]))
    loaded = patients(services)
    assert report.warnings == []
    assert loaded[CHILD["ins"]].attached_to_id == loaded[PARENT["ins"]].id


def test_children_loaded_before_their_parent_s_file_are_attached_by_it(services: Services, tmp_path: Path) -> None:
    sister = person("2170520004046", "Santoni", "Anna", parent=PARENT["ins"])
    first = run_import(services, write_csv(tmp_path / "children.csv", [CHILD, OTHER, sister]))
    assert first.attached == 0 and [warning.line for warning in first.warnings] == [2, 4]
    second = run_import(services, write_csv(tmp_path / "parents.csv", [PARENT]))
    loaded = patients(services)
    assert second.attached == 2 and second.warnings == []
    assert loaded[CHILD["ins"]].attached_to_id == loaded[sister["ins"]].attached_to_id == loaded[PARENT["ins"]].id
    assert registry_audit(services)[-1].details["attached"] == 2


def test_a_child_whose_parent_is_unknown_is_loaded_with_a_warning(services: Services, tmp_path: Path) -> None:
    orphan = dict(CHILD, ins_ouvrant_droit=nir_from_body("1800120004999"))
    report = run_import(services, write_csv(tmp_path / "r.csv", [PARENT, orphan]))
    assert report.rejected == [] and report.inserted == 2
    assert [warning.message for warning in report.warnings] == [
        "ligne 3 : ins_ouvrant_droit n'est l'INS d'aucune personne du registre — "
        "personne chargée mais rattachée à personne"
    ]
    assert patients(services)[CHILD["ins"]].attached_to_id is None


def test_the_registry_decides_who_a_minor_is_attached_to(services: Services, tmp_path: Path) -> None:
    run_import(services, write_csv(tmp_path / "a.csv", [PARENT, OTHER, CHILD]))
    to_other = dict(CHILD, ins_ouvrant_droit=OTHER["ins"])
    run_import(services, write_csv(tmp_path / "b.csv", [to_other]))
    loaded = patients(services)
    assert loaded[CHILD["ins"]].attached_to_id == loaded[OTHER["ins"]].id
    run_import(services, write_csv(tmp_path / "c.csv", [dict(CHILD, ins_ouvrant_droit="")]))
    assert patients(services)[CHILD["ins"]].attached_to_id is None


def test_an_adult_is_never_attached_to_the_ouvrant_droit(services: Services, tmp_path: Path) -> None:
    """The coming-of-age job detached CHILD at 18: an import listing them, or their parent, must not attach them again
    (the job would detach them once more and write to the parents again)."""
    rows = write_csv(tmp_path / "a.csv", [CHILD, PARENT])  # CHILD born 2015-05-15
    assert run_import(services, rows, today=date(2033, 5, 14)).attached == 1
    assert patients(services)[CHILD["ins"]].attached_to_id == patients(services)[PARENT["ins"]].id
    for path in (rows, write_csv(tmp_path / "parent.csv", [PARENT]), write_csv(tmp_path / "child.csv", [CHILD])):
        report = run_import(services, path, today=date(2033, 5, 15), batch_size=1)
        assert (report.attached, report.warnings) == (0, [])
        assert patients(services)[CHILD["ins"]].attached_to_id is None


def test_an_adult_whose_ouvrant_droit_is_unknown_is_no_warning(services: Services, tmp_path: Path) -> None:
    adult = dict(person("1900120004001"), ins_ouvrant_droit=nir_from_body("1800120004999"))
    report = run_import(services, write_csv(tmp_path / "r.csv", [adult]))
    assert (report.inserted, report.attached, report.warnings) == (1, 0, [])


def test_statuses_are_kept_on_reimport(services: Services, tmp_path: Path) -> None:
    closed, opposed, new = person("1600120004001"), person("1600120004002"), person("1600120004003")
    run_import(services, write_csv(tmp_path / "a.csv", [PARENT, OTHER, closed, opposed]))
    with services.db.unit_of_work() as db:
        for ins, status in ((PARENT["ins"], "active"), (closed["ins"], "closed"), (opposed["ins"], "opposed")):
            db.execute(update(Patient).where(Patient.ins == ins).values(status=status))
    renamed = dict(PARENT, prenoms="Jean-Pierre")
    report = run_import(services, write_csv(tmp_path / "b.csv", [renamed, OTHER, closed, opposed, new]))
    assert (report.inserted, report.updated) == (1, 4)
    statuses = {ins: patient.status for ins, patient in patients(services).items()}
    assert statuses == {
        PARENT["ins"]: "active",
        OTHER["ins"]: "registered",
        closed["ins"]: "closed",
        opposed["ins"]: "opposed",
        new["ins"]: "registered",
    }
    assert patients(services)[PARENT["ins"]].first_names == "Jean-Pierre"


def test_provisional_numbers_get_the_nia_oid(services: Services, tmp_path: Path) -> None:
    provisional = person("7850320004123")
    run_import(services, write_csv(tmp_path / "r.csv", [provisional]))
    assert patients(services)[provisional["ins"]].ins_oid == INS_NIA_OID


def test_one_audit_entry_per_import_with_counts_and_no_identity(services: Services, tmp_path: Path) -> None:
    bad = dict(OTHER, sexe="X")
    run_import(services, write_csv(tmp_path / "r.csv", [PARENT, CHILD, bad]))
    run_import(services, write_csv(tmp_path / "r.csv", [PARENT, CHILD, bad]))
    entries = registry_audit(services)
    assert len(entries) == 2
    first = entries[0]
    assert (first.chain, first.patient_id, first.actor_label) == (audit.NO_PATIENT_CHAIN, None, "Opérateur de test")
    assert {key: first.details[key] for key in ("lines", "inserted", "updated", "rejected", "attached")} == {
        "lines": 3,
        "inserted": 2,
        "updated": 0,
        "rejected": 1,
        "attached": 1,
    }
    assert len(str(first.details["file_sha256"])) == 64
    assert entries[1].details["updated"] == 2 and entries[1].details["attached"] == 0
    text = repr([entry.details for entry in entries]) + repr([entry.reason for entry in entries])
    for secret in (PARENT["ins"], CHILD["ins"], "SANTONI", "Santoni", "Lisa"):
        assert secret not in text
    with services.db.unit_of_work() as db:
        assert db.scalar(select(func.count()).select_from(AuditEntry)) == 2  # not one per row
        assert audit.verify(db)[1] == []


@pytest.mark.parametrize("parallel", [False, True], ids=["serial", "parsing-worker"])
def test_progress_adds_up_to_the_file_size(services: Services, tmp_path: Path, parallel: bool) -> None:
    rows = [person(f"1600120{n:06d}") for n in range(1, 601)]
    path = write_csv(tmp_path / "r.csv", rows)
    assert path.stat().st_size > 4 * 8192  # the position advances by the reader's 8 KiB buffers
    steps: list[int] = []
    report = run_import(services, path, progress=steps.append, batch_size=20, parallel=parallel)
    assert report.inserted == 600
    assert len(steps) >= 4 and all(step > 0 for step in steps)
    assert sum(steps) == path.stat().st_size


def test_a_file_that_is_not_utf8_is_refused_before_anything_is_written(services: Services, tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    lines = [";".join(HEADER), ";".join(PARENT[column] for column in HEADER), ";".join(OTHER.values())]
    path.write_bytes("\n".join(lines).replace("Casanova", "Casanòva").encode("latin-1"))
    with pytest.raises(RegistryFileError) as caught:
        run_import(services, path)
    assert caught.value.message.startswith("Le fichier n'est pas encodé en UTF-8 (octet invalide vers la ligne 3)")
    assert patients(services) == {}
    assert registry_audit(services) == []


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("", "Le fichier est vide"),
        ("\ufeff\r\n", "Le fichier est vide"),
        ("ins;nom;prenoms\r\n", "En-tête du fichier incorrect — colonne(s) manquante(s) : nom_naissance"),
    ],
)
@pytest.mark.parametrize("parallel", [False, True], ids=["serial", "parsing-worker"])
def test_unusable_files_are_refused_as_a_whole(
    services: Services, tmp_path: Path, content: str, reason: str, parallel: bool
) -> None:
    path = tmp_path / "r.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(RegistryFileError, match=re.escape(reason)):
        run_import(services, path, parallel=parallel)
    assert patients(services) == {} and registry_audit(services) == []


def test_missing_file_or_folder(services: Services, tmp_path: Path) -> None:
    with pytest.raises(RegistryFileError, match="il n'existe pas"):
        run_import(services, tmp_path / "absent.csv")
    with pytest.raises(RegistryFileError, match="c'est un dossier"):
        run_import(services, tmp_path)


# --- the command ------------------------------------------------------------------------------------


def carnet(*args: str, data_dir: Path, database_url: str = "") -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CARNET_DATA_DIR": str(data_dir),
        "CARNET_DATABASE_URL": database_url,
        "CARNET_ARGON2_PROFILE": "test",
    }
    return subprocess.run([sys.executable, "-m", "carnet", *args], env=env, capture_output=True, text=True, timeout=300)


def test_cli_imports_and_exits_0(services: Services, settings: Settings, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "registre.csv", [PARENT, CHILD, OTHER], bom=True)
    stale = tmp_path / "registre.csv.rejets.txt"
    stale.write_text("ancienne liste\n", encoding="utf-8")
    done = carnet("registry", "import", str(path), data_dir=tmp_path / "data", database_url=settings.database_url)
    assert done.returncode == 0, done.stderr
    assert "3 lignes lues, 3 ajoutées, 0 mises à jour, 0 rejetées." in done.stdout
    assert not stale.exists()
    again = carnet("registry", "import", str(path), data_dir=tmp_path / "data", database_url=settings.database_url)
    assert "3 lignes lues, 0 ajoutées, 3 mises à jour, 0 rejetées." in again.stdout
    assert len(patients(services)) == 3


def test_cli_lists_rejections_writes_them_next_to_the_file_and_exits_1(
    services: Services, settings: Settings, tmp_path: Path
) -> None:
    bad = [dict(person(f"1700120{n:06d}"), sexe="H") for n in range(1, 61)]
    path = write_csv(tmp_path / "registre.csv", [PARENT, *bad, CHILD])
    done = carnet("registry", "import", str(path), data_dir=tmp_path / "data", database_url=settings.database_url)
    assert done.returncode == 1
    assert "62 lignes lues, 2 ajoutées, 0 mises à jour, 60 rejetées." in done.stdout
    listed = [line for line in done.stderr.splitlines() if line.startswith("  ligne ")]
    assert len(listed) == 50
    assert listed[0].startswith("  ligne 3 : sexe doit être M ou F")
    assert "  … et 10 autres" in done.stderr
    rejects = (tmp_path / "registre.csv.rejets.txt").read_text(encoding="utf-8").splitlines()
    assert len(rejects) == 60 and rejects[-1].startswith("ligne 62 : sexe doit être M ou F")
    assert "Traceback" not in done.stderr


def test_cli_exits_2_on_an_unreadable_file(settings: Settings, tmp_path: Path) -> None:
    missing = carnet(
        "registry", "import", str(tmp_path / "absent.csv"), data_dir=tmp_path / "d", database_url=settings.database_url
    )
    assert missing.returncode == 2
    assert "Erreur : Impossible de lire le fichier" in missing.stderr and "il n'existe pas" in missing.stderr
    latin = tmp_path / "latin1.csv"
    latin.write_bytes((";".join(HEADER) + "\nSantoni;Hélène\n").encode("latin-1"))
    refused = carnet("registry", "import", str(latin), data_dir=tmp_path / "d", database_url=settings.database_url)
    assert refused.returncode == 2
    assert "n'est pas encodé en UTF-8" in refused.stderr and "Traceback" not in refused.stderr


def test_cli_on_a_fresh_embedded_data_folder(tmp_path: Path) -> None:
    """No CARNET_DATABASE_URL: the command creates the SQLite schema in the data folder itself."""
    path = write_csv(tmp_path / "registre.csv", [CHILD, PARENT])
    done = carnet("registry", "import", str(path), data_dir=tmp_path / "data")
    assert done.returncode == 0, done.stderr
    assert "2 lignes lues, 2 ajoutées" in done.stdout
    assert (tmp_path / "data" / "carnet.sqlite3").exists()
    verify = carnet("audit", "verify", data_dir=tmp_path / "data")
    assert verify.returncode == 0 and "1 chaîne" in verify.stdout


def test_a_database_failure_stops_the_parsing_worker(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import multiprocessing

    from carnet.enrolment.service import registry as registry_service

    def broken(*_args: object) -> int:
        raise RuntimeError("base indisponible")

    monkeypatch.setattr(registry_service._Writer, "write", broken)
    rows = [person(f"16001200040{n:02d}") for n in range(1, 30)]
    with pytest.raises(RuntimeError, match="base indisponible"):
        run_import(services, write_csv(tmp_path / "r.csv", rows), batch_size=2, parallel=True)
    assert multiprocessing.active_children() == []


@pytest.mark.parametrize(
    "actor",
    [
        Actor(ActorKind.PATIENT, "compte", "Marie-Ange Santoni", patient_id="p"),
        Actor(ActorKind.PROFESSIONAL, "compte", "Dr Ferracci", professional_id="x", rpps="10001234567"),
    ],
    ids=["patient", "professional"],
)
def test_only_the_services_operators_import_the_registry(services: Services, tmp_path: Path, actor: Actor) -> None:
    """ENR-1, issue #9: the policy decides who loads the registry; a refusal writes nothing and is kept."""
    from carnet.enrolment.service.admin import import_registry_file
    from carnet.hall.guard import AccessDenied

    path = write_csv(tmp_path / "registre.csv", [person("185032A004117")])
    with pytest.raises(AccessDenied):
        import_registry_file(services, actor, path)
    with services.db.unit_of_work() as db:
        assert db.scalar(select(func.count()).select_from(Patient)) == 0
        refused = db.scalars(select(AuditEntry.outcome).where(AuditEntry.action == "enrolment.manage")).all()
    assert refused == ["deny"]


# --- the documented format (issue #15-13) ---------------------------------------------------------------------

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_the_documented_example_file_loads_as_it_is(services: Services) -> None:
    report = run_import(services, DOCS / "examples" / "registre-exemple.csv")

    assert (report.total, report.inserted, report.updated, report.rejected, report.warnings) == (5, 5, 0, [], [])
    assert report.without_vitale == 2 and report.attached == 1
    loaded = patients(services)
    assert loaded["115092A00432154"].attached_to_id == loaded["168072A00412348"].id
    assert loaded["285039913401239"].birth_name == "GARCÍA LÓPEZ"
    assert loaded["285039913401239"].address == "Résidence Les Pins; bâtiment B"  # a quoted separator


def test_the_documentation_names_every_column_and_says_which_are_required() -> None:
    text = (DOCS / "registry.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([a-z_]+)` \| (oui|non) \|", text, flags=re.MULTILINE)
    assert [column for column, _ in rows] == list(COLUMNS)
    assert {column for column, required in rows if required == "oui"} == REQUIRED_COLUMNS
    assert "examples/registre-exemple.csv" in text
    assert "docs/registry.md" in (DOCS.parent / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("parallel", [False, True], ids=["serial", "parsing-worker"])
def test_a_quote_never_closed_is_a_clear_refusal_not_a_crash(
    services: Services, tmp_path: Path, parallel: bool
) -> None:
    """A cell opened with « " » and never closed swallows the rest of the file: Python's csv gives up past
    131,072 characters; the operator gets the line and the likely cause (on the console: a 400, not a 500)."""
    rows: list[dict[str, str] | str] = [PARENT, '"' + ";".join(OTHER.values()), *(["x" * 200] * 700)]
    path = write_csv(tmp_path / "registre.csv", rows)

    with pytest.raises(RegistryFileError) as refused:
        run_import(services, path, parallel=parallel)

    assert "illisible à partir de la ligne 3" in refused.value.message
    assert "guillemet ouvert n'est jamais refermé" in refused.value.message
