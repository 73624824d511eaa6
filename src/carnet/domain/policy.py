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
    SPACE_CLOSE = "space.close"
    SPACE_REOPEN = "space.reopen"
    SPACE_DELETE = "space.delete"
    ENROLMENT_MANAGE = "enrolment.manage"  # campaigns, progress, letter batches (the service-wide "-" space)
    ENROLMENT_OBJECT = "enrolment.object"  # record or withdraw an objection to the creation of a space
    ENROLMENT_LETTER = "enrolment.letter"  # print one person's invitation letter again (it carries the code)
    SPACE_OPEN = "space.open"  # create (open) a registered person's space: after 6 weeks, or by an operator


DOCUMENT_ACTIONS = {a for a in Action if a.value.startswith("document.")}
ENROLMENT_ACTIONS = {Action.ENROLMENT_MANAGE, Action.ENROLMENT_OBJECT, Action.ENROLMENT_LETTER, Action.SPACE_OPEN}


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
    legal_representative: bool = False  # the actor is the parent this minor is attached to (FAM-1)
    extra: dict[str, object] = field(default_factory=dict)


class Scope(StrEnum):
    """Which documents a search may return, as decided by the policy (applied by the query)."""

    PATIENT = "patient"  # the patient's own view: all but those still hidden from the patient
    AUTHORED = "authored"  # only documents the actor wrote
    REPRESENTATIVE = "representative"  # the patient's view minus INVISIBLE_REPRESENTANTS_LEGAUX
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


def rule_owner_lifecycle(
    actor: Actor, patient_id: str, action: Action, resource: Resource | None, facts: Facts
) -> Decision | None:
    """ENR-6: only the person closes, reopens or deletes their space — a closed one included."""
    if action not in {Action.SPACE_CLOSE, Action.SPACE_REOPEN, Action.SPACE_DELETE}:
        return None
    if actor.kind != ActorKind.PATIENT or actor.patient_id != patient_id or not facts.patient_exists:
        return _deny(
            "lifecycle_owner_only", "Seule la personne elle-même peut fermer, rouvrir ou supprimer son espace."
        )
    allowed_from = {
        Action.SPACE_CLOSE: {"active"},
        Action.SPACE_REOPEN: {"closed"},
        Action.SPACE_DELETE: {"active", "closed"},
    }[action]
    if facts.patient_status not in allowed_from:
        return _deny("lifecycle_state", "Cette action n'est pas possible dans l'état actuel de l'espace.")
    return _allow("lifecycle_owner", "La personne gère la vie de son espace.")


def rule_enrolment(
    actor: Actor, patient_id: str, action: Action, resource: Resource | None, facts: Facts
) -> Decision | None:
    """ENR-2, ENR-3: enrolment happens before a space is open, so this rule decides whatever the status.

    Operators and the service's automatic work run campaigns, record objections, print letters and
    open spaces; the person (or their legal representative), identified by the activation code and
    their identity traits, objects or withdraws an objection for themselves only.
    """
    if action not in ENROLMENT_ACTIONS:
        return None
    if action != Action.ENROLMENT_MANAGE and not facts.patient_exists:
        return _deny("unknown_space", "Cet espace n'existe pas ou n'est pas ouvert.")
    if actor.kind in {ActorKind.OPERATOR, ActorKind.SYSTEM}:
        return _allow("enrolment_operator", "Les conseillers gèrent les campagnes, les oppositions et l'ouverture.")
    own = actor.patient_id == patient_id and actor.kind in {ActorKind.PATIENT, ActorKind.REPRESENTATIVE}
    if action == Action.ENROLMENT_OBJECT and own:
        return _allow("enrolment_self", "La personne (ou son représentant légal) décide pour elle-même.")
    return _deny("enrolment_operators_only", "Seuls les conseillers du service peuvent effectuer cette action.")


def rule_operator_no_health_data(
    actor: Actor, patient_id: str, action: Action, resource: Resource | None, facts: Facts
) -> Decision | None:
    """Operators manage enrolment (above) and never see documents, history or settings."""
    if actor.kind == ActorKind.OPERATOR:
        return _deny("operator_no_health_data", "Un conseiller n'accède jamais aux données de santé ni à l'historique.")
    return None


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


REPRESENTATIVE_ACTIONS = {
    Action.SPACE_VIEW,
    Action.HISTORY_READ,
    Action.DOCUMENT_SEARCH,
    Action.DOCUMENT_READ,
    Action.DOCUMENT_DEPOSIT,
    Action.DOCUMENT_MASK,
    Action.FOLDER_WRITE,
    Action.SETTINGS_READ,
    Action.SETTINGS_WRITE,
}


def rule_legal_representative(
    actor: Actor, patient_id: str, action: Action, resource: Resource | None, facts: Facts
) -> Decision | None:
    """FAM-1 (first part): the parent a minor is attached to acts in the child's space; documents the
    minor asked to hide from their representatives (FAM-2) stay hidden."""
    if actor.kind != ActorKind.PATIENT or not facts.legal_representative:
        return None
    if resource is not None and ("INVISIBLE_REPRESENTANTS_LEGAUX" in resource.labels or resource.hidden_from_patient):
        return _deny("hidden_from_representatives", "Ce document n'est pas visible des représentants légaux.")
    if action == Action.DOCUMENT_SEARCH:
        return _allow(
            "legal_representative", "Le représentant légal consulte l'espace de l'enfant.", Scope.REPRESENTATIVE
        )
    if action in REPRESENTATIVE_ACTIONS:
        return _allow("legal_representative", "Le représentant légal agit dans l'espace de l'enfant.")
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
    rule_enrolment,
    rule_owner_lifecycle,
    rule_unknown_space,
    rule_operator_no_health_data,
    rule_patient_documents,
    rule_professional_documents,
    rule_own_space,
    rule_legal_representative,
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
