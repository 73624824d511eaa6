"""CAT-1, CAT-2 pages with the three actors (the patient, an authorised professional, strangers) and the operator:
the catalogue (browse, search, one app), « Signaler », « Applications connectées », the operator's review."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from carnet.bootstrap import Services
from carnet.catalogue.service import apps
from tests.catalogue.conftest import OPERATOR, REDIRECT, reference
from tests.conftest import csrf_of, log_in, text_of
from tests.support.actors import Actors


@pytest.fixture
def operator(demo: Services, new_client: Callable[[], TestClient]) -> TestClient:
    client = new_client()
    log_in(client, demo, "operateur.cpam")
    return client


def test_cat2_the_patient_browses_and_searches_the_catalogue_in_french(actors: Actors, demo: Services) -> None:
    reference(demo)
    base = f"/espace/{actors.patient_id}/applications"
    page = actors.patient.get(base)
    assert page.status_code == 200
    assert "Tensio Maison" in text_of(page) and "Balance connectée Tensio" in text_of(page)  # the demo's, and ours
    found = text_of(actors.patient.get(base, params={"q": "balance CONNECTEE"}))
    assert "Balance connectée Tensio" in found and "Tensio Maison" not in found
    assert "Aucune application ne correspond" in text_of(actors.patient.get(base, params={"q": "radiologie"}))


def test_cat2_an_app_page_says_what_it_reads_and_writes_and_an_app_not_online_is_not_there(
    actors: Actors, demo: Services
) -> None:
    app = reference(demo)
    page = actors.patient.get(f"/espace/{actors.patient_id}/applications/{app.id}")
    assert page.status_code == 200
    assert "Lire, rechercher et ajouter vos mesures" in text_of(page) and "Un an, en France." in text_of(page)
    apps.decide(demo, OPERATOR, app.id, "offline")
    assert actors.patient.get(f"/espace/{actors.patient_id}/applications/{app.id}").status_code == 404
    assert "Balance connectée" not in text_of(actors.patient.get(f"/espace/{actors.patient_id}/applications"))


def test_cat2_the_patient_reports_an_app_and_the_operator_sees_the_report(
    actors: Actors, demo: Services, operator: TestClient
) -> None:
    app = reference(demo)
    path = f"/espace/{actors.patient_id}/applications/{app.id}"
    token = csrf_of(actors.patient.get(path).text)
    empty = actors.patient.post(f"{path}/signaler", data={"motif": "  ", "csrf_token": token})
    assert empty.status_code == 400 and "Dites en quelques mots" in text_of(empty)
    sent = actors.patient.post(
        f"{path}/signaler", data={"motif": "Elle m'envoie de la publicité.", "csrf_token": token}
    )
    assert sent.status_code == 303
    history = text_of(actors.patient.get(f"/espace/{actors.patient_id}/historique"))
    assert "signalé l'application « Balance connectée Tensio »" in history  # « Vous avez signalé … »
    rows = {row.app.name: row for row in apps.review(demo, OPERATOR)}
    assert rows["Balance connectée Tensio"].reports == 1
    review = operator.get("/operateur/applications")
    assert review.status_code == 200 and "Balance connectée Tensio" in text_of(review)


@pytest.mark.parametrize("path", ["/applications", "/applications/connectees"], ids=["catalogue", "connected"])
def test_cat2_only_the_people_of_the_space_see_its_catalogue_and_connected_apps(actors: Actors, path: str) -> None:
    url = f"/espace/{actors.patient_id}{path}"
    assert actors.patient.get(url).status_code == 200
    for professional in (actors.professional, actors.unauthorised):  # even her médecin traitant
        sent_away = professional.get(url)  # to the professional's view of the space, which has no catalogue
        assert sent_away.status_code == 303 and sent_away.headers["location"].startswith("/pro/")
    assert actors.stranger.get(url).status_code == 403
    assert actors.anonymous.get(url).headers["location"] == "/connexion"


def test_cat2_strangers_cannot_disconnect_or_report_an_app_of_the_space(actors: Actors, demo: Services) -> None:
    app = reference(demo)
    for client in (actors.professional, actors.stranger):
        own = client.get("/")  # any page of theirs gives a CSRF token
        token = csrf_of(client.get(own.headers.get("location", "/")).text)
        url = f"/espace/{actors.patient_id}/applications/{app.id}"
        assert client.post(f"{url}/deconnecter", data={"csrf_token": token}).status_code == 403
        assert client.post(f"{url}/signaler", data={"csrf_token": token, "motif": "x"}).status_code == 403


def test_cat1_the_operator_reviews_and_publishes_an_application(operator: TestClient, demo: Services) -> None:
    made = apps.register(
        demo,
        OPERATOR,
        apps.Application("Podomètre Corsica", "Corsica Santé", (REDIRECT,), "patient/Observation.cr"),
    )
    page = operator.get("/operateur/applications")
    assert page.status_code == 200 and "En présérie" in text_of(page) and "Podomètre Corsica" in text_of(page)
    done = operator.post(
        f"/operateur/applications/{made.app.id}/decision",
        data={"decision": "publish", "csrf_token": csrf_of(page.text)},
    )
    assert done.status_code == 303
    assert "En ligne" in text_of(operator.get("/operateur/applications"))
    wrong = operator.post(
        f"/operateur/applications/{made.app.id}/decision",
        data={"decision": "publish", "csrf_token": csrf_of(page.text)},
    )
    assert wrong.status_code == 400 and "Impossible de passer" in text_of(wrong)


def test_cat1_only_operators_review_the_catalogue(actors: Actors) -> None:
    assert actors.patient.get("/operateur/applications").status_code == 403
    assert actors.professional.get("/operateur/applications").status_code == 403
    assert actors.anonymous.get("/operateur/applications").headers["location"] == "/connexion"
