"""ACC-1 (prerequisite): the professional directory — ``carnet professionals add`` / ``import`` and
``carnet clients create --rpps`` — on SQLite and PostgreSQL, through the service and the command."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from carnet.access.service.directory import DirectoryError, DirectoryFileError, add_professional, import_directory
from carnet.bootstrap import Services
from carnet.config import Settings
from carnet.hall import audit
from carnet.hall.actors import Actor, ActorKind
from carnet.hall.guard import AccessDenied
from carnet.hall.tables import AuditEntry
from carnet.identity.tables import ApiClient
from carnet.people.tables import Professional

# The header of PS_LibreAcces_Personne_activite_<date>.txt (Annuaire Santé, ANS), as published: it
# ends with a "|", and one column says « (coord. Structure) » with a capital S.
HEADER = (
    "Type d'identifiant PP|Identifiant PP|Identification nationale PP|Code civilité d'exercice|"
    "Libellé civilité exercice|Code civilité|Libellé civilité|Nom d'exercice|Prénom d'exercice|"
    "Code profession|Libellé profession|Code catégorie professionnelle|Libellé catégorie professionnelle|"
    "Code type savoir-faire|Libellé type savoir-faire|Code savoir-faire|Libellé savoir-faire|"
    "Code mode exercice|Libellé mode exercice|Numéro SIRET site|Numéro SIREN site|Numéro FINESS site|"
    "Numéro FINESS établissement juridique|Identifiant technique de la structure|Raison sociale site|"
    "Enseigne commerciale site|Complément destinataire (coord. structure)|"
    "Complément point géographique (coord. structure)|Numéro Voie (coord. structure)|"
    "Indice répétition voie (coord. Structure)|Code type de voie (coord. structure)|"
    "Libellé type de voie (coord. structure)|Libellé Voie (coord. structure)|"
    "Mention distribution (coord. structure)|Bureau cedex (coord. structure)|"
    "Code postal (coord. structure)|Code commune (coord. structure)|Libellé commune (coord. structure)|"
    "Code pays (coord. structure)|Libellé pays (coord. structure)|Téléphone (coord. structure)|"
    "Téléphone 2 (coord. structure)|Télécopie (coord. structure)|Adresse e-mail (coord. structure)|"
    "Code département (coord. structure)|Libellé département (coord. structure)|"
    "Ancien identifiant de la structure|Autorité d'enregistrement|Code secteur d'activité|"
    "Libellé secteur d'activité|Code section tableau pharmaciens|Libellé section tableau pharmaciens|"
    "Code fonction|Libellé fonction|Code genre d'activité|Libellé genre d'activité|"
)
COLUMNS = HEADER.split("|")
OPERATOR = Actor.system("Opérateur de test")


def luhn_key(first_ten: str) -> str:
    total = 0
    for position, char in enumerate(reversed(first_ten)):
        digit = int(char) * (2 if position % 2 == 0 else 1)
        total += digit - 9 if digit > 9 else digit
    return str((10 - total % 10) % 10)


def rpps(first_ten: str) -> str:
    return first_ten + luhn_key(first_ten)


GP = rpps("1000999901")  # general practitioner, two activities
PHARMACIST = rpps("1000999902")
NURSE = rpps("1000999903")
WRONG_KEY = GP[:10] + str((int(GP[10]) + 1) % 10)


def activity(number: str, last: str, first: str, profession: str, **cells: str) -> str:
    """One line of the extract for an RPPS professional (other columns as the ANS fills them, or empty)."""
    values = {
        "Type d'identifiant PP": "8",
        "Identifiant PP": number,
        "Identification nationale PP": "8" + number,
        "Nom d'exercice": last,
        "Prénom d'exercice": first,
        "Code profession": profession,
        "Libellé catégorie professionnelle": "Civil",
        "Code catégorie professionnelle": "C",
        "Code mode exercice": "L",
        "Libellé mode exercice": "Libéral",
        "Code pays (coord. structure)": "99000",
        **cells,
    }
    return "|".join(values.get(column, "") for column in COLUMNS)


def address(number: str, street_type: str, street: str, postcode: str, city: str) -> dict[str, str]:
    return {
        "Numéro Voie (coord. structure)": number,
        "Libellé type de voie (coord. structure)": street_type,
        "Libellé Voie (coord. structure)": street,
        "Code postal (coord. structure)": postcode,
        "Libellé commune (coord. structure)": city,
        "Bureau cedex (coord. structure)": f"{postcode} {city.upper()}",
    }


GP_CABINET = activity(
    GP,
    "FERRACCI",
    "JEAN-BAPTISTE",
    "10",
    **{"Code savoir-faire": "SM54", "Libellé savoir-faire": "Médecine générale (SM)"},
    **address("12", "Cours", "NAPOLEON", "20000", "Ajaccio"),
)
GP_HOSPITAL = activity(
    GP,
    "FERRACCI",
    "JEAN-BAPTISTE",
    "10",
    **{"Libellé savoir-faire": "Médecine d'urgence (SM)", "Code mode exercice": "S"},
    **address("27", "Avenue", "IMPERATRICE EUGENIE", "20000", "Ajaccio"),
)
PHARMACY = activity(PHARMACIST, "PERETTI", "ANNA MARIA", "21", **address("5", "Boulevard", "PAOLI", "20200", "Bastia"))
NURSE_LINE = activity(NURSE, "CASANOVA", "LÆTITIA", "60", **address("3", "Rue", "FESCH", "20000", "Ajaccio"))
ADELI_LINE = "|".join(
    {"Type d'identifiant PP": "0", "Identifiant PP": "2B0123456", "Identification nationale PP": "02B0123456"}.get(
        column, "PSYCHOLOGUE" if column == "Nom d'exercice" else ""
    )
    for column in COLUMNS
)


def write_extract(path: Path, lines: list[str], *, bom: bool = True, encoding: str = "utf-8") -> Path:
    text = ("\ufeff" if bom else "") + "\r\n".join([HEADER, *lines]) + "\r\n"
    path.write_bytes(text.encode(encoding))
    return path


def professionals(services: Services) -> dict[str, Professional]:
    with services.db.unit_of_work() as db:
        return {pro.rpps: pro for pro in db.scalars(select(Professional))}


def audit_entries(services: Services, action: str) -> list[AuditEntry]:
    with services.db.unit_of_work() as db:
        return list(db.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)))


def carnet(*args: str, settings: Settings) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CARNET_DATA_DIR": str(settings.data_dir),
        "CARNET_DATABASE_URL": settings.database_url or "",
        "CARNET_ARGON2_PROFILE": "test",
    }
    return subprocess.run([sys.executable, "-m", "carnet", *args], env=env, capture_output=True, text=True, timeout=300)


# --- carnet professionals add ----------------------------------------------------------------------


def add(
    settings: Settings, *extra: str, number: str = GP, last: str = "Ferracci", first: str = "Jean-Baptiste"
) -> subprocess.CompletedProcess[str]:
    return carnet("professionals", "add", "--rpps", number, "--nom", last, "--prenom", first, *extra, settings=settings)


def test_add_then_update_by_rpps_with_the_samu_flag(services: Services, settings: Settings) -> None:
    """ACC-1: `carnet professionals add` adds, then updates by RPPS (upsert); the SAMU regulator flag and
    the specialty change only when given; every call is audited on the no-patient chain."""
    done = add(settings, "--profession", "10", "--specialite", "Médecine générale")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"Professionnel ajouté à l'annuaire : RPPS {GP} (Jean-Baptiste Ferracci, médecin)."
    again = add(settings, "--profession", "10", "--samu", last="FERRACCI")
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == (
        f"Professionnel mis à jour dans l'annuaire : RPPS {GP} (Jean-Baptiste FERRACCI, médecin, régulateur du SAMU)."
    )
    pro = professionals(services)[GP]
    assert (pro.last_name, pro.specialty, pro.samu_regulator) == ("FERRACCI", "Médecine générale", True)
    assert add(settings, "--profession", "10").returncode == 0  # flag omitted: unchanged
    assert professionals(services)[GP].samu_regulator is True
    assert add(settings, "--profession", "10", "--non-samu").returncode == 0
    assert professionals(services)[GP].samu_regulator is False
    added = audit_entries(services, "directory.professional_added")
    updated = audit_entries(services, "directory.professional_updated")
    assert len(added) == 1 and len(updated) == 3
    assert (added[0].chain, added[0].patient_id, added[0].resource_id) == (audit.NO_PATIENT_CHAIN, None, pro.id)
    assert added[0].actor_kind == "operator" and added[0].details["rpps"] == GP
    assert updated[0].details["changed"] == ["last_name", "samu_regulator"]
    with services.db.unit_of_work() as db:
        assert audit.verify(db)[1] == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rpps", "1000999901", "--profession", "10"], "Numéro RPPS : doit comporter 11 chiffres ; 10 reçus."),
        (["--rpps", WRONG_KEY, "--profession", "10"], "Numéro RPPS : la clé de contrôle (11e chiffre)"),
        (["--rpps", GP, "--profession", "99"], "Code profession « 99 » inconnu. Codes de la nomenclature TRE_G15"),
        (["--rpps", GP, "--profession", "10", "--nom", "  "], "Nom : aucune valeur n'a été saisie."),
    ],
    ids=["length", "luhn-key", "profession", "empty-name"],
)
def test_add_refusals_are_in_french_exit_1_and_write_nothing(
    services: Services, settings: Settings, args: list[str], message: str
) -> None:
    """ACC-1: RPPS (11 digits and its Luhn key), names and TRE_G15 code are checked before anything is written."""
    base = {"--nom": "Ferracci", "--prenom": "Jean"}
    for index in range(0, len(args), 2):
        base[args[index]] = args[index + 1]
    done = carnet("professionals", "add", *[part for pair in base.items() for part in pair], settings=settings)
    assert done.returncode == 1
    assert done.stderr.startswith(f"Erreur : {message}"), done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert professionals(services) == {}
    assert audit_entries(services, "directory.professional_added") == []


def test_a_number_already_in_the_directory_is_updated_even_without_a_luhn_key(demo: Services) -> None:
    """ACC-1: the key is checked for new numbers; the demo's numbers (no key) can still be corrected."""
    with demo.db.unit_of_work() as db:
        added = add_professional(
            db, OPERATOR, rpps="10001234567", last_name="FERRACCI", first_name="Jean-Baptiste", profession_code="10"
        )
        assert not added.created
        with pytest.raises(DirectoryError, match="clé de contrôle"):
            add_professional(db, OPERATOR, rpps="10001234568", last_name="X", first_name="Y", profession_code="10")


# --- carnet professionals import -------------------------------------------------------------------


def test_import_of_a_realistic_extract(services: Services, settings: Settings, tmp_path: Path) -> None:
    """ACC-1: the ANS extract (BOM, CRLF, real header, one line per activity) is loaded: one professional per
    RPPS, the first activity's address; ADELI lines skipped; bad lines listed, written to FILE.rejets.txt,
    exit code 1; one audit entry for the import."""
    bad = [
        activity(WRONG_KEY, "ORSINI", "DOMINIQUE", "40"),
        activity(rpps("1000999904"), "SANTUCCI", "PAUL", "12"),
        activity(rpps("1000999905"), "", "MARIE", "50"),
        "8|" + rpps("1000999906") + "|ORSINI",
    ]
    path = write_extract(
        tmp_path / "PS_LibreAcces_Personne_activite_202605040800.txt",
        [GP_CABINET, PHARMACY, *bad[:2], GP_HOSPITAL, "", ADELI_LINE, NURSE_LINE, *bad[2:]],
    )
    done = carnet("professionals", "import", str(path), settings=settings)
    assert done.returncode == 1, done.stderr
    assert (
        "9 lignes lues, 3 professionnels ajoutés, 0 mis à jour, 1 lignes d'activités supplémentaires, "
        "1 lignes sans RPPS ignorées, 4 rejetées." in done.stdout
    )
    rejects = path.with_name(path.name + ".rejets.txt").read_text(encoding="utf-8").splitlines()
    assert [reject.split(" : ", 1)[0] for reject in rejects] == ["ligne 4", "ligne 5", "ligne 10", "ligne 11"]
    assert rejects[0].startswith("ligne 4 : Identification nationale PP — Numéro RPPS : la clé de contrôle")
    assert rejects[1] == "ligne 5 : Code profession « 12 » inconnu de la nomenclature TRE_G15"
    assert rejects[2] == "ligne 10 : Nom d'exercice : aucune valeur n'a été saisie"
    assert rejects[3].startswith(f"ligne 11 : la ligne comporte 3 champ(s) au lieu de {len(COLUMNS)}")
    assert "  ligne 5 : Code profession « 12 »" in done.stderr and "Traceback" not in done.stderr
    loaded = professionals(services)
    assert set(loaded) == {GP, PHARMACIST, NURSE}
    gp = loaded[GP]
    assert (gp.last_name, gp.first_name, gp.profession_code) == ("FERRACCI", "JEAN-BAPTISTE", "10")
    assert (gp.specialty, gp.practice_address, gp.city) == ("Médecine générale (SM)", "12 Cours NAPOLEON", "Ajaccio")
    assert loaded[NURSE].first_name == "LÆTITIA" and loaded[PHARMACIST].specialty is None
    assert not any(pro.samu_regulator for pro in loaded.values())
    entries = audit_entries(services, "directory.import")
    assert len(entries) == 1 and entries[0].patient_id is None
    details = entries[0].details
    assert {key: details[key] for key in ("lines", "inserted", "updated", "rejected", "without_rpps")} == {
        "lines": 9,
        "inserted": 3,
        "updated": 0,
        "rejected": 4,
        "without_rpps": 1,
    }
    assert len(str(details["file_sha256"])) == 64 and "FERRACCI" not in repr(details)


def test_reimport_updates_keeps_the_samu_flag_and_clears_a_stale_rejects_file(
    services: Services, settings: Settings, tmp_path: Path
) -> None:
    """ACC-1: importing again updates (never duplicates); the SAMU flag set by the operator stays."""
    path = write_extract(tmp_path / "annuaire.txt", [GP_CABINET, PHARMACY])
    stale = tmp_path / "annuaire.txt.rejets.txt"
    stale.write_text("ancienne liste\n", encoding="utf-8")
    first = carnet("professionals", "import", str(path), settings=settings)
    assert first.returncode == 0, first.stderr
    assert "2 lignes lues, 2 professionnels ajoutés, 0 mis à jour" in first.stdout and not stale.exists()
    assert add(settings, "--profession", "10", "--samu", last="FERRACCI").returncode == 0
    moved = GP_CABINET.replace("NAPOLEON", "FESCH")
    write_extract(path, [moved, PHARMACY, NURSE_LINE])
    again = carnet("professionals", "import", str(path), settings=settings)
    assert again.returncode == 0, again.stderr
    assert "3 lignes lues, 1 professionnels ajoutés, 2 mis à jour" in again.stdout
    loaded = professionals(services)
    assert len(loaded) == 3
    assert (loaded[GP].practice_address, loaded[GP].samu_regulator) == ("12 Cours FESCH", True)


def test_import_in_batches_across_activities_with_progress(services: Services, tmp_path: Path) -> None:
    """ACC-1: batches are independent transactions; a person's later activity in another batch is still
    recognised; progress adds up to the file size."""
    lines = [activity(rpps(f"10009{n:05d}"), f"NOM{chr(65 + n % 26)}", "PRENOM", "60") for n in range(40)]
    lines.insert(35, GP_CABINET)
    lines.append(GP_HOSPITAL)
    path = write_extract(tmp_path / "annuaire.txt", lines, bom=False)
    steps: list[int] = []
    report = import_directory(services.db, path, OPERATOR, progress=steps.append, batch_size=7)
    assert (report.total, report.inserted, report.updated, report.other_activities) == (42, 41, 0, 1)
    assert report.rejected == [] and sum(steps) == path.stat().st_size and len(steps) >= 5
    assert professionals(services)[GP].practice_address == "12 Cours NAPOLEON"
    with services.db.unit_of_work() as db:
        assert db.scalar(select(func.count()).select_from(Professional)) == 41


def test_an_older_windows_1252_extract_is_read(services: Services, tmp_path: Path) -> None:
    path = write_extract(
        tmp_path / "annuaire.txt", [NURSE_LINE.replace("LÆTITIA", "LÉA")], bom=False, encoding="cp1252"
    )
    report = import_directory(services.db, path, OPERATOR)
    assert (report.inserted, report.encoding) == (1, "cp1252")
    assert professionals(services)[NURSE].first_name == "LÉA"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "Le fichier est vide"),
        (b"ins;nom_naissance;prenoms\r\n", "En-tête du fichier incorrect — colonne(s) manquante(s)"),
        (b"Identifiant PP|Nom d'exercice\n\x81\x9d\xff\n", "ni en UTF-8 ni en Windows-1252"),
    ],
)
def test_unusable_files_are_refused_as_a_whole(services: Services, tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "annuaire.txt"
    path.write_bytes(content)
    with pytest.raises(DirectoryFileError, match=re.escape(reason)):
        import_directory(services.db, path, OPERATOR)
    assert professionals(services) == {} and audit_entries(services, "directory.import") == []


def test_cli_exits_2_on_an_unusable_file(services: Services, settings: Settings, tmp_path: Path) -> None:
    missing = carnet("professionals", "import", str(tmp_path / "absent.txt"), settings=settings)
    assert missing.returncode == 2
    assert "Erreur : Impossible de lire le fichier" in missing.stderr and "il n'existe pas" in missing.stderr
    registry = tmp_path / "registre.csv"
    registry.write_text("ins;nom_naissance\n", encoding="utf-8")
    wrong = carnet("professionals", "import", str(registry), settings=settings)
    assert wrong.returncode == 2 and "PS_LibreAcces_Personne_activite" in wrong.stderr
    assert "Traceback" not in missing.stderr + wrong.stderr


# --- carnet clients create --rpps -----------------------------------------------------------------


def test_a_client_acts_as_a_professional_of_the_directory_only(
    services: Services, settings: Settings, tmp_path: Path
) -> None:
    """ACC-1: `carnet clients create --rpps R` refuses an RPPS that is not in the directory, in French."""
    refused = carnet("clients", "create", "--name", "Logiciel", "--rpps", GP, settings=settings)
    assert refused.returncode == 2
    assert f"Aucun professionnel de l'annuaire n'a le RPPS {GP}" in refused.stderr
    assert "carnet professionals add" in refused.stderr and "Traceback" not in refused.stderr
    import_directory(services.db, write_extract(tmp_path / "annuaire.txt", [GP_CABINET]), OPERATOR)
    created = carnet("clients", "create", "--name", "Logiciel du Dr Ferracci", "--rpps", GP, settings=settings)
    assert created.returncode == 0, created.stderr
    with services.db.unit_of_work() as db:
        client = db.scalar(select(ApiClient))
        assert client is not None and client.professional_id == professionals(services)[GP].id


# --- the policy decides who keeps the directory (ACC-1) --------------------------------------------


@pytest.mark.parametrize(
    "actor",
    [
        Actor(ActorKind.PATIENT, "compte-patient", "Marie-Ange SANTONI", patient_id="espace"),
        Actor(ActorKind.PROFESSIONAL, "client-pro", "Dr Ferracci", professional_id="pro", rpps="10001234567"),
    ],
    ids=["patient", "professionnel"],
)
def test_only_the_services_operators_keep_the_directory(services: Services, tmp_path: Path, actor: Actor) -> None:
    """ACC-1: adding and importing are asked of the policy (``directory.manage``); anyone but an operator (or the
    service's automatic work) is refused, the refusal is recorded on the service's chain, nothing is written."""
    with pytest.raises(AccessDenied) as refused, services.db.unit_of_work() as db:
        add_professional(db, actor, rpps=GP, last_name="FERRACCI", first_name="Jean", profession_code="10")
    assert refused.value.decision.reason.startswith("Seuls les conseillers du service")
    with pytest.raises(AccessDenied):
        import_directory(services.db, write_extract(tmp_path / "annuaire.txt", [GP_CABINET]), actor)
    assert professionals(services) == {}
    assert audit_entries(services, "directory.professional_added") == []
    assert audit_entries(services, "directory.import") == []
    denied = audit_entries(services, "directory.manage")
    assert [(e.outcome, e.actor_label, e.resource_type) for e in denied] == [
        ("deny", actor.label, "professional"),
        ("deny", actor.label, "directory"),
    ]
    assert all(e.chain == audit.NO_PATIENT_CHAIN for e in denied)
    operator = Actor(ActorKind.OPERATOR, "compte-conseiller", "Conseiller CPAM")
    with services.db.unit_of_work() as db:
        assert add_professional(
            db, operator, rpps=GP, last_name="FERRACCI", first_name="Jean", profession_code="10"
        ).created
