"""PRF-1..3 with ACC-1..4, FAM-1..3: the policy on the medical profile, tested as a table.

Every actor of the policy's own table (tests/hall/test_policy.py) × the patient's three emergency toggles ×
every section of the profile (the twelve and the measures) × masked or not × written in the space, by another
professional or by the actor × reading, correcting and masking one item. The expected decision comes from
``expected`` below, written from the specification; it reads the profession rows of ``profile_access.json``
as the data it is and never calls the policy's helpers. Each allowed search of the profile is checked
against the reads: the search lists an item exactly when a read of it is allowed (no leak, no hole).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from importlib import resources
from pathlib import Path

from carnet.hall.actors import ActorKind
from carnet.hall.policy import Action, Decision, Facts, Resource, Scope, decide
from tests.hall.test_policy import OTHERS, PERSONS, PROFESSIONS, SPACE, STANDINGS, TOGGLES, Who, professional

A = Action
_DATA = json.loads(resources.files("carnet.data").joinpath("profile_access.json").read_text(encoding="utf-8"))
SECTIONS = sorted(_DATA["professions"]["10"])  # the doctor's row names every section
assert len(SECTIONS) == 13
ITEM_ACTIONS = (A.PROFILE_READ, A.PROFILE_WRITE, A.PROFILE_MASK)


def profile_row(profession: str | None) -> frozenset[str]:
    return frozenset(_DATA["professions"].get(profession or "", _DATA["default"]))


def reading(who: Who, facts: Facts) -> tuple[frozenset[str], bool] | None:
    """ACC-1..4 on the profile: blocked nothing; administrator all (masked too); consent the profession's
    sections; an emergency the patient allows the sections, masked ones if the third toggle allows."""
    if who.family != "professional" or facts.blocked:
        return None
    grounds: list[tuple[frozenset[str], bool]] = []
    if facts.administrator:
        grounds.append((frozenset(SECTIONS), True))
    if facts.consent:
        grounds.append((profile_row(who.actor.profession_code), False))
    toggle = {"samu": facts.emergency_samu, "bris_de_glace": facts.emergency_professionals}
    if facts.emergency and toggle[facts.emergency]:
        grounds.append((profile_row(who.actor.profession_code), facts.emergency_masked))
    if not grounds:
        return None
    return frozenset().union(*(s for s, _ in grounds)), any(m for _, m in grounds)


def expected(who: Who, facts: Facts, action: Action, item: Resource) -> bool:
    people = who.family in {"patient", "legal_representative", "caregiver"}
    from_space = item.source == "patient"
    authored = item.author_id in who.author_keys
    if who.family == "system":
        return True
    if people:  # PRF-1: correct and delete what the space entered; mask what a professional entered
        return {A.PROFILE_READ: True, A.PROFILE_WRITE: from_space, A.PROFILE_MASK: not from_space}[action]
    if who.family in {"professional", "establishment"}:
        if action == A.PROFILE_MASK:
            return False
        if authored:
            return True
        if action == A.PROFILE_WRITE:
            return False
        rights = reading(who, facts)
        if rights is None:
            return False
        sections, masked_too = rights
        return item.category in sections and (masked_too or not item.masked)
    if who.family == "app":  # CAT-3: a connected app reads what the person reads, changes only what it added
        return action == A.PROFILE_READ or (action == A.PROFILE_WRITE and authored)
    return False  # another patient, an operator, an app not connected to this space, a code…


def items(who: Who) -> list[Resource]:
    authors = [("espace-de-la-personne", "patient"), ("pro-auteur", "professional")]
    mine = sorted(who.author_keys)
    if mine:
        authors.append((mine[0], "professional" if who.actor.kind == ActorKind.PROFESSIONAL else "establishment"))
    return [
        Resource(
            "profile_item",
            "item",
            author_id=author,
            source=source,
            labels=frozenset({"MASQUE_PS"}) if masked else frozenset(),
            category=section,
        )
        for section, masked, (author, source) in itertools.product(SECTIONS, (False, True), authors)
    ]


def listed(search: Decision, who: Who, item: Resource) -> bool:
    """As ``carnet.profile.service.entries.scope_conditions`` applies the decision."""
    authored = item.author_id in who.author_keys
    if search.scope == Scope.AUTHORED:
        return authored
    if search.scope == Scope.PROFESSIONAL:
        sections = search.categories if search.categories is not None else frozenset(SECTIONS)
        return authored or (item.category in sections and (search.include_masked or not item.masked))
    return search.scope in {Scope.PATIENT, Scope.REPRESENTATIVE, Scope.ALL}


def run(rows: list[Who]) -> tuple[int, list[str]]:
    checked, failures = 0, []
    for who, toggles in itertools.product(rows, TOGGLES):
        facts = replace(Facts(), **who.facts, **toggles)
        search = decide(who.actor, SPACE, A.PROFILE_READ, Resource("profile"), facts)
        for item, action in itertools.product(items(who), ITEM_ACTIONS):
            got = decide(who.actor, SPACE, action, item, facts)
            checked += 1
            want = expected(who, facts, action, item)
            if got.allowed != want:
                failures.append(f"{who.name} {toggles} {action} {item}: attendu {want}, obtenu {got}")
            if action == A.PROFILE_READ and search.allowed and listed(search, who, item) != got.allowed:
                failures.append(f"{who.name} {toggles}: recherche ≠ lecture pour {item} ({search})")
            if not got.allowed and not got.reason.endswith("."):
                failures.append(f"{who.name} {action}: motif {got.reason!r}")
    return checked, failures[:30]


def test_people_the_service_establishments_operators_and_apps_on_each_item() -> None:
    """14 actors (the 3 apps of CAT-3 included) × 8 toggles × 13 sections × masked or not × 2 or 3 authors ×
    3 actions."""
    checked, failures = run(PERSONS + OTHERS)
    assert not failures, "\n".join(failures)
    assert checked == 14 * 8 * 13 * 2 * 3 * 2 + 8 * 13 * 2 * 3  # + the establishment's own items


def test_professionals_on_each_item() -> None:
    """5 professions × 11 standings × 8 toggles × 13 sections × masked or not × 3 authors × 3 actions."""
    checked, failures = run([professional(p, s) for p in PROFESSIONS for s in STANDINGS])
    assert not failures, "\n".join(failures)
    assert checked == 5 * 11 * 8 * 13 * 2 * 3 * 3


def test_a_pharmacist_with_consent_reads_treatments_not_family_history() -> None:
    """ACC-1 as data: the pharmacist's row has treatments and no family history."""
    pharmacist = professional("21", "consentement")
    facts = replace(Facts(), **pharmacist.facts)
    treatments = Resource("profile_item", "x", author_id="pro-auteur", source="professional", category="treatments")
    family = replace(treatments, category="family_history")
    assert decide(pharmacist.actor, SPACE, A.PROFILE_READ, treatments, facts).allowed
    refused = decide(pharmacist.actor, SPACE, A.PROFILE_READ, family, facts)
    assert not refused.allowed and "profession" in refused.reason


def test_the_patient_cannot_edit_a_professionals_item_but_masks_it() -> None:
    person = PERSONS[0]
    item = Resource("profile_item", "x", author_id="pro-auteur", source="professional", category="allergies")
    edit = decide(person.actor, SPACE, A.PROFILE_WRITE, item, Facts())
    assert not edit.allowed and "masquer" in edit.reason
    assert decide(person.actor, SPACE, A.PROFILE_MASK, item, Facts()).allowed


def test_the_documented_rows_are_the_data() -> None:
    """docs/access-matrix.md shows the rows of profile_access.json, not a copy that drifts."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "access-matrix.md").read_text(encoding="utf-8")
    table = text.split("## The profile: which sections", 1)[1]
    header = next(line for line in table.splitlines() if line.startswith("| Code |"))
    columns = [c.strip() for c in header.strip("|").split("|")][2:]
    shown = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("| ") and cells[0] != "Code" and not line.startswith("|---"):
            shown[cells[0]] = frozenset(c for c, mark in zip(columns, cells[2:], strict=True) if mark == "✓")
    assert shown == {
        **{k: frozenset(v) for k, v in _DATA["professions"].items()},
        "default": frozenset(_DATA["default"]),
    }
