"""No 500 on any body (issue #15-2): every FHIR endpoint that reads a JSON body answers a hostile one — deep
nesting, sizes, wrong types, bad encodings — with a 4xx OperationOutcome, and a caller without a token gets its
401 before any of the body is read."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from carnet.bootstrap import Services
from carnet.vault.tables import Document
from tests.support.actors import Feeders
from tests.support.documents import document_entry, make_pdf, provide_bundle

DEEP_ARRAY = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"a":' * 200 + b"1" + b"}" * 200


def nested_extension(levels: int) -> dict[str, object]:
    node: dict[str, object] = {"url": "http://exemple.fr/x", "valueString": "x"}
    for _ in range(levels):
        node = {"url": "http://exemple.fr/x", "extension": [node]}
    return node


HOSTILE: dict[str, bytes] = {
    "deep array": DEEP_ARRAY,
    "deep object": DEEP_OBJECT,
    "empty": b"",
    "not json": b"{resourceType: Bundle",
    "invalid utf-8": b'{"resourceType": "\xff\xfe"}',
    "utf-16": '{"resourceType": "Bundle"}'.encode("utf-16"),
    "scalar": b"42",
    "null": b"null",
    "string": b'"Bundle"',
    "array": b"[]",
    "wrong types": b'{"resourceType": 5, "entry": "x", "type": []}',
    "huge number": b'{"resourceType": "Bundle", "total": 1' + b"0" * 5000 + b"}",
    "nul bytes": b'{"resourceType": "Bundle\\u0000", "id": "\\u0000"}',
}


def endpoints(document_id: str) -> list[tuple[str, str, str]]:
    return [
        ("POST", "/fhir", "application/fhir+json"),
        ("POST", "/fhir/Consent", "application/fhir+json"),
        ("POST", "/fhir/Observation", "application/fhir+json"),
        ("POST", "/fhir/Condition", "application/fhir+json"),
        ("PATCH", f"/fhir/DocumentReference/{document_id}", "application/json-patch+json"),
    ]


@pytest.fixture
def document_id(feeders: Feeders, demo: Services) -> str:
    answer = feeders.client.post(
        "/fhir", json=provide_bundle(document_entry(feeders.ins, make_pdf("Compte rendu"))), headers=feeders.lab
    )
    assert answer.status_code == 200, answer.text
    with demo.db.unit_of_work() as db:
        found = db.scalar(select(Document.id))
    assert found
    return found


def test_every_hostile_body_gets_a_4xx_operation_outcome(feeders: Feeders, document_id: str) -> None:
    for method, path, media in endpoints(document_id):
        for name, body in HOSTILE.items():
            headers = {**feeders.gp, "Content-Type": media}
            answer = feeders.client.request(method, path, content=body, headers=headers)
            assert 400 <= answer.status_code < 500, (method, path, name, answer.status_code, answer.text[:200])
            assert answer.json()["resourceType"] == "OperationOutcome", (path, name)


def test_deeply_nested_extensions_are_refused_not_crashed(feeders: Feeders) -> None:
    consent = {"resourceType": "Consent", "status": "active", "extension": [nested_extension(400)]}
    answer = feeders.client.post("/fhir/Consent", json=consent, headers=feeders.gp)
    assert answer.status_code == 400 and "imbriqué trop profondément" in answer.text
    bundle = provide_bundle(document_entry(feeders.ins, make_pdf("X")))
    bundle["extension"] = [nested_extension(400)]
    assert feeders.client.post("/fhir", json=bundle, headers=feeders.lab).status_code == 400


@pytest.mark.parametrize(
    "value",
    ["CONF", 5, None, {"coding": []}, [{"coding": 5}], [{"coding": [{"code": 5}]}], [{"coding": "x"}], ["x"]],
)
def test_a_patch_label_that_is_not_a_list_of_codeable_concepts_is_a_400(
    feeders: Feeders, document_id: str, value: object
) -> None:
    operations = [{"op": "replace", "path": "/securityLabel", "value": value}]
    answer = feeders.client.patch(f"/fhir/DocumentReference/{document_id}", json=operations, headers=feeders.lab)
    assert answer.status_code == 400, answer.text
    assert answer.json()["resourceType"] == "OperationOutcome"


def test_the_token_is_checked_before_the_body_is_read(feeders: Feeders) -> None:
    for method, path, media in endpoints(str(uuid.uuid4())):
        answer = feeders.client.request(method, path, content=DEEP_ARRAY, headers={"Content-Type": media})
        assert answer.status_code == 401, (path, answer.status_code)


@pytest.mark.parametrize("element", ["masterIdentifier", "subject", "description"])
def test_a_control_character_in_a_string_is_a_400_not_a_postgresql_crash(
    feeders: Feeders, demo: Services, element: str
) -> None:
    """FHIR strings hold no control character but tab, CR and LF; PostgreSQL refuses NUL in text: a bundle whose
    masterIdentifier or INS held one was a 500 there. Refused whole before any look-up; nothing is stored."""
    entries = document_entry(feeders.ins, make_pdf("Compte rendu"))
    reference = entries[0]["resource"]
    if element == "masterIdentifier":
        reference["masterIdentifier"]["value"] += "\x00"
    elif element == "subject":
        reference["subject"]["identifier"]["value"] = feeders.ins + "\x00"
    else:
        reference["description"] = "Compte rendu\x1b[31m"
    answer = feeders.client.post("/fhir", json=provide_bundle(entries), headers=feeders.lab)
    assert answer.status_code == 400, answer.text
    assert "caractère de contrôle" in answer.json()["issue"][0]["diagnostics"]
    with demo.db.unit_of_work() as db:
        assert db.scalar(select(Document.id)) is None
    kept = provide_bundle(document_entry(feeders.ins, make_pdf("Deux lignes"), title="Ligne 1\nLigne 2\tfin"))
    assert feeders.client.post("/fhir", json=kept, headers=feeders.lab).status_code == 200  # tab, LF: allowed
