"""Issue #14: the lean recognition of an ITI-65 bundle (``carnet.vault.model.mhd_shape``) never accepts a bundle the
FHIR R4B models refuse, and it recognises the bundles senders usually send — the simple ones and the ANS PDSm ones
(contained author and patient, SubmissionSet extensions). Pure: no database. The deposits themselves, through either
path, are tested over HTTP in test_mhd*.py."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from carnet.vault.fhir import _without_payloads
from carnet.vault.model.mhd_shape import plainly_valid
from tests.support.documents import document_entry, entries, full_reference, make_pdf, provide_bundle

INS = "2850399123456"
BODY = make_pdf("Bilan lipidique")


def simple() -> dict[str, Any]:
    return provide_bundle(document_entry(INS, BODY, title="Bilan", master=f"urn:uuid:{uuid.uuid4()}"))


def pdsm() -> dict[str, Any]:
    url = f"urn:uuid:{uuid.uuid4()}"
    bundle = provide_bundle(entries(full_reference(INS, BODY, url), BODY, url))
    submission = bundle["entry"][0]["resource"]
    submission["extension"] = [  # as the ANS PDSm SubmissionSet carries them
        {
            "url": "https://profiles.ihe.net/ITI/MHD/StructureDefinition/ihe-designationType",
            "valueCodeableConcept": {"coding": [{"system": "http://loinc.org", "code": "11502-2"}]},
        },
        {
            "url": "https://profiles.ihe.net/ITI/MHD/StructureDefinition/ihe-sourceId",
            "valueIdentifier": {"value": "urn:oid:1.2.250.1.999.1"},
        },
    ]
    submission["subject"] = {"identifier": {"system": "urn:oid:1.2.250.1.213.1.4.8", "value": INS}}
    submission["date"] = "2024-03-05T10:05:00+01:00"
    submission["source"] = {"reference": "#auteur"}
    return bundle


def models_accept(bundle: dict[str, Any]) -> bool:
    try:
        Bundle.model_validate(_without_payloads(bundle))
    except (ValidationError, ValueError, TypeError, LookupError):
        return False
    return True


@pytest.mark.parametrize("build", [simple, pdsm], ids=["simple", "pdsm"])
def test_the_usual_bundles_are_recognised_and_the_models_agree(build: Any) -> None:
    bundle = build()
    assert plainly_valid(bundle)
    assert models_accept(bundle)


@pytest.mark.parametrize(
    ("where", "value"),
    [
        (("entry", 1, "resource", "date"), "2024-02-30T10:00:00+01:00"),  # a day that does not exist
        (("entry", 1, "resource", "date"), "2024-03-05"),  # an instant without its time
        (("entry", 1, "resource", "status"), " current"),
        (("entry", 1, "resource", "content", 0, "attachment", "size"), True),
        (("entry", 1, "resource", "content", 0, "attachment", "size"), -1),
        (("entry", 1, "resource", "content", 0, "attachment", "hash"), "AA="),
        (("entry", 1, "resource", "description"), None),
        (("entry", 1, "resource", "category"), []),
        (("entry", 1, "resource", "type"), {}),
        (("entry", 1, "resource", "text"), {"status": "generated", "div": "<div>x</div>"}),  # known to the models only
        (("entry", 1, "resource", "unknown"), "x"),
        (("entry", 1, "resource", "_date"), {"extension": []}),
        (("entry", 1, "resource", "contained", 0, "resourceType"), "Device"),
        (("entry", 0, "resource", "extension", 0, "valueString"), "two values"),
        (("entry", 2, "resource", "data"), 12),
        (("type",), ["transaction"]),
    ],
)
def test_anything_unusual_or_ill_formed_is_left_to_the_models(where: tuple[Any, ...], value: Any) -> None:
    bundle = pdsm()
    node = bundle
    for step in where[:-1]:
        node = node[step]
    node[where[-1]] = value
    assert not plainly_valid(bundle)


def near_misses(value: Any) -> list[Any]:
    """Values close to ``value`` that a careless check could take for it: the same kind slightly wrong (a space too
    many, a date that does not exist, a negative size…), another kind, or nothing."""
    others: list[Any] = [None, "", [], {}, True, 1, 1.5, -1, "x", [value], [None]]
    if isinstance(value, bool):
        return [*others, "true", 0]
    if isinstance(value, int):
        return [*others, 0, 2**31, str(value), float(value)]
    if isinstance(value, str):
        misses = [
            " ",
            f" {value}",
            f"{value} ",
            f"{value}\u00a0x",
            f"{value} \t x",
            value[:-1],
            value.replace(" ", "  "),
        ]
        if value[:4].isdigit():  # a date, a date-time or an instant
            misses += [
                "2024-02-30", "2023-02-29", "2024-13-01", "2024-3-5", "0000-01-01", "2024-03-05T10:00:00",
                "2024-02-30T10:00:00+01:00", "2024-03-05T24:00:00Z", "2024-03-05T10:00:60Z", "2024-03-05T10:00Z",
                "2024-03-05T10:00:00.1234567+01:00", "2024-03-05T10:00:00+14:30", "2024-03-05T10:00:00+1:00",
                "2024", "2024-02", "2024-02-29",
            ]  # fmt: skip
        return [*others, *misses, "AA=", "AA AA", "a  b"]
    if isinstance(value, dict):
        return [*others, {**value, "unknown": "x"}, *({k: v for k, v in value.items() if k != key} for key in value)]
    if isinstance(value, list):
        return [*others, *value[:1], [*value, None], [*value, {}], [*value, ""]]
    return others


def _paths(node: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [here] if here else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*here, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*here, index))
    return found


def _changed(bundle: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(bundle)
    parent = changed
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = copy.deepcopy(value)
    return changed


@pytest.mark.parametrize("build", [simple, pdsm], ids=["simple", "pdsm"])
def test_no_single_near_miss_is_recognised_unless_the_models_accept_it(build: Any) -> None:
    """Every element of the usual bundles, changed in turn to each of its near misses."""
    bundle = build()
    tried = recognised = 0
    for path in _paths(bundle):
        parent = bundle
        for step in path[:-1]:
            parent = parent[step]
        for value in near_misses(parent[path[-1]]):
            changed = _changed(bundle, path, value)
            tried += 1
            if plainly_valid(changed):
                recognised += 1
                assert models_accept(changed), (path, value)
    assert tried > 1000 and recognised > 50  # the walk reached the elements, and some changes stay valid


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), build=st.sampled_from([simple, pdsm]), changes=st.integers(min_value=2, max_value=4))
def test_what_is_recognised_after_several_changes_the_models_accept(
    data: st.DataObject, build: Any, changes: int
) -> None:
    bundle = build()
    for _ in range(changes):
        path = data.draw(st.sampled_from(_paths(bundle)))
        parent = bundle
        for step in path[:-1]:
            parent = parent[step]
        value = data.draw(st.sampled_from(near_misses(parent[path[-1]])))
        bundle = _changed(bundle, path, value)
    if plainly_valid(bundle):
        assert models_accept(bundle), bundle
