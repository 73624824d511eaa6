"""No 500 on any input (issue #15-2): a NUL (``%00``) in an address or a login. PostgreSQL refuses NUL in a text
parameter, so each used to be a 500 there (SQLite answered); now an id with a NUL is an unknown id, a search term
with one matches nothing, and a login with one is a wrong login — on SQLite and PostgreSQL alike."""

from __future__ import annotations

from fastapi.testclient import TestClient

from carnet.bootstrap import Services
from tests.conftest import csrf_of, text_of
from tests.support.actors import Actors, Feeders


def test_an_id_with_a_nul_in_the_patients_pages_is_an_unknown_one(actors: Actors) -> None:
    base = f"/espace/{actors.patient_id}"
    assert actors.patient.get("/espace/%00/documents").status_code == 403  # like any space that is not hers
    unknown = actors.patient.get(f"{base}/documents/%00")
    assert unknown.status_code == 404 and "introuvable" in text_of(unknown)
    listing = actors.patient.get(f"{base}/documents?categorie=%00&q=%00&auteur=%00&dossier=%00")
    assert listing.status_code == 200
    assert actors.patient.get("/famille/invitation?jeton=%00").status_code == 404


def test_an_id_with_a_nul_in_the_professionals_pages_is_refused_like_any_other(actors: Actors) -> None:
    assert actors.professional.get("/pro/patients/%00/documents").status_code == 403


def test_an_id_with_a_nul_over_fhir_is_not_found(feeders: Feeders) -> None:
    for path in ("DocumentReference/%00", "Binary/a%00b", "Patient/%00", "Consent/%00", "Observation/%00"):
        answer = feeders.client.get(f"/fhir/{path}", headers=feeders.gp)
        assert answer.status_code == 404, path
        assert answer.json()["resourceType"] == "OperationOutcome", path
    search = feeders.client.get(
        "/fhir/DocumentReference",
        params={"patient.identifier": f"urn:oid:1.2.250.1.213.1.4.8|{feeders.ins}", "author.identifier": "a\x00b"},
        headers=feeders.gp,
    )
    assert search.status_code == 200 and search.json()["total"] == 0  # the author with a NUL: nobody


def test_a_login_or_a_client_id_with_a_nul_is_a_wrong_one(demo: Services, client: TestClient) -> None:
    page = client.get("/connexion")
    answer = client.post(
        "/connexion",
        data={"identifiant": "marie-ange\x00.santoni", "mot_de_passe": "x", "csrf_token": csrf_of(page.text)},
    )
    assert answer.status_code == 400 and "caractère invalide" in text_of(answer)  # every form's answer to a NUL
    token = client.post(
        "/oauth/token", data={"grant_type": "client_credentials", "client_id": "a\x00b", "client_secret": "x"}
    )
    assert token.status_code == 401 and token.json()["error"] == "invalid_client"


def test_a_nul_typed_in_any_form_field_is_refused_with_a_400_and_nothing_changes(actors: Actors) -> None:
    """The family invitation's e-mail, a folder's name, an agenda title, a message: every portal form passes the
    same check (carnet.web.deps.csrf_protect) before its route reads anything."""
    base = f"/espace/{actors.patient_id}"
    page = actors.patient.get(f"{base}/documents")
    token = csrf_of(page.text)
    for path, fields in (
        (f"{base}/famille/aidant", {"email": "a\x00b@exemple.fr"}),
        (f"{base}/documents/dossiers", {"nom": "Dossier\x00"}),
        (f"{base}/agenda/nouveau", {"type": "rappel", "titre": "x\x00", "date": "2031-01-01", "journee": "oui"}),
    ):
        answer = actors.patient.post(path, data={"csrf_token": token, **fields}, follow_redirects=False)
        assert answer.status_code == 400 and "caractère invalide" in text_of(answer), path
    assert "Dossier" not in text_of(actors.patient.get(f"{base}/documents"))
