"""ACC-1: the "matrice d'habilitation" (profession × document category) kept as data.

The data file must agree with the vault's reference tables and with docs/access-matrix.md; the
médecin sees every category, the chirurgien-dentiste not the directives anticipées, an unknown
profession gets the default row, and no row reaches beyond the médecin's.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from carnet.access.model import matrix as access_matrix
from carnet.access.model.matrix import MATRIX_CATEGORIES, categories_for, may_see
from carnet.people.model.professions import PROFESSIONS
from carnet.vault.model.documents import categories

# ANS TRE_G15-ProfessionSante (urn:oid:1.2.250.1.71.1.2.7), version 20241213120000, codes still valid.
TRE_G15 = {
    "10": "Médecin",
    "21": "Pharmacien",
    "26": "Audioprothésiste",
    "28": "Opticien-Lunetier",
    "31": "Assistant dentaire",
    "32": "Physicien médical",
    "40": "Chirurgien-Dentiste",
    "50": "Sage-Femme",
    "60": "Infirmier",
    "69": "Infirmier psychiatrique",
    "70": "Masseur-Kinésithérapeute",
    "80": "Pédicure-Podologue",
    "81": "Orthoprothésiste",
    "82": "Podo-Orthésiste",
    "83": "Orthopédiste-Orthésiste",
    "84": "Oculariste",
    "85": "Epithésiste",
    "86": "Technicien de laboratoire médical",
    "91": "Orthophoniste",
    "92": "Orthoptiste",
    "94": "Ergothérapeute",
    "95": "Diététicien",
    "96": "Psychomotricien",
    "98": "Manipulateur ERM",
}
DOCTOR, DENTIST = "10", "40"
DIRECTIVES_TYPE = "42348-3"  # LOINC « Directives anticipées », filed under DIR_ANT


def _json(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(resources.files("carnet.data").joinpath(name).read_text(encoding="utf-8"))
    return data


MATRIX = _json("access_matrix.json")
REFERENCE = _json("document_types.json")
ROWS: dict[str, list[str]] = MATRIX["professions"]


def test_the_matrix_categories_are_the_vaults_twelve() -> None:
    assert frozenset(categories()) == MATRIX_CATEGORIES
    assert len(MATRIX_CATEGORIES) == 12


def test_every_category_named_in_the_data_file_is_known() -> None:
    for row in [MATRIX["default"], *ROWS.values()]:
        assert set(row) <= set(REFERENCE["categories"])
        assert len(set(row)) == len(row)


def test_every_profession_code_is_a_tre_g15_code() -> None:
    assert set(ROWS) <= set(TRE_G15) | set(PROFESSIONS)
    # Every current TRE_G15 code has its own row but the assistant dentaire and the physicien médical,
    # left to the default row (docs/access-matrix.md).
    assert set(TRE_G15) - set(ROWS) == {"31", "32"}


def test_every_denied_type_is_a_known_type_of_a_listed_profession() -> None:
    known_types = {code for codes in REFERENCE["types"].values() for code in codes}
    for profession, codes in MATRIX.get("deny_types", {}).items():
        assert profession == "default" or profession in ROWS
        assert set(codes) <= known_types


def test_the_data_file_names_its_source() -> None:
    assert "26 octobre 2023" in MATRIX["_source"]
    assert "Carnet's reading" in MATRIX["_source"]


def test_a_doctor_sees_every_category() -> None:
    assert categories_for(DOCTOR) == MATRIX_CATEGORIES
    assert all(may_see(DOCTOR, category) for category in MATRIX_CATEGORIES)
    assert may_see(DOCTOR, "DIR_ANT", DIRECTIVES_TYPE)


def test_a_dentist_does_not_see_advance_directives() -> None:
    assert "DIR_ANT" not in categories_for(DENTIST)
    assert not may_see(DENTIST, "DIR_ANT")
    assert not may_see(DENTIST, "DIR_ANT", DIRECTIVES_TYPE)
    assert may_see(DENTIST, "RADIO_SC")


@pytest.mark.parametrize("code", [None, "", "31", "99", "médecin", "1O"])
def test_an_unknown_or_missing_profession_gets_the_default_row(code: str | None) -> None:
    assert categories_for(code) == frozenset(MATRIX["default"]) == frozenset({"SYNTHESE"})
    assert may_see(code, "SYNTHESE")
    assert not may_see(code, "BIOLOGIE")


@pytest.mark.parametrize("code", sorted(ROWS))
def test_each_row_is_within_the_doctors_and_above_the_default(code: str) -> None:
    row = categories_for(code)
    assert row == frozenset(ROWS[code])
    assert row <= categories_for(DOCTOR)
    assert categories_for(None) <= row, "a known profession never sees less than an unknown one"


def test_an_unknown_category_is_never_seen() -> None:
    assert not may_see(DOCTOR, "INCONNUE")


# The loader's checks, on matrices built here rather than the shipped one.
def _matrix(**changes: Any) -> dict[str, Any]:
    return {"default": ["SYNTHESE"], "professions": {"10": ["SYNTHESE", "DIR_ANT"], "40": ["SYNTHESE"]}, **changes}


def test_type_level_exceptions_apply_within_an_allowed_category() -> None:
    built = access_matrix._build(_matrix(deny_types={"10": [DIRECTIVES_TYPE]}), REFERENCE)
    assert built.may_see(DOCTOR, "DIR_ANT")
    assert not built.may_see(DOCTOR, "DIR_ANT", DIRECTIVES_TYPE)
    assert built.may_see(DOCTOR, "SYNTHESE", "DOCPAT01")
    assert not built.may_see(DENTIST, "DIR_ANT")


@pytest.mark.parametrize(
    "bad",
    [
        _matrix(default=["SYNTHESES"]),  # a category document_types.json does not know
        _matrix(professions={"10": ["SYNTHESE", "SYNTHESE"]}),  # twice the same
        _matrix(professions={"medecin": ["SYNTHESE"]}),  # not a TRE_G15 code
        _matrix(professions={}),
        _matrix(deny_types={"10": ["00000-0"]}),  # a type code not in the value set
        _matrix(deny_types={"21": [DIRECTIVES_TYPE]}),  # a profession without a row
        _matrix(profesions={"10": ["SYNTHESE"]}),  # a misspelt key
    ],
)
def test_the_loader_refuses_what_the_reference_tables_do_not_know(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        access_matrix._build(bad, REFERENCE)


def test_the_documented_table_matches_the_data_file() -> None:
    doc = Path(__file__).resolve().parents[2] / "docs" / "access-matrix.md"
    header, cells = None, {}
    for line in doc.read_text(encoding="utf-8").splitlines():
        parts = [p.strip() for p in line.strip().strip("|").split("|")]
        if parts[:2] == ["Code", "Profession"]:
            if header:
                break  # the next table is the profile's (tests/profile/test_policy_profile.py)
            header = parts[2:]
        elif header and len(parts) == len(header) + 2 and parts[2] in {"✓", "—"}:
            cells[parts[0]] = {c for c, mark in zip(header, parts[2:], strict=True) if mark == "✓"}
    assert header == list(REFERENCE["categories"])
    assert cells == {"default": set(MATRIX["default"]), **{code: set(row) for code, row in ROWS.items()}}
