"""The prevention engine (AGD-2) against a table of cases written from the 2025 calendar — not from the engine's
output. Each expectation says where it comes from: the age the calendar gives, the window around it, the status
rules of docs/decisions.md (« Prevention calendar (AGD-2) — issue #11 »; horizon 45 days in 2025).
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carnet.agenda.model.prevention import (
    STATUSES,
    BadPerson,
    Calendar,
    ItemStatus,
    UnknownCalendar,
    UnknownCode,
    assign_doses,
    available_versions,
    evaluate,
    load_calendar,
    parse_calendar,
    vaccine_codes_for,
)

DATA = Path(__file__).resolve().parents[2] / "src" / "carnet" / "data" / "prevention_2025.json"


@pytest.fixture(scope="module")
def cal() -> Calendar:
    return load_calendar("2025")


def run(cal: Calendar, birth: date, sex: str, today: date, **kw: Any) -> dict[str, ItemStatus]:
    return {s.code: s for s in evaluate(cal, birth, sex, today, **kw)}


def check(got: dict[str, ItemStatus], expected: dict[str, tuple[str, date | None]]) -> None:
    """Each expected code is listed with that status and due date."""
    for code, (status, due) in expected.items():
        assert code in got, f"{code} should be listed; listed: {sorted(got)}"
        assert (got[code].status, got[code].due) == (status, due), f"{code}: {got[code]}"


def absent(got: dict[str, ItemStatus], *codes: str) -> None:
    for code in codes:
        assert code not in got, f"{code} should not be listed: {got[code]}"


# --- the packaged calendar --------------------------------------------------------------------------------------


def test_the_2025_calendar_holds_what_agd_2_lists(cal: Calendar) -> None:
    assert cal.version == "2025" and cal.valid_from == date(2025, 1, 1)
    kinds = [item.kind for item in cal.items]
    assert kinds.count("examen_enfant") == 20  # the 20 examinations of the child, 0–16 years
    dental = sorted(int(item.code.rsplit("-", 1)[1]) for item in cal.items if item.kind == "bilan_dentaire")
    assert dental == [3, 6, 9, 12, 15, 18, 21, 24]
    assert [i.code for i in cal.items if i.kind == "bilan_prevention"] == [
        "BILAN-PREVENTION-18",
        "BILAN-PREVENTION-45",
        "BILAN-PREVENTION-60",
        "BILAN-PREVENTION-70",
    ]
    for code in ("DEP-SEIN", "DEP-COLORECTAL", "DEP-COL-UTERUS", "DEP-COL-UTERUS-HPV", "VAC-HEXA-1", "VAC-ROR-2"):
        assert code in cal.by_code
    assert all(item.source in cal.sources for item in cal.items)
    assert {item.family for item in cal.items if item.family} == set(cal.families)
    assert "Calendrier des vaccinations et recommandations vaccinales 2025" in cal.sources["VACCINATIONS-2025"].titre


def test_the_latest_calendar_is_the_default() -> None:
    assert "2025" in available_versions()
    assert load_calendar() is load_calendar(load_calendar().version)


def test_an_unknown_version_is_a_french_error() -> None:
    with pytest.raises(UnknownCalendar, match="inconnu : « 1999 »"):
        load_calendar("1999")


# --- a newborn (born 15 January 2025) ---------------------------------------------------------------------------

BABY = date(2025, 1, 15)


def test_newborn_at_2_months_first_doses_to_plan(cal: Calendar) -> None:
    got = run(cal, BABY, "F", date(2025, 3, 15))
    check(
        got,
        {
            "VAC-HEXA-1": ("a_planifier", date(2025, 3, 15)),  # hexavalent at 2 months
            "VAC-PNEUMO-1": ("a_planifier", date(2025, 3, 15)),  # pneumococcal at 2 months
            "VAC-MENB-1": ("a_planifier", date(2025, 4, 15)),  # MenB at 3 months: 31 days ahead, within 45
            "EXAMEN-ENFANT-3M": ("a_planifier", date(2025, 3, 15)),  # « au cours du 3e mois »
            "EXAMEN-ENFANT-2M": ("en_retard", date(2025, 2, 15)),  # « au cours du 2e mois »: over, not recorded
        },
    )
    assert (got["VAC-HEXA-1"].dose, got["VAC-HEXA-1"].doses) == (1, 3)
    # 4 months is 61 days ahead; MenACWY (6 months) and ROR (12 months) are far off
    absent(got, "VAC-HEXA-2", "VAC-PNEUMO-2", "VAC-MENACWY-1", "VAC-ROR-1", "EXAMEN-ENFANT-8J")


def test_newborn_at_4_months_with_the_2_month_doses(cal: Calendar) -> None:
    done = {"VAC-HEXA-1": [date(2025, 3, 17)], "PNEUMO": [date(2025, 3, 17)], "EXAMEN-ENFANT-3M": [date(2025, 3, 17)]}
    got = run(cal, BABY, "M", date(2025, 5, 15), done=done)
    check(
        got,
        {
            "VAC-HEXA-1": ("realise", None),
            "VAC-PNEUMO-1": ("realise", None),  # recorded under the family: the first dose
            "VAC-HEXA-2": ("a_planifier", date(2025, 5, 17)),  # 4 months, and 2 months after the 1st dose
            "VAC-PNEUMO-2": ("a_planifier", date(2025, 5, 17)),
            "VAC-MENB-1": ("en_retard", date(2025, 4, 15)),  # 3 months: its month is over, nothing recorded
            "VAC-MENB-2": ("a_planifier", date(2025, 6, 15)),  # 5 months, 31 days ahead
        },
    )
    assert got["VAC-PNEUMO-1"].last_done == date(2025, 3, 17)
    absent(got, "EXAMEN-ENFANT-3M")  # done, and its window (and tolerance) is over


def test_newborn_at_12_months_up_to_date(cal: Calendar) -> None:
    done = {
        "HEXA": [date(2025, 3, 15), date(2025, 5, 15), date(2025, 12, 15)],  # 2, 4, 11 months
        "PNEUMO": [date(2025, 3, 15), date(2025, 5, 15), date(2025, 12, 15)],
        "MENB": [date(2025, 4, 15), date(2025, 6, 16)],  # 3 and 5 months
        "MENACWY": [date(2025, 7, 15)],  # 6 months
    }
    got = run(cal, BABY, "F", date(2026, 1, 15), done=done)
    check(
        got,
        {
            "VAC-HEXA-3": ("realise", None),
            "VAC-PNEUMO-3": ("realise", None),
            "VAC-ROR-1": ("a_planifier", date(2026, 1, 15)),  # MMR at 12 months
            "VAC-MENB-3": ("a_planifier", date(2026, 1, 15)),  # MenB booster at 12 months
            "VAC-MENACWY-2": ("a_planifier", date(2026, 1, 15)),  # MenACWY at 12 months
        },
    )
    assert got["VAC-HEXA-3"].last_done == date(2025, 12, 15)
    absent(got, "VAC-ROR-2")  # 16–18 months: more than 45 days ahead


# --- children ---------------------------------------------------------------------------------------------------

CHILD = date(2013, 6, 1)
CHILD_HISTORY = {
    "HEXA": [date(2013, 8, 1), date(2013, 10, 1), date(2014, 5, 1)],
    "PNEUMO": [date(2013, 8, 1), date(2013, 10, 1), date(2014, 5, 1)],
    "ROR": [date(2014, 6, 1), date(2014, 11, 1)],
    "DTP": [date(2019, 6, 10)],  # DTCaP at 6 years
}


@pytest.mark.parametrize("sex", ["F", "M"])
def test_twelve_year_old_girl_and_boy(cal: Calendar, sex: str) -> None:
    got = run(cal, CHILD, sex, date(2025, 9, 1), done=CHILD_HISTORY)
    check(
        got,
        {
            "VAC-DTCAP-11": ("a_planifier", date(2024, 6, 1)),  # dTcaP between 11 and 13 years
            "VAC-HPV-1": ("a_planifier", date(2024, 6, 1)),  # HPV 11–14, girls and boys
            "VAC-HPV-2": ("a_planifier", date(2024, 12, 1)),
            "VAC-MENACWY-ADO": ("a_planifier", date(2024, 6, 1)),  # MenACWY 11–14
            "BILAN-DENTAIRE-12": ("a_planifier", date(2025, 6, 1)),  # M'T dents at 12
            "EXAMEN-ENFANT-11A": ("a_planifier", date(2024, 6, 1)),  # examination between 11 and 13
            "VAC-ROR-1": ("realise", None),
        },
    )
    assert got["VAC-HPV-1"].doses == 2 and not got["VAC-HPV-1"].catch_up  # started before 15: 2 doses
    absent(got, "VAC-HPV-3", "VAC-DTCAP-6", "VAC-HEXA-1", "DEP-COL-UTERUS", "BILAN-DENTAIRE-9")


def test_girl_and_boy_of_twelve_have_the_same_items(cal: Calendar) -> None:
    girl = run(cal, CHILD, "F", date(2025, 9, 1), done=CHILD_HISTORY)
    boy = run(cal, CHILD, "M", date(2025, 9, 1), done=CHILD_HISTORY)
    assert list(girl) == list(boy)


def test_a_recorded_vaccination_changes_a_status(cal: Calendar) -> None:
    today = date(2025, 9, 1)
    before = run(cal, CHILD, "F", today, done=CHILD_HISTORY)
    assert before["VAC-MENACWY-ADO"].status == "a_planifier"
    recorded = assign_doses(cal, CHILD, [("Nimenrix", date(2025, 5, 2))])
    assert recorded == {"VAC-MENACWY-ADO": (date(2025, 5, 2),)}  # not an infant dose: 11 years old that day
    after = run(cal, CHILD, "F", today, done={**CHILD_HISTORY, **recorded})
    assert (after["VAC-MENACWY-ADO"].status, after["VAC-MENACWY-ADO"].last_done) == ("realise", date(2025, 5, 2))


# --- catch-up ---------------------------------------------------------------------------------------------------


def test_hpv_catch_up_at_17_means_three_doses(cal: Calendar) -> None:
    born = date(2008, 5, 10)
    got = run(cal, born, "F", date(2025, 9, 1))
    for code in ("VAC-HPV-1", "VAC-HPV-2", "VAC-HPV-3"):
        assert got[code].status == "en_retard" and got[code].catch_up and got[code].doses == 3, got[code]
    assert got["VAC-HPV-1"].due == date(2019, 5, 10)  # due at 11 years
    # begun at 17: the 2nd dose 2 months after the 1st; the 3rd (6 months after the 1st) is not yet in view
    got = run(cal, born, "F", date(2025, 9, 1), done={"HPV": [date(2025, 8, 1)]})
    assert got["VAC-HPV-1"].status == "realise" and got["VAC-HPV-1"].catch_up
    check(got, {"VAC-HPV-2": ("a_planifier", date(2025, 10, 1))})
    absent(got, "VAC-HPV-3")
    got = run(cal, born, "M", date(2026, 1, 10), done={"HPV": [date(2025, 8, 1), date(2025, 10, 3)]})
    check(got, {"VAC-HPV-3": ("a_planifier", date(2026, 2, 3))})  # 4 months after the 2nd (0, 2, 6 months)


def test_hpv_catch_up_ends_at_27(cal: Calendar) -> None:
    assert "VAC-HPV-1" in run(cal, date(1999, 1, 1), "M", date(2025, 12, 31))  # 26 years
    absent(run(cal, date(1998, 12, 31), "M", date(2025, 12, 31)), "VAC-HPV-1", "VAC-HPV-2", "VAC-HPV-3")  # 27


def test_menacwy_catch_up_at_20_and_not_at_25(cal: Calendar) -> None:
    got = run(cal, date(2005, 4, 1), "M", date(2025, 9, 1))
    check(got, {"VAC-MENACWY-ADO": ("en_retard", date(2016, 4, 1))})
    assert got["VAC-MENACWY-ADO"].catch_up
    absent(run(cal, date(2000, 6, 1), "M", date(2025, 9, 1)), "VAC-MENACWY-ADO")  # catch-up until 24 years


def test_mmr_catch_up_only_for_people_born_since_1980(cal: Calendar) -> None:
    got = run(cal, date(1985, 1, 1), "F", date(2025, 9, 1))
    assert got["VAC-ROR-1"].status == "en_retard" and got["VAC-ROR-1"].catch_up
    absent(run(cal, date(1975, 1, 1), "F", date(2025, 9, 1)), "VAC-ROR-1", "VAC-ROR-2")


# --- adults -----------------------------------------------------------------------------------------------------


def test_twenty_five_year_old_woman(cal: Calendar) -> None:
    done = {"ROR": [date(2001, 6, 1), date(2001, 11, 1)], "HPV": [date(2012, 9, 1), date(2013, 3, 1)]}
    got = run(cal, date(2000, 6, 1), "F", date(2025, 9, 1), done=done)
    check(
        got,
        {
            "VAC-DTCAP-25": ("a_planifier", date(2025, 6, 1)),  # dTcaP at 25 years
            "DEP-COL-UTERUS": ("a_planifier", date(2025, 6, 1)),  # first cytology at 25
            "BILAN-PREVENTION-18": ("a_planifier", date(2018, 6, 1)),  # Mon bilan prévention, 18–25
            "VAC-HPV-2": ("realise", None),
            "VAC-ROR-2": ("realise", None),
        },
    )
    absent(got, "VAC-HPV-3", "DEP-SEIN", "BILAN-DENTAIRE-24", "VAC-MENACWY-ADO")
    man = run(cal, date(2000, 6, 1), "M", date(2025, 9, 1), done=done)
    absent(man, "DEP-COL-UTERUS")
    assert "VAC-DTCAP-25" in man


WOMAN_52 = date(1973, 3, 1)


def test_fifty_two_year_old_woman_with_nothing_recorded(cal: Calendar) -> None:
    got = run(cal, WOMAN_52, "F", date(2025, 9, 1))
    check(
        got,
        {
            # in the target, first round over, nothing recorded: when was the last one? unknown
            "DEP-SEIN": ("non_renseigne", None),
            "DEP-COLORECTAL": ("non_renseigne", None),
            "DEP-COL-UTERUS-HPV": ("non_renseigne", None),
            "VAC-DTP-45": ("en_retard", date(2018, 3, 1)),  # dTP at 45 years, not recorded
        },
    )
    absent(got, "BILAN-PREVENTION-45", "DEP-COL-UTERUS", "VAC-DTP-65")  # 45–50 is over; cytology 25–29


def test_mammography_done_a_year_ago_is_due_again_in_a_year(cal: Calendar) -> None:
    got = run(cal, WOMAN_52, "F", date(2025, 9, 1), done={"DEP-SEIN": [date(2024, 9, 1)]})
    check(got, {"DEP-SEIN": ("realise", date(2026, 9, 1))})
    assert got["DEP-SEIN"].last_done == date(2024, 9, 1)
    # 23 months later: within the horizon → to plan; past the due date and its 6 months → late
    check(
        run(cal, WOMAN_52, "F", date(2026, 8, 1), done={"DEP-SEIN": [date(2024, 9, 1)]}),
        {"DEP-SEIN": ("a_planifier", date(2026, 9, 1))},
    )
    check(
        run(cal, WOMAN_52, "F", date(2027, 4, 1), done={"DEP-SEIN": [date(2024, 9, 1)]}),
        {"DEP-SEIN": ("en_retard", date(2026, 9, 1))},
    )


def test_cervical_screening_follows_the_last_cytology(cal: Calendar) -> None:
    born = date(1995, 3, 1)
    cytologies = {"DEP-COL-UTERUS": [date(2020, 4, 1), date(2021, 4, 1)]}  # two, a year apart, from 25
    got = run(cal, born, "F", date(2023, 9, 1), done=cytologies)
    check(got, {"DEP-COL-UTERUS": ("realise", date(2024, 4, 1))})  # then 3 years later
    # 30 years: the HPV test is due 3 years after the last cytology (April 2024), but not before 30
    got = run(cal, born, "F", date(2025, 3, 10), done=cytologies)
    check(got, {"DEP-COL-UTERUS-HPV": ("a_planifier", date(2025, 3, 1))})
    assert got["DEP-COL-UTERUS-HPV"].last_done == date(2021, 4, 1)
    absent(got, "DEP-COL-UTERUS")
    got = run(cal, born, "F", date(2025, 3, 10), done={**cytologies, "DEP-COL-UTERUS-HPV": [date(2025, 3, 2)]})
    check(got, {"DEP-COL-UTERUS-HPV": ("realise", date(2030, 3, 2))})  # then every 5 years


def test_fifty_year_old_entering_the_programmes(cal: Calendar) -> None:
    got = run(cal, date(1975, 6, 1), "F", date(2025, 9, 1))  # 50 years and 3 months, first round
    check(got, {"DEP-SEIN": ("a_planifier", date(2025, 6, 1)), "DEP-COLORECTAL": ("a_planifier", date(2025, 6, 1))})


MAN_67 = date(1958, 3, 1)
MAN_67_HISTORY = {
    "DTP": [date(1983, 4, 1), date(2003, 5, 1)],  # boosters at 25 and 45
    "GRIPPE": [date(2024, 10, 20), date(2025, 10, 20)],
    "DEP-COLORECTAL": [date(2022, 5, 1)],
    "ZONA": [date(2025, 6, 1)],
}


def test_sixty_seven_year_old_man_with_partial_history(cal: Calendar) -> None:
    got = run(cal, MAN_67, "M", date(2025, 11, 15), done=MAN_67_HISTORY)
    check(
        got,
        {
            "VAC-DTP-65": ("en_retard", date(2023, 3, 1)),  # dTP at 65, not recorded
            "VAC-GRIPPE": ("realise", date(2026, 10, 14)),  # done this season; next campaign
            "VAC-COVID": ("a_planifier", date(2025, 10, 14)),  # autumn campaign open until 31 January
            "VAC-ZONA-1": ("realise", None),
            "VAC-ZONA-2": ("a_planifier", date(2025, 8, 1)),  # 2 months after the 1st dose
            "VAC-PNEUMO-65": ("a_planifier", date(2023, 3, 1)),  # single dose from 65
            "DEP-COLORECTAL": ("en_retard", date(2024, 5, 1)),  # every 2 years: lapsed
        },
    )
    assert got["VAC-GRIPPE"].last_done == date(2025, 10, 20)
    absent(got, "VAC-VRS", "VAC-DTP-45", "VAC-DTCAP-25", "DEP-SEIN", "BILAN-PREVENTION-60", "VAC-DTP-75")


def test_rsv_from_65_for_people_at_risk(cal: Calendar) -> None:
    got = run(cal, MAN_67, "M", date(2025, 11, 15), done=MAN_67_HISTORY, at_risk=True)
    check(got, {"VAC-VRS": ("a_planifier", date(2023, 3, 1))})


WOMAN_80 = date(1945, 3, 1)


def test_eighty_year_old_woman(cal: Calendar) -> None:
    got = run(cal, WOMAN_80, "F", date(2025, 11, 1))
    check(
        got,
        {
            "VAC-DTP-75": ("en_retard", date(2020, 3, 1)),  # dTP at 75
            "VAC-GRIPPE": ("a_planifier", date(2025, 10, 14)),
            "VAC-COVID": ("a_planifier", date(2025, 10, 14)),
            "VAC-ZONA-1": ("a_planifier", date(2010, 3, 1)),
            "VAC-PNEUMO-65": ("a_planifier", date(2010, 3, 1)),
            "VAC-VRS": ("a_planifier", date(2020, 3, 1)),  # RSV from 75
        },
    )
    absent(got, "DEP-SEIN", "DEP-COLORECTAL", "DEP-COL-UTERUS-HPV", "BILAN-PREVENTION-70", "VAC-DTP-65", "VAC-DTP-85")


def test_between_two_flu_campaigns_nothing_is_due_yet(cal: Calendar) -> None:
    got = run(cal, WOMAN_80, "F", date(2026, 3, 1))
    check(got, {"VAC-GRIPPE": ("non_renseigne", date(2026, 10, 14))})
    got = run(cal, WOMAN_80, "F", date(2026, 9, 1))  # 43 days before the next campaign
    check(got, {"VAC-GRIPPE": ("a_planifier", date(2026, 10, 14))})


# --- declined, wrong sex, bad input ---------------------------------------------------------------------------


def test_a_declined_item_is_not_done_for_its_cycle(cal: Calendar) -> None:
    declined = {"DEP-SEIN": date(2025, 6, 1), "VAC-ZONA-1": date(2025, 6, 1)}
    got = run(cal, WOMAN_52, "F", date(2025, 9, 1), declined=declined)
    assert got["DEP-SEIN"].status == "non_realise"
    later = run(cal, WOMAN_52, "F", date(2027, 7, 1), declined=declined)  # the 2-year cycle is over
    assert later["DEP-SEIN"].status == "non_renseigne"
    got = run(cal, WOMAN_80, "F", date(2025, 11, 1), declined=declined)
    assert got["VAC-ZONA-1"].status == "non_realise"
    assert got["VAC-ZONA-2"].status == "non_realise"  # no 2nd dose without the 1st
    got = run(cal, WOMAN_80, "F", date(2025, 11, 1), declined=declined, done={"VAC-ZONA-1": [date(2025, 7, 1)]})
    assert got["VAC-ZONA-1"].status == "realise"  # recorded after saying no


def test_items_of_the_other_sex_are_not_listed(cal: Calendar) -> None:
    man = run(cal, WOMAN_52, "M", date(2025, 9, 1))
    absent(man, "DEP-SEIN", "DEP-COL-UTERUS-HPV")
    assert "DEP-COLORECTAL" in man


def test_future_and_pre_birth_records_are_ignored(cal: Calendar) -> None:
    got = run(cal, WOMAN_52, "F", date(2025, 9, 1), done={"DEP-SEIN": [date(2026, 1, 1), date(1960, 1, 1)]})
    assert got["DEP-SEIN"].status == "non_renseigne"


def test_bad_input_is_a_french_error(cal: Calendar) -> None:
    with pytest.raises(UnknownCode, match="Code inconnu du calendrier de prévention 2025 : « VAC-FOO »"):
        evaluate(cal, WOMAN_52, "F", date(2025, 9, 1), done={"VAC-FOO": [date(2025, 1, 1)]})
    with pytest.raises(UnknownCode):
        evaluate(cal, WOMAN_52, "F", date(2025, 9, 1), declined={"ROR": date(2025, 1, 1)})  # a family is no item
    with pytest.raises(BadPerson, match="Sexe inconnu"):
        evaluate(cal, WOMAN_52, "X", date(2025, 9, 1))
    with pytest.raises(BadPerson, match="postérieure"):
        evaluate(cal, date(2026, 1, 1), "F", date(2025, 9, 1))


def test_statuses_read_in_french(cal: Calendar) -> None:
    labels = {s.status_label for s in evaluate(cal, WOMAN_52, "F", date(2025, 9, 1))}
    assert labels == {"non renseigné", "en retard"}


# --- vaccine names and doses ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "families"),
    [
        ("Infanrix Hexa", {"HEXA"}),
        ("hexavalent", {"HEXA"}),
        ("Vaxelis", {"HEXA"}),
        ("ROR", {"ROR"}),
        ("Priorix", {"ROR"}),
        ("M-M-RvaxPro", {"ROR"}),
        ("Gardasil 9", {"HPV"}),
        ("Gardasil9", {"HPV"}),
        ("Boostrix Tetra", {"DTP"}),
        ("Repevax", {"DTP"}),
        ("dTcaPolio (rappel des 25 ans)", {"DTP"}),
        ("grippe", {"GRIPPE"}),
        ("Vaccin antigrippal Efluelda", {"GRIPPE"}),
        ("Shingrix", {"ZONA"}),
        ("Prevenar 20", {"PNEUMO"}),
        ("PRÉVENAR13", {"PNEUMO"}),
        ("Beyfortus", {"VRS"}),
        ("Abrysvo", {"VRS"}),
        ("COVID-19 (Comirnaty)", {"COVID"}),
        ("Bexsero", {"MENB"}),
        ("Nimenrix", {"MENACWY"}),
        ("Méningocoque ACWY", {"MENACWY"}),
        ("Erreur de saisie", set()),  # « ror » only as a whole word
        ("Doliprane", set()),
    ],
)
def test_vaccine_names_map_to_families(cal: Calendar, label: str, families: set[str]) -> None:
    assert cal.families_for(label) == families
    assert vaccine_codes_for(label) == families


def test_recorded_doses_go_to_dose_codes_in_date_order(cal: Calendar) -> None:
    baby = date(2020, 1, 10)
    records = [
        ("Prevenar 13", date(2020, 12, 10)),
        ("Infanrix Hexa", date(2020, 3, 10)),
        ("Prevenar 13", date(2020, 3, 10)),
        ("Infanrix Hexa", date(2020, 5, 12)),
        ("Prevenar 13", date(2020, 5, 12)),
        ("Infanrix Hexa", date(2020, 12, 10)),
        ("Beyfortus", date(2020, 1, 20)),  # an infant's RSV antibody is not the RSV dose of 75 years
    ]
    assert assign_doses(cal, baby, records) == {
        "VAC-HEXA-1": (date(2020, 3, 10),),
        "VAC-HEXA-2": (date(2020, 5, 12),),
        "VAC-HEXA-3": (date(2020, 12, 10),),
        "VAC-PNEUMO-1": (date(2020, 3, 10),),
        "VAC-PNEUMO-2": (date(2020, 5, 12),),
        "VAC-PNEUMO-3": (date(2020, 12, 10),),
    }
    adult = date(1950, 6, 1)
    boosters = [("Revaxis", date(1975, 7, 1)), ("DTP", date(1996, 1, 1)), ("Prevenar 20", date(2025, 10, 1))]
    assert assign_doses(cal, adult, boosters) == {
        "VAC-DTCAP-25": (date(1975, 7, 1),),
        "VAC-DTP-45": (date(1996, 1, 1),),
        "VAC-PNEUMO-65": (date(2025, 10, 1),),  # at 75: the adult dose, not an infant one
    }
    flu = [("Vaxigrip", date(2023, 10, 20)), ("grippe", date(2024, 10, 21))]
    assert assign_doses(cal, adult, flu) == {"VAC-GRIPPE": (date(2023, 10, 20), date(2024, 10, 21))}


def test_a_dose_recorded_by_code_is_not_given_twice(cal: Calendar) -> None:
    done = {"VAC-HEXA-1": [date(2020, 3, 10)], "HEXA": [date(2020, 5, 12)]}
    got = run(cal, date(2020, 1, 10), "F", date(2020, 6, 1), done=done)
    assert got["VAC-HEXA-1"].last_done == date(2020, 3, 10)
    assert got["VAC-HEXA-2"].last_done == date(2020, 5, 12)


# --- versions: next year's calendar is an edit of data -------------------------------------------------------


def _edited_2026() -> dict[str, Any]:
    data = json.loads(DATA.read_text(encoding="utf-8"))
    data["version"], data["valid_from"] = "2026", "2026-01-01"
    dental = next(i for i in data["items"] if i["code"] == "BILAN-DENTAIRE-3")
    data["items"].append(
        {**dental, "code": "BILAN-DENTAIRE-4", "from": "4y", "to": "5y", "libelle": "M'T dents à 4 ans"}
    )
    return data


def test_a_second_calendar_version_loads(tmp_path: Path) -> None:
    (tmp_path / "prevention_2025.json").write_text(DATA.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "prevention_2026.json").write_text(json.dumps(_edited_2026(), ensure_ascii=False), encoding="utf-8")
    assert available_versions(tmp_path) == ("2025", "2026")
    latest = load_calendar(folder=tmp_path)
    assert latest.version == "2026"
    old = load_calendar("2025", folder=tmp_path)
    four = date(2021, 5, 1)
    assert "BILAN-DENTAIRE-4" in run(latest, four, "F", date(2025, 9, 1))
    assert "BILAN-DENTAIRE-4" not in run(old, four, "F", date(2025, 9, 1))


def test_a_file_whose_name_and_version_differ_is_refused(tmp_path: Path) -> None:
    (tmp_path / "prevention_2027.json").write_text(json.dumps(_edited_2026()), encoding="utf-8")
    with pytest.raises(ValueError, match="le nom du fichier dit '2027'"):
        load_calendar("2027", folder=tmp_path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"source": "NOWHERE"}, "DEP-SEIN : source inconnue"),
        ({"from": "50 ans"}, "DEP-SEIN : « from » doit être un âge"),
        ({"intervals": []}, "DEP-SEIN : « intervals »"),
        ({"late_until": "80y"}, "clé(s) inconnue(s) pour la règle « every » : late_until"),
        ({"to": "40y"}, "DEP-SEIN : un examen répété a une cible d'âges"),
        ({"sex": "X"}, "DEP-SEIN : « sex » est F, M ou absent"),
    ],
)
def test_a_malformed_calendar_names_the_item_and_the_fault(change: dict[str, Any], message: str) -> None:
    data = json.loads(DATA.read_text(encoding="utf-8"))
    item = next(i for i in data["items"] if i["code"] == "DEP-SEIN")
    item.update(change)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_calendar(data, "prevention_test.json")


def test_duplicate_codes_are_refused() -> None:
    data = json.loads(DATA.read_text(encoding="utf-8"))
    data["items"].append(data["items"][0])
    with pytest.raises(ValueError, match="unique"):
        parse_calendar(data)


# --- properties -------------------------------------------------------------------------------------------------

people = st.tuples(
    st.dates(min_value=date(1915, 1, 1), max_value=date(2025, 12, 31)),
    st.sampled_from(["F", "M"]),
    st.integers(min_value=0, max_value=3 * 365),
    st.dictionaries(
        st.sampled_from(["HEXA", "PNEUMO", "ROR", "DTP", "HPV", "MENACWY", "GRIPPE", "ZONA", "DEP-SEIN", "VAC-HPV-2"]),
        st.lists(st.dates(min_value=date(1915, 1, 1), max_value=date(2028, 12, 31)), max_size=4),
        max_size=5,
    ),
    st.booleans(),
)


@settings(max_examples=400, deadline=None)
@given(person=people)
def test_the_age_index_hides_no_item_and_every_status_is_valid(person: tuple[Any, ...]) -> None:
    from carnet.agenda.model import prevention as engine

    cal = load_calendar("2025")
    birth, sex, days_later, done, at_risk = person
    today = birth + timedelta(days=days_later) if days_later < 365 else date(2025, 11, 15)
    if today < birth:
        return
    got = evaluate(cal, birth, sex, today, done, at_risk=at_risk)
    codes = [s.code for s in got]
    assert len(codes) == len(set(codes))
    assert all(s.status in STATUSES for s in got)
    assert all(cal.by_code[s.code].sex in (None, sex) for s in got)
    # every item evaluated, without the index: the same list
    person_ = engine._Person(cal, birth, today, engine._records(cal, birth, today, done), {}, at_risk)
    every = [engine._RULE_EVALUATORS[i.rule](i, person_) for i in cal.items if i.sex in (None, sex)]
    assert got == [s for s in every if s is not None]
