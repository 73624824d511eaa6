"""ACC-5: the single policy, tested as a table of actor kinds × whose space × action."""

from __future__ import annotations

import itertools

import pytest

from carnet.domain.actors import Actor, ActorKind
from carnet.domain.policy import Action, Facts, decide

OWN = "patient-a"
OTHER = "patient-b"


def actor(kind: ActorKind) -> Actor:
    own = OWN if kind in {ActorKind.PATIENT} else None
    return Actor(kind, f"{kind}-1", f"acteur {kind}", patient_id=own)


# Expected decisions before consent, representatives, caregivers, apps and emergency rules exist:
# only the patient in their own space, and the service's own automatic work, are allowed.
EXPECTED_ALLOWED = {(ActorKind.PATIENT, OWN), (ActorKind.SYSTEM, OWN), (ActorKind.SYSTEM, OTHER)}


@pytest.mark.parametrize(("kind", "space", "action"), list(itertools.product(ActorKind, [OWN, OTHER], Action)))
def test_every_actor_kind_on_every_action(kind: ActorKind, space: str, action: Action) -> None:
    decision = decide(actor(kind), space, action, facts=Facts())
    assert decision.allowed == ((kind, space) in EXPECTED_ALLOWED)
    assert decision.reason  # always a reason, allowed or not
    assert decision.rule


@pytest.mark.parametrize("status", ["closed", "archived", "pending"])
def test_a_space_that_is_not_open_is_refused_even_to_its_owner(status: str) -> None:
    decision = decide(actor(ActorKind.PATIENT), OWN, Action.SPACE_VIEW, facts=Facts(patient_status=status))
    assert not decision.allowed and decision.rule == "unknown_space"


def test_a_missing_space_is_refused_with_a_french_reason() -> None:
    decision = decide(actor(ActorKind.SYSTEM), OWN, Action.SPACE_VIEW, facts=Facts(patient_exists=False))
    assert not decision and "n'existe pas" in decision.reason


def test_a_patient_is_a_stranger_to_another_patients_space() -> None:
    decision = decide(actor(ActorKind.PATIENT), OTHER, Action.HISTORY_READ)
    assert not decision.allowed
    assert decision.reason == "Vous n'êtes pas autorisé à accéder à cet espace."
