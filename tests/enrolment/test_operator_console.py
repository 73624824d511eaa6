"""ENR-2/ENR-3 operator console: the three actors, campaigns and progress, phone objections, letters."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader
from sqlalchemy import func, select

from carnet.bootstrap import Services
from carnet.config import Settings
from carnet.enrolment.service import admin, campaigns
from carnet.enrolment.tables import Campaign, Objection
from carnet.hall.actors import Actor, ActorKind
from carnet.hall.tables import AuditEntry
from carnet.people.tables import Patient
from tests.conftest import csrf_of, log_in, text_of
from tests.enrolment.test_registry_import import carnet
from tests.support.actors import Actors
from tests.support.enrolment import add_registered

OPERATOR = "operateur.cpam"
CLI_OPERATOR = Actor(ActorKind.OPERATOR, None, "Opérateur (ligne de commande)")


@pytest.fixture
def operator(demo: Services, new_client: Callable[[], TestClient]) -> TestClient:
    client = new_client()
    log_in(client, demo, OPERATOR)
    return client


def post_form(client: TestClient, path: str, data: dict[str, str]) -> object:
    page = client.get("/operateur")
    return client.post(path, data={**data, "csrf_token": csrf_of(page.text)})


def test_an_operator_lands_on_the_console_after_login(demo: Services, new_client: Callable[[], TestClient]) -> None:
    client = new_client()
    log_in(client, demo, OPERATOR)
    assert client.get("/").headers["location"] == "/operateur"
    page = client.get("/operateur")
    assert page.status_code == 200
    assert "Console des conseillers" in text_of(page) and "Conseiller CPAM de Corse" in text_of(page)


@pytest.mark.parametrize("path", ["/operateur", "/operateur/campagnes/inconnue"])
def test_patients_and_professionals_are_refused_and_strangers_sent_to_login(
    actors: Actors, operator: TestClient, path: str
) -> None:
    assert operator.get(path).status_code in {200, 404}
    for client in (actors.patient, actors.professional):
        assert client.get(path).status_code == 403
    anonymous = actors.anonymous.get(path)
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/connexion"


def test_a_patient_cannot_start_a_campaign_or_look_people_up(actors: Actors, demo: Services) -> None:
    person = add_registered(demo, 1, "2A", with_email=False)[0]
    page = actors.patient.get(f"/espace/{actors.patient_id}")
    token = csrf_of(page.text)
    started = actors.patient.post("/operateur/campagnes", data={"departements": "2A", "csrf_token": token})
    looked_up = actors.professional.post(
        "/operateur/courrier", data={"nir": person.ins, "naissance": "14/03/1985", "csrf_token": token}
    )
    assert started.status_code == 403 and looked_up.status_code == 403
    with demo.db.unit_of_work() as db:
        assert db.scalar(select(func.count()).select_from(Campaign)) == 0
        refusals = db.scalars(select(AuditEntry).where(AuditEntry.outcome == "deny")).all()
        assert {entry.action for entry in refusals} >= {"enrolment.manage"}


def test_an_operator_never_reads_a_patients_space(actors: Actors, operator: TestClient) -> None:
    for path in ("", "/historique", "/documents", "/parametres"):
        assert operator.get(f"/espace/{actors.patient_id}{path}").status_code == 403


def test_an_operator_starts_a_campaign_and_follows_its_progress(operator: TestClient, demo: Services) -> None:
    add_registered(demo, 4, "2A")
    add_registered(demo, 2, "2B", with_email=False, start=50)

    response = post_form(operator, "/operateur/campagnes", {"departements": "2a, 2b"})

    assert response.status_code == 303
    campaign_url = response.headers["location"].split("?")[0]
    page = text_of(operator.get(response.headers["location"]))
    assert "Campagne lancée" in page and "Campagne 2A, 2B" in page
    campaigns.send_pending(demo)
    page = text_of(operator.get(campaign_url))
    assert "Personnes invitées</th><td>6</td>" in page and "E-mails envoyés</th><td>2</td>" in page
    console = text_of(operator.get("/operateur"))
    assert "2A, 2B" in console

    produced = post_form(operator, f"{campaign_url}/courriers", {})
    assert produced.status_code == 303
    page = operator.get(campaign_url)
    link = page.text.split(f'href="{campaign_url}/courriers/', 1)[1].split('"', 1)[0]
    pdf = operator.get(f"{campaign_url}/courriers/{link}")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert len(PdfReader(io.BytesIO(pdf.content)).pages) == 4  # 2 without e-mail in 2A + 2 in 2B
    with demo.db.unit_of_work() as db:
        assert db.scalar(select(AuditEntry).where(AuditEntry.action == "letters.downloaded")) is not None
        produced_entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "letters.produced"))
        assert produced_entry is not None and produced_entry.actor_kind == "operator"
    [progress] = campaigns.campaign_progress(demo, CLI_OPERATOR)
    assert (progress.invited, progress.sent, progress.letters, progress.letters_waiting) == (6, 2, 4, 0)


def test_a_bad_departement_is_named(operator: TestClient) -> None:
    response = post_form(operator, "/operateur/campagnes", {"departements": "2A,99"})
    assert response.status_code == 400 and "Département inconnu : « 99 »" in text_of(response)


def test_an_objection_by_phone_is_recorded_with_a_receipt_and_can_be_withdrawn(
    operator: TestClient, demo: Services
) -> None:
    person = add_registered(demo, 1, "2A", with_email=False)[0]

    response = post_form(
        operator,
        "/operateur/oppositions",
        {"nir": person.ins, "naissance": "14/03/1985", "appelant": "representant", "operation": "opposer"},
    )

    assert response.status_code == 200
    page = text_of(response)
    assert "Opposition enregistrée" in page
    with demo.db.unit_of_work() as db:
        objection = db.scalar(select(Objection))
        assert objection is not None and objection.channel == "phone"
        assert "Conseiller CPAM de Corse" in objection.recorded_by and "représentant légal" in objection.recorded_by
        assert db.scalar(select(Patient.status).where(Patient.id == person.id)) == "opposed"
        entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "enrolment.objection"))
        assert entry is not None and entry.actor_kind == "operator"
    receipt = operator.get(f"/operateur/oppositions/{objection.id}/recepisse")
    assert receipt.status_code == 200 and receipt.headers["content-type"] == "application/pdf"
    text = " ".join(PdfReader(io.BytesIO(receipt.content)).pages[0].extract_text().split())
    assert objection.receipt_number in text and "par téléphone" in text and "représentant légal" in text

    wrong = post_form(
        operator, "/operateur/oppositions", {"nir": person.ins, "naissance": "01/01/1990", "operation": "opposer"}
    )
    assert wrong.status_code == 400 and "Aucune personne ne correspond" in text_of(wrong)
    withdrawn = post_form(
        operator, "/operateur/oppositions", {"nir": person.ins, "naissance": "14/03/1985", "operation": "retirer"}
    )
    assert "Opposition retirée" in text_of(withdrawn)
    with demo.db.unit_of_work() as db:
        assert db.scalar(select(Patient.status).where(Patient.id == person.id)) == "registered"


def test_an_operator_prints_one_persons_letter_again(operator: TestClient, demo: Services) -> None:
    person = add_registered(demo, 1, "2B", with_email=False)[0]
    early = post_form(operator, "/operateur/courrier", {"nir": person.ins, "naissance": "14/03/1985"})
    assert early.status_code == 400 and "Aucune invitation" in text_of(early)
    campaigns.start_campaign(demo, "2B", CLI_OPERATOR)
    campaigns.render_pending_letters(demo)

    response = post_form(operator, "/operateur/courrier", {"nir": person.ins, "naissance": "14/03/1985"})

    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    assert person.name in PdfReader(io.BytesIO(response.content)).pages[0].extract_text()


def test_only_operators_produce_letters_or_print_receipts_again(actors: Actors, demo: Services) -> None:
    add_registered(demo, 2, "2A", with_email=False)
    campaign = campaigns.start_campaign(demo, "2A", CLI_OPERATOR)
    token = csrf_of(actors.patient.get(f"/espace/{actors.patient_id}").text)

    produced = actors.patient.post(f"/operateur/campagnes/{campaign.id}/courriers", data={"csrf_token": token})
    receipt = actors.patient.get("/operateur/oppositions/inconnue/recepisse")

    assert produced.status_code == 403 and receipt.status_code == 403  # whatever the id: nothing learnt
    [progress] = campaigns.campaign_progress(demo, CLI_OPERATOR)
    assert (progress.letters, progress.letters_waiting) == (0, 2)
    with demo.db.unit_of_work() as db:
        refused = set(db.scalars(select(AuditEntry.action).where(AuditEntry.outcome == "deny")))
        assert "enrolment.manage" in refused
        assert db.scalar(select(AuditEntry).where(AuditEntry.action == "letters.produced")) is None


def test_producing_the_letters_of_an_unknown_campaign_does_nothing(operator: TestClient, demo: Services) -> None:
    add_registered(demo, 1, "2A", with_email=False)
    campaigns.start_campaign(demo, "2A", CLI_OPERATOR)
    assert campaigns.produce_letters(demo, CLI_OPERATOR, "inconnue") == []
    [progress] = campaigns.campaign_progress(demo, CLI_OPERATOR)
    assert progress.letters_waiting == 1


def test_a_campaign_that_would_invite_nobody_is_refused_not_created_nor_reported_started(
    operator: TestClient, demo: Services, settings: Settings, tmp_path: Path
) -> None:
    """Issue #15-13: everyone of the territory already invited (or with a space): a clear refusal, no campaign —
    on the console and at the command line."""
    add_registered(demo, 2, "2B", with_email=False, start=70)
    first = campaigns.start_campaign(demo, "2B", CLI_OPERATOR)

    again = post_form(operator, "/operateur/campagnes", {"departements": "2B"})
    empty = post_form(operator, "/operateur/campagnes", {"departements": "971"})
    command = carnet(
        "campaign", "start", "--departements", "2B", data_dir=tmp_path / "data", database_url=settings.database_url
    )

    assert again.status_code == 400 and empty.status_code == 400
    page = text_of(again)
    assert "Personne à inviter dans le département 2B" in page and "Aucune campagne n'a été lancée." in page
    assert "Campagne lancée" not in page and 'value="2B"' in again.text  # the form keeps what was typed
    assert "Aucune personne du registre n'habite dans le département 971" in text_of(empty)
    assert command.returncode == 2, command.stdout
    assert "Personne à inviter dans le département 2B" in command.stderr and "invitée(s)" not in command.stdout
    assert [item.campaign.id for item in campaigns.campaign_progress(demo, CLI_OPERATOR)] == [first.id]
    with demo.db.unit_of_work() as db:
        assert db.scalar(select(func.count()).select_from(Campaign)) == 1
        assert db.scalar(select(func.count()).where(AuditEntry.action == "campaign.started")) == 1


# --- the registry, sent from the console (issue #15-13) -------------------------------------------------------

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "registre-exemple.csv"


def upload(client: TestClient, name: str, content: bytes, token: str | None = None) -> Any:
    token = token if token is not None else csrf_of(client.get("/operateur").text)
    return client.post(
        "/operateur/registre", data={"csrf_token": token}, files={"fichier": (name, content, "text/csv")}
    )


def imports_left(demo: Services) -> list[Path]:
    folder = demo.settings.resolved_data_dir / "imports"
    return sorted(folder.iterdir()) if folder.exists() else []


def test_an_operator_uploads_the_registry_and_reads_the_same_report_as_the_command(
    operator: TestClient, demo: Services
) -> None:
    """ENR-1 from /operateur: the documented example file loads as it is; a new upload updates, never duplicates."""
    first = upload(operator, "registre-exemple.csv", EXAMPLE.read_bytes())

    assert first.status_code == 200, text_of(first)
    page = text_of(first)
    assert "Registre importé : registre-exemple.csv" in page
    assert "5 lignes lues, 5 ajoutées, 0 mises à jour, 0 rejetées." in page
    assert "2 personne(s) chargée(s) sans numero_serie_vitale" in page and "Lignes rejetées" not in page
    with demo.db.unit_of_work() as db:
        loaded = {p.ins: p for p in db.scalars(select(Patient).where(Patient.ins.in_(EXAMPLE_INS)))}
        assert {p.status for p in loaded.values()} == {"registered"}
        assert loaded["115092A00432154"].attached_to_id == loaded["168072A00412348"].id
        entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "registry.import"))
        assert entry is not None and entry.actor_kind == "operator" and entry.details["inserted"] == 5
    again = upload(operator, "registre-exemple.csv", EXAMPLE.read_bytes())
    assert "5 lignes lues, 0 ajoutées, 5 mises à jour, 0 rejetées." in text_of(again)
    assert imports_left(demo) == [], "la copie du registre est effacée après l'import"


def test_only_an_operator_imports_the_registry(actors: Actors, demo: Services) -> None:
    """ENR-1: a patient, a professional (with a valid form token) and a stranger post the example file: nothing is
    loaded, no copy is kept, and the refusals are in the history."""
    token = csrf_of(actors.patient.get(f"/espace/{actors.patient_id}").text)
    for client in (actors.patient, actors.professional):
        assert upload(client, "registre-exemple.csv", EXAMPLE.read_bytes(), token).status_code == 403
    stranger = upload(actors.anonymous, "registre-exemple.csv", EXAMPLE.read_bytes(), token)
    assert stranger.status_code == 403  # not signed in: the form token is not theirs
    with demo.db.unit_of_work() as db:
        assert db.scalar(select(func.count()).select_from(Patient).where(Patient.ins.in_(EXAMPLE_INS))) == 0
        assert db.scalar(select(AuditEntry).where(AuditEntry.action == "registry.import")) is None
        refused = set(db.scalars(select(AuditEntry.action).where(AuditEntry.outcome == "deny")))
        assert "enrolment.manage" in refused
    assert imports_left(demo) == []


EXAMPLE_INS = ("168072A00412348", "271022B03304573", "115092A00432154", "285039913401239", "152022000408782")


def test_refused_lines_are_listed_on_the_page_as_the_command_lists_them(
    operator: TestClient, demo: Services, settings: Settings, tmp_path: Path
) -> None:
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    broken = [lines[0], lines[1].replace("1968-07-21", "1968-02-30"), lines[2], lines[2], lines[4] + ";de trop"]
    path = tmp_path / "registre.csv"
    path.write_text("\n".join(broken) + "\n", encoding="utf-8")

    response = upload(operator, "registre.csv", path.read_bytes())
    command = carnet("registry", "import", str(path), data_dir=tmp_path / "data", database_url=settings.database_url)

    assert response.status_code == 200
    page = text_of(response)
    assert "4 lignes lues, 1 ajoutées, 0 mises à jour, 3 rejetées." in page and "Lignes rejetées (3)" in page
    assert "Corrigez les lignes rejetées dans le fichier puis importez-le de nouveau" in page
    refused = [line.strip() for line in command.stderr.splitlines() if line.strip().startswith("ligne ")]
    assert len(refused) == 3 and command.returncode == 1
    for line in refused:  # word for word what the command printed
        assert f"<li>{line}</li>" in page
    assert "ligne 2 : date_naissance « 1968-02-30 » n'existe pas" in refused
    assert "4 lignes lues, 0 ajoutées, 1 mises à jour, 3 rejetées." in command.stdout  # the page loaded the good one


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("registre.xlsx", b"PK\x03\x04", "Le registre doit être un fichier CSV (.csv)"),
        ("", b"", "Choisissez le fichier du registre à importer."),
        ("registre.csv", b"ins;nom_naissance\n", "colonne(s) manquante(s)"),
        ("registre.csv", "ins;nom\nJérôme\n".encode("latin-1"), "n'est pas encodé en UTF-8"),
        ("registre.csv", b"", "Le fichier est vide"),
    ],
    ids=["not-csv", "no-file", "wrong-header", "latin-1", "empty"],
)
def test_a_file_refused_as_a_whole_says_why_and_loads_nothing(
    operator: TestClient, demo: Services, name: str, content: bytes, message: str
) -> None:
    with demo.db.unit_of_work() as db:
        before = db.scalar(select(func.count()).select_from(Patient))

    response = upload(operator, name, content)

    assert response.status_code == 400 and message in text_of(response), text_of(response)
    assert "Action impossible" in text_of(response) and "Registre importé" not in text_of(response)
    with demo.db.unit_of_work() as db:
        assert db.scalar(select(func.count()).select_from(Patient)) == before
    assert imports_left(demo) == []


def test_a_file_over_the_size_limit_is_refused_before_anything_is_loaded(
    operator: TestClient, demo: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(admin, "UPLOAD_MAX_BYTES", 1024 * 1024)
    content = EXAMPLE.read_bytes() + b"\n" * (1024 * 1024)

    response = upload(operator, "registre.csv", content)

    assert response.status_code == 400
    assert "Le fichier dépasse 1 Mo (1,0 Mo) : importez-le en ligne de commande" in text_of(response)
    with demo.db.unit_of_work() as db:
        assert db.scalar(select(func.count()).select_from(Patient).where(Patient.ins.in_(EXAMPLE_INS))) == 0
    assert imports_left(demo) == []


def test_only_operators_upload_the_registry(
    actors: Actors, demo: Services, new_client: Callable[[], TestClient]
) -> None:
    """The three actors: a patient and a professional are refused (nothing loaded, refusal kept), an anonymous
    visitor is sent to the login page, a form without its CSRF token is refused."""
    for client, home in ((actors.patient, f"/espace/{actors.patient_id}"), (actors.professional, "/pro")):
        token = csrf_of(client.get(home).text)
        assert upload(client, "registre.csv", EXAMPLE.read_bytes(), token).status_code == 403
    token = csrf_of(actors.anonymous.get("/connexion").text)
    anonymous = upload(actors.anonymous, "registre.csv", EXAMPLE.read_bytes(), token)
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/connexion"
    operator = new_client()
    log_in(operator, demo, OPERATOR)
    assert upload(operator, "registre.csv", EXAMPLE.read_bytes(), "jeton-faux").status_code == 403
    with demo.db.unit_of_work() as db:
        assert db.scalar(select(func.count()).select_from(Patient).where(Patient.ins.in_(EXAMPLE_INS))) == 0
        refused = db.scalars(
            select(AuditEntry.actor_kind).where(AuditEntry.action == "enrolment.manage", AuditEntry.outcome == "deny")
        ).all()
        assert sorted(refused) == ["patient", "professional"]
        assert db.scalar(select(AuditEntry).where(AuditEntry.action == "registry.import")) is None
    assert imports_left(demo) == []
