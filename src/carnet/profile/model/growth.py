"""Children's growth reference curves (PRF-2): WHO LMS tables, percentile curves and a measure's percentile.

Pure: the numbers are data (``carnet/data/growth_who.json``, its ``_source`` cites the WHO publications),
read once at import and checked (a malformed table is a ``ValueError`` at import naming what is wrong).

Each table gives, month by month, the LMS parameters of the WHO Child Growth Standards (0-60 months)
followed by the WHO 2007 growth reference for 5-19 years (61-228 months; weight to 120 months only,
head circumference has no reference after 60 months). Between two months L, M and S are interpolated
linearly. Height and BMI at 24 months are the WHO's recumbent-length values (0-2 years table), from 25
months the standing-height ones (2-5 years table): the WHO's 0.7 cm length/height seam is spread over
that month. A value ``y`` at age ``t`` has the z-score ``((y / M)^L - 1) / (L S)`` (``ln(y / M) / S`` when
``L == 0``) and the percentile ``100 Φ(z)``. For weight and BMI beyond ±3 SD the WHO's restricted
application of the LMS method is used (the distance past ±3 SD is measured in units of the 2-3 SD gap),
as in the WHO's own software; length/height and head circumference use the plain formula.
"""

from __future__ import annotations

import json
import math
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from itertools import pairwise
from statistics import NormalDist
from types import MappingProxyType
from typing import Any

from carnet.errors import CarnetError

__all__ = [
    "INDICATORS",
    "PERCENTILES",
    "SEXES",
    "Reference",
    "curves",
    "percentile_of",
    "reference",
    "source_label",
    "value_at_percentile",
]

INDICATORS = ("weight", "height", "bmi", "head_circumference")  # same keys as the measures catalogue
PERCENTILES = (3, 15, 50, 85, 97)
SEXES = ("F", "M")

_DATA_FILE = "growth_who.json"
_NORMAL = NormalDist()
# Indicators whose distribution tails are "restricted" beyond ±3 SD (WHO, Methods and development, 2006, ch. 7).
_RESTRICTED_TAILS = frozenset({"weight", "bmi"})

_LABEL_2006_2007 = (
    "Courbes de référence : OMS, normes de croissance de l'enfant (2006) et référence de croissance 5-19 ans (2007)"
)
_SOURCE_LABELS: Mapping[str, str] = MappingProxyType(
    {
        "weight": _LABEL_2006_2007,
        "height": _LABEL_2006_2007,
        "bmi": _LABEL_2006_2007,
        "head_circumference": "Courbes de référence : OMS, normes de croissance de l'enfant (2007)",
    }
)


@dataclass(frozen=True)
class Reference:
    """One WHO table: an indicator for one sex, LMS parameters by age in months (strictly increasing)."""

    indicator: str
    sex: str
    unit: str
    ages_months: tuple[float, ...]
    L: tuple[float, ...]
    M: tuple[float, ...]
    S: tuple[float, ...]

    @property
    def min_age_months(self) -> float:
        return self.ages_months[0]

    @property
    def max_age_months(self) -> float:
        return self.ages_months[-1]

    def lms_at(self, age_months: float) -> tuple[float, float, float] | None:
        """L, M, S at an age (linear between the table's months); None outside the table's ages."""
        ages = self.ages_months
        if not ages[0] <= age_months <= ages[-1]:
            return None
        i = bisect_right(ages, age_months) - 1
        if i >= len(ages) - 1:
            return self.L[-1], self.M[-1], self.S[-1]
        f = (age_months - ages[i]) / (ages[i + 1] - ages[i])
        return (
            self.L[i] + (self.L[i + 1] - self.L[i]) * f,
            self.M[i] + (self.M[i + 1] - self.M[i]) * f,
            self.S[i] + (self.S[i + 1] - self.S[i]) * f,
        )


def _value_at_z(L: float, M: float, S: float, z: float) -> float:
    if L == 0:
        return M * math.exp(S * z)
    base = 1 + L * S * z
    if base <= 0:
        raise CarnetError("Percentile hors du domaine de la courbe de référence")
    return float(M * base ** (1 / L))


def value_at_percentile(L: float, M: float, S: float, percentile: float) -> float:
    """The measure at a percentile (strictly between 0 and 100) of an LMS distribution."""
    if not 0 < percentile < 100:
        raise CarnetError(f"Le percentile doit être strictement compris entre 0 et 100 (reçu : {percentile})")
    return _value_at_z(L, M, S, _NORMAL.inv_cdf(percentile / 100))


def _z_score(L: float, M: float, S: float, value: float, restricted: bool) -> float:
    z = math.log(value / M) / S if L == 0 else ((value / M) ** L - 1) / (L * S)
    if restricted and abs(z) > 3:
        sign = 1.0 if z > 0 else -1.0
        sd3 = _value_at_z(L, M, S, 3 * sign)
        sd23 = sd3 - _value_at_z(L, M, S, 2 * sign)
        z = 3 * sign + (value - sd3) / abs(sd23)
    return z


def _read() -> dict[str, Any]:
    data = json.loads(resources.files("carnet.data").joinpath(_DATA_FILE).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{_DATA_FILE} : un objet JSON est attendu")
    return data


def _row(row: object, where: str) -> tuple[float, float, float, float]:
    if (
        not isinstance(row, list)
        or len(row) != 4
        or not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in row)
    ):
        raise ValueError(f"{_DATA_FILE}, {where} : ligne [âge en mois, L, M, S] attendue, reçu {row!r}")
    age, L, M, S = (float(v) for v in row)
    if M <= 0 or S <= 0:
        raise ValueError(f"{_DATA_FILE}, {where} : M et S doivent être positifs, reçu {row!r}")
    return age, L, M, S


def _table(indicator: str, sex: str, unit: str, rows: object) -> Reference:
    where = f"{indicator}/{sex}"
    if not isinstance(rows, list) or len(rows) < 2:
        raise ValueError(f"{_DATA_FILE}, {where} : au moins deux lignes sont attendues")
    parsed = [_row(r, where) for r in rows]
    ages = [r[0] for r in parsed]
    if any(b <= a for a, b in pairwise(ages)):
        raise ValueError(f"{_DATA_FILE}, {where} : les âges doivent être strictement croissants")
    return Reference(
        indicator=indicator,
        sex=sex,
        unit=unit,
        ages_months=tuple(ages),
        L=tuple(r[1] for r in parsed),
        M=tuple(r[2] for r in parsed),
        S=tuple(r[3] for r in parsed),
    )


def _build(data: Mapping[str, Any]) -> Mapping[tuple[str, str], Reference]:
    """Check the tables and freeze them (ValueError names what is wrong)."""
    stray = sorted(k for k in data if not k.startswith("_") and k not in INDICATORS)
    if stray:
        raise ValueError(f"{_DATA_FILE} : indicateur(s) inconnu(s) {stray}")
    tables: dict[tuple[str, str], Reference] = {}
    for indicator in INDICATORS:
        block = data.get(indicator)
        if not isinstance(block, dict):
            raise ValueError(f"{_DATA_FILE} : indicateur « {indicator} » absent")
        unit = block.get("unit")
        if not isinstance(unit, str) or not unit:
            raise ValueError(f"{_DATA_FILE}, {indicator} : unité absente")
        extra = sorted(set(block) - {"unit", *SEXES})
        if extra:
            raise ValueError(f"{_DATA_FILE}, {indicator} : clé(s) inconnue(s) {extra}")
        for sex in SEXES:
            tables[(indicator, sex)] = _table(indicator, sex, unit, block.get(sex))
    return MappingProxyType(tables)


_TABLES = _build(_read())


def reference(indicator: str, sex: str) -> Reference | None:
    """The WHO table for an indicator and a sex ("F" or "M"); None when there is none."""
    return _TABLES.get((indicator, sex))


def curves(indicator: str, sex: str, up_to_months: float) -> dict[int, list[tuple[float, float]]]:
    """Percentile curves (percentile -> [(age in months, value)]) month by month up to an age.

    Empty when there is no reference for the indicator and sex, or no table month up to that age.
    """
    ref = reference(indicator, sex)
    if ref is None:
        return {}
    rows = [i for i, age in enumerate(ref.ages_months) if age <= up_to_months]
    if not rows:
        return {}
    return {
        p: [(ref.ages_months[i], value_at_percentile(ref.L[i], ref.M[i], ref.S[i], p)) for i in rows]
        for p in PERCENTILES
    }


def percentile_of(indicator: str, sex: str, age_months: float, value: float) -> float | None:
    """The percentile (0-100) of a measure at an age; None without a reference at that age or for value <= 0."""
    ref = reference(indicator, sex)
    if ref is None or not math.isfinite(value) or value <= 0:
        return None
    lms = ref.lms_at(age_months)
    if lms is None:
        return None
    z = _z_score(*lms, value, restricted=indicator in _RESTRICTED_TAILS)
    return 100 * _NORMAL.cdf(z)


def source_label(indicator: str) -> str:
    """The French line naming the reference curves under a chart."""
    label = _SOURCE_LABELS.get(indicator)
    if label is None:
        raise CarnetError(f"Pas de courbe de référence pour la mesure « {indicator} »")
    return label
