"""The catalogue of measures (PRF-2): codes against published tables, conversions against published factors,
plausible ranges at their edges, French numbers and messages, and the loader's checks.

Tables run over ``MEASURES``: a measure or a unit added to ``measures.json`` is covered at once, and a unit
without a conversion fact below fails ``test_every_unit_has_a_published_conversion_fact``.
"""

# PRF-2

from __future__ import annotations

import copy
import json
from importlib import resources
from typing import Any

import pytest

from carnet.errors import CarnetError
from carnet.profile.model import measures
from carnet.profile.model.measures import (
    BY_LOINC,
    MEASURES,
    BadNumber,
    ImplausibleValue,
    Measure,
    MeasureError,
    UnknownUnit,
    bmi,
    check_blood_pressure,
    check_component,
    format_value,
    french_number,
    parse_number,
    to_canonical,
)

NNBSP = "\u202f"

# The fourteen measures of PRF-2, in the order of the specification.
SPEC_ORDER = [
    "weight",
    "height",
    "bmi",
    "heart_rate",
    "waist",
    "steps",
    "blood_pressure",
    "head_circumference",
    "pain",
    "temperature",
    "glucose",
    "interstitial_glucose",
    "hba1c",
    "gmi",
]

# Codes fixed by the specification (PRF-2: "steps 41950-7, waist 8280-0, pain 72514-3") and by the FHIR R4
# vital-signs profiles (http://hl7.org/fhir/R4/observation-vitalsigns.html), HbA1c by the brief and the ANS guide.
PUBLISHED_CODES = {
    "weight": "29463-7",
    "height": "8302-2",
    "bmi": "39156-5",
    "heart_rate": "8867-4",
    "waist": "8280-0",
    "steps": "41950-7",
    "blood_pressure": "85354-9",
    "head_circumference": "9843-4",
    "pain": "72514-3",
    "temperature": "8310-5",
    "hba1c": "4548-4",
    "gmi": "97506-0",
}
PUBLISHED_COMPONENTS = {"systolic": "8480-6", "diastolic": "8462-4"}

# Published facts, written here independently of the data file: (typed value, value in the canonical unit,
# tolerance). 1 kg = 1000 g; 1 m = 100 cm; 1 cmHg = 10 mmHg; °C = (°F - 32) × 5/9; 1 g/L = 100 mg/dL;
# glucose 180.16 g/mol so 1 g/L = 5.551 mmol/L, and the WHO threshold 7.0 mmol/L = 126 mg/dL; HbA1c per the
# NGSP/IFCC conversion table 48 mmol/mol = 6.5 %, 53 = 7.0 %, 64 = 8.0 % (printed to 0.1 %).
_GLUCOSE: dict[str, list[tuple[float, float, float]]] = {
    "g/L": [(1.05, 1.05, 0.0)],
    "mg/dL": [(100, 1.0, 0.0), (126, 1.26, 0.0)],
    "mmol/L": [(5.551, 1.0, 0.001), (7.0, 1.26, 0.002), (2.8, 0.5045, 0.001)],
}
CONVERSIONS: dict[tuple[str, str], list[tuple[float, float, float]]] = {
    ("weight", "kg"): [(72.5, 72.5, 0.0)],
    ("weight", "g"): [(2500, 2.5, 0.0), (3456, 3.456, 0.0)],
    ("height", "cm"): [(175, 175.0, 0.0)],
    ("height", "m"): [(1.80, 180.0, 0.0), (0.5, 50.0, 0.0)],
    ("bmi", "kg/m2"): [(22.9, 22.9, 0.0)],
    ("heart_rate", "/min"): [(72, 72.0, 0.0)],
    ("waist", "cm"): [(85.5, 85.5, 0.0)],
    ("steps", "/d"): [(8000, 8000.0, 0.0)],
    ("steps", "1/(24.h)"): [(8000, 8000.0, 0.0)],  # per 24 hours is per day
    ("blood_pressure", "mm[Hg]"): [(120, 120.0, 0.0)],
    ("blood_pressure", "cm[Hg]"): [(12, 120.0, 0.0), (13.5, 135.0, 0.0)],
    ("head_circumference", "cm"): [(35, 35.0, 0.0)],
    ("pain", "{score}"): [(7, 7.0, 0.0)],
    ("pain", "1"): [(7, 7.0, 0.0)],
    ("temperature", "Cel"): [(37.5, 37.5, 0.0)],
    ("temperature", "[degF]"): [(98.6, 37.0, 0.0), (104, 40.0, 0.0), (95, 35.0, 0.0)],
    **{("glucose", unit): rows for unit, rows in _GLUCOSE.items()},
    **{("interstitial_glucose", unit): rows for unit, rows in _GLUCOSE.items()},
    ("hba1c", "%"): [(7.0, 7.0, 0.0)],
    ("hba1c", "mmol/mol"): [(48, 6.5, 0.05), (53, 7.0, 0.05), (64, 8.0, 0.05)],
    ("gmi", "%"): [(6.8, 6.8, 0.0)],
}

SINGLE_VALUED = [m for m in MEASURES.values() if not m.components]
COMPONENTS = [(m, c) for m in MEASURES.values() for c in m.components]


def _luhn_ok(code: str) -> bool:
    """LOINC's mod-10 check digit, written again here (LOINC Users' Guide, appendix: the Luhn algorithm)."""
    number, check = code.split("-")
    digits = [int(d) for d in number][::-1]
    total = sum(sum(divmod(d * 2, 10)) if i % 2 == 0 else d for i, d in enumerate(digits))
    return (10 - total % 10) % 10 == int(check)


def _convert(measure: Measure, value: float, unit: str | None) -> float:
    if measure.components:
        return check_component(measure, measure.components[0].key, value, unit)
    return to_canonical(measure, value, unit)


def _plain(text: str) -> str:
    """A message without its spaces, to look for a bound written with or without a thousands separator."""
    return "".join(text.split())


def _bound(value: float) -> str:
    return f"{value:g}".replace(".", ",")


# -- the catalogue ------------------------------------------------------------------------------------------


def test_the_fourteen_measures_of_the_specification_in_its_order() -> None:
    assert list(MEASURES) == SPEC_ORDER


@pytest.mark.parametrize("measure", MEASURES.values(), ids=list(MEASURES))
def test_every_measure_has_a_well_formed_loinc_code(measure: Measure) -> None:
    for code in [measure.loinc, *(c.loinc for c in measure.components)]:
        assert code.count("-") == 1 and code.split("-")[0].isdigit() and 3 <= len(code.split("-")[0]) <= 6
        assert _luhn_ok(code), code


def test_loinc_codes_are_unique_and_index_the_measures() -> None:
    codes = [m.loinc for m in MEASURES.values()] + [c.loinc for m in MEASURES.values() for c in m.components]
    assert len(codes) == len(set(codes))
    assert {code: m.key for code, m in BY_LOINC.items()} == {m.loinc: m.key for m in MEASURES.values()}
    assert all(c.loinc not in BY_LOINC for _, c in COMPONENTS)  # only the panel's code is a measure


@pytest.mark.parametrize("key", PUBLISHED_CODES)
def test_codes_are_the_published_ones(key: str) -> None:
    assert MEASURES[key].loinc == PUBLISHED_CODES[key]


def test_blood_pressure_components_are_the_published_ones() -> None:
    bp = MEASURES["blood_pressure"]
    assert {c.key: c.loinc for c in bp.components} == PUBLISHED_COMPONENTS
    assert [c.label for c in bp.components] == ["Systolique", "Diastolique"]
    assert [m.key for m in MEASURES.values() if m.components] == ["blood_pressure"]


@pytest.mark.parametrize("measure", MEASURES.values(), ids=list(MEASURES))
def test_every_measure_is_described_in_french_with_a_canonical_unit_first(measure: Measure) -> None:
    assert measure.label and measure.display and measure.unit.label
    assert measure.category in {"vital-signs", "laboratory", "activity"}
    assert measure.units[0] == measure.unit
    assert (measure.unit.factor, measure.unit.offset) == (1.0, 0.0)
    assert measure.low < measure.high


def test_only_the_imc_is_computed() -> None:
    assert {m.key for m in MEASURES.values() if m.computed} == {"bmi"}


def test_hba1c_has_the_default_target_of_seven_percent_and_no_other_measure_has_one() -> None:
    assert MEASURES["hba1c"].default_target == 7.0
    assert {m.key for m in MEASURES.values() if m.default_target is not None} == {"hba1c"}


def test_every_range_and_code_choice_cites_its_source() -> None:
    data = json.loads(resources.files("carnet.data").joinpath("measures.json").read_text(encoding="utf-8"))
    assert data["_source"].strip()
    for entry in data["measures"]:
        assert entry["range"]["_source"].strip(), entry["key"]
        for component in entry["components"]:
            assert component["range"]["_source"].strip()
    chosen = {e["key"]: e for e in data["measures"]}
    assert chosen["glucose"]["_loinc"] and chosen["interstitial_glucose"]["_loinc"]


# -- conversions ----------------------------------------------------------------------------------------------


def test_every_unit_has_a_published_conversion_fact() -> None:
    declared = {(m.key, u.code) for m in MEASURES.values() for u in m.units}
    assert declared == set(CONVERSIONS)


@pytest.mark.parametrize(("key", "unit"), list(CONVERSIONS), ids=[f"{k}-{u}" for k, u in CONVERSIONS])
def test_every_unit_converts_known_values_as_published(key: str, unit: str) -> None:
    measure = MEASURES[key]
    label = next(u.label for u in measure.units if u.code == unit)
    for typed, expected, tolerance in CONVERSIONS[(key, unit)]:
        by_code = _convert(measure, typed, unit)
        assert by_code == pytest.approx(expected, abs=tolerance or 1e-12)
        # The same unit named by its French label, in another case, with spaces around: the same value.
        assert _convert(measure, typed, f" {label.upper()} ") == by_code
        assert _convert(measure, typed, unit.lower()) == by_code


@pytest.mark.parametrize("measure", MEASURES.values(), ids=list(MEASURES))
def test_no_unit_means_the_canonical_unit(measure: Measure) -> None:
    assert _convert(measure, measure.high, None) == measure.high
    assert _convert(measure, measure.high, "  ") == measure.high  # a form's empty choice


@pytest.mark.parametrize("measure", MEASURES.values(), ids=list(MEASURES))
def test_an_unknown_unit_is_refused_naming_the_accepted_ones(measure: Measure) -> None:
    with pytest.raises(UnknownUnit) as refused:
        _convert(measure, measure.high, "furlong")
    assert measure.label in refused.value.message
    assert all(u.label in refused.value.message for u in measure.units)


def test_conversions_wash_out_float_dust() -> None:
    assert to_canonical(MEASURES["height"], 1.8, "m") == 180.0  # 1.8 * 100 is 180.00000000000003
    assert to_canonical(MEASURES["weight"], 3456, "g") == 3.456  # a newborn's grams are kept


def test_counts_and_scores_are_whole_numbers() -> None:
    assert to_canonical(MEASURES["steps"], 8000.4) == 8000.0
    assert to_canonical(MEASURES["pain"], 6.5) == 7.0  # half away from zero, as taught


def test_a_panel_has_no_single_value() -> None:
    with pytest.raises(ValueError, match="panel"):
        to_canonical(MEASURES["blood_pressure"], 120)


# -- plausible ranges -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("measure", SINGLE_VALUED, ids=[m.key for m in SINGLE_VALUED])
def test_range_edges_are_accepted_and_just_outside_is_refused_in_french(measure: Measure) -> None:
    assert to_canonical(measure, measure.low) == measure.low
    assert to_canonical(measure, measure.high) == measure.high
    step = 10.0**-measure.decimals
    for outside in (measure.low - step, measure.high + step):
        with pytest.raises(ImplausibleValue) as refused:
            to_canonical(measure, outside)
        message = refused.value.message
        assert message.startswith(f"{measure.label} : la valeur doit être comprise entre ")
        assert _bound(measure.low) in _plain(message) and _bound(measure.high) in _plain(message)


@pytest.mark.parametrize(("measure", "component"), COMPONENTS, ids=[c.key for _, c in COMPONENTS])
def test_component_edges_are_accepted_and_just_outside_is_refused_in_french(measure: Measure, component: Any) -> None:
    assert check_component(measure, component.key, component.low) == component.low
    assert check_component(measure, component.key, component.high) == component.high
    for outside in (component.low - 1, component.high + 1):
        with pytest.raises(ImplausibleValue) as refused:
            check_component(measure, component.key, outside)
        message = refused.value.message
        assert measure.label in message and component.label.lower() in message
        assert _bound(component.low) in _plain(message) and _bound(component.high) in _plain(message)


def test_the_message_gives_the_range_in_the_canonical_unit_with_french_decimals() -> None:
    with pytest.raises(ImplausibleValue) as refused:
        to_canonical(MEASURES["weight"], 0.1)
    assert refused.value.message == "Poids : la valeur doit être comprise entre 0,2 et 650 kg."
    with pytest.raises(ImplausibleValue) as refused:
        to_canonical(MEASURES["steps"], 400_000)
    assert f"350{NNBSP}000 pas/jour" in refused.value.message


def test_a_range_is_checked_after_conversion() -> None:
    with pytest.raises(ImplausibleValue, match="g/L"):
        to_canonical(MEASURES["glucose"], 120)  # mg/dL typed as g/L
    assert to_canonical(MEASURES["glucose"], 120, "mg/dL") == 1.2
    with pytest.raises(ImplausibleValue):
        to_canonical(MEASURES["weight"], 1e308, "kg")
    with pytest.raises(ImplausibleValue):
        to_canonical(MEASURES["height"], 1e308, "m")  # overflows to infinity on conversion


def test_a_refusal_never_repeats_the_value_typed() -> None:
    with pytest.raises(ImplausibleValue) as refused:
        to_canonical(MEASURES["weight"], 7234)
    assert "7234" not in _plain(refused.value.message)


def test_errors_are_french_carnet_errors() -> None:
    for error in (ImplausibleValue, UnknownUnit, BadNumber):
        assert issubclass(error, MeasureError) and issubclass(error, CarnetError)


# -- blood pressure -------------------------------------------------------------------------------------------


def test_blood_pressure_in_mmhg_and_as_said_in_france() -> None:
    assert check_blood_pressure(120, 80) == (120.0, 80.0)
    assert check_blood_pressure(12, 8, "cmHg") == (120.0, 80.0)


@pytest.mark.parametrize(("systolic", "diastolic"), [(80, 120), (100, 100)])
def test_blood_pressure_refuses_a_systolic_not_above_the_diastolic(systolic: float, diastolic: float) -> None:
    with pytest.raises(ImplausibleValue) as refused:
        check_blood_pressure(systolic, diastolic)
    assert refused.value.message.startswith("Tension artérielle : ")
    assert "systolique" in refused.value.message and "diastolique" in refused.value.message


def test_blood_pressure_checks_each_range() -> None:
    with pytest.raises(ImplausibleValue, match="systolique"):
        check_blood_pressure(12, 8)  # cmHg typed as mmHg
    with pytest.raises(ImplausibleValue, match="diastolique"):
        check_blood_pressure(120, 5)


def test_an_unknown_component_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="mean"):
        check_component(MEASURES["blood_pressure"], "mean", 90)


# -- IMC ------------------------------------------------------------------------------------------------------


def test_imc_of_70_kg_and_175_cm() -> None:
    assert bmi(70, 175) == 22.9  # 70 / 1.75² = 22.857…


def test_imc_rounds_half_away_from_zero_once() -> None:
    assert bmi(72.25, 170) == 25.0  # 72.25 / 1.7² = 25.0 exactly
    assert bmi(100, 200) == 25.0


def test_imc_refuses_implausible_inputs_and_results() -> None:
    with pytest.raises(ImplausibleValue, match="Taille"):
        bmi(70, 0)
    with pytest.raises(ImplausibleValue, match="Poids"):
        bmi(0, 175)
    with pytest.raises(ImplausibleValue, match="IMC"):
        bmi(650, 20)  # both possible, not together


# -- typed numbers --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "value"),
    [
        ("72,5", 72.5),
        ("72.5", 72.5),
        (" 72 ", 72.0),
        ("0,05", 0.05),
        (",5", 0.5),
        ("-3,5", -3.5),
        ("+7", 7.0),
        ("10 000", 10000.0),
        (f"10{NNBSP}000", 10000.0),
        ("10\u00a0000", 10000.0),
    ],
)
def test_parse_number_reads_what_a_person_types(typed: str, value: float) -> None:
    assert parse_number(typed) == value


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "   ",
        "abc",
        "nan",
        "NaN",
        "inf",
        "-inf",
        "Infinity",
        "1e400",
        "1e3",
        "7,2.5",
        "1,234.5",
        "72 kg",
        "0x10",
        "٧٢",
        "1,2,3",
        "-",
        ".",
        "9" * 400,
    ],
)
def test_parse_number_refuses_what_is_not_a_number_in_french(typed: str) -> None:
    with pytest.raises(BadNumber) as refused:
        parse_number(typed)
    assert refused.value.message in {"Indiquez une valeur.", "Indiquez un nombre, par exemple 72,5."}


@pytest.mark.parametrize("value", [float("nan"), float("inf"), True])
def test_to_canonical_refuses_what_is_not_a_finite_number(value: float) -> None:
    with pytest.raises(BadNumber):
        to_canonical(MEASURES["weight"], value)


# -- French numbers -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "decimals", "text"),
    [
        (72.5, 1, "72,5"),
        (72, 0, "72"),
        (72, 1, "72,0"),
        (72.45, 1, "72,5"),  # half away from zero on the written value, not binary 72.4499…
        (1.005, 2, "1,01"),
        (-0.04, 1, "0,0"),
        (-3.5, 1, "-3,5"),
        (999, 0, "999"),
        (12345, 0, f"12{NNBSP}345"),
        (1234567.891, 2, f"1{NNBSP}234{NNBSP}567,89"),
    ],
)
def test_french_number(value: float, decimals: int, text: str) -> None:
    assert french_number(value, decimals) == text


@pytest.mark.parametrize(
    ("key", "value", "text"),
    [
        ("weight", 72.5, "72,5 kg"),
        ("heart_rate", 72, "72 battements/min"),
        ("steps", 12000, f"12{NNBSP}000 pas/jour"),
        ("pain", 7, "7/10"),
        ("temperature", 37.5, "37,5 °C"),
        ("glucose", 1.05, "1,05 g/L"),
        ("hba1c", 7, "7,0 %"),
        ("bmi", 22.857, "22,9 kg/m²"),
    ],
)
def test_format_value(key: str, value: float, text: str) -> None:
    assert format_value(MEASURES[key], value) == text


# -- the loader's checks, on catalogues built here rather than the shipped one -----------------------------------


def _catalogue() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        resources.files("carnet.data").joinpath("measures.json").read_text(encoding="utf-8")
    )
    return data


def _broken(key: str, change: Any) -> dict[str, Any]:
    data = copy.deepcopy(_catalogue())
    change(next(m for m in data["measures"] if m["key"] == key))
    return data


def test_the_shipped_catalogue_builds_again() -> None:
    assert measures._build(_catalogue()) == tuple(MEASURES.values())


@pytest.mark.parametrize(
    ("key", "change", "named"),
    [
        ("weight", lambda m: m.update(loinc="29463-8"), "29463-8"),  # wrong check digit
        ("weight", lambda m: m.update(loinc="29463"), "29463"),
        ("weight", lambda m: m.update(unit="g"), "weight"),  # canonical unit not first
        ("weight", lambda m: m["units"][0].update(factor=2), "weight"),
        ("weight", lambda m: m["units"][1].update(factor=0), "weight"),
        ("weight", lambda m: m["units"][1].update(label="kg"), "kg"),  # « kg » would name two units
        ("weight", lambda m: m.update(range={"low": 5, "high": 5, "_source": "x"}), "weight"),
        ("weight", lambda m: m["range"].pop("_source"), "weight"),
        ("weight", lambda m: m.update(category="survey"), "survey"),
        ("weight", lambda m: m.update(unitz="kg"), "unitz"),
        ("weight", lambda m: m.update(key="Poids"), "Poids"),
        ("weight", lambda m: m.update(decimals=True), "weight"),
        ("weight", lambda m: m.update(computed="no"), "weight"),
        ("weight", lambda m: m.update(units=[]), "weight"),
        ("hba1c", lambda m: m.update(default_target=40), "hba1c"),
        ("height", lambda m: m.update(key="weight"), "weight"),  # twice the same key
        ("height", lambda m: m.update(loinc="29463-7"), "29463-7"),  # twice the same code
        ("blood_pressure", lambda m: m["components"][0]["range"].update(high=400), "systolic"),
        ("blood_pressure", lambda m: m["components"][1].update(loinc="8480-6"), "8480-6"),
        ("blood_pressure", lambda m: m["components"][1].update(key="systolic"), "blood_pressure"),
        ("temperature", lambda m: m["units"][1].update(offset=float("inf")), "temperature"),
    ],
)
def test_the_loader_names_what_is_wrong(key: str, change: Any, named: str) -> None:
    with pytest.raises(ValueError, match=r"measures\.json") as refused:
        measures._build(_broken(key, change))
    assert named in str(refused.value)


def test_the_loader_wants_the_source_of_the_codes() -> None:
    data = copy.deepcopy(_catalogue())
    del data["_source"]
    with pytest.raises(ValueError, match="_source"):
        measures._build(data)
