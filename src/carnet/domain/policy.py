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
    DOCUMENT_DEPOSIT = "document.deposit"
    DOCUMENT_SEARCH = "document.search"
    DOCUMENT_READ = "document.read"
    DOCUMENT_MASK = "document.mask"
    DOCUMENT_DELETE = "document.delete"
    DOCUMENT_UPDATE = "document.update"
    FOLDER_WRITE = "folder.write"


DOCUMENT_ACTIONS = {a for a in Action if a.value.startswith("document.")}


@dataclass(frozen=True)
class Resource:
    """What is acted on; for a document, who wrote it and how it is labelled."""

    type: str
    id: str | None = None
    author_id: str | None = None
    source: str | None = None
    labels: frozenset[str] = frozenset()
    hidden_from_patient: bool = False


@dataclass(frozen=True)
class Facts:
    """What the service layer knows about the actor and the patient when it asks."""

    patient_exists: bool = True
    patient_status: str = "active"
    extra: dict[str, object] = field(default_factory=dict)


class Scope(StrEnum):
    """Which documents a search may return, as decided by the policy (applied by the query)."""

    PATIENT = "patient"  # the patient's own view: all but those still hidden from the patient
    AUTHORED = "authored"  # only documents the actor wrote
    ALL = "all"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    rule: str
    scope: Scope | None = None

    def __bool__(self) -> bool:
        return self.allowed


Rule = Callable[[Actor, str, Action, Resource | None, Facts], Decision | None]


def _allow(rule: str, reason: str, scope: Scope | None = None) -> Decision:
    return Decision(True, reason, rule, scope)


def _deny(rule: str, reason: str) -> Decision:
    return Decision(False, reason, rule)


def rule_unknown_space(
    actor: Actor, patient_id: str, action: Action, resource: Resource | None, facts: Facts
) -> Decision | None:
    if not facts.patient_exists or facts.patient_status != "active":
        return _deny("unknown_space", "Cet espace n'existe pas ou n'est pas ouvert.")
    return None


def author_keys(actor: Actor) -> set[str]:
    """The identities under which an actor's documents are filed (a professional, an establishment)."""
    return {key for key in (actor.professional_id, actor.establishment_id) if key}


def rule_patient_documents(
    actor: Actor, patient_id: str, action: Action, resource: Resource | None, facts: Facts
) -> Decision | None:
    """VLT-5..7 for the patient in their own space."""
    if actor.kind != ActorKind.PATIENT or actor.patient_id != patient_id or action not in DOCUMENT_ACTIONS:
        return None
    if action == Action.DOCUMENT_SEARCH:
        return _allow("patient_documents", "La personne consulte ses documents.", Scope.PATIENT)
    if resource is not None and resource.hidden_from_patient and action != Action.DOCUMENT_DEPOSIT:
        return _deny("invisible_patient", "Ce document sera visible après la consultation d'annonce.")
    if action == Action.DOCUMENT_DELETE and resource is not None and resource.source != "patient":
        return _deny(
            "professional_document_kept",
            "Un document déposé par un professionnel ne peut pas être supprimé : vous pouvez le masquer.",
        )
    if action == Action.DOCUMENT_UPDATE and resource is not None and resource.source != "patient":
        return _deny("not_author", "Seul l'auteur d'un document peut le corriger ou le remplacer.")
    return _allow("patient_documents", "La personne agit sur ses documents.")


def rule_professional_documents(
    actor: Actor, patient_id: str, action: Action, resource: Resource | None, facts: Facts
) -> Decision | None:
    """VLT-2: professionals and establishments feed any open space; they see what they wrote."""
    if actor.kind not in {ActorKind.PROFESSIONAL, ActorKind.ESTABLISHMENT} or action not in DOCUMENT_ACTIONS:
        return None
    if action == Action.DOCUMENT_DEPOSIT:
        return _allow("professional_deposit", "Les professionnels alimentent l'espace santé.")
    if action == Action.DOCUMENT_SEARCH:
        return _allow("professional_own_documents", "Recherche limitée aux documents de l'auteur.", Scope.AUTHORED)
    readable = action in {Action.DOCUMENT_READ, Action.DOCUMENT_UPDATE} and resource is not None
    if readable and resource is not None and resource.author_id and resource.author_id in author_keys(actor):
        return _allow("document_author", "L'auteur accède à son propre document.")
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


RULES: list[Rule] = [
    rule_unknown_space,
    rule_patient_documents,
    rule_professional_documents,
    rule_own_space,
    rule_system,
]

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
