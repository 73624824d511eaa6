"""Every page of a patient's space with the three actors (ACC-5): the patient, a professional, a stranger.
The professional's side (/pro) is tested in tests/web/test_pro_pages.py."""

from __future__ import annotations

import pytest

from tests.conftest import csrf_of, text_of
from tests.support.actors import Actors

PAGES = ["", "/historique", "/parametres"]


@pytest.mark.parametrize("page", PAGES)
def test_the_patient_opens_every_page_of_their_space(actors: Actors, page: str) -> None:
    response = actors.patient.get(f"/espace/{actors.patient_id}{page}")
    assert response.status_code == 200
    assert "Espace de Marie-Ange SANTONI" in text_of(response)


@pytest.mark.parametrize("page", PAGES)
def test_others_are_refused_every_page_without_learning_anything(actors: Actors, page: str) -> None:
    response = actors.stranger.get(f"/espace/{actors.patient_id}{page}")
    assert response.status_code == 403
    assert "Vous n'avez pas accès à cet espace." in text_of(response)
    assert "SANTONI" not in text_of(response) and "Marie-Ange" not in text_of(response)


@pytest.mark.parametrize("page", PAGES)
def test_professionals_are_sent_to_the_professional_view(actors: Actors, page: str) -> None:
    """The patient portal is for patients; the professional view asks the policy (tests/web/test_pro_pages.py)."""
    response = actors.unauthorised.get(f"/espace/{actors.patient_id}{page}")
    assert response.status_code == 303
    assert response.headers["location"] == f"/pro/patients/{actors.patient_id}/documents"
    refused = actors.unauthorised.get(response.headers["location"])
    assert refused.status_code == 403
    assert "SANTONI" not in text_of(refused) and "Marie-Ange" not in text_of(refused)


@pytest.mark.parametrize("page", PAGES)
def test_anonymous_visitors_are_sent_to_the_login_page(actors: Actors, page: str) -> None:
    response = actors.anonymous.get(f"/espace/{actors.patient_id}{page}")
    assert response.status_code == 303
    assert response.headers["location"] == "/connexion"


def test_an_unknown_space_looks_the_same_as_a_forbidden_one(actors: Actors) -> None:
    unknown = actors.stranger.get("/espace/00000000-0000-4000-8000-000000000000")
    forbidden = actors.stranger.get(f"/espace/{actors.patient_id}")
    assert unknown.status_code == forbidden.status_code == 403
    assert text_of(unknown).replace(" ", "") == text_of(forbidden).replace(" ", "")


def test_only_the_patient_can_change_their_security_settings(actors: Actors) -> None:
    url = f"/espace/{actors.patient_id}/parametres/totp"
    for who in ("unauthorised", "stranger"):
        client = getattr(actors, who)
        token = csrf_of(client.get("/pro" if who == "unauthorised" else "/espace", follow_redirects=True).text)
        assert client.post(url, data={"etape": "commencer", "csrf_token": token}).status_code == 403
    token = csrf_of(actors.patient.get(f"/espace/{actors.patient_id}/parametres").text)
    assert actors.patient.post(url, data={"etape": "commencer", "csrf_token": token}).status_code == 200


def test_the_history_tells_in_french_who_did_what_including_refusals(actors: Actors) -> None:
    actors.unauthorised.get(f"/pro/patients/{actors.patient_id}/documents")
    actors.stranger.get(f"/espace/{actors.patient_id}")
    page = actors.patient.get(f"/espace/{actors.patient_id}/historique")
    assert page.status_code == 200
    text = text_of(page)
    assert "Vous" in text and "vous êtes connecté(e) à l'espace" in text
    assert "Dr Dominique ORSINI (professionnel de santé)" in text
    assert "Pierre-Paul LUCIANI" in text and "a tenté une ouverture de l'espace santé — refusée" in text
    assert "Carnet (données de démonstration)" in text


def test_pages_carry_the_security_headers(actors: Actors) -> None:
    response = actors.patient.get(f"/espace/{actors.patient_id}")
    headers = response.headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    assert headers["cache-control"] == "no-store"
    assert "strict-transport-security" not in headers  # plain HTTP: HSTS only makes sense on TLS
