"""The shared readers of FHIR search values (``carnet.fhir.search``), as R4 search.html writes them: token forms and
escapes (§3.1.1.4.9, §3.1.1.4.19), comma alternatives (§3.1.1.5.4), dates with every prefix and the range their
precision implies (§3.1.1.4.5–7), the patient designated by id, reference or absolute URL — pure, no server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from carnet.fhir.search import InputError, Token, date_bounds, date_criteria, designation, token_groups

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "tokens"),
    [
        ("http://loinc.org|11488-4", (Token("http://loinc.org", "11488-4"),)),
        ("11488-4", (Token(None, "11488-4"),)),
        ("|11488-4", (Token("", "11488-4"),)),
        ("http://loinc.org|", (Token("http://loinc.org", None),)),
        ("a|b,c", (Token("a", "b"), Token(None, "c"))),
        ("a\\,b", (Token(None, "a,b"),)),
        ("a\\|b|c", (Token("a|b", "c"),)),
        ("a|b|c", (Token("a", "b|c"),)),  # the first bar separates
        ("x\\\\|y", (Token("x\\", "y"),)),
    ],
)
def test_token_forms_and_escapes(value: str, tokens: tuple[Token, ...]) -> None:
    assert token_groups([value], "type") == (tokens,)


@pytest.mark.parametrize("value", ["", ",", "a,", "|", "a\\b", "a\\", "x" * 251, ",".join("a" * 21)])
def test_token_values_not_understood_are_400(value: str) -> None:
    with pytest.raises(InputError) as caught:
        token_groups([value], "type")
    assert caught.value.status == 400 and caught.value.issues[0][2] == "type"


def test_dates_keep_every_prefix_and_their_implied_range() -> None:
    ((year,),) = date_criteria(["2026"], "date", NOW)
    assert (year.prefix, year.start, year.end) == (
        "eq",
        datetime(2025, 12, 31, 23, tzinfo=UTC),  # French time
        datetime(2026, 12, 31, 23, tzinfo=UTC),
    )
    ((minute,),) = date_criteria(["ne2026-03-05T10:00Z"], "date", NOW)
    assert minute.prefix == "ne" and minute.end - minute.start == timedelta(minutes=1)
    ((near,),) = date_criteria(["ap2016-12-05T12:00:00Z"], "date", NOW)  # ten years ago: a year each side
    value = datetime(2016, 12, 5, 12, tzinfo=UTC)
    assert abs(value - near.start - timedelta(days=365.25)) < timedelta(days=1)
    assert abs(near.end - value - timedelta(days=365.25)) < timedelta(days=1)
    assert [c.prefix for c in date_criteria(["gt2024,lt2020"], "date", NOW)[0]] == ["gt", "lt"]  # OR
    assert [c.prefix for (c,) in date_criteria(["sa2024", "eb2030"], "date", NOW)] == ["sa", "eb"]  # AND


@pytest.mark.parametrize("value", ["ge2026-13-45", "2026-01-01T25:00", "2026-02-30", "zz2026", "ge", "2026-1"])
def test_impossible_dates_are_400(value: str) -> None:
    with pytest.raises(InputError) as caught:
        date_criteria([value], "period", NOW)
    assert caught.value.issues[0][:1] == ("invalid",) and caught.value.issues[0][2] == "period"


def test_date_bounds_still_refuses_ne_and_ap_for_the_profile_and_the_agenda() -> None:
    for prefix in ("ne", "ap"):
        with pytest.raises(InputError) as caught:
            date_bounds([f"{prefix}2024"])
        assert caught.value.issues[0][0] == "not-supported"


@pytest.mark.parametrize(
    "value", ["abc-1", "Patient/abc-1", "https://carnet.example/fhir/Patient/abc-1", "http://x:8000/fhir/Patient/abc-1"]
)
def test_the_patient_by_id_reference_or_absolute_url(value: str) -> None:
    assert designation({"patient": [value]}) == ({"reference": "Patient/abc-1"}, "patient")


@pytest.mark.parametrize(
    "value", ["Practitioner/abc", "https://x/fhir/Practitioner/abc", "Patient/a b", "ftp://x/Patient/a"]
)
def test_other_references_are_400(value: str) -> None:
    with pytest.raises(InputError):
        designation({"patient": [value]})
