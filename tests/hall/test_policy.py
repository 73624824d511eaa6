"""ACC-5: the single policy (``policy.decide``), tested as a table.

The core is an exhaustive table: every actor kind (the patient in their own space, a legal representative,
a caregiver, another patient, professionals of several professions with every kind of standing, an
establishment, an operator, the service itself, an app, the by-code representative of the opposition pages)
× space status (open, closed, unknown) × the patient's three emergency toggles × every ``Action`` × for the
actions on one document, every document: 12 categories × 10 confidentiality label sets (none, N, MASQUE_PS,
INVISIBLE_PATIENT pending or due, INVISIBLE_REPRESENTANTS_LEGAUX, and their combinations) × written by the
actor or by someone else, with a patient or a professional source. (In a closed or unknown space two
categories stand for the twelve: nothing reaches a document there, and it keeps the run to seconds.)

The expected decision comes from ``expected`` below, an oracle written from the specification (ACC-1..5,
FAM-1..3, VLT-5..7, ENR-2/3/6) as small tables of "who may do what"; it never calls the policy's helpers
(it reads the profession matrix as the data it is, from ``access_matrix.json``). Each case checks
allowed/denied, a French reason, for searches the scope (``Scope`` + categories + masked documents), for
the history which entries (all of them, or the actor's own actions: TRC-2);
each allowed search is also checked against the reads: a search lists exactly the documents a read of the
same actor would give (no leak through listings, nothing hidden that may be read).

The table runs as one loop per actor family (a parametrised case per combination would take minutes): each
test reports the number of combinations it checked.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any

import pytest

from carnet.access.model.matrix import MATRIX_CATEGORIES
from carnet.hall.actors import Actor, ActorKind
from carnet.hall.policy import Action, Decision, Facts, Resource, Scope, decide

A = Action
SPACE = "espace-de-la-personne"  # the space acted on
OWN_KEY = {"patient": SPACE, "parent": "espace-du-parent", "aidant": "espace-de-l-aidant"}

# ====================================================================== the oracle, from the specification

_MATRIX = json.loads(resources.files("carnet.data").joinpath("access_matrix.json").read_text(encoding="utf-8"))
CATEGORIES = sorted(MATRIX_CATEGORIES)
EVERY_CATEGORY = frozenset(CATEGORIES)


def matrix_row(profession: str | None) -> frozenset[str]:
    """ACC-1: what a profession sees (the matrix is data); a code without a row gets the default row."""
    return frozenset(_MATRIX["professions"].get(profession or "", _MATRIX["default"]))


ENROLMENT = {A.ENROLMENT_MANAGE, A.ENROLMENT_OBJECT, A.ENROLMENT_LETTER, A.SPACE_OPEN}
LIFECYCLE = {A.SPACE_CLOSE: {"active"}, A.SPACE_REOPEN: {"closed"}, A.SPACE_DELETE: {"active", "closed"}}  # ENR-6
ON_ONE_DOCUMENT = {A.DOCUMENT_READ, A.DOCUMENT_MASK, A.DOCUMENT_DELETE, A.DOCUMENT_UPDATE}
PROFESSIONAL_ACTS = {A.CONSENT_RECORD, A.CONSENT_READ, A.EMERGENCY_START}  # ACC-1 "the professional records"
# (and reads back what they recorded), ACC-4 "breaks the glass"
OPERATOR_WORK = {
    A.CARE_TEAM_MANAGE,
    A.DIRECTORY_MANAGE,
    A.CLIENT_MANAGE,
    A.APP_MANAGE,
}  # ACC-1, VLT-2, CAT-1: directory,
# teams, API clients, the app catalogue

# Who may do what in an open space. A condition names a rule of ``condition_holds`` (below);
# an action not listed is refused. Documents add their own rules on top (``document_allows``).
MAY: dict[str, dict[Action, str] | set[Action]] = {
    # The person in their own space does everything (the document rules of VLT-5..7 apply), except the
    # acts of a professional, enrolment (operators) and closing/reopening/deleting (ENR-6, state-dependent).
    # MSG-1: only the professional closes a conversation.
    "patient": set(Action) - ENROLMENT - set(LIFECYCLE) - PROFESSIONAL_ACTS - {A.MESSAGE_CLOSE},
    # FAM-1: the parent manages the child's space: reads, adds, masks, files, settings, who may access,
    # the second representative and caregivers, reports in the history. Carnet's reading where the spec
    # is silent: never deletes nor replaces a document, never closes the space (ENR-6: the person only).
    "legal_representative": {
        A.SPACE_VIEW,
        A.HISTORY_READ,
        A.SETTINGS_READ,
        A.SETTINGS_WRITE,
        A.DOCUMENT_SEARCH,
        A.DOCUMENT_READ,
        A.DOCUMENT_DEPOSIT,
        A.DOCUMENT_MASK,
        A.FOLDER_WRITE,
        A.ACCESS_MANAGE,
        A.FAMILY_MANAGE,
        A.HISTORY_REPORT,
        A.PROFILE_READ,  # PRF-1: the profile as the person's (tests/profile/test_policy_profile.py: per item)
        A.PROFILE_WRITE,
        A.PROFILE_MASK,
        A.AGENDA_READ,  # AGD-1..3: the agenda and the recommended examinations, as the person's
        A.AGENDA_WRITE,
        A.PREVENTION_READ,
        A.PREVENTION_WRITE,
        A.MESSAGE_READ,  # MSG-1: reads and answers for the minor (never closes: the professional does)
        A.MESSAGE_WRITE,
        A.SPACE_EXPORT,  # ENR-7: takes the child's record away (a caregiver never exports: FAM-3)
        A.APP_CONNECT,  # CAT-2: connects, disconnects and reports the child's apps (never a caregiver)
    },
    # FAM-3: read, add, edit (mask, folders), be notified; never credentials or contact details (settings),
    # close, delete, export; Carnet's reading: nor who may access the space, nor family, nor reports.
    "caregiver": {
        A.SPACE_VIEW,
        A.HISTORY_READ,
        A.SETTINGS_READ,
        A.DOCUMENT_SEARCH,
        A.DOCUMENT_READ,
        A.DOCUMENT_DEPOSIT,
        A.DOCUMENT_MASK,
        A.FOLDER_WRITE,
        A.PROFILE_READ,
        A.PROFILE_WRITE,
        A.PROFILE_MASK,
        A.AGENDA_READ,
        A.AGENDA_WRITE,
        A.PREVENTION_READ,
        A.PREVENTION_WRITE,
    },
    "professional": {
        A.DOCUMENT_DEPOSIT: "always",  # VLT-2; ACC-3: a blocked professional still deposits
        A.SPACE_FIND: "always",  # TD0.2: finds the space and learns whether and why not
        A.CONSENT_RECORD: "not_blocked",  # ACC-1; ACC-3: after a block only the patient authorises again
        A.CONSENT_READ: "always",  # ACC-1: reads back the consents that authorise them, blocked or not
        A.EMERGENCY_START: "emergency_allowed",  # ACC-4: unless blocked or the patient's toggle says no
        A.SPACE_VIEW: "standing",  # ACC-1..4
        A.DOCUMENT_SEARCH: "always",  # scoped: their own documents, plus what their standing gives
        A.DOCUMENT_READ: "author_or_standing",  # VLT-5: the author always sees their document
        A.DOCUMENT_UPDATE: "author",  # VLT-7: the author replaces or withdraws their own document
        # TRC-2 "the médecin traitant and the author see theirs": every professional reads a history — all
        # of it as médecin traitant / administrator (not blocked), else their own actions (``history_scope``)
        A.HISTORY_READ: "always",
        A.PROFILE_READ: "always",  # PRF-3: scoped like documents (tests/profile/test_policy_profile.py)
        A.PROFILE_WRITE: "always",  # a new item: professionals feed the profile as they feed the vault
        A.AGENDA_READ: "always",  # AGD-1: scoped to the appointments they gave (scope AUTHORED)
        A.AGENDA_WRITE: "always",  # a new appointment, in any open space (like a deposit)
        # AGD-2: with a standing, by a profession that reads the vaccinations — every row of
        # profile_access.json does today, so the standing decides
        A.PREVENTION_READ: "standing",
        # MSG-1: writes to any open space unless blocked; reads their own conversations only (scope AUTHORED);
        # closes only their own (the table's conversation is another professional's)
        A.MESSAGE_READ: "not_blocked",
        A.MESSAGE_WRITE: "not_blocked",
    },
    "establishment": {  # VLT-2: feeds the space, finds and corrects what it sent; never reads more
        A.PROFILE_READ: "always",  # what it sent only (scope AUTHORED)
        A.PROFILE_WRITE: "always",
        A.AGENDA_READ: "always",  # the appointments it gave only (scope AUTHORED)
        A.AGENDA_WRITE: "always",
        A.DOCUMENT_DEPOSIT: "always",
        A.SPACE_FIND: "always",
        A.DOCUMENT_SEARCH: "always",
        A.DOCUMENT_READ: "author",
        A.DOCUMENT_UPDATE: "author",
        A.MESSAGE_READ: "not_blocked",  # MSG-1, like a professional
        A.MESSAGE_WRITE: "not_blocked",
    },
    # The service's own automatic work (notices, reveal job, demo loading): everything but the acts that
    # only a person takes (ENR-6 lifecycle, the professional's consent and emergency).
    "system": set(Action) - ENROLMENT - set(LIFECYCLE) - PROFESSIONAL_ACTS,
    # CAT-3: an app connected to this space (a live consent, the app EN_LIGNE) reads what the person reads and adds
    # documents, measures and appointments; it never manages the space
    "app": {
        A.SPACE_FIND,
        A.DOCUMENT_SEARCH,
        A.DOCUMENT_READ,
        A.DOCUMENT_DEPOSIT,
        A.PROFILE_READ,
        A.PROFILE_WRITE,
        A.AGENDA_READ,
        A.AGENDA_WRITE,
    },
    # another patient, an operator (ENR-2/3 only), an app bound to another space or disconnected …
    "stranger": set(),
}

# Documents hidden from someone whatever the action (VLT-6, FAM-2; a caregiver sees no more than a
# representative: otherwise a parent could show a minor's confidential care to a caregiver they chose).
HIDDEN_FROM_REPRESENTATIVES = "INVISIBLE_REPRESENTANTS_LEGAUX"


@dataclass(frozen=True)
class Doc:
    """A document of the table: how it is labelled, filed and who wrote it."""

    name: str
    resource: Resource

    @property
    def masked(self) -> bool:
        return "MASQUE_PS" in self.resource.labels

    @property
    def pending(self) -> bool:  # INVISIBLE_PATIENT, before the announcement consultation (VLT-6)
        return self.resource.hidden_from_patient


@dataclass(frozen=True)
class Who:
    """One row of actors: the actor, the family of the oracle table, and what the hall would know."""

    family: str
    actor: Actor
    facts: dict[str, Any] = field(default_factory=dict)
    name: str = ""

    @property
    def author_keys(self) -> set[str]:
        """Under which identities the vault files what this actor writes (a professional, an establishment)."""
        return {k for k in (self.actor.professional_id, self.actor.establishment_id) if k}


@dataclass(frozen=True)
class Expect:
    allowed: bool
    scope: Scope | None = None
    categories: frozenset[str] | None = None
    include_masked: bool = False


DENY = Expect(False)


def reading_rights(facts: Facts, profession: str | None) -> tuple[frozenset[str], bool] | None:
    """What a professional may read beyond their own documents: (categories, masked ones too?), or None.

    ACC-3: blocked, nothing. Otherwise the union of what each ground gives: the administrator status
    (médecin traitant or given by the patient, ACC-2: everything, masked included); consent (ACC-1: the
    profession's row); an emergency access the patient did not refuse (ACC-4: the row, masked documents
    only if the third toggle allows).
    """
    if facts.blocked:
        return None
    grounds: list[tuple[frozenset[str], bool]] = []
    if facts.administrator:
        grounds.append((EVERY_CATEGORY, True))
    if facts.consent:
        grounds.append((matrix_row(profession), False))
    toggle = {"samu": facts.emergency_samu, "bris_de_glace": facts.emergency_professionals}
    if facts.emergency and toggle[facts.emergency]:
        grounds.append((matrix_row(profession), facts.emergency_masked))
    if not grounds:
        return None
    return frozenset().union(*(c for c, _ in grounds)), any(m for _, m in grounds)


def condition_holds(condition: str, who: Who, facts: Facts, doc: Doc | None) -> bool:
    authored = doc is not None and doc.resource.author_id in who.author_keys
    rights = reading_rights(facts, who.actor.profession_code) if who.family == "professional" else None
    if condition == "always":
        return True
    if condition == "not_blocked":
        return not facts.blocked
    if condition == "emergency_allowed":
        toggle = facts.emergency_samu if facts.samu_regulator else facts.emergency_professionals
        return not facts.blocked and toggle
    if condition == "standing":
        return rights is not None
    if condition == "author":
        return authored
    if condition == "author_or_standing":
        if authored:
            return True
        if rights is None or doc is None:
            return False
        categories, masked_too = rights
        return doc.resource.category in categories and (masked_too or not doc.masked)
    raise AssertionError(condition)


def expected(who: Who, status: str, facts: Facts, action: Action, doc: Doc | None) -> Expect:
    """The decision the specification asks for."""
    actor = who.actor
    if action in OPERATOR_WORK:  # ACC-1: the service's operators (and its automatic work), whatever the state
        return Expect(actor.kind in {ActorKind.OPERATOR, ActorKind.SYSTEM})
    if action in ENROLMENT:  # ENR-2/3: decided before any space is open, whatever its state
        if action != A.ENROLMENT_MANAGE and status == "absent":
            return DENY
        if actor.kind in {ActorKind.OPERATOR, ActorKind.SYSTEM}:
            return Expect(True)
        # the person objects for themselves, or their representative with the letter's code (REPRESENTATIVE)
        own = actor.kind in {ActorKind.PATIENT, ActorKind.REPRESENTATIVE} and actor.patient_id == SPACE
        return Expect(action == A.ENROLMENT_OBJECT and own)
    if action in LIFECYCLE:  # ENR-6: the person alone, in a state that allows it
        return Expect(who.family == "patient" and status in LIFECYCLE[action])
    if status != "active":
        return DENY
    may = MAY[who.family]
    if isinstance(may, set):
        if action not in may:
            return DENY
    elif action not in may or not condition_holds(may[action], who, facts, doc):
        return DENY
    if doc is not None and not document_allows(who, action, doc):
        return DENY
    if action == A.HISTORY_READ:
        return history_scope(who, facts)
    if action != A.DOCUMENT_SEARCH:
        return Expect(True)
    return search_scope(who, facts)


def document_allows(who: Who, action: Action, doc: Doc) -> bool:
    """VLT-5..7, FAM-2 on one document, once the actor may do the action at all."""
    if who.family == "patient":
        if doc.pending:  # VLT-6: not before the announcement consultation
            return False
        if action in {A.DOCUMENT_DELETE, A.DOCUMENT_UPDATE}:  # VLT-7: only the patient's own uploads
            return doc.resource.source == "patient"
        return True
    if who.family in {"legal_representative", "caregiver"}:
        return not doc.pending and HIDDEN_FROM_REPRESENTATIVES not in doc.resource.labels
    if who.family == "app":  # CAT-3: what the person reads
        return not doc.pending
    return True


def search_scope(who: Who, facts: Facts) -> Expect:
    if who.family in {"patient", "app"}:
        return Expect(True, Scope.PATIENT)
    if who.family in {"legal_representative", "caregiver"}:
        return Expect(True, Scope.REPRESENTATIVE)
    if who.family == "system":
        return Expect(True, Scope.ALL)
    rights = reading_rights(facts, who.actor.profession_code) if who.family == "professional" else None
    if rights is None:
        return Expect(True, Scope.AUTHORED)
    categories, masked_too = rights
    return Expect(True, Scope.PROFESSIONAL, categories, masked_too)


def history_scope(who: Who, facts: Facts) -> Expect:
    """TRC-2: which entries of the history a reader gets. A professional: the whole history (``Scope.ALL``)
    as médecin traitant or administrator the patient did not block — consent or an emergency give no wider
    history — otherwise only the entries of their own actions (``Scope.OWN_ACTIONS``). Anyone else allowed
    reads the whole history (scope ``None`` here: however the decision words it, never ``OWN_ACTIONS``)."""
    if who.family != "professional":
        return Expect(True)
    return Expect(True, Scope.ALL if facts.administrator and not facts.blocked else Scope.OWN_ACTIONS)


def history_scope_matches(decision: Decision, want: Expect) -> bool:
    if want.scope is None:  # the whole history (the patient's, a representative's view …)
        return decision.scope != Scope.OWN_ACTIONS
    return decision.scope == want.scope


def listed(decision: Decision, who: Who, doc: Doc) -> bool:
    """Whether a search decided so lists the document, as the vault's query applies it (vault.search)."""
    resource = doc.resource
    authored = resource.author_id in who.author_keys
    if decision.scope == Scope.AUTHORED:
        return authored
    if decision.scope == Scope.PROFESSIONAL:
        categories = decision.categories if decision.categories is not None else EVERY_CATEGORY
        return authored or (resource.category in categories and (decision.include_masked or not doc.masked))
    if decision.scope == Scope.PATIENT:
        return not doc.pending
    if decision.scope == Scope.REPRESENTATIVE:
        return not doc.pending and HIDDEN_FROM_REPRESENTATIVES not in resource.labels
    return decision.scope == Scope.ALL


# ====================================================================== the dimensions of the table

STATUSES = {"active": Facts(), "closed": Facts(patient_status="closed"), "absent": Facts(patient_exists=False)}
TOGGLES = [
    {"emergency_samu": samu, "emergency_professionals": pros, "emergency_masked": masked}
    for samu, pros, masked in itertools.product([True, False], repeat=3)
]
LABELS = {  # name → (labels, hidden from the patient now)
    "aucun": (set(), False),
    "N": ({"N"}, False),
    "MASQUE_PS": ({"MASQUE_PS"}, False),
    "INVISIBLE_PATIENT": ({"INVISIBLE_PATIENT"}, True),
    "INVISIBLE_PATIENT échu": ({"INVISIBLE_PATIENT"}, False),
    "INVISIBLE_REPRESENTANTS_LEGAUX": ({"INVISIBLE_REPRESENTANTS_LEGAUX"}, False),
    "MASQUE_PS+INVISIBLE_PATIENT": ({"MASQUE_PS", "INVISIBLE_PATIENT"}, True),
    "MASQUE_PS+INVISIBLE_REPRESENTANTS_LEGAUX": ({"MASQUE_PS", "INVISIBLE_REPRESENTANTS_LEGAUX"}, False),
    "INVISIBLE_PATIENT+INVISIBLE_REPRESENTANTS_LEGAUX": ({"INVISIBLE_PATIENT", "INVISIBLE_REPRESENTANTS_LEGAUX"}, True),
    "les trois": ({"MASQUE_PS", "INVISIBLE_PATIENT", "INVISIBLE_REPRESENTANTS_LEGAUX"}, True),
}
OTHER_AUTHORS = {"patient": "espace-de-la-personne", "professional": "pro-auteur"}


def documents(who: Who, categories: Iterable[str] = CATEGORIES) -> list[Doc]:
    """Every document of the table for this actor: written by them (if they can write) or by others."""
    own_source = {ActorKind.PATIENT: "patient", ActorKind.PROFESSIONAL: "professional"}.get(who.actor.kind)
    if who.actor.kind == ActorKind.ESTABLISHMENT:
        own_source = "professional"
    authorships = [(f"écrit par {source}", author, source) for source, author in OTHER_AUTHORS.items()]
    mine = sorted(who.author_keys) or [who.actor.patient_id]
    if own_source and mine[0] and mine[0] != SPACE:  # the person's own uploads are "écrit par patient"
        authorships.append(("écrit par l'acteur", mine[0], own_source))
    return [
        Doc(
            f"{category}, {label}, {authorship}",
            Resource(
                "document",
                "doc",
                author_id=author,
                source=source,
                labels=frozenset(labels),
                hidden_from_patient=hidden,
                category=category,
            ),
        )
        for category, (label, (labels, hidden)), (authorship, author, source) in itertools.product(
            categories, LABELS.items(), authorships
        )
    ]


NOT_ON_A_DOCUMENT = {  # what the services pass for the other actions
    A.DOCUMENT_SEARCH: Resource("documents"),
    A.DOCUMENT_DEPOSIT: Resource("document", "nouveau", source="new"),
    A.FOLDER_WRITE: Resource("folder"),
    A.ACCESS_MANAGE: Resource("access"),
    A.CONSENT_RECORD: Resource("access"),
    A.EMERGENCY_START: Resource("access"),
    A.FAMILY_MANAGE: Resource("family"),
    A.ENROLMENT_OBJECT: Resource("objection"),
    A.PROFILE_READ: Resource("profile"),
    A.PROFILE_WRITE: Resource("profile_item", category="allergies"),  # a new item
    A.PROFILE_MASK: Resource(
        "profile_item", "item", author_id="pro-auteur", source="professional", category="allergies"
    ),
    A.AGENDA_READ: Resource("agenda"),
    A.AGENDA_WRITE: Resource("agenda_event"),  # a new appointment
    A.PREVENTION_READ: Resource("prevention"),
    A.PREVENTION_WRITE: Resource("prevention"),
    A.MESSAGE_READ: Resource("messagerie"),
    # writing again to a professional who already wrote (a new conversation with a correspondent)
    A.MESSAGE_WRITE: Resource("message_thread", author_id="pro-auteur", source="correspondant"),
    A.MESSAGE_CLOSE: Resource("message_thread", "fil", author_id="pro-auteur", source="ouvert"),
}


def patient(key: str, name: str) -> Actor:
    return Actor(ActorKind.PATIENT, f"compte-{key}", name, patient_id=OWN_KEY.get(key, key))


PERSONS = [
    Who("patient", patient("patient", "Marie-Ange Santoni"), name="la personne dans son espace"),
    Who("legal_representative", patient("parent", "Laetitia Casanova"), {"legal_representative": True}, "parent"),
    Who("caregiver", patient("aidant", "Aidant"), {"caregiver": True}, "aidant"),
    Who("stranger", patient("autre-espace", "Pierre-Paul Luciani"), name="un autre patient"),
]
OTHERS = [
    Who("establishment", Actor(ActorKind.ESTABLISHMENT, "client-lab", "Labo", establishment_id="etab-1"), name="labo"),
    Who("stranger", Actor(ActorKind.OPERATOR, "compte-op", "Conseiller CPAM"), name="conseiller"),
    Who("system", Actor.system(), name="service"),
    Who("stranger", Actor(ActorKind.APP, "appli", "Appli référencée"), name="application"),
    Who("app", Actor(ActorKind.APP, "appli", "Appli", patient_id=SPACE), {"app_connected": True}, "appli connectée"),
    Who("stranger", Actor(ActorKind.APP, "appli", "Appli", patient_id=SPACE), name="appli déconnectée"),
    Who(
        "stranger",
        Actor(ActorKind.APP, "appli", "Appli", patient_id="autre"),
        {"app_connected": True},
        "appli d'un autre espace",
    ),
    Who("stranger", Actor(ActorKind.REPRESENTATIVE, None, "Parent (code)", patient_id=SPACE), name="parent par code"),
    Who("stranger", Actor(ActorKind.REPRESENTATIVE, None, "Parent (code)", patient_id="autre"), name="code d'un autre"),
    Who("stranger", Actor(ActorKind.CAREGIVER, "aidant", "Aidant (sans espace)"), name="aidant sans espace"),
]
STANDINGS: dict[str, dict[str, Any]] = {
    "sans consentement": {},
    "consentement": {"consent": True},
    "administrateur": {"administrator": True},
    "médecin traitant": {"consent": True, "administrator": True},  # what the hall reports for that grant
    "urgence bris de glace": {"emergency": "bris_de_glace"},
    "urgence SAMU": {"emergency": "samu", "samu_regulator": True},
    "régulateur SAMU sans urgence": {"samu_regulator": True},
    "consentement + urgence": {"consent": True, "emergency": "bris_de_glace"},
    "bloqué + consentement": {"blocked": True, "consent": True},
    "bloqué + administrateur": {"blocked": True, "consent": True, "administrator": True},
    "bloqué + urgence": {"blocked": True, "emergency": "bris_de_glace"},
}
PROFESSIONS = ["10", "21", "40", "60", "99"]  # médecin, pharmacien, dentiste, infirmier, a code without a row


def professional(profession: str | None, standing: str) -> Who:
    actor = Actor(
        ActorKind.PROFESSIONAL,
        f"compte-pro-{profession}",
        f"Pro {profession}",
        professional_id=f"pro-{profession}",
        rpps="10001234567",
        profession_code=profession,
    )
    return Who("professional", actor, STANDINGS[standing], f"professionnel {profession}, {standing}")


# ====================================================================== running the table

FRENCH = re.compile(r"\b(la|le|les|de|des|du|un|une|vous|ce|cet|cette|à|n'|l'|d')\b|[éèêàç]", re.IGNORECASE)


@dataclass
class Tally:
    checked: int = 0
    failures: list[str] = field(default_factory=list)
    reasons: set[str] = field(default_factory=set)
    listings: int = 0  # documents checked for "listed by the search ⇔ readable"

    def fail(self, text: str) -> None:
        if len(self.failures) < 30:
            self.failures.append(text)


def contexts(rows: Iterable[Who]) -> Iterator[tuple[Who, str, Facts]]:
    for who, (status, base), toggles in itertools.product(rows, STATUSES.items(), TOGGLES):
        yield who, status, replace(base, **who.facts, **toggles)


def run(rows: Iterable[Who], tally: Tally | None = None) -> Tally:
    """Check every combination for these actors; failures are collected, not raised one by one."""
    tally = tally or Tally()
    docs_of: dict[tuple[str, bool], list[Doc]] = {}
    for who, status, facts in contexts(rows):
        # In a space that is not open nothing reaches a document: there, two categories (one every
        # profession sees, one the dentist does not) stand for the twelve.
        key = (who.name, status == "active")
        docs = docs_of.get(key) or docs_of.setdefault(
            key, documents(who, CATEGORIES if status == "active" else ["SYNTHESE", "DIR_ANT"])
        )
        search: Decision | None = None
        reads: list[Decision] = []
        for action in Action:
            targets: list[Doc | None] = docs if action in ON_ONE_DOCUMENT else [None]  # type: ignore[assignment]
            for doc in targets:
                resource = doc.resource if doc else NOT_ON_A_DOCUMENT.get(action, Resource("space"))
                got = decide(who.actor, SPACE, action, resource, facts)
                tally.checked += 1
                if not got.reason.strip() or not got.rule:
                    tally.fail(f"{who.name}/{status}/{action}: décision sans motif")
                tally.reasons.add(got.reason)
                if action == A.DOCUMENT_READ:
                    reads.append(got)
                want = expected(who, status, facts, action, doc)
                if got.allowed != want.allowed:
                    where = f" — {doc.name}" if doc else ""
                    tally.fail(
                        f"{who.name} / {status} / {toggles_of(facts)} / {action}{where}: "
                        f"attendu {'permis' if want.allowed else 'refusé'}, obtenu {got}"
                    )
                elif want.allowed and action == A.HISTORY_READ:
                    if not history_scope_matches(got, want):
                        tally.fail(f"{who.name} / {status} / {toggles_of(facts)}: historique {got}, attendu {want}")
                elif want.allowed and action == A.DOCUMENT_SEARCH:
                    search = got
                    if scope_of(got) != want:
                        tally.fail(f"{who.name} / {status} / {toggles_of(facts)}: portée {got}, attendu {want}")
        if search is not None:
            # No leak, no hole: the search lists a document exactly when a read of it is allowed.
            for doc, read in zip(docs, reads, strict=True):
                tally.listings += 1
                if listed(search, who, doc) != read.allowed:
                    tally.fail(f"{who.name} / {toggles_of(facts)}: recherche ≠ lecture — {doc.name} ({read})")
    return tally


def scope_of(search: Decision) -> Expect:
    """The scope an allowed search carries (categories None means every category)."""
    if search.scope != Scope.PROFESSIONAL:
        return Expect(True, search.scope)
    categories = search.categories if search.categories is not None else EVERY_CATEGORY
    return Expect(True, Scope.PROFESSIONAL, categories, search.include_masked)


def toggles_of(facts: Facts) -> str:
    return "".join(
        "+" if on else "-" for on in (facts.emergency_samu, facts.emergency_professionals, facts.emergency_masked)
    )


def report(tally: Tally, decisions: int, listings: int) -> None:
    assert not tally.failures, f"{len(tally.failures)}+ écarts sur {tally.checked} combinaisons :\n" + "\n".join(
        tally.failures
    )
    not_french = sorted(r for r in tally.reasons if not (FRENCH.search(r) and r.endswith(".") and r[0].isupper()))
    assert not not_french, f"motifs qui ne sont pas des phrases en français : {not_french}"
    assert tally.checked == decisions, f"{tally.checked} combinaisons vérifiées au lieu de {decisions}"
    assert tally.listings >= listings, f"{tally.listings} listes vérifiées au lieu d'au moins {listings}"


def test_the_table_for_people_establishments_operators_the_service_and_apps() -> None:
    """The person in their space, a parent, a caregiver, another patient, an establishment, an operator, the
    service, an app (bound to no space; connected to this one; disconnected; bound to another space), the by-code
    representative (theirs and another's), a caregiver without a space: 14 actors × 3 statuses × 8 toggles × 41
    actions, × 240 or 360 documents (open space; 360 for those who write) or 40 or 60 (closed, unknown) for the 4
    actions on one document: 176 272 decisions, plus 10 560 or more documents checked as "listed by the search ⇔
    readable"."""
    tally = run(PERSONS + OTHERS)
    report(tally, 176_272, 10_560)


@pytest.mark.parametrize("profession", PROFESSIONS, ids=lambda p: f"profession-{p}")
def test_the_table_for_professionals(profession: str | None) -> None:
    """One profession × 11 standings (none, consent, administrator, médecin traitant, emergency by breaking
    the glass or by the SAMU regulator, blocked …) × 3 statuses × 8 toggles × 41 actions, × 360 documents
    (open space) or 60 (closed, unknown) for the 4 actions on one document: 178 728 decisions per
    profession (893 640 for the five), plus 31 680 documents checked as "listed by the search ⇔ readable"."""
    tally = run(professional(profession, standing) for standing in STANDINGS)
    report(tally, 178_728, 31_680)


# ====================================================================== examples, one rule at a time

OWNER = PERSONS[0].actor
PRO = Actor(ActorKind.PROFESSIONAL, "acc-pro", "Dr X", professional_id="pro-1")
OTHER_PRO = Actor(ActorKind.PROFESSIONAL, "acc-pro2", "Dr Y", professional_id="pro-2")
DENTIST = Actor(ActorKind.PROFESSIONAL, "acc-dent", "Dr Orsini", professional_id="pro-3", profession_code="40")
LAB = Actor(ActorKind.ESTABLISHMENT, "client-lab", "Labo", establishment_id="etab-1")
OPERATOR = Actor(ActorKind.OPERATOR, "acc-op", "Conseiller CPAM de Corse")
PARENT = PERSONS[1].actor


def doc(
    author: str = "pro-1", source: str = "professional", hidden: bool = False, category: str = "BIOLOGIE", *labels: str
) -> Resource:
    return Resource(
        "document",
        "d1",
        author_id=author,
        source=source,
        hidden_from_patient=hidden,
        category=category,
        labels=frozenset(labels),
    )


@pytest.mark.parametrize("status", ["closed", "archived", "pending"])
def test_a_space_that_is_not_open_is_refused_even_to_its_owner(status: str) -> None:
    decision = decide(OWNER, SPACE, Action.SPACE_VIEW, facts=Facts(patient_status=status))
    assert not decision.allowed and decision.rule == "unknown_space"


def test_a_missing_space_is_refused_with_a_french_reason() -> None:
    decision = decide(Actor.system(), SPACE, Action.SPACE_VIEW, facts=Facts(patient_exists=False))
    assert not decision and "n'existe pas" in decision.reason


def test_a_patient_is_a_stranger_to_another_patients_space() -> None:
    decision = decide(PERSONS[3].actor, SPACE, Action.HISTORY_READ)
    assert not decision.allowed
    assert decision.reason == "Vous n'êtes pas autorisé à accéder à cet espace."


@pytest.mark.parametrize(
    ("who", "action", "resource", "allowed"),
    [
        (PRO, Action.DOCUMENT_READ, doc(), True),
        (PRO, Action.DOCUMENT_UPDATE, doc(), True),
        (OTHER_PRO, Action.DOCUMENT_READ, doc(), False),
        (OTHER_PRO, Action.DOCUMENT_UPDATE, doc(), False),
        (PRO, Action.DOCUMENT_MASK, doc(), False),
        (PRO, Action.DOCUMENT_DELETE, doc(), False),
        (LAB, Action.DOCUMENT_READ, doc("etab-1"), True),
        (LAB, Action.DOCUMENT_READ, doc(), False),
        (OWNER, Action.DOCUMENT_READ, doc(), True),
        (OWNER, Action.DOCUMENT_READ, doc(hidden=True), False),
        (OWNER, Action.DOCUMENT_MASK, doc(), True),
        (OWNER, Action.DOCUMENT_DELETE, doc(), False),
        (OWNER, Action.DOCUMENT_DELETE, doc(SPACE, "patient"), True),
        (OWNER, Action.DOCUMENT_UPDATE, doc(), False),
    ],
)
def test_document_rules(who: Actor, action: Action, resource: Resource, allowed: bool) -> None:
    """VLT-5, VLT-6, VLT-7: authors, the patient, and deletion of professionals' documents."""
    decision = decide(who, SPACE, action, resource)
    assert decision.allowed is allowed, decision
    assert decision.reason


def test_searches_are_scoped_by_the_policy() -> None:
    assert decide(PRO, SPACE, Action.DOCUMENT_SEARCH).scope == Scope.AUTHORED
    assert decide(OWNER, SPACE, Action.DOCUMENT_SEARCH).scope == Scope.PATIENT


def test_a_dentist_with_consent_sees_neither_advance_directives_nor_masked_documents() -> None:
    """ACC-1 (the matrix: a dentist does not see advance directives), VLT-5; the médecin traitant does (ACC-2)."""
    consent = Facts(consent=True)
    assert decide(DENTIST, SPACE, Action.DOCUMENT_READ, doc("x", "professional", False, "BIOLOGIE"), consent)
    refused = decide(DENTIST, SPACE, Action.DOCUMENT_READ, doc("x", "professional", False, "DIR_ANT"), consent)
    assert not refused and refused.reason == "Votre profession n'a pas accès à ce type de document."
    masked = decide(DENTIST, SPACE, Action.DOCUMENT_READ, doc("x", "patient", False, "BIOLOGIE", "MASQUE_PS"), consent)
    assert not masked and "masqué" in masked.reason
    doctor = Facts(consent=True, administrator=True)
    for category in ("DIR_ANT", "BIOLOGIE"):
        assert decide(DENTIST, SPACE, Action.DOCUMENT_READ, doc("x", "patient", False, category, "MASQUE_PS"), doctor)


def test_a_blocked_professional_deposits_but_reads_nothing_and_cannot_consent_for_the_patient() -> None:
    """ACC-3."""
    blocked = Facts(consent=True, administrator=True, blocked=True)
    assert decide(PRO, SPACE, Action.DOCUMENT_DEPOSIT, Resource("document", source="new"), blocked)
    for action in (Action.SPACE_VIEW, Action.CONSENT_RECORD, Action.EMERGENCY_START):
        refused = decide(PRO, SPACE, action, Resource("space"), blocked)
        assert not refused and "bloqué" in refused.reason
    assert decide(PRO, SPACE, Action.DOCUMENT_SEARCH, facts=blocked).scope == Scope.AUTHORED


@pytest.mark.parametrize(
    ("facts", "scope"),
    [
        (Facts(consent=True, administrator=True), Scope.ALL),  # the médecin traitant
        (Facts(administrator=True), Scope.ALL),
        (Facts(), Scope.OWN_ACTIONS),  # no standing: still their own actions
        (Facts(consent=True), Scope.OWN_ACTIONS),
        (Facts(emergency="bris_de_glace"), Scope.OWN_ACTIONS),
        (Facts(emergency="samu", samu_regulator=True), Scope.OWN_ACTIONS),
        (Facts(consent=True, administrator=True, blocked=True), Scope.OWN_ACTIONS),
    ],
)
def test_the_medecin_traitant_reads_the_whole_history_other_professionals_their_own_actions(
    facts: Facts, scope: Scope
) -> None:
    """TRC-2 "the médecin traitant and the author see theirs"; an establishment reads no history, and no
    professional reports an entry (HISTORY_REPORT is the person's)."""
    decision = decide(PRO, SPACE, Action.HISTORY_READ, Resource("history"), facts)
    assert decision.allowed and decision.scope == scope, decision
    assert not decide(PRO, SPACE, Action.HISTORY_REPORT, Resource("history"), facts)
    assert not decide(LAB, SPACE, Action.HISTORY_READ, Resource("history"), facts)


@pytest.mark.parametrize(
    ("facts", "allowed"),
    [
        (Facts(emergency="bris_de_glace"), True),
        (Facts(emergency="bris_de_glace", emergency_professionals=False), False),
        (Facts(emergency="samu", samu_regulator=True, emergency_professionals=False), True),
        (Facts(emergency="samu", samu_regulator=True, emergency_samu=False), False),
    ],
)
def test_an_emergency_access_reads_unless_the_patient_turned_it_off(facts: Facts, allowed: bool) -> None:
    """ACC-4: the SAMU toggle for the regulator, the professionals' toggle for breaking the glass."""
    decision = decide(PRO, SPACE, Action.SPACE_VIEW, Resource("space"), facts)
    assert decision.allowed is allowed, decision
    masked = doc("x", "professional", False, "SYNTHESE", "MASQUE_PS")
    assert not decide(PRO, SPACE, Action.DOCUMENT_READ, masked, facts)
    assert decide(PRO, SPACE, Action.DOCUMENT_READ, masked, replace(facts, emergency_masked=True)).allowed is allowed


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
    assert decide(OWNER, SPACE, action, facts=Facts(patient_status=status)).allowed is allowed


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
    assert not decide(OPERATOR, SPACE, action, doc(), facts).allowed
    for enrolment in (Action.ENROLMENT_OBJECT, Action.ENROLMENT_LETTER, Action.SPACE_OPEN):
        assert decide(OPERATOR, SPACE, enrolment, facts=facts).allowed


BY_CODE = Actor(ActorKind.REPRESENTATIVE, None, "Parent", patient_id=SPACE)


@pytest.mark.parametrize(
    ("who", "space", "action", "exists", "allowed"),
    [
        (OPERATOR, "-", Action.ENROLMENT_MANAGE, False, True),  # campaigns concern no one's space
        (OWNER, "-", Action.ENROLMENT_MANAGE, False, False),
        (PRO, "-", Action.ENROLMENT_MANAGE, False, False),
        (OPERATOR, SPACE, Action.ENROLMENT_OBJECT, False, False),  # nobody to object for
        (BY_CODE, SPACE, Action.ENROLMENT_OBJECT, True, True),
        (BY_CODE, "autre", Action.ENROLMENT_OBJECT, True, False),
        (OWNER, SPACE, Action.SPACE_OPEN, True, False),  # the person activates, not "opens"
        (Actor.system(), SPACE, Action.SPACE_OPEN, True, True),
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
        (Action.DOCUMENT_READ, doc("x", "professional", False, "BIOLOGIE", "INVISIBLE_REPRESENTANTS_LEGAUX"), False),
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
    decision = decide(PARENT, SPACE, action, resource, Facts(legal_representative=True))
    assert decision.allowed is allowed, decision
    if action == Action.DOCUMENT_SEARCH:
        assert decision.scope == Scope.REPRESENTATIVE
