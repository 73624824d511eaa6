"""VLT-2 / issue #9: registering a system for the FHIR API is an operator's act, decided by the policy and
recorded in the service's own history."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from carnet.bootstrap import Services
from carnet.hall.actors import Actor, ActorKind
from carnet.hall.guard import AccessDenied
from carnet.hall.tables import AuditEntry
from carnet.identity.service.clients import register_client

OPERATOR = Actor(ActorKind.OPERATOR, None, "Conseillère CPAM")


def _entries(services: Services) -> list[tuple[str, str]]:
    with services.db.unit_of_work() as db:
        rows = db.execute(select(AuditEntry.action, AuditEntry.outcome).where(AuditEntry.action == "client.manage"))
        return [tuple(row) for row in rows]  # type: ignore[misc]


def test_an_operator_registers_a_client_and_it_is_recorded(demo: Services) -> None:
    created = register_client(demo, OPERATOR, "LBM CH Bastia", finess="2B0000020")
    assert created.client_id.startswith("carnet-") and len(created.client_secret) > 30
    assert _entries(demo) == [("client.manage", "allow")]


@pytest.mark.parametrize(
    "actor",
    [
        Actor(ActorKind.PATIENT, "compte", "Marie-Ange Santoni", patient_id="p"),
        Actor(ActorKind.PROFESSIONAL, "compte", "Dr Ferracci", professional_id="x", rpps="10001234567"),
    ],
    ids=["patient", "professional"],
)
def test_no_one_else_may_register_a_client_and_the_refusal_is_kept(demo: Services, actor: Actor) -> None:
    with pytest.raises(AccessDenied):
        register_client(demo, actor, "Logiciel pirate", finess="2B0000020")
    assert _entries(demo) == [("client.manage", "deny")]
