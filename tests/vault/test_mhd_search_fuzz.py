"""Issue #14-2, fuzz-style: no value of an ITI-67 search parameter is a server error. Whatever a client sends —
random text, date-shaped strings with impossible fields, every prefix, huge or negative numbers, control characters,
escapes — the answer is a searchset (200) or an OperationOutcome (400, or 406 for a format not served), by GET and by
POST ``_search``, on SQLite and PostgreSQL. The pure parser is fuzzed harder, without a server."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carnet.fhir.search import InputError
from carnet.vault.model import mhd_search
from tests.support.actors import Feeders
from tests.support.documents import INS_SYSTEM, document_entry, make_pdf, provide_bundle

PARAMETERS = sorted(mhd_search.SEARCH_PARAMETERS - {"patient", "patient.identifier"})
DATE_LIKE = st.from_regex(
    r"(eq|ne|gt|lt|ge|le|sa|eb|ap|xx|EQ)?-?\d{1,6}(-\d{1,3}(-\d{1,3}(T\d{1,3}(:\d{1,3}(:\d{1,3}(\.\d{1,12})?)?)?"
    r"(Z|[+-]\d{1,2}:\d{1,2})?)?)?)?",
    fullmatch=True,
)
NUMBERS = st.integers(min_value=-(10**30), max_value=10**30).map(str)
TOKENS = st.lists(
    st.tuples(st.text(max_size=12), st.sampled_from(["", "|", "\\|", "\\,", "\\", ",", "$"]), st.text(max_size=12)),
    min_size=1,
    max_size=4,
).map(lambda parts: "".join(a + sep + b for a, sep, b in parts))
VALUES = st.one_of(st.text(max_size=60), DATE_LIKE, NUMBERS, TOKENS)
FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _checked(answer: object) -> None:
    status = answer.status_code  # type: ignore[attr-defined]
    assert status in {200, 400, 406}, answer.text  # type: ignore[attr-defined]
    body = answer.json()  # type: ignore[attr-defined]
    assert body["resourceType"] == ("Bundle" if status == 200 else "OperationOutcome"), body


@pytest.fixture
def one_document(feeders: Feeders) -> Feeders:
    bundle = provide_bundle(document_entry(feeders.ins, make_pdf("Bilan"), title="Bilan"))
    assert feeders.client.post("/fhir", json=bundle, headers=feeders.lab).status_code == 200
    return feeders


@FUZZ
@given(name=st.sampled_from(PARAMETERS), value=VALUES)
def test_no_value_of_a_search_parameter_is_a_server_error(one_document: Feeders, name: str, value: str) -> None:
    f = one_document
    params = [("patient.identifier", f"{INS_SYSTEM}|{f.ins}"), (name, value)]
    _checked(f.client.get("/fhir/DocumentReference", params=params, headers=f.lab))


@FUZZ
@given(pairs=st.lists(st.tuples(st.sampled_from([*PARAMETERS, "patient", "inconnu"]), VALUES), max_size=5))
def test_no_search_form_is_a_server_error(one_document: Feeders, pairs: list[tuple[str, str]]) -> None:
    f = one_document
    body = urlencode([("patient", f.patient_id), *pairs])
    headers = {**f.lab, "Content-Type": "application/x-www-form-urlencoded"}
    _checked(f.client.post("/fhir/DocumentReference/_search", content=body, headers=headers))


@FUZZ
@given(value=st.one_of(st.text(max_size=80), st.binary(max_size=40).map(lambda b: b.decode("latin-1"))))
def test_no_patient_designation_is_a_server_error(one_document: Feeders, value: str) -> None:
    f = one_document
    answer = f.client.get("/fhir/DocumentReference", params={"patient": value}, headers=f.lab)
    assert answer.status_code in {200, 400, 404}, answer.text
    assert answer.json()["resourceType"] in {"Bundle", "OperationOutcome"}


@settings(max_examples=1500, deadline=None)
@given(pairs=st.lists(st.tuples(st.sampled_from(PARAMETERS), VALUES), max_size=6))
def test_the_parser_answers_a_search_or_an_input_error(pairs: list[tuple[str, str]]) -> None:
    """Without a server: any parameters are a search or an ``InputError`` naming the parameter — nothing else."""
    try:
        asked = mhd_search.search_request([("patient", "abc"), *pairs], datetime.now(UTC))
    except InputError as error:
        assert error.status == 400 and error.issues and error.issues[0][2] in {*PARAMETERS, ""}
        return
    assert 0 <= asked.count <= mhd_search.MAX_COUNT and 0 <= asked.offset <= mhd_search.MAX_OFFSET
    for _, criteria in asked.dates:
        assert all(c.start <= c.end for c in criteria)


@pytest.mark.parametrize(
    "query",
    [
        "date=ge2026-13-45",
        "date=2026-01-01T25:00",
        "_offset=999999999999999999999999",
        "_count=1e9",
        "date=ap0001-01-01",
        "date=ap9999-12-31",
        "date=eb9999-12-31T23:59:59-12:00",
        "period=sa0001-01-01T00:00:00%2B14:00",
        "status=current%2Cbrouillon",
        "identifier=a%5C",
        "author.identifier=,",
        "security-label=" + "x," * 50,
        "event=" + "a" * 5000,
        "date=" + ",".join(["2026"] * 30),
        "creation=2026&creation=2026&creation=2026&creation=2026&creation=2026",
    ],
)
def test_values_that_crashed_or_could_crash_are_400(one_document: Feeders, query: str) -> None:
    f = one_document
    answer = f.client.get(f"/fhir/DocumentReference?patient.identifier={INS_SYSTEM}|{f.ins}&{query}", headers=f.lab)
    assert answer.status_code == 400, answer.text
    assert answer.json()["resourceType"] == "OperationOutcome"
