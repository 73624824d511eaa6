"""The catalogue of the fourteen measures of the medical profile (PRF-2): codes, units, plausible ranges.

Pure: the catalogue is data (``carnet/data/measures.json``, whose ``_source`` keys cite where each LOINC code,
conversion factor and range comes from), read once at import and checked: a malformed entry — a LOINC code
whose mod-10 check digit is wrong, a canonical unit that is not the identity, an empty range, a unit two
entries of one measure would both answer to — is a ``ValueError`` at import naming what is wrong.

Values are kept in one canonical UCUM unit per measure (kg, cm, g/L, %…); a unit converts to it as
``canonical = value × factor + offset`` (the offset serves °F and the IFCC→NGSP master equation of HbA1c).
A converted value is rounded to the shown decimals plus two (grams of a newborn's weight survive; float dust
such as 180.00000000000003 does not), or to a whole number for counts and scores (``decimals == 0``), and
only then checked against the plausible range: plausible means physically possible for a human of any age,
to catch a slip of the finger (72 typed 720), never a clinical judgement.

Blood pressure is a panel (85354-9) with two components; it has no single value and goes through
``check_blood_pressure``. The IMC is computed from weight and height (``bmi``), never entered.

Every message a person reads is French (``MeasureError`` and its subclasses, all ``CarnetError``) and holds
the measure's name and range, never the value typed.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal
from importlib import resources
from types import MappingProxyType
from typing import Any

from carnet.errors import CarnetError

__all__ = [
    "BY_LOINC",
    "MEASURES",
    "BadNumber",
    "Component",
    "ImplausibleValue",
    "Measure",
    "MeasureError",
    "Unit",
    "UnknownUnit",
    "bmi",
    "check_blood_pressure",
    "check_component",
    "format_value",
    "french_number",
    "parse_number",
    "to_canonical",
]

_DATA_FILE = "measures.json"
CATEGORIES = frozenset({"vital-signs", "laboratory", "activity"})
_KEY = re.compile(r"[a-z][a-z0-9_]*")
_LOINC = re.compile(r"(\d{1,7})-(\d)")
_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)")  # ASCII digits only
_MAX_TYPED = 40  # longer than any number a person types for a measure
_DECIMALS = Context(prec=400, rounding=ROUND_HALF_UP)  # room for any finite float with its decimals
_GROUP = "\u202f"  # narrow no-break space: the French thousands separator (CLDR fr)
_MEASURE_KEYS = frozenset(
    {
        "key",
        "label",
        "loinc",
        "display",
        "category",
        "unit",
        "units",
        "range",
        "decimals",
        "computed",
        "components",
        "default_target",
    }
)
_COMPONENT_KEYS = frozenset({"key", "label", "loinc", "display", "range"})


class MeasureError(CarnetError):
    """A measure as typed or received cannot be kept (the French reason)."""


class ImplausibleValue(MeasureError):
    """Outside what is physically possible for a human: most likely a slip of the finger."""


class UnknownUnit(MeasureError):
    """A unit the measure does not accept."""


class BadNumber(MeasureError):
    """Not a number a person could have meant."""


@dataclass(frozen=True)
class Unit:
    code: str  # UCUM
    label: str  # French, as shown
    factor: float
    offset: float = 0.0

    def to_canonical(self, value: float) -> float:
        return value * self.factor + self.offset


@dataclass(frozen=True)
class Component:
    key: str
    label: str
    loinc: str
    display: str
    low: float
    high: float


@dataclass(frozen=True)
class Measure:
    key: str
    label: str
    loinc: str
    display: str
    category: str  # FHIR Observation category: vital-signs | laboratory | activity
    unit: Unit  # the canonical unit (factor 1, offset 0)
    units: tuple[Unit, ...]  # accepted units, canonical first
    low: float  # plausible range, in the canonical unit
    high: float
    decimals: int  # shown
    computed: bool = False
    components: tuple[Component, ...] = ()
    default_target: float | None = None


# -- reading and checking the data file -------------------------------------------------------------------


def _read() -> dict[str, Any]:
    text = resources.files("carnet.data").joinpath(_DATA_FILE).read_text(encoding="utf-8")
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"{_DATA_FILE} : un objet JSON est attendu")
    return data


def loinc_check_digit_ok(code: str) -> bool:
    """Whether ``code`` is ``digits-check`` with LOINC's mod-10 check digit (the Luhn algorithm)."""
    match = _LOINC.fullmatch(code)
    if match is None:
        return False
    total = 0
    for position, char in enumerate(reversed(match.group(1))):
        digit = int(char) * (2 if position % 2 == 0 else 1)
        total += digit - 9 if digit > 9 else digit
    return (10 - total % 10) % 10 == int(match.group(2))


def _fail(where: str, what: str) -> ValueError:
    return ValueError(f"{_DATA_FILE}, {where} : {what}")


def _text(entry: Mapping[str, Any], name: str, where: str) -> str:
    value = entry.get(name)
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, f"« {name} » doit être un texte non vide")
    return value


def _number(value: object, where: str, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(where, f"« {name} » doit être un nombre fini")
    return float(value)


def _loinc(entry: Mapping[str, Any], where: str) -> str:
    code = _text(entry, "loinc", where)
    if not loinc_check_digit_ok(code):
        raise _fail(where, f"« {code} » n'est pas un code LOINC valide (forme ou chiffre de contrôle)")
    return code


def _range(entry: Mapping[str, Any], where: str) -> tuple[float, float]:
    rng = entry.get("range")
    if not isinstance(rng, dict):
        raise _fail(where, "« range » doit être un objet {low, high, _source}")
    low, high = _number(rng.get("low"), where, "range.low"), _number(rng.get("high"), where, "range.high")
    if not low < high:
        raise _fail(where, f"plage vide ({low} ≥ {high})")
    _text(rng, "_source", f"{where}, range")
    return low, high


def _stray(entry: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    stray = sorted(k for k in entry if not k.startswith("_") and k not in allowed)
    if stray:
        raise _fail(where, f"clé(s) inconnue(s) {stray}")


def _units(entry: Mapping[str, Any], where: str) -> tuple[Unit, tuple[Unit, ...]]:
    raw = entry.get("units")
    if not isinstance(raw, list) or not raw:
        raise _fail(where, "« units » doit être une liste non vide")
    units: list[Unit] = []
    names: dict[str, Unit] = {}
    for item in raw:
        if not isinstance(item, dict):
            raise _fail(where, "chaque unité doit être un objet {code, label, factor, offset}")
        _stray(item, frozenset({"code", "label", "factor", "offset"}), f"{where}, unité")
        code = _text(item, "code", f"{where}, unité")
        unit = Unit(
            code,
            _text(item, "label", f"{where}, unité {code}"),
            _number(item.get("factor"), f"{where}, unité {code}", "factor"),
            _number(item.get("offset", 0.0), f"{where}, unité {code}", "offset"),
        )
        if unit.factor <= 0:
            raise _fail(where, f"unité {code} : « factor » doit être positif")
        for name in {unit.code.casefold(), unit.label.casefold()}:
            if names.get(name, unit) != unit:
                raise _fail(where, f"« {name} » désigne deux unités différentes")
            names[name] = unit
        units.append(unit)
    canonical = _text(entry, "unit", where)
    first = units[0]
    if first.code != canonical or first.factor != 1 or first.offset != 0:
        raise _fail(
            where, f"l'unité canonique {canonical} doit être la première des unités, de facteur 1 sans décalage"
        )
    return first, tuple(units)


def _components(entry: Mapping[str, Any], where: str, low: float, high: float) -> tuple[Component, ...]:
    raw = entry.get("components", [])
    if not isinstance(raw, list):
        raise _fail(where, "« components » doit être une liste")
    components = []
    for item in raw:
        if not isinstance(item, dict):
            raise _fail(where, "chaque composant doit être un objet")
        key = _text(item, "key", f"{where}, composant")
        at = f"{where}, composant {key}"
        _stray(item, _COMPONENT_KEYS, at)
        c_low, c_high = _range(item, at)
        if c_low < low or c_high > high:
            raise _fail(at, "la plage du composant doit tenir dans celle de la mesure")
        components.append(
            Component(key, _text(item, "label", at), _loinc(item, at), _text(item, "display", at), c_low, c_high)
        )
    if len({c.key for c in components}) != len(components):
        raise _fail(where, "composant en double")
    return tuple(components)


def _measure(entry: object, index: int) -> Measure:
    if not isinstance(entry, dict):
        raise _fail(f"mesure n° {index + 1}", "un objet est attendu")
    key = _text(entry, "key", f"mesure n° {index + 1}")
    where = f"mesure {key}"
    if not _KEY.fullmatch(key):
        raise _fail(where, "la clé doit être en minuscules ASCII (a-z, 0-9, _)")
    _stray(entry, _MEASURE_KEYS, where)
    category = _text(entry, "category", where)
    if category not in CATEGORIES:
        raise _fail(where, f"catégorie « {category} » inconnue (attendu : {sorted(CATEGORIES)})")
    decimals, computed = entry.get("decimals"), entry.get("computed", False)
    if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 4:
        raise _fail(where, "« decimals » doit être un entier de 0 à 4")
    if not isinstance(computed, bool):
        raise _fail(where, "« computed » doit être vrai ou faux")
    low, high = _range(entry, where)
    unit, units = _units(entry, where)
    target = entry.get("default_target")
    if target is not None:
        target = _number(target, where, "default_target")
        if not low <= target <= high:
            raise _fail(where, "l'objectif par défaut doit être dans la plage plausible")
    label, loinc, display = _text(entry, "label", where), _loinc(entry, where), _text(entry, "display", where)
    components = _components(entry, where, low, high)
    return Measure(key, label, loinc, display, category, unit, units, low, high, decimals, computed, components, target)


def _build(data: Mapping[str, Any]) -> tuple[Measure, ...]:
    """Check the catalogue and freeze it (ValueError naming what is wrong)."""
    _stray(data, frozenset({"measures"}), "racine")
    if not isinstance(data.get("_source"), str) or not data["_source"].strip():
        raise _fail("racine", "« _source » doit dire d'où viennent les codes")
    raw = data.get("measures")
    if not isinstance(raw, list) or not raw:
        raise _fail("racine", "« measures » doit être une liste non vide")
    measures = tuple(_measure(entry, i) for i, entry in enumerate(raw))
    keys = [m.key for m in measures]
    codes = [m.loinc for m in measures] + [c.loinc for m in measures for c in m.components]
    for what, values in (("clé", keys), ("code LOINC", codes)):
        twice = sorted({v for v in values if values.count(v) > 1})
        if twice:
            raise _fail("racine", f"{what}(s) en double : {twice}")
    return measures


_CATALOGUE = _build(_read())

MEASURES: Mapping[str, Measure] = MappingProxyType({m.key: m for m in _CATALOGUE})
BY_LOINC: Mapping[str, Measure] = MappingProxyType({m.loinc: m for m in _CATALOGUE})


# -- numbers in French --------------------------------------------------------------------------------------


def _quantize(value: float, decimals: int) -> Decimal:
    """``value`` rounded half away from zero, as written (so 72.45 → 72.5, not binary 72.4)."""
    return Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-decimals), context=_DECIMALS)


def _round(value: float, decimals: int) -> float:
    return float(_quantize(value, decimals))


def french_number(value: float, decimals: int) -> str:
    """``72,5``: decimal comma, thousands grouped by a narrow no-break space, exactly ``decimals`` decimals."""
    number = _quantize(value, decimals)
    if number == 0:
        number = abs(number)  # never « -0,0 »
    sign = "-" if number < 0 else ""
    whole, _, fraction = f"{abs(number):f}".partition(".")
    groups: list[str] = []
    while len(whole) > 3:
        whole, tail = whole[:-3], whole[-3:]
        groups.insert(0, tail)
    text = _GROUP.join([whole, *groups])
    return f"{sign}{text},{fraction}" if fraction else f"{sign}{text}"


def _with_unit(number: str, unit: Unit) -> str:
    return f"{number}{unit.label}" if unit.label.startswith("/") else f"{number} {unit.label}"


def format_value(measure: Measure, value: float) -> str:
    """``72,5 kg``, ``7/10``: a canonical value with the measure's decimals and unit."""
    return _with_unit(french_number(value, measure.decimals), measure.unit)


def _bound(value: float) -> str:
    """A range bound with the decimals it has (0,05; 650), not the measure's."""
    exponent = Decimal(repr(float(value))).normalize().as_tuple().exponent
    return french_number(value, max(0, -exponent) if isinstance(exponent, int) else 0)


def _range_message(label: str, low: float, high: float, unit: Unit) -> str:
    high_text = _bound(high) if unit.label.startswith("/") else _with_unit(_bound(high), unit)
    return f"{label} : la valeur doit être comprise entre {_bound(low)} et {high_text}."


# -- parsing, converting, checking --------------------------------------------------------------------------


def parse_number(text: str) -> float:
    """A number as a person types it: ``72,5``, ``72.5``, `` 72 ``, ``10 000`` (BadNumber otherwise)."""
    cleaned = "".join(text.split()) if isinstance(text, str) else ""
    if not cleaned:
        raise BadNumber("Indiquez une valeur.")
    if len(cleaned) > _MAX_TYPED or ("," in cleaned and "." in cleaned):
        raise BadNumber("Indiquez un nombre, par exemple 72,5.")
    cleaned = cleaned.replace(",", ".")
    if not _NUMBER.fullmatch(cleaned):
        raise BadNumber("Indiquez un nombre, par exemple 72,5.")
    value = float(cleaned)
    if not math.isfinite(value):
        raise BadNumber("Indiquez un nombre, par exemple 72,5.")
    return value


def _unit(measure: Measure, unit_code: str | None) -> Unit:
    wanted = (unit_code or "").strip().casefold()
    if not wanted:  # None or a form's empty choice: the canonical unit
        return measure.unit
    for unit in measure.units:
        if wanted in (unit.code.casefold(), unit.label.casefold()):
            return unit
    accepted = ", ".join(unit.label for unit in measure.units)
    raise UnknownUnit(f"{measure.label} : unité inconnue ; unités acceptées : {accepted}.")


def _convert(measure: Measure, value: float, unit_code: str | None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadNumber("Indiquez un nombre, par exemple 72,5.")
    converted = _unit(measure, unit_code).to_canonical(float(value))
    if not math.isfinite(converted):
        raise ImplausibleValue(_range_message(measure.label, measure.low, measure.high, measure.unit))
    return _round(converted, measure.decimals + 2 if measure.decimals else 0)


def to_canonical(measure: Measure, value: float, unit_code: str | None = None) -> float:
    """``value`` in ``unit_code`` (UCUM code or French label; None or blank: canonical), converted, rounded, checked."""
    if measure.components:
        raise ValueError(f"{measure.key} is a panel: use check_blood_pressure / check_component")
    converted = _convert(measure, value, unit_code)
    if not measure.low <= converted <= measure.high:
        raise ImplausibleValue(_range_message(measure.label, measure.low, measure.high, measure.unit))
    return converted


def check_component(measure: Measure, component_key: str, value: float, unit_code: str | None = None) -> float:
    """One component of a panel (systolic, diastolic), converted to the canonical unit and range-checked."""
    component = next((c for c in measure.components if c.key == component_key), None)
    if component is None:
        raise ValueError(f"{measure.key} has no component {component_key!r}")
    converted = _convert(measure, value, unit_code)
    if not component.low <= converted <= component.high:
        label = f"{measure.label} ({component.label.lower()})"
        raise ImplausibleValue(_range_message(label, component.low, component.high, measure.unit))
    return converted


def check_blood_pressure(systolic: float, diastolic: float, unit_code: str | None = None) -> tuple[float, float]:
    """Both pressures in mmHg, each in its range, the systolic above the diastolic."""
    measure = MEASURES["blood_pressure"]
    high = check_component(measure, "systolic", systolic, unit_code)
    low = check_component(measure, "diastolic", diastolic, unit_code)
    if high <= low:
        raise ImplausibleValue(
            f"{measure.label} : la pression systolique (le chiffre du haut, 120 dans 120/80) "
            "doit être supérieure à la diastolique."
        )
    return high, low


def bmi(weight_kg: float, height_cm: float) -> float:
    """The IMC (kg/m²) from a weight and a height, rounded to one decimal; ImplausibleValue outside its range."""
    weight = to_canonical(MEASURES["weight"], weight_kg)
    height = to_canonical(MEASURES["height"], height_cm)
    measure = MEASURES["bmi"]
    value = weight / (height / 100) ** 2
    if not measure.low <= value <= measure.high:
        raise ImplausibleValue(_range_message(measure.label, measure.low, measure.high, measure.unit))
    return _round(value, measure.decimals)
