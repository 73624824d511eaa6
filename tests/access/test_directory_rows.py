"""ACC-1 (prerequisite): the professional directory's rules — RPPS key, names, TRE_G15 profession,
and one line of the Annuaire Santé extract — with French reasons."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carnet.access.model.directory import (
    CEDEX,
    CITY,
    COMPLEMENT,
    FIRST_NAME,
    ID_NATIONAL,
    ID_PP,
    ID_TYPE,
    LAST_NAME,
    PROFESSION,
    REPETITION,
    SPECIALTY,
    STREET,
    STREET_NUMBER,
    STREET_TYPE,
    DirectoryError,
    ProfessionalEntry,
    check_professional,
    check_rpps,
    parse_activity,
    read_header,
    rpps_key_is_valid,
)
from carnet.enrolment.model.registry import HeaderError, RowError
from carnet.people.model.professions import PROFESSIONS, profession_label

FAST = settings(max_examples=300, deadline=None)


def luhn_key(first_ten: str) -> str:
    """Independent computation of the check digit (doubling every second digit from the right)."""
    total = 0
    for position, char in enumerate(reversed(first_ten)):
        digit = int(char) * (2 if position % 2 == 0 else 1)
        total += digit - 9 if digit > 9 else digit
    return str((10 - total % 10) % 10)


def rpps(first_ten: str) -> str:
    return first_ten + luhn_key(first_ten)


GP = rpps("1000999901")


def test_published_rpps_numbers_pass_the_luhn_key() -> None:
    """ACC-1: RPPS numbers of the public Annuaire Santé extract carry a Luhn key."""
    for number in ("10001045367", "10104335319", "10005814339", "10100224947"):
        assert rpps_key_is_valid(number)
    assert not rpps_key_is_valid("10001045368")


@FAST
@given(st.text(alphabet="0123456789", min_size=10, max_size=10))
def test_the_key_catches_any_single_digit_typo(first_ten: str) -> None:
    """ACC-1: a number with its key is valid; changing any one digit makes it invalid."""
    number = rpps(first_ten)
    assert rpps_key_is_valid(number) and check_rpps(number) == number
    for position in range(11):
        for digit in "0123456789":
            if digit != number[position]:
                typo = number[:position] + digit + number[position + 1 :]
                assert not rpps_key_is_valid(typo)


def test_rpps_refusals_are_french_sentences() -> None:
    """ACC-1: format first (11 digits), then the key; the key can be skipped for a known number."""
    with pytest.raises(DirectoryError, match="Numéro RPPS : doit comporter 11 chiffres ; 10 reçus"):
        check_rpps("1000123456")
    with pytest.raises(DirectoryError, match="ne doit contenir que des chiffres"):
        check_rpps("1000123456A")
    bad_key = GP[:10] + str((int(GP[10]) + 1) % 10)
    with pytest.raises(DirectoryError, match="la clé de contrôle"):
        check_rpps(bad_key)
    assert check_rpps(bad_key, check_key=False) == bad_key
    assert check_rpps(f" {GP[:5]} {GP[5:]} ") == GP
    assert pickle.loads(pickle.dumps(DirectoryError("x"))).message == "x"  # noqa: S301 (our own bytes)


def test_a_professional_is_normalised() -> None:
    """ACC-1: names trimmed (inner spaces collapsed), profession code checked, optional fields None."""
    entry = check_professional(GP, "  FERRACCI ", " Jean   Baptiste", " 10 ", "  ")
    assert entry == ProfessionalEntry(GP, "FERRACCI", "Jean Baptiste", "10", None, None, None)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"last_name": "  "}, "Nom : aucune valeur n'a été saisie."),
        ({"first_name": ""}, "Prénom : aucune valeur n'a été saisie."),
        ({"last_name": "A" * 101}, "Nom : dépasse 100 caractères (101 reçus)."),
        ({"first_name": "Jean\x00"}, "Prénom : contient des caractères de contrôle."),
        ({"profession_code": "99"}, "Code profession « 99 » inconnu."),
        ({"specialty": "S" * 101}, "Spécialité : dépasse 100 caractères"),
    ],
)
def test_refused_fields_name_the_field_in_french(changes: dict[str, str], message: str) -> None:
    """ACC-1: each refusal says which field and why."""
    values = {"rpps": GP, "last_name": "FERRACCI", "first_name": "Jean", "profession_code": "10", **changes}
    with pytest.raises(DirectoryError) as caught:
        check_professional(**values)
    assert caught.value.message.startswith(message)


def test_unknown_profession_lists_the_tre_g15_codes() -> None:
    with pytest.raises(DirectoryError) as caught:
        check_professional(GP, "X", "Y", "12")
    assert "10 (médecin)" in caught.value.message and "96 (psychomotricien)" in caught.value.message


def test_tre_g15_codes_and_labels() -> None:
    """ACC-1: the TRE_G15 professions Carnet knows, with their French labels."""
    expected = {"10", "21", "26", "28", "40", "50", "60", "70", "80", "81", "82", "83", "84", "85", "86"}
    assert expected | {"91", "92", "94", "95", "96"} <= set(PROFESSIONS)
    assert profession_label("40") == "Chirurgien-dentiste" and profession_label("70") == "Masseur-kinésithérapeute"
    assert profession_label("13") == "Profession 13"


# --- one line of the extract ----------------------------------------------------------------------

HEADER = [
    ID_TYPE,
    ID_PP,
    ID_NATIONAL,
    LAST_NAME,
    FIRST_NAME,
    PROFESSION,
    SPECIALTY,
    STREET_NUMBER,
    "Indice répétition voie (coord. Structure)",  # capital S, as in some releases
    STREET_TYPE,
    STREET,
    COMPLEMENT,
    CEDEX,
    CITY,
    "",  # the header ends with "|"
]
LAYOUT = read_header(HEADER)


def line(**cells: str) -> list[str]:
    values = {
        ID_TYPE: "8",
        ID_PP: GP,
        ID_NATIONAL: "8" + GP,
        LAST_NAME: "FERRACCI",
        FIRST_NAME: "JEAN-BAPTISTE",
        PROFESSION: "10",
        SPECIALTY: "Médecine générale",
        STREET_NUMBER: "12",
        REPETITION: "",
        STREET_TYPE: "Cours",
        STREET: "NAPOLEON",
        COMPLEMENT: "",
        CEDEX: "20000 AJACCIO",
        CITY: "Ajaccio",
        **cells,
    }
    return [values.get(name, "") for name in [*HEADER[:8], REPETITION, *HEADER[9:]]]


def test_a_line_becomes_a_professional() -> None:
    """ACC-1: mapping of the extract's columns (RPPS from « Identification nationale PP » minus its 8)."""
    entry = parse_activity(2, line(**{REPETITION: "B", COMPLEMENT: "Bâtiment A"}), LAYOUT)
    assert entry == ProfessionalEntry(
        GP, "FERRACCI", "JEAN-BAPTISTE", "10", "Médecine générale", "12B Cours NAPOLEON, Bâtiment A", "Ajaccio"
    )


def test_city_falls_back_on_the_cedex_office_and_a_line_may_omit_its_last_empty_field() -> None:
    entry = parse_activity(2, line(**{CITY: "", STREET_NUMBER: "", STREET_TYPE: "", STREET: ""})[:-1], LAYOUT)
    assert entry is not None and (entry.city, entry.practice_address) == ("AJACCIO", None)


def test_an_adeli_line_is_skipped_not_refused() -> None:
    """ACC-1: a person identified by an ADELI number (type 0) has no RPPS: skipped."""
    assert parse_activity(2, line(**{ID_TYPE: "0", ID_PP: "201234567", ID_NATIONAL: "0201234567"}), LAYOUT) is None


@pytest.mark.parametrize(
    ("cells", "reason"),
    [
        ({ID_NATIONAL: "8" + GP[:10] + str((int(GP[10]) + 1) % 10), ID_PP: ""}, "Identification nationale PP — "),
        ({ID_NATIONAL: "", ID_PP: "123"}, "Identifiant PP — Numéro RPPS : doit comporter 11 chiffres"),
        ({ID_NATIONAL: "", ID_PP: ""}, "Identification nationale PP et Identifiant PP sont vides"),
        ({ID_PP: rpps("1000999902")}, "Identifiant PP et Identification nationale PP ne désignent pas"),
        ({LAST_NAME: " "}, "Nom d'exercice : aucune valeur n'a été saisie"),
        ({FIRST_NAME: ""}, "Prénom d'exercice : aucune valeur n'a été saisie"),
        ({PROFESSION: "99"}, "Code profession « 99 » inconnu de la nomenclature TRE_G15"),
        ({PROFESSION: ""}, "Code profession est vide"),
    ],
)
def test_refused_lines_give_line_column_and_reason(cells: dict[str, str], reason: str) -> None:
    with pytest.raises(RowError) as caught:
        parse_activity(7, line(**cells), LAYOUT)
    assert caught.value.message.startswith(f"ligne 7 : {reason}")


def test_a_line_with_the_wrong_number_of_fields_is_refused() -> None:
    with pytest.raises(RowError, match=r"^ligne 3 : la ligne comporte 3 champ\(s\) au lieu de 15"):
        parse_activity(3, ["8", GP, "x"], LAYOUT)


def test_long_descriptive_values_are_cut_to_their_column() -> None:
    entry = parse_activity(2, line(**{SPECIALTY: "S" * 150, STREET: "R" * 400}), LAYOUT)
    assert entry is not None and entry.specialty is not None and entry.practice_address is not None
    assert len(entry.specialty) == 100 and entry.specialty.endswith("…")
    assert len(entry.practice_address) == 300


def test_header_needs_the_identity_columns() -> None:
    """ACC-1: a file that is not the Personne_activite extract is refused as a whole."""
    with pytest.raises(HeaderError) as caught:
        read_header(["ins", "nom_naissance", "Code profession"])
    message = caught.value.message
    assert "« Identification nationale PP (ou Identifiant PP) »" in message
    assert "« Nom d'exercice »" in message and "« Prénom d'exercice »" in message
    assert "PS_LibreAcces_Personne_activite" in message
    only_identifiant = read_header([ID_PP, "nom d’exercice", " PRÉNOM D'EXERCICE ", PROFESSION])
    assert (only_identifiant.id_national, only_identifiant.specialty, only_identifiant.has_address) == (
        None,
        None,
        False,
    )
