"""The catalogue's fixtures: a referenced app EN_LIGNE (public client, PKCE), the live server the app's OAuth client
library talks to, and the patient's browser (a portal session)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from carnet.bootstrap import Services
from carnet.catalogue.service import apps
from carnet.hall.actors import Actor, ActorKind
from tests.browser.conftest import live_server  # noqa: F401  (uvicorn on a free port over the demo data)
from tests.conftest import csrf_of, log_in

OPERATOR = Actor(ActorKind.OPERATOR, "compte-operateur", "Conseiller CPAM de Corse")
REDIRECT = "https://appli.exemple.fr/retour"
SCOPE = (
    "launch/patient offline_access patient/Observation.crs patient/DocumentReference.rs patient/Binary.r "
    "patient/Appointment.rs"
)


@dataclass(frozen=True)
class ReferencedApp:
    id: str
    client_id: str
    client_secret: str | None
    name: str


def reference(
    services: Services, name: str = "Balance connectée Tensio", confidential: bool = False, **more: object
) -> ReferencedApp:
    fields: dict[str, object] = {
        "name": name,
        "editor": "Tensio SAS",
        "redirect_uris": (REDIRECT,),
        "scope": "patient/Observation.crs patient/DocumentReference.rs patient/Binary.r patient/Appointment.rs",
        "description": "Envoie le poids et la tension mesurés à la maison.",
        "purpose": "Lit et ajoute vos mesures pour tracer leur évolution.",
        "retention": "Un an, en France.",
        "category": "Objet connecté",
        "confidential": confidential,
        **more,
    }
    made = apps.register(services, OPERATOR, apps.Application(**fields))  # type: ignore[arg-type]
    apps.decide(services, OPERATOR, made.app.id, "publish")
    return ReferencedApp(made.app.id, made.app.client_id, made.client_secret, made.app.name)


@pytest.fixture
def app(demo: Services) -> ReferencedApp:
    return reference(demo)


@pytest.fixture
def patient_browser(demo: Services, new_client: Callable[[], TestClient]) -> TestClient:
    browser = new_client()
    log_in(browser, demo, "marie-ange.santoni")
    return browser


def hidden_fields(page: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page))


def consent(browser: TestClient, authorize_url: str, decision: str = "autoriser") -> str:
    """The person opens the app's link, reads the consent screen and decides; returns where they are sent."""
    path = authorize_url[authorize_url.index("/oauth/") :]
    page = browser.get(path)
    assert page.status_code == 200, page.text
    import html

    form = {k: html.unescape(v) for k, v in hidden_fields(page.text).items()}
    form["csrf_token"] = csrf_of(page.text)
    answer = browser.post("/oauth/authorize", data={**form, "decision": decision})
    assert answer.status_code == 303, answer.text
    return answer.headers["location"]
