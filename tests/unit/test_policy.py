"""ACC-5: the single policy, tested as a table of actor kinds × whose space × action."""

from __future__ import annotations

import itertools

import pytest

from carnet.domain.actors import Actor, ActorKind
from carnet.domain.policy import Action, Facts, Resource, Scope, decide

OWN = "patient-a"
OTHER = "patient-b"


def actor(kind: ActorKind) -> Actor:
    own = OWN if kind in {ActorKind.PATIENT} else None
    return Actor(kind, f"{kind}-1", f"acteur {kind}", patient_id=own)


# Expected decisions before consent, representatives, caregivers, apps and emergency rules exist:
# the patient in their own space and the service's own automatic work are allowed everything;
# professionals and establishments may deposit into any open space (VLT-2) and search there,
# the search being limited to what they wrote (checked below).
FEEDERS = {ActorKind.PROFESSIONAL, ActorKind.ESTABLISHMENT}


LIFECYCLE = {Action.SPACE_CLOSE, Action.SPACE_REOPEN, Action.SPACE_DELETE}


ENROLMENT = {Action.ENROLMENT_MANAGE, Action.ENROLMENT_OBJECT, Action.ENROLMENT_LETTER, Action.SPACE_OPEN}


def expected(kind: ActorKind, space: str, action: Action) -> bool:
    if action in ENROLMENT:  # ENR-2, ENR-3: operators and the service; the person objects for themselves
        if kind in {ActorKind.OPERATOR, ActorKind.SYSTEM}:
            return True
        return action == Action.ENROLMENT_OBJECT and kind == ActorKind.PATIENT and space == OWN
    if action in LIFECYCLE:  # ENR-6: the person only; reopening needs a closed space (see below)
        return kind == ActorKind.PATIENT and space == OWN and action != Action.SPACE_REOPEN
    if kind == ActorKind.SYSTEM or (kind == ActorKind.PATIENT and space == OWN):
        return True
    return kind in FEEDERS and action in {Action.DOCUMENT_DEPOSIT, Action.DOCUMENT_SEARCH}


@pytest.mark.parametrize(("kind", "space", "action"), list(itertools.product(ActorKind, [OWN, OTHER], Action)))
def test_every_actor_kind_on_every_action(kind: ActorKind, space: str, action: Action) -> None:
    decision = decide(actor(kind), space, action, facts=Facts())
    assert decision.allowed == expected(kind, space, action)
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


PRO = Actor(ActorKind.PROFESSIONAL, "acc-pro", "Dr X", professional_id="pro-1")
OTHER_PRO = Actor(ActorKind.PROFESSIONAL, "acc-pro2", "Dr Y", professional_id="pro-2")
LAB = Actor(ActorKind.ESTABLISHMENT, "client-lab", "Labo", establishment_id="etab-1")


def doc(author: str = "pro-1", source: str = "professional", hidden: bool = False) -> Resource:
    return Resource("document", "d1", author_id=author, source=source, hidden_from_patient=hidden)


@pytest.mark.parametrize(
    ("who", "action", "resource", "allowed"),
    [
        (PRO, Action.DOCUMENT_READ, doc(), True),
        (PRO, Action.DOCUMENT_UPDATE, doc(), True),
        (OTHER_PRO, Action.DOCUMENT_READ, doc(), False),
        (OTHER_PRO, Action.DOCUMENT_UPDATE, doc(), False),
        (PRO, Action.DOCUMENT_MASK, doc(), False),
        (PRO, Action.DOCUMENT_DELETE, doc(), False),
        (LAB, Action.DOCUMENT_READ, doc(author="etab-1"), True),
        (LAB, Action.DOCUMENT_READ, doc(), False),
        (actor(ActorKind.PATIENT), Action.DOCUMENT_READ, doc(), True),
        (actor(ActorKind.PATIENT), Action.DOCUMENT_READ, doc(hidden=True), False),
        (actor(ActorKind.PATIENT), Action.DOCUMENT_MASK, doc(), True),
        (actor(ActorKind.PATIENT), Action.DOCUMENT_DELETE, doc(), False),
        (actor(ActorKind.PATIENT), Action.DOCUMENT_DELETE, doc(author="acc", source="patient"), True),
        (actor(ActorKind.PATIENT), Action.DOCUMENT_UPDATE, doc(), False),
    ],
)
def test_document_rules(who: Actor, action: Action, resource: Resource, allowed: bool) -> None:
    """VLT-5, VLT-6, VLT-7: authors, the patient, and deletion of professionals' documents."""
    decision = decide(who, OWN, action, resource)
    assert decision.allowed is allowed, decision
    assert decision.reason


def test_searches_are_scoped_by_the_policy() -> None:
    assert decide(PRO, OWN, Action.DOCUMENT_SEARCH).scope == Scope.AUTHORED
    assert decide(actor(ActorKind.PATIENT), OWN, Action.DOCUMENT_SEARCH).scope == Scope.PATIENT


@pytest.mark.parametrize(
    ("status", "action", "allowed"),
    [
        ("active", Action.SPACE_CLOSE, True),
        ("closed", Action.SPACE_CLOSE, False),
        ("closed", Action.SPACE_REOPEN, True),
        ("active", Action.SPACE_REOPEN, False),
        ("closed", Action.SPACE_DELETE, True),
        ("deleted", Action.SPACE_DELETE, False),
        ("closed", Action.SPACE_VIEW, False),
        ("closed", Action.DOCUMENT_SEARCH, False),
    ],
)
def test_a_closed_space_can_only_be_reopened_or_deleted_by_its_owner(
    status: str, action: Action, allowed: bool
) -> None:
    """ENR-6."""
    assert decide(actor(ActorKind.PATIENT), OWN, action, facts=Facts(patient_status=status)).allowed is allowed


OPERATOR = Actor(ActorKind.OPERATOR, "acc-op", "Conseiller CPAM de Corse")


@pytest.mark.parametrize("status", ["registered", "opposed", "active", "closed"])
@pytest.mark.parametrize(
    "action",
    [
        Action.SPACE_VIEW,
        Action.HISTORY_READ,
        Action.SETTINGS_READ,
        Action.DOCUMENT_SEARCH,
        Action.DOCUMENT_READ,
        Action.DOCUMENT_DEPOSIT,
        Action.SPACE_FIND,
        Action.SPACE_CLOSE,
    ],
)
def test_an_operator_manages_enrolment_but_never_reads_health_data(status: str, action: Action) -> None:
    """ENR-2/ENR-3 console: whatever the state of the space, an operator gets no document and no history."""
    facts = Facts(patient_status=status)
    assert not decide(OPERATOR, OWN, action, doc(), facts).allowed
    for enrolment in (Action.ENROLMENT_OBJECT, Action.ENROLMENT_LETTER, Action.SPACE_OPEN):
        assert decide(OPERATOR, OWN, enrolment, facts=facts).allowed


@pytest.mark.parametrize(
    ("who", "space", "action", "exists", "allowed"),
    [
        (OPERATOR, "-", Action.ENROLMENT_MANAGE, False, True),  # campaigns concern no one's space
        (actor(ActorKind.PATIENT), "-", Action.ENROLMENT_MANAGE, False, False),
        (PRO, "-", Action.ENROLMENT_MANAGE, False, False),
        (OPERATOR, OWN, Action.ENROLMENT_OBJECT, False, False),  # nobody to object for
        (Actor(ActorKind.REPRESENTATIVE, None, "Parent", patient_id=OWN), OWN, Action.ENROLMENT_OBJECT, True, True),
        (Actor(ActorKind.REPRESENTATIVE, None, "Parent", patient_id=OWN), OTHER, Action.ENROLMENT_OBJECT, True, False),
        (actor(ActorKind.PATIENT), OWN, Action.SPACE_OPEN, True, False),  # the person activates, not "opens"
        (actor(ActorKind.SYSTEM), OWN, Action.SPACE_OPEN, True, True),
    ],
)
def test_enrolment_rules(who: Actor, space: str, action: Action, exists: bool, allowed: bool) -> None:
    """ENR-2, ENR-3: the rule decides before the space is open (status "registered")."""
    decision = decide(who, space, action, facts=Facts(patient_exists=exists, patient_status="registered"))
    assert decision.allowed is allowed, decision
    assert decision.reason


@pytest.mark.parametrize(
    ("action", "resource", "allowed"),
    [
        (Action.SPACE_VIEW, None, True),
        (Action.DOCUMENT_SEARCH, None, True),
        (Action.DOCUMENT_READ, doc(), True),
        (Action.DOCUMENT_READ, Resource("document", "d", labels=frozenset({"INVISIBLE_REPRESENTANTS_LEGAUX"})), False),
        (Action.DOCUMENT_READ, doc(hidden=True), False),
        (Action.SPACE_CLOSE, None, False),
        (Action.SPACE_DELETE, None, False),
        (Action.SETTINGS_WRITE, None, True),
    ],
)
def test_a_parent_acts_in_the_attached_minors_space_with_limits(
    action: Action, resource: Resource | None, allowed: bool
) -> None:
    """FAM-1, FAM-2: the legal representative."""
    parent = actor(ActorKind.PATIENT)
    decision = decide(parent, OTHER, action, resource, Facts(legal_representative=True))
    assert decision.allowed is allowed, decision
    if action == Action.DOCUMENT_SEARCH:
        assert decision.scope == Scope.REPRESENTATIVE
