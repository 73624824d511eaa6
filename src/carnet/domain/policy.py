"""The single access-decision point (ACC-5).

``decide`` is pure: the service layer gathers the ``Facts`` about the actor and the patient
(from storage) and asks; the answer says allow/deny and, always, why. Rules are tried in
order and the first one that has an opinion wins; when none has, access is denied.
Later capabilities (consent, médecin traitant, blocking, emergency, minors, caregivers, apps)
add rules here and facts to ``Facts`` — never a check of their own in a route or a query.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from carnet.domain.actors import Actor, ActorKind


class Action(StrEnum):
    """What an actor wants to do to a patient's space."""

    SPACE_VIEW = "space.view"
    HISTORY_READ = "history.read"
    SETTINGS_READ = "settings.read"
    SETTINGS_WRITE = "settings.write"
    SPACE_FIND = "space.find"


@dataclass(frozen=True)
class Resource:
    type: str
    id: str | None = None


@dataclass(frozen=True)
class Facts:
    """What the service layer knows about the actor and the patient when it asks."""

    patient_exists: bool = True
    patient_status: str = "active"
    extra: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    rule: str

    def __bool__(self) -> bool:
        return self.allowed


Rule = Callable[[Actor, str, Action, Resource | None, Facts], Decision | None]


def _allow(rule: str, reason: str) -> Decision:
    return Decision(True, reason, rule)


def _deny(rule: str, reason: str) -> Decision:
    return Decision(False, reason, rule)


def rule_unknown_space(
    actor: Actor, patient_id: str, action: Action, resource: Resource | None, facts: Facts
) -> Decision | None:
    if not facts.patient_exists or facts.patient_status != "active":
        return _deny("unknown_space", "Cet espace n'existe pas ou n'est pas ouvert.")
    return None


def rule_own_space(
    actor: Actor, patient_id: str, action: Action, resource: Resource | None, facts: Facts
) -> Decision | None:
    if actor.kind == ActorKind.PATIENT and actor.patient_id == patient_id:
        return _allow("own_space", "La personne agit dans son propre espace.")
    return None


def rule_system(
    actor: Actor, patient_id: str, action: Action, resource: Resource | None, facts: Facts
) -> Decision | None:
    if actor.kind == ActorKind.SYSTEM:
        return _allow("system", "Traitement automatique du service.")
    return None


RULES: list[Rule] = [rule_unknown_space, rule_own_space, rule_system]

DEFAULT_DENY = _deny("no_rule", "Vous n'êtes pas autorisé à accéder à cet espace.")


def decide(
    actor: Actor, patient_id: str, action: Action, resource: Resource | None = None, facts: Facts | None = None
) -> Decision:
    """Allow or deny ``action`` by ``actor`` on ``patient_id``'s space, with the reason."""
    facts = facts or Facts()
    for rule in RULES:
        decision = rule(actor, patient_id, action, resource, facts)
        if decision is not None:
            return decision
    return DEFAULT_DENY
