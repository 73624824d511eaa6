"""The actors of every protected page: the patient, an authorised professional, strangers (another patient,
a professional the patient never authorised), anonymous visitors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from carnet.bootstrap import Services
from carnet.people.tables import Patient
from tests.conftest import log_in

PATIENT = "marie-ange.santoni"
STRANGER = "pierre-paul.luciani"  # another patient: a stranger to Marie-Ange's space
PROFESSIONAL = "dr.ferracci"  # Marie-Ange's médecin traitant (ACC-2)
UNAUTHORISED = "dominique.orsini"  # a dentist Marie-Ange never authorised (ACC-1)


@dataclass
class Actors:
    patient: TestClient
    professional: TestClient
    stranger: TestClient
    anonymous: TestClient
    patient_id: str
    unauthorised: TestClient


@pytest.fixture
def actors(demo: Services, new_client: Callable[[], TestClient]) -> Actors:
    clients = {}
    roles = (
        ("patient", PATIENT),
        ("professional", PROFESSIONAL),
        ("stranger", STRANGER),
        ("unauthorised", UNAUTHORISED),
    )
    for role, login in roles:
        clients[role] = new_client()
        log_in(clients[role], demo, login)
    with demo.db.unit_of_work() as db:
        patient_id = db.scalar(select(Patient.id).where(Patient.email == f"{PATIENT}@exemple.fr"))
    assert patient_id
    return Actors(
        clients["patient"],
        clients["professional"],
        clients["stranger"],
        new_client(),
        patient_id,
        clients["unauthorised"],
    )


@dataclass
class Feeders:
    """Three API clients: the hospital lab, the GP's software, the dentist's software (a stranger)."""

    client: TestClient
    lab: dict[str, str]
    gp: dict[str, str]
    dentist: dict[str, str]
    ins: str
    patient_id: str


def bearer(client: TestClient, client_id: str, secret: str) -> dict[str, str]:
    response = client.post(
        "/oauth/token", data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture
def feeders(demo: Services, client: TestClient) -> Feeders:
    from carnet.identity.service.clients import create_client

    with demo.db.unit_of_work() as db:
        lab = create_client(db, "LBM CH Bastia", finess="2B0000020")
        gp = create_client(db, "Logiciel du Dr Ferracci", rpps="10001234567")
        dentist = create_client(db, "Logiciel du Dr Orsini", rpps="10003456789")
        patient = db.scalar(select(Patient).where(Patient.email == f"{PATIENT}@exemple.fr"))
        assert patient is not None
        ins, patient_id = patient.ins, patient.id
    return Feeders(
        client,
        bearer(client, lab.client_id, lab.client_secret),
        bearer(client, gp.client_id, gp.client_secret),
        bearer(client, dentist.client_id, dentist.client_secret),
        ins,
        patient_id,
    )
