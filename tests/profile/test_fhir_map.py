"""PRF-3, the pure mapping between FHIR R4 resources and the profile's entries: dates and search parameters,
each resource type read as the section's fields or a measure, the errors (400 / 422) and what comes back."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fhir.resources.R4B.allergyintolerance import AllergyIntolerance
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.familymemberhistory import FamilyMemberHistory
from fhir.resources.R4B.immunization import Immunization
from fhir.resources.R4B.medicationstatement import MedicationStatement
from fhir.resources.R4B.observation import Observation

from carnet.fhir.base import PROFILE_TYPES
from carnet.profile.model import fhir_map
from carnet.profile.model import measures as catalogue
from carnet.profile.model.fhir_map import MappingError, date_bounds, incoming, outgoing, period_of, search_request
from carnet.profile.model.sections import RELATIVES, SECTIONS
from carnet.profile.service.exchange import RESOURCE_SECTIONS

NOW = datetime(2026, 6, 15, 10, 0, tzinfo=UTC)
INS = ("urn:oid:1.2.250.1.213.1.4.8", "285032A00411777")
SUBJECT = {"identifier": {"system": INS[0], "value": INS[1]}}
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
MODELS: dict[str, Any] = {
    "Observation": Observation,
    "AllergyIntolerance": AllergyIntolerance,
    "Condition": Condition,
    "FamilyMemberHistory": FamilyMemberHistory,
    "MedicationStatement": MedicationStatement,
    "Immunization": Immunization,
}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def failure(call: Any, status: int = 400) -> tuple[str, str, str]:
    with pytest.raises(MappingError) as caught:
        call()
    assert caught.value.status == status, caught.value.issues
    return caught.value.issues[0]


# ------------------------------------------------------------------ the six types agree everywhere


def test_the_six_types_are_the_sections_and_the_capability_statement() -> None:
    assert dict(fhir_map.SECTION_OF) == RESOURCE_SECTIONS
    assert set(PROFILE_TYPES) == set(fhir_map.RESOURCE_TYPES)
    for kind, section in fhir_map.SECTION_OF.items():
        if section != "measures":
            assert SECTIONS[section].fhir_type == kind
    assert set(fhir_map.ROLE_OF_RELATIVE) == set(RELATIVES)
    assert set(fhir_map.RELATIVE_OF_ROLE.values()) | {fhir_map.OTHER_RELATIVE} == set(RELATIVES)


# ------------------------------------------------------------------ dates


@pytest.mark.parametrize(
    ("text", "start", "end", "day"),
    [
        ("2024", utc(2023, 12, 31, 23), utc(2024, 12, 31, 23), None),  # French time: UTC+1 in winter
        ("2024-03", utc(2024, 2, 29, 23), utc(2024, 3, 31, 22), None),  # summer time from 31 March
        ("2024-12", utc(2024, 11, 30, 23), utc(2024, 12, 31, 23), None),
        ("2024-07-14", utc(2024, 7, 13, 22), utc(2024, 7, 14, 22), date(2024, 7, 14)),
        ("2024-03-05T10:00:00Z", utc(2024, 3, 5, 10), utc(2024, 3, 5, 10, 0, 1), date(2024, 3, 5)),
        ("2024-03-05T23:30:00Z", utc(2024, 3, 5, 23, 30), utc(2024, 3, 5, 23, 30, 1), date(2024, 3, 6)),
        ("2024-03-05T10:00:00+01:00", utc(2024, 3, 5, 9), utc(2024, 3, 5, 9, 0, 1), date(2024, 3, 5)),
        ("2024-03-05T10:00-05:00", utc(2024, 3, 5, 15), utc(2024, 3, 5, 15, 1), date(2024, 3, 5)),
        ("2024-03-05T10:00:00", utc(2024, 3, 5, 9), utc(2024, 3, 5, 9, 0, 1), date(2024, 3, 5)),  # no zone: Paris
        ("2024-03-05T10:00:00.5Z", utc(2024, 3, 5, 10, 0, 0, 500000), utc(2024, 3, 5, 10, 0, 0, 600000), None),
    ],
)
def test_a_date_is_the_period_it_covers(text: str, start: datetime, end: datetime, day: date | None) -> None:
    period = period_of(text)
    assert (period.start, period.end) == (start, end)
    if day is not None:
        assert period.day == day


@pytest.mark.parametrize(
    "text",
    [
        "",
        "24",
        "2024-1",
        "2024-13",
        "2024-02-30",
        "2024-03-05T24:00:00Z",
        "2024-03-05T10:00:00+25:00",
        "9999",
        "0000",
        "2024-03-05T10",
        "05/03/2024",
        "2024-03-05 10:00",
    ],
)
def test_what_is_not_a_fhir_date_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        period_of(text)


@pytest.mark.parametrize(
    ("values", "low", "high"),
    [
        (["2024"], utc(2023, 12, 31, 23), utc(2024, 12, 31, 23)),
        (["eq2024-07-14"], utc(2024, 7, 13, 22), utc(2024, 7, 14, 22)),
        (["gt2024-07-14"], utc(2024, 7, 14, 22), None),
        (["sa2024-07-14"], utc(2024, 7, 14, 22), None),
        (["ge2024-07-14"], utc(2024, 7, 13, 22), None),
        (["lt2024-07-14"], None, utc(2024, 7, 13, 22)),
        (["eb2024-07-14"], None, utc(2024, 7, 13, 22)),
        (["le2024-07-14"], None, utc(2024, 7, 14, 22)),
        (["ge2024", "lt2024-07"], utc(2023, 12, 31, 23), utc(2024, 6, 30, 22)),
        (["ge2023", "ge2024"], utc(2023, 12, 31, 23), None),  # ANDed: the narrower wins
        (["le2025", "lt2024"], None, utc(2023, 12, 31, 23)),
        (["ge2024-03-05T10:00:00 01:00"], utc(2024, 3, 5, 9), None),  # « + » decoded as a space
        ([], None, None),
    ],
)
def test_date_prefixes_make_one_half_open_period(
    values: list[str], low: datetime | None, high: datetime | None
) -> None:
    assert date_bounds(values) == (low, high)


def test_ne_and_ap_are_said_not_supported_other_prefixes_invalid() -> None:
    for prefix in ("ne", "ap"):
        code, text, path = failure(lambda p=prefix: date_bounds([f"{p}2024"]))
        assert code == "not-supported" and f"« {prefix} »" in text and path == "date"
    assert failure(lambda: date_bounds(["xx2024"]))[0] == "invalid"
    assert failure(lambda: date_bounds(["2024-13"]))[0] == "invalid"
    assert failure(lambda: date_bounds(["2024"] * 5))[0] == "invalid"


# ------------------------------------------------------------------ search parameters


PATIENT = ("patient.identifier", f"{INS[0]}|{INS[1]}")


def test_a_search_names_its_patient_by_ins_or_reference() -> None:
    asked = search_request([PATIENT])
    assert asked.designation == {"identifier": {"system": INS[0], "value": INS[1]}}
    assert (asked.designated_by, asked.codes, asked.count, asked.offset) == ("patient.identifier", (), 50, 0)
    assert search_request([("patient", "Patient/abc-1")]).designation == {"reference": "Patient/abc-1"}
    assert search_request([("patient", "abc-1")]).designation == {"reference": "Patient/abc-1"}
    assert search_request([("patient", "abc")]).designated_by == "patient"
    test_ins = search_request([("patient.identifier", f"urn:oid:1.2.250.1.213.1.4.10|{INS[1]}")])
    assert test_ins.designation["identifier"]["system"] == "urn:oid:1.2.250.1.213.1.4.10"
    for params in (
        [],
        [("patient.identifier", INS[1])],
        [("patient.identifier", f"urn:oid:1.2.3|{INS[1]}")],
        [("patient.identifier", f"{INS[0]}|")],
        [PATIENT, PATIENT],
        [PATIENT, ("patient", "Patient/x")],
        [("patient", "Practitioner/x")],
        [("patient", "Patient/x y")],
        [("patient", "")],
    ):
        assert failure(lambda p=params: search_request(p))[0] in {"required", "invalid"}


def test_codes_are_system_bar_code_bar_code_or_code_comma_is_or() -> None:
    asked = search_request([PATIENT, ("code", "http://loinc.org|29463-7,|8302-2, 2345-7")])
    assert asked.codes == (("http://loinc.org", "29463-7"), ("", "8302-2"), (None, "2345-7"))
    urn = search_request([PATIENT, ("code", "urn:oid:1.2.3|a|b")])
    assert urn.codes == (("urn:oid:1.2.3|a", "b"),)
    for bad in ("", ",", "a,,b", "http://loinc.org|", "x" * 101, ",".join(["a"] * 51)):
        assert failure(lambda b=bad: search_request([PATIENT, ("code", b)]))[2] == "code"
    assert failure(lambda: search_request([PATIENT, ("code", "a"), ("code", "b")]))[0] == "invalid"


@pytest.mark.parametrize(("count", "offset"), [("0", "0"), ("100", "100000"), ("7", "14")])
def test_count_and_offset_within_bounds(count: str, offset: str) -> None:
    asked = search_request([PATIENT, ("_count", count), ("_offset", offset)])
    assert (asked.count, asked.offset) == (int(count), int(offset))


@pytest.mark.parametrize(
    "param",
    [
        ("_count", "101"),
        ("_count", "-1"),
        ("_count", "1.5"),
        ("_count", ""),
        ("_offset", "100001"),
        ("_offset", "-3"),
        ("_offset", "x"),
        ("_sort", "date"),
        ("subject", "Patient/x"),
        ("_total", "accurate"),
    ],
)
def test_what_a_search_does_not_understand_is_400(param: tuple[str, str]) -> None:
    code, _, path = failure(lambda: search_request([PATIENT, param]))
    assert code in {"invalid", "not-supported"} and path == param[0]


def test_format_is_accepted_and_ignored() -> None:
    assert search_request([PATIENT, ("_format", "json")]).count == 50


# ------------------------------------------------------------------ incoming: items


def resource(kind: str, **fields: Any) -> dict[str, Any]:
    return {"resourceType": kind, fhir_map.PATIENT_ELEMENT[kind]: SUBJECT, **fields}


def concept(text: str, code: str = "", system: str = "http://snomed.info/sct") -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": text}]} if code else {"text": text}


def test_a_condition_is_its_label_onset_and_clinical_status() -> None:
    kept = incoming(
        "Condition",
        resource(
            "Condition",
            code={"text": "HTA", "coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I10"}]},
            clinicalStatus={"coding": [{"code": "resolved"}]},
            onsetDateTime="2019-04-12",
            note=[{"text": "Sous traitement"}, {"text": "Suivie"}],
        ),
        NOW,
    )
    assert kept.section == "conditions" and kept.subject == SUBJECT
    assert kept.fields == {
        "label": "HTA",
        "since": "2019-04-12",
        "status": "Guérie ou terminée",
        "note": "Sous traitement\nSuivie",
    }
    assert kept.code == {"system": "http://hl7.org/fhir/sid/icd-10", "code": "I10"}
    assert kept.effective_at == utc(2019, 4, 11, 22)
    assert kept.measure is None and kept.fhir["code"]["text"] == "HTA"


def test_a_condition_without_onset_is_filed_at_its_recorded_date_and_partial_onset_leaves_since_empty() -> None:
    kept = incoming("Condition", resource("Condition", code=concept("Asthme"), recordedDate="2020-01-02"), NOW)
    assert kept.effective_at == utc(2020, 1, 1, 23) and "since" not in kept.fields
    partial = incoming("Condition", resource("Condition", code=concept("Asthme"), onsetDateTime="2010"), NOW)
    assert partial.effective_at == utc(2009, 12, 31, 23) and "since" not in partial.fields
    none = incoming("Condition", resource("Condition", code=concept("Asthme"), onsetString="enfance"), NOW)
    assert none.effective_at is None


def test_refuted_or_codeless_items_are_refused() -> None:
    refuted = resource("Condition", code=concept("X"), verificationStatus={"coding": [{"code": "refuted"}]})
    assert failure(lambda: incoming("Condition", refuted, NOW))[2] == "Condition.verificationStatus"
    assert failure(lambda: incoming("Condition", resource("Condition"), NOW))[0:3:2] == ("required", "Condition.code")
    assert failure(lambda: incoming("AllergyIntolerance", resource("AllergyIntolerance"), NOW))[0] == "required"


def test_an_allergy_keeps_every_manifestation_and_the_worst_severity() -> None:
    kept = incoming(
        "AllergyIntolerance",
        resource(
            "AllergyIntolerance",
            code=concept("Arachide", "256349002"),
            reaction=[
                {"manifestation": [concept("Urticaire"), concept("Œdème")], "severity": "mild"},
                {"manifestation": [concept("Urticaire")], "severity": "severe"},
                {"manifestation": [concept("Toux")], "severity": "moderate"},
            ],
            onsetDateTime="2015-06-01T08:00:00Z",
        ),
        NOW,
    )
    assert kept.fields == {
        "label": "Arachide",
        "reaction": "Urticaire, Œdème, Toux",
        "severity": "Sévère",
        "since": "2015-06-01",
    }
    assert kept.code == {"system": "http://snomed.info/sct", "code": "256349002", "display": "Arachide"}


@pytest.mark.parametrize(
    ("code", "relative"),
    [
        ("MTH", "Mère"),
        ("NFTH", "Père"),
        ("sis", "Sœur"),
        ("HBRO", "Frère"),
        ("DAU", "Fille"),
        ("SON", "Fils"),
        ("MGRMTH", "Grand-mère maternelle"),
        ("MGRFTH", "Grand-père maternel"),
        ("PGRMTH", "Grand-mère paternelle"),
        ("PGRFTH", "Grand-père paternel"),
        ("MAUNT", "Tante"),
        ("PUNCLE", "Oncle"),
        ("COUSN", "Autre membre de la famille"),
        ("FAMMEMB", "Autre membre de la famille"),
    ],
)
def test_the_relationship_is_the_relative(code: str, relative: str) -> None:
    history = resource(
        "FamilyMemberHistory",
        status="completed",
        relationship={"coding": [{"system": fhir_map.ROLE_CODE, "code": code}]},
        condition=[{"code": concept("Diabète de type 2", "44054006")}, {"code": concept("Glaucome")}],
        date="2023-01-10",
    )
    kept = incoming("FamilyMemberHistory", history, NOW)
    assert kept.fields == {"label": "Diabète de type 2, Glaucome", "relative": relative}
    assert kept.code == {"system": "http://snomed.info/sct", "code": "44054006", "display": "Diabète de type 2"}
    assert kept.effective_at == utc(2023, 1, 9, 23)


def test_a_relationship_of_another_system_is_another_relative() -> None:
    history = resource(
        "FamilyMemberHistory",
        status="partial",
        relationship={"coding": [{"system": "http://autre.example", "code": "MTH"}]},
        condition=[{"code": concept("Cancer du sein")}],
    )
    assert incoming("FamilyMemberHistory", history, NOW).fields["relative"] == "Autre membre de la famille"
    no_condition = {**history, "condition": []}
    assert failure(lambda: incoming("FamilyMemberHistory", no_condition, NOW))[2] == "FamilyMemberHistory.condition"
    in_error = {**history, "status": "entered-in-error"}
    assert failure(lambda: incoming("FamilyMemberHistory", in_error, NOW))[2] == "FamilyMemberHistory.status"


def test_a_treatment_keeps_its_period_but_not_a_planned_end() -> None:
    statement = resource(
        "MedicationStatement",
        status="completed",
        medicationCodeableConcept={
            "coding": [{"system": "http://www.whocc.no/atc", "code": "J01CA04", "display": "Amoxicilline"}]
        },
        effectivePeriod={"start": "2026-01-02", "end": "2026-01-09"},
        dosage=[{"text": "1 g matin et soir"}, {"text": "pendant 7 jours"}],
    )
    kept = incoming("MedicationStatement", statement, NOW)
    assert kept.fields == {
        "label": "Amoxicilline",
        "dosage": "1 g matin et soir; pendant 7 jours",
        "start": "2026-01-02",
        "end": "2026-01-09",
    }
    planned = {**statement, "status": "active", "effectivePeriod": {"start": "2026-06-01", "end": "2026-12-31"}}
    assert incoming("MedicationStatement", planned, NOW).fields == {
        "label": "Amoxicilline",
        "dosage": "1 g matin et soir; pendant 7 jours",
        "start": "2026-06-01",
    }
    by_reference = {**statement, "medicationReference": {"display": "Doliprane"}}
    del by_reference["medicationCodeableConcept"]
    assert incoming("MedicationStatement", by_reference, NOW).fields["label"] == "Doliprane"
    asserted = resource(
        "MedicationStatement", status="active", medicationCodeableConcept=concept("X"), dateAsserted="2026-02-01"
    )
    assert incoming("MedicationStatement", asserted, NOW).effective_at == utc(2026, 1, 31, 23)
    not_taken = {**statement, "status": "not-taken"}
    assert failure(lambda: incoming("MedicationStatement", not_taken, NOW))[2] == "MedicationStatement.status"


def test_a_vaccination_needs_its_day_and_says_its_dose() -> None:
    shot = resource(
        "Immunization",
        status="completed",
        vaccineCode=concept("Revaxis"),
        occurrenceDateTime="2021-09-15T09:30:00+02:00",
        lotNumber=" X123 ",
        protocolApplied=[{"doseNumberPositiveInt": 1}],
    )
    kept = incoming("Immunization", shot, NOW)
    assert kept.fields == {"label": "Revaxis", "date": "2021-09-15", "dose": "1re dose", "lot": "X123"}
    second = {**shot, "protocolApplied": [{"doseNumberPositiveInt": 2}]}
    assert incoming("Immunization", second, NOW).fields["dose"] == "2e dose"
    booster = {**shot, "protocolApplied": [{"doseNumberString": "rappel des 25 ans"}]}
    assert incoming("Immunization", booster, NOW).fields["dose"] == "rappel des 25 ans"
    assert (
        failure(lambda: incoming("Immunization", {**shot, "occurrenceDateTime": "2021"}, NOW), 422)[0]
        == "business-rule"
    )
    as_text = {k: v for k, v in shot.items() if k != "occurrenceDateTime"} | {"occurrenceString": "enfance"}
    assert failure(lambda: incoming("Immunization", as_text, NOW))[2] == "Immunization.occurrence"
    future = {**shot, "occurrenceDateTime": "2027-01-01"}
    _, text, path = failure(lambda: incoming("Immunization", future, NOW), 422)
    assert "passée" in text and path == "Immunization.occurrenceDateTime"


def test_the_sections_rules_apply_to_what_is_sent() -> None:
    long_label = resource("Condition", code=concept("x" * 201))
    code, text, path = failure(lambda: incoming("Condition", long_label, NOW), 422)
    assert (code, path) == ("business-rule", "Condition.code") and "200 caractères" in text
    control = resource("AllergyIntolerance", code=concept("Pollen\x07"))
    assert failure(lambda: incoming("AllergyIntolerance", control, NOW), 422)[2] == "AllergyIntolerance.code"


def test_the_patient_element_and_the_type_are_required() -> None:
    assert failure(lambda: incoming("Condition", {"resourceType": "Condition", "code": concept("x")}, NOW))[2] == (
        "Condition.subject"
    )
    assert failure(lambda: incoming("Immunization", {"resourceType": "Immunization", "subject": SUBJECT}, NOW))[2] == (
        "Immunization.patient"
    )
    assert failure(lambda: incoming("Condition", resource("Observation"), NOW))[2] == "resourceType"
    assert failure(lambda: incoming("Patient", {"resourceType": "Patient"}, NOW))[2] == "resourceType"


@pytest.mark.parametrize(
    ("subject", "designates"),
    [
        (SUBJECT, True),
        ({"identifier": {"system": "urn:oid:1.2.250.1.213.1.4.10", "value": INS[1]}}, True),
        ({"reference": "Patient/abc-1.2"}, True),
        ({"reference": f"Patient?identifier={INS[0]}|{INS[1]}"}, True),
        ({"reference": f"Patient?identifier=urn:oid:1.2.3|{INS[1]}"}, False),
        ({"identifier": {"system": "urn:oid:1.2.3", "value": INS[1]}}, False),
        ({"identifier": {"system": INS[0], "value": "\x00"}}, False),
        ({"identifier": {"system": INS[0], "value": 285032}}, False),
        ({"reference": "Patient/\x00"}, False),
        ({"reference": "Practitioner/1"}, False),
        ({"display": "Marie-Ange"}, False),
        ({}, False),
        ("Patient/1", False),
    ],
)
def test_the_patient_is_named_as_carnet_finds_them(subject: Any, designates: bool) -> None:
    assert fhir_map.designates_a_patient(subject) is designates


# ------------------------------------------------------------------ incoming: measures


def observation(loinc: str, value: Any = None, unit: str | None = None, **more: Any) -> dict[str, Any]:
    quantity = {"value": value, "system": UCUM, **({"code": unit} if unit else {})} if value is not None else None
    fields: dict[str, Any] = {
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": loinc}]},
        "effectiveDateTime": "2026-06-14T08:00:00+02:00",
        **({"valueQuantity": quantity} if quantity else {}),
        **more,
    }
    return resource("Observation", **fields)


@pytest.mark.parametrize(
    ("key", "unit"),
    [(m.key, u.code) for m in catalogue.MEASURES.values() if not m.computed and not m.components for u in m.units],
)
def test_every_unit_of_every_measure_is_converted_to_the_canonical_one(key: str, unit: str) -> None:
    measure = catalogue.MEASURES[key]
    middle = (measure.low + measure.high) / 2
    in_unit = next(u for u in measure.units if u.code == unit)
    sent = (middle - in_unit.offset) / in_unit.factor
    kept = incoming("Observation", observation(measure.loinc, sent, unit), NOW)
    assert kept.section == "measures" and kept.measure == key and kept.unit_entered == unit
    assert kept.value == catalogue.to_canonical(measure, sent, unit)
    assert kept.effective_at == utc(2026, 6, 14, 6)
    assert kept.code is None and kept.fhir["valueQuantity"]["value"] == sent


def test_glucose_in_mg_per_dl_and_mmol_per_l() -> None:
    assert incoming("Observation", observation("2345-7", 180, "mg/dL"), NOW).value == 1.8
    assert incoming("Observation", observation("2345-7", 5.5, "mmol/L"), NOW).value == 0.9909
    by_label = observation("2345-7", 1.1)
    by_label["valueQuantity"] = {"value": 1.1, "unit": "g/L"}  # no code: the unit as written
    assert incoming("Observation", by_label, NOW).value == 1.1


@pytest.mark.parametrize(
    ("sent", "status", "code", "path"),
    [
        (observation("29463-7", 720, "kg"), 422, "business-rule", "Observation.valueQuantity.value"),
        (observation("29463-7", 72, "[lb_av]"), 400, "code-invalid", "Observation.valueQuantity.code"),
        (observation("29463-7", "72", "kg"), 400, "value", "Observation.valueQuantity.value"),
        (observation("29463-7", True, "kg"), 400, "value", "Observation.valueQuantity.value"),
        (observation("29463-7", 72), 400, "required", "Observation.valueQuantity.code"),
        (observation("29463-7"), 400, "required", "Observation.valueQuantity"),
        (observation("1234-5", 72, "kg"), 400, "code-invalid", "Observation.code"),
        (observation("39156-5", 22, "kg/m2"), 422, "business-rule", "Observation.code"),
        (observation("29463-7", 72, "kg", status="cancelled"), 400, "value", "Observation.status"),
        (observation("29463-7", 72, "kg", status=None), 400, "value", "Observation.status"),
    ],
)
def test_what_a_measure_cannot_be(sent: dict[str, Any], status: int, code: str, path: str) -> None:
    if sent.get("status") is None:
        sent.pop("status")
    issue = failure(lambda: incoming("Observation", sent, NOW), status)
    assert issue[0::2] == (code, path)


def test_the_range_message_is_the_catalogues() -> None:
    _, text, _ = failure(lambda: incoming("Observation", observation("8310-5", 60, "Cel"), NOW), 422)
    assert text == "Température : la valeur doit être comprise entre 10 et 47 °C."


def test_a_measure_needs_its_moment_its_unit_system_and_an_exact_value() -> None:
    sent = observation("29463-7", 72, "kg")
    no_moment = {k: v for k, v in sent.items() if k != "effectiveDateTime"}
    assert failure(lambda: incoming("Observation", no_moment, NOW))[2] == "Observation.effective"
    period = {**no_moment, "effectivePeriod": {"start": "2026-06-01T08:00:00Z"}}
    assert incoming("Observation", period, NOW).effective_at == utc(2026, 6, 1, 8)
    instant = {**no_moment, "effectiveInstant": "2026-06-01T08:00:00.123Z"}
    assert incoming("Observation", instant, NOW).effective_at == utc(2026, 6, 1, 8, 0, 0, 123000)
    future = {**sent, "effectiveDateTime": (NOW + timedelta(minutes=10)).isoformat()}
    assert failure(lambda: incoming("Observation", future, NOW), 422)[0] == "business-rule"
    slack = {**sent, "effectiveDateTime": (NOW + timedelta(minutes=4)).isoformat()}
    assert incoming("Observation", slack, NOW).effective_at == NOW + timedelta(minutes=4)
    old = {**sent, "effectiveDateTime": "1899-12-31"}
    assert failure(lambda: incoming("Observation", old, NOW), 422)[0] == "business-rule"
    other_system = {**sent, "valueQuantity": {"value": 72, "system": "http://autre.example", "code": "kg"}}
    assert failure(lambda: incoming("Observation", other_system, NOW))[2] == "Observation.valueQuantity.system"
    approximate = {**sent, "valueQuantity": {"value": 72, "comparator": "<", "system": UCUM, "code": "kg"}}
    assert failure(lambda: incoming("Observation", approximate, NOW))[0] == "not-supported"
    no_loinc = {**sent, "code": {"coding": [{"system": "http://snomed.info/sct", "code": "27113001"}]}}
    assert failure(lambda: incoming("Observation", no_loinc, NOW))[0] == "required"
    noted = {**sent, "note": [{"text": "à jeun " * 100}]}
    assert len(incoming("Observation", noted, NOW).fields["note"]) == 500


def pressure(systolic: Any, diastolic: Any, units: tuple[str, str] = ("mm[Hg]", "mm[Hg]")) -> dict[str, Any]:
    return observation(
        "85354-9",
        component=[
            {
                "code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
                "valueQuantity": {"value": systolic, "system": UCUM, "code": units[0]},
            },
            {
                "code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
                "valueQuantity": {"value": diastolic, "system": UCUM, "code": units[1]},
            },
        ],
    )


def test_blood_pressure_is_a_panel_of_two_components() -> None:
    kept = incoming("Observation", pressure(128, 82), NOW)
    assert (kept.measure, kept.value, kept.components, kept.unit_entered) == (
        "blood_pressure",
        None,
        {"systolic": 128.0, "diastolic": 82.0},
        "mm[Hg]",
    )
    in_cm = incoming("Observation", pressure(12.8, 8.2, ("cm[Hg]", "cm[Hg]")), NOW)
    assert in_cm.components == {"systolic": 128.0, "diastolic": 82.0}
    assert "systolique" in failure(lambda: incoming("Observation", pressure(80, 120), NOW), 422)[1]
    assert failure(lambda: incoming("Observation", pressure(500, 80), NOW), 422)[2] == "Observation.component"
    assert failure(lambda: incoming("Observation", pressure(128, 82, ("mm[Hg]", "cm[Hg]")), NOW))[0] == "value"
    only_one = pressure(128, 82)
    only_one["component"] = only_one["component"][:1]
    assert failure(lambda: incoming("Observation", only_one, NOW))[0::2] == ("required", "Observation.component")
    no_value = pressure(128, 82)
    no_value["component"][1]["valueQuantity"] = {"system": UCUM, "code": "mm[Hg]"}
    assert failure(lambda: incoming("Observation", no_value, NOW))[2] == "Observation.component[1].valueQuantity"


# ------------------------------------------------------------------ outgoing


CREATED = datetime(2026, 6, 1, 8, tzinfo=UTC)
UPDATED = datetime(2026, 6, 2, 9, tzinfo=UTC)


@dataclass(frozen=True)
class Entry:
    """An entry as the service gives it (only what ``outgoing`` reads)."""

    id: str = "e1"
    section: str = "measures"
    measure: str | None = None
    effective_at: datetime | None = None
    created_at: datetime = CREATED
    updated_at: datetime = UPDATED
    version: int = 2
    fields: dict[str, str] = field(default_factory=dict)
    code: dict[str, str] | None = None
    value: float | None = None
    components: dict[str, float] | None = None
    unit_entered: str | None = None
    fhir: dict[str, Any] | None = None


PATIENT_REF = {"reference": "Patient/p1", "identifier": {"system": INS[0], "value": INS[1]}}


def test_a_resource_as_sent_comes_back_with_carnets_id_version_and_patient() -> None:
    sent = {
        **observation("2345-7", 180, "mg/dL"),
        "id": "client-id",
        "meta": {"versionId": "9", "profile": ["http://exemple.fr/p"], "source": "x"},
    }
    body = outgoing("Observation", Entry(fhir=sent, measure="glucose", value=1.8), PATIENT_REF)
    assert body["id"] == "e1" and body["resourceType"] == "Observation"
    assert body["meta"] == {
        "profile": ["http://exemple.fr/p"],
        "versionId": "2",
        "lastUpdated": "2026-06-02T09:00:00+00:00",
    }
    assert body["subject"] == PATIENT_REF and body["valueQuantity"]["value"] == 180
    assert list(body)[:3] == ["resourceType", "id", "meta"]
    Observation.model_validate(body)


SAMPLES = {
    "Condition": resource(
        "Condition",
        code={"text": "HTA", "coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I10"}]},
        clinicalStatus={"coding": [{"code": "active"}]},
        onsetDateTime="2019-04-12",
        note=[{"text": "Suivie"}],
    ),
    "AllergyIntolerance": resource(
        "AllergyIntolerance",
        code=concept("Arachide", "256349002"),
        reaction=[{"manifestation": [concept("Urticaire")], "severity": "severe"}],
        onsetDateTime="2015-06-01",
    ),
    "FamilyMemberHistory": resource(
        "FamilyMemberHistory",
        status="completed",
        relationship={"coding": [{"system": fhir_map.ROLE_CODE, "code": "PGRFTH"}]},
        condition=[{"code": concept("Infarctus", "22298006")}],
    ),
    "MedicationStatement": resource(
        "MedicationStatement",
        status="completed",
        medicationCodeableConcept=concept("Amoxicilline"),
        effectivePeriod={"start": "2026-01-02", "end": "2026-01-09"},
        dosage=[{"text": "1 g matin et soir"}],
    ),
    "Immunization": resource(
        "Immunization",
        status="completed",
        vaccineCode=concept("Revaxis"),
        occurrenceDateTime="2021-09-15",
        lotNumber="X123",
        protocolApplied=[{"doseNumberString": "rappel"}],
    ),
    "Observation": pressure(128, 82),
    "Observation-weight": observation("29463-7", 72.5, "kg", note=[{"text": "à jeun"}]),
}


@pytest.mark.parametrize("name", list(SAMPLES))
def test_what_was_typed_is_built_as_a_valid_resource_that_reads_back_the_same(name: str) -> None:
    """An entry without the resource as sent (typed in the portal) is built from its fields; the R4B models
    accept it, and reading it again gives the same fields, code and values."""
    kind = name.split("-")[0]
    kept = incoming(kind, SAMPLES[name], NOW)
    entry = Entry(
        section=kept.section,
        measure=kept.measure,
        effective_at=kept.effective_at,
        fields=kept.fields,
        code=kept.code,
        value=kept.value,
        components=kept.components,
        unit_entered=kept.unit_entered,
    )
    built = outgoing(kind, entry, PATIENT_REF)
    MODELS[kind].model_validate(built)
    assert built[fhir_map.PATIENT_ELEMENT[kind]] == PATIENT_REF and built["meta"]["versionId"] == "2"
    again = incoming(kind, built, NOW)
    assert (again.fields, again.code, again.measure, again.value, again.components) == (
        kept.fields,
        kept.code,
        kept.measure,
        kept.value,
        kept.components,
    )
    if kind != "Observation" or kept.effective_at is not None:
        assert (again.effective_at is None) == (kept.effective_at is None)


def test_a_built_observation_says_its_category_and_vital_signs_profile() -> None:
    weight = outgoing("Observation", Entry(measure="weight", value=72.5, effective_at=utc(2026, 6, 1, 8)), PATIENT_REF)
    assert weight["category"][0]["coding"][0]["code"] == "vital-signs"
    assert weight["meta"]["profile"] == [fhir_map.VITAL_SIGNS_PROFILE]
    assert weight["valueQuantity"] == {"value": 72.5, "unit": "kg", "system": UCUM, "code": "kg"}
    assert weight["effectiveDateTime"] == "2026-06-01T08:00:00+00:00"
    glucose = outgoing("Observation", Entry(measure="glucose", value=1.1), PATIENT_REF)
    assert glucose["category"][0]["coding"][0]["code"] == "laboratory" and "profile" not in glucose["meta"]
