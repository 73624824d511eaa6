"""The three actors of every protected page: the patient, a professional, a stranger."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from carnet.services.context import Services
from carnet.storage.tables import Patient
from tests.conftest import log_in

PATIENT = "marie-ange.santoni"
STRANGER = "pierre-paul.luciani"  # another patient: a stranger to Marie-Ange's space
PROFESSIONAL = "dr.ferracci"


@dataclass
class Actors:
    patient: TestClient
    professional: TestClient
    stranger: TestClient
    anonymous: TestClient
    patient_id: str


@pytest.fixture
def actors(demo: Services, new_client: Callable[[], TestClient]) -> Actors:
    clients = {}
    for role, login in (("patient", PATIENT), ("professional", PROFESSIONAL), ("stranger", STRANGER)):
        clients[role] = new_client()
        log_in(clients[role], demo, login)
    with demo.db.unit_of_work() as db:
        patient_id = db.scalar(select(Patient.id).where(Patient.email == f"{PATIENT}@exemple.fr"))
    assert patient_id
    return Actors(clients["patient"], clients["professional"], clients["stranger"], new_client(), patient_id)
