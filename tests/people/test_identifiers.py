"""Tests of the French health identifiers (IDN-1 NIR / INS, IDN-2 RPPS / FINESS, IDN-3 French errors).

Expected NIR keys below are never recomputed with the key formula: they come
from published examples or were worked out by hand, and the arithmetic is shown
in comments so that anyone can check it with pencil and paper.  The trick used:
a 13-digit body is ``A * 10**6 + B`` (A = first 7 digits, B = last 6), and
``10**6 = 97 * 10309 + 27``, so ``body mod 97 = (27 * (A mod 97) + B mod 97) mod 97``.
"""

from __future__ import annotations

import pickle
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carnet.people.model.identifiers import (
    INS_NIA_OID,
    INS_NIA_TEST_OID,
    INS_NIR_OID,
    INS_NIR_TEST_OID,
    IdentifierError,
    Nir,
    format_nir,
    nir_from_body,
    nir_key,
    parse_nir,
    validate_finess,
    validate_rpps,
)

FAST = settings(max_examples=30, deadline=None)

NIR_LABEL = "Numéro de sécurité sociale (NIR) : "
ENGLISH_WORDS = re.compile(r"\b(invalid|must|expected|error|traceback|got|should)\b", re.IGNORECASE)

# Straight from the specification, written out independently of the module.
SEX_DIGITS = "123478"
VALID_MONTHS = [f"{month:02d}" for month in [*range(1, 13), *range(20, 43), *range(50, 100)]]
NONEXISTENT_MONTHS = [f"{month:02d}" for month in [0, *range(13, 20), *range(43, 50)]]


def digit_strings(size: int) -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789", min_size=size, max_size=size)


@st.composite
def nir_bodies(draw: st.DrawFn, departements: st.SearchStrategy[str] | None = None) -> str:
    """A well-formed 13-character NIR body (sex, year, month, département, commune, order)."""
    if departements is None:
        departements = st.one_of(digit_strings(2), st.sampled_from(["2A", "2B"]))
    departement = draw(departements)
    return (
        draw(st.sampled_from(SEX_DIGITS))
        + draw(digit_strings(2))
        + draw(st.sampled_from(VALID_MONTHS))
        + departement
        + draw(digit_strings(3))
        + draw(digit_strings(3))
    )


def assert_french_error(error: IdentifierError, field: str, label: str) -> None:
    assert error.field == field
    assert str(error) == error.message
    assert error.message.startswith(label)
    assert error.message.endswith(".")
    assert len(error.message) > len(label) + 5
    assert not ENGLISH_WORDS.search(error.message), error.message


# --------------------------------------------------------------------------- IDN-1: NIR / INS


# "2 69 05 49 588 157 80": example commonly quoted when explaining the NIR.
#   A = 2690549 = 97 * 27737 + 60   (97 * 27737 = 2690489)
#   B =  588157 = 97 *  6063 + 46   (97 *  6063 =  588111)
#   27 * 60 + 46 = 1666 = 97 * 17 + 17  ->  key = 97 - 17 = 80
# "2 06 12 75 111 005 64": published with key 64 on
# http://www.lbcd78.fr/2007/02/26/nouveau-module-pour-netvibes-calcul-de-la-cle-du-n°-de-securite-sociale/
#   A = 2061275 = 97 * 21250 + 25   (97 * 21250 = 2061250)
#   B =  111005 = 97 *  1144 + 37   (97 *  1144 =  110968)
#   27 * 25 + 37 = 712 = 97 * 7 + 33  ->  key = 97 - 33 = 64
@pytest.mark.parametrize(
    ("typed", "body", "key"),
    [
        ("2 69 05 49 588 157 80", "2690549588157", 80),
        ("2 06 12 75 111 005 64", "2061275111005", 64),
    ],
)
def test_published_nir_examples_are_accepted_with_their_hand_checked_keys(typed: str, body: str, key: int) -> None:
    """IDN-1: real-world examples whose key was verified by hand are accepted."""
    nir = parse_nir(typed)
    assert nir == Nir(body, key)
    assert nir_key(body) == key
    assert nir_from_body(body) == f"{body}{key:02d}"


# Corsica, body "1 84 12 2A 004 123": 2A counts as 19 (2B as 18).
#   A = 1841219 = 97 * 18981 + 62   (97 * 18981 = 1841157)
#   B =  004123 = 97 *    42 + 49   (97 *    42 =    4074)
#   27 * 62 + 49 = 1723 = 97 * 17 + 74  ->  key = 97 - 74 = 23
# Same body with 2B: A = 1841218 = 1841157 + 61
#   27 * 61 + 49 = 1696 = 97 * 17 + 47  ->  key = 97 - 47 = 50
def test_a_corsican_2a_or_2b_body_gets_the_hand_checked_key_of_19_or_18() -> None:
    """IDN-1: the Corsican départements 2A / 2B are computed as 19 / 18."""
    assert nir_key("1841219004123") == 23
    assert nir_key("184122A004123") == 23
    assert nir_key("1841218004123") == 50
    assert nir_key("184122B004123") == 50
    assert parse_nir("1 84 12 2A 004 123 23").departement == "2A"
    assert parse_nir("1 84 12 2B 004 123 50").departement == "2B"


# Body 1840512345081 is a multiple of 97:
#   A = 1840512 = 97 * 18974 + 34   (97 * 18974 = 1840478)
#   B =  345081 = 97 *  3557 + 52   (97 *  3557 =  345029)
#   27 * 34 + 52 = 970 = 97 * 10 + 0  ->  key = 97 - 0 = 97 (never 00)
def test_a_body_that_is_a_multiple_of_97_gets_key_97_and_never_00() -> None:
    """IDN-1: the key of a multiple of 97 is 97, the top of the 1..97 range."""
    assert nir_key("1840512345081") == 97
    assert parse_nir("184051234508197").key == 97
    with pytest.raises(IdentifierError):
        parse_nir("184051234508100")


@FAST
@given(body=nir_bodies())
def test_any_corsican_body_has_the_key_of_the_same_body_with_19_for_2a_and_18_for_2b(body: str) -> None:
    """IDN-1: for every body, 2A gives the key of 19 and 2B the key of 18."""
    head, tail = body[:5], body[7:]
    assert nir_key(head + "2A" + tail) == nir_key(head + "19" + tail)
    assert nir_key(head + "2B" + tail) == nir_key(head + "18" + tail)


@FAST
@given(body=nir_bodies())
def test_every_valid_body_round_trips_through_nir_from_body_and_parse_nir(body: str) -> None:
    """IDN-1: nir_from_body produces a NIR that parse_nir accepts unchanged."""
    full = nir_from_body(body)
    assert len(full) == 15
    assert full[:13] == body
    nir = parse_nir(full)
    assert nir.body == body
    assert nir.value == full
    assert str(nir) == full
    assert nir.key == nir_key(body) == int(full[13:])


@FAST
@given(body=nir_bodies())
def test_nir_keys_are_always_between_1_and_97(body: str) -> None:
    """IDN-1: a key is 97 - (n mod 97), hence always in 1..97."""
    assert 1 <= nir_key(body) <= 97


@FAST
@given(body=nir_bodies(), data=st.data())
def test_changing_any_single_digit_of_a_valid_nir_is_rejected(body: str, data: st.DataObject) -> None:
    """IDN-1: a single mistyped digit, in the body or in the key, is always caught."""
    full = nir_from_body(body)
    position = data.draw(st.sampled_from([i for i, char in enumerate(full) if char.isdigit()]))
    replacement = data.draw(st.sampled_from([d for d in "0123456789" if d != full[position]]))
    mutated = full[:position] + replacement + full[position + 1 :]
    with pytest.raises(IdentifierError) as caught:
        parse_nir(mutated)
    assert caught.value.field == "nir"


@FAST
@given(body=nir_bodies(departements=st.sampled_from(["2A", "2B"])))
def test_swapping_2a_and_2b_in_a_valid_nir_is_rejected(body: str) -> None:
    """IDN-1: 2A and 2B weigh differently (19 vs 18), so confusing them is caught."""
    full = nir_from_body(body)
    swapped = full[:5] + ("2B" if full[5:7] == "2A" else "2A") + full[7:]
    with pytest.raises(IdentifierError, match="la clé est invalide"):
        parse_nir(swapped)


@FAST
@given(body=nir_bodies(), month=st.sampled_from(VALID_MONTHS))
def test_every_documented_birth_month_is_accepted_including_incomplete_civil_records(body: str, month: str) -> None:
    """IDN-1: months 01-12, 20-42 and 50-99 are all accepted."""
    body = body[:3] + month + body[5:]
    assert parse_nir(nir_from_body(body)).body == body


@FAST
@given(body=nir_bodies(), month=st.sampled_from(NONEXISTENT_MONTHS))
def test_a_nonexistent_birth_month_is_rejected_and_named(body: str, month: str) -> None:
    """IDN-1 / IDN-3: months 00, 13-19 and 43-49 are refused, quoting the month."""
    body = body[:3] + month + body[5:]
    with pytest.raises(IdentifierError) as caught:
        nir_key(body)
    assert caught.value.message == f"{NIR_LABEL}le mois de naissance {month} n'existe pas."


@pytest.mark.parametrize(
    "typed",
    [
        "184122A00412323",
        "1 84 12 2a 004 123 23",
        "  1 84 12 2A 004 123 23\n",
        "1\u00a084\u00a012\u00a02a\u00a0004\u00a0123\u00a023",  # non-breaking spaces
        "1\u202f84\u202f12\u202f2A\u202f004\u202f123\u202f23",  # narrow non-breaking spaces
    ],
)
def test_spaces_and_lowercase_corsican_letters_are_normalised(typed: str) -> None:
    """IDN-1: spacing and a lowercase 2a are accepted and normalised."""
    nir = parse_nir(typed)
    assert nir.body == "184122A004123"
    assert nir.value == "184122A00412323"


def test_format_nir_groups_the_number_for_display() -> None:
    """IDN-1: display grouping is 1 / 2 / 2 / 2 / 3 / 3 / 2."""
    assert format_nir("184122a00412323") == "1 84 12 2A 004 123 23"
    assert format_nir("269054958815780") == "2 69 05 49 588 157 80"


def test_format_nir_refuses_to_prettify_a_nir_whose_key_is_wrong() -> None:
    """IDN-1 / IDN-3: a wrong key is not made to look legitimate."""
    with pytest.raises(IdentifierError, match=r"attendue 23, reçue 45"):
        format_nir("1 84 12 2A 004 123 45")


@FAST
@given(body=nir_bodies())
def test_a_formatted_nir_parses_back_to_the_same_nir(body: str) -> None:
    """IDN-1: what we display can be typed back in."""
    full = nir_from_body(body)
    assert parse_nir(format_nir(full)) == parse_nir(full)


@pytest.mark.parametrize(
    ("first_digit", "sex", "provisional"),
    [
        ("1", "M", False),
        ("2", "F", False),
        ("3", "M", False),
        ("4", "F", False),
        ("7", "M", True),
        ("8", "F", True),
    ],
)
def test_sex_and_provisional_status_follow_the_first_digit(first_digit: str, sex: str, provisional: bool) -> None:
    """IDN-1: 1/3/7 are men, 2/4/8 women, 7/8 provisional numbers."""
    nir = parse_nir(nir_from_body(first_digit + "840575123456"))
    assert nir.sex == sex
    assert nir.provisional is provisional


@pytest.mark.parametrize(
    ("body", "departement"),
    [
        ("1840575123456", "75"),
        ("184122A004123", "2A"),
        ("1840599135001", "99"),  # born abroad
        ("1840597123456", "971"),  # overseas: 3-digit département, 2-digit commune
        ("2840598812003", "988"),
    ],
)
def test_birth_departement_has_three_digits_only_for_overseas_births(body: str, departement: str) -> None:
    """IDN-1: 97x / 98x overseas départements are read on three digits."""
    assert parse_nir(nir_from_body(body)).departement == departement


def test_a_nir_object_cannot_be_built_with_a_key_that_does_not_match() -> None:
    """IDN-1: Nir instances are always valid, even when built directly."""
    assert Nir("184122a004123", 23).body == "184122A004123"
    with pytest.raises(IdentifierError, match=r"attendue 23, reçue 24"):
        Nir("184122A004123", 24)


# --------------------------------------------------------------------------- IDN-3: NIR errors


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("2 69 05 49 588 157 81", "la clé est invalide (attendue 80, reçue 81)."),
        ("2 69 05 49 588 157", "doit comporter 15 caractères (13 + clé de 2 chiffres) ; 13 reçus."),
        ("", "aucun numéro n'a été saisi."),
        ("   ", "aucun numéro n'a été saisi."),
        ("2 69 13 49 588 157 80", "le mois de naissance 13 n'existe pas."),
        ("5 69 05 49 588 157 80", "le premier chiffre doit être 1, 2, 3, 4, 7 ou 8 (reçu « 5 »)."),
        ("2 6X 05 49 588 157 80", "l'année de naissance (2e et 3e caractères) doit comporter 2 chiffres."),
        (
            "2 69 05 2C 588 157 80",
            "le département de naissance (6e et 7e caractères) doit comporter 2 chiffres, "
            "ou 2A / 2B pour la Corse (reçu « 2C »).",
        ),
        (
            "2 69 05 49 5-8 157 80",
            "le code de la commune de naissance (8e à 10e caractères) doit comporter 3 chiffres.",
        ),
        (
            "2 69 05 49 588 1O7 80",
            "le numéro d'ordre de naissance (11e à 13e caractères) doit comporter 3 chiffres.",
        ),
        ("2 69 05 49 588 157 8O", "la clé (2 derniers caractères) doit comporter 2 chiffres."),
        ("2 69 05 49 588 157 ١٢", "la clé (2 derniers caractères) doit comporter 2 chiffres."),
    ],
)
def test_nir_errors_name_the_field_and_say_why_in_french(typed: str, reason: str) -> None:
    """IDN-3: each refusal names the NIR field and the precise reason in French."""
    with pytest.raises(IdentifierError) as caught:
        parse_nir(typed)
    assert caught.value.message == NIR_LABEL + reason
    assert_french_error(caught.value, "nir", NIR_LABEL)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("269054958815780", "le numéro sans sa clé doit comporter 13 caractères ; 15 reçus."),
        ("9690549588157", "le premier chiffre doit être 1, 2, 3, 4, 7 ou 8 (reçu « 9 »)."),
        ("2690049588157", "le mois de naissance 00 n'existe pas."),
    ],
)
def test_nir_key_and_nir_from_body_reject_a_malformed_body(body: str, reason: str) -> None:
    """IDN-1 / IDN-3: no key is computed for a body that is not a NIR body."""
    for function in (nir_key, nir_from_body):
        with pytest.raises(IdentifierError) as caught:
            function(body)
        assert caught.value.message == NIR_LABEL + reason


@FAST
@given(
    typed=st.one_of(
        st.text(max_size=20),
        st.text(alphabet="0123456789ABab -", min_size=13, max_size=17),
        nir_bodies().map(nir_from_body),
    )
)
def test_any_text_is_either_a_valid_nir_or_a_french_error_naming_the_field(typed: str) -> None:
    """IDN-3: whatever is typed, the outcome is a Nir or an IdentifierError, never a crash."""
    try:
        nir = parse_nir(typed)
    except IdentifierError as error:
        assert_french_error(error, "nir", NIR_LABEL)
    else:
        assert len(nir.value) == 15


def test_identifier_error_is_a_value_error_that_survives_pickling() -> None:
    """IDN-3: callers may catch ValueError; the error crosses process boundaries intact."""
    error = IdentifierError("rpps", "Numéro RPPS : ne doit contenir que des chiffres.")
    assert isinstance(error, ValueError)
    assert str(error) == error.message
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own object
    assert (copy.field, copy.message) == (error.field, error.message)


def test_ins_oids_are_the_published_nir_and_nia_ones() -> None:
    """IDN-1: OIDs of the INS matricule (NIR, NIA and their test variants)."""
    assert INS_NIR_OID == "1.2.250.1.213.1.4.8"
    assert INS_NIA_OID == "1.2.250.1.213.1.4.9"
    assert INS_NIR_TEST_OID == "1.2.250.1.213.1.4.10"
    assert INS_NIA_TEST_OID == "1.2.250.1.213.1.4.11"


# --------------------------------------------------------------------------- IDN-2: RPPS


@FAST
@given(rpps=digit_strings(11))
def test_any_eleven_digit_rpps_is_accepted_because_no_check_digit_is_enforced(rpps: str) -> None:
    """IDN-2: RPPS is a format check only (its check digit is unconfirmed)."""
    assert validate_rpps(rpps) == rpps


def test_rpps_spaces_are_removed() -> None:
    """IDN-2: a spaced RPPS is normalised to 11 digits."""
    assert validate_rpps(" 10 00 123 456 7 ") == "10001234567"


@FAST
@given(rpps=st.text(alphabet="0123456789", min_size=1, max_size=20).filter(lambda s: len(s) != 11))
def test_an_rpps_of_the_wrong_length_is_rejected_with_its_length(rpps: str) -> None:
    """IDN-2 / IDN-3: an RPPS that is not 11 digits long is refused."""
    with pytest.raises(IdentifierError) as caught:
        validate_rpps(rpps)
    assert_french_error(caught.value, "rpps", "Numéro RPPS : ")
    assert "doit comporter 11 chiffres" in caught.value.message
    assert str(len(rpps)) in caught.value.message


@pytest.mark.parametrize("rpps", ["1000123456A", "10001-23456", "1000123456²", "1000123456١"])
def test_an_rpps_with_anything_but_ascii_digits_is_rejected(rpps: str) -> None:
    """IDN-2 / IDN-3: letters, dashes and non-ASCII digits are refused."""
    with pytest.raises(IdentifierError) as caught:
        validate_rpps(rpps)
    assert caught.value.message == "Numéro RPPS : ne doit contenir que des chiffres."
    assert_french_error(caught.value, "rpps", "Numéro RPPS : ")


def test_an_empty_rpps_is_rejected() -> None:
    """IDN-2 / IDN-3: an empty RPPS field is refused with a French message."""
    with pytest.raises(IdentifierError, match="aucun numéro n'a été saisi"):
        validate_rpps("  ")


# --------------------------------------------------------------------------- IDN-2: FINESS

FINESS_DEPARTEMENTS = [f"{n:02d}" for n in range(1, 96) if n != 20] + ["2A", "2B", "97"]


@FAST
@given(departement=st.sampled_from(FINESS_DEPARTEMENTS), rest=digit_strings(7))
def test_a_finess_with_a_departement_then_seven_digits_is_accepted(departement: str, rest: str) -> None:
    """IDN-2: FINESS = département (01-95, 2A, 2B, 97) + 7 digits, format only."""
    assert validate_finess(departement + rest) == departement + rest


def test_a_finess_is_normalised_to_uppercase_without_spaces() -> None:
    """IDN-2: a lowercase Corsican prefix and spaces are normalised."""
    assert validate_finess(" 2a 000 1234 ") == "2A0001234"
    assert validate_finess("970 100 228") == "970100228"


@pytest.mark.parametrize("departement", ["00", "20", "96", "98", "99", "2C", "9A", "AB"])
def test_a_finess_with_an_unknown_departement_is_rejected(departement: str) -> None:
    """IDN-2 / IDN-3: the first two characters must be a known département."""
    with pytest.raises(IdentifierError) as caught:
        validate_finess(departement + "0001234")
    assert_french_error(caught.value, "finess", "Numéro FINESS : ")
    assert "département" in caught.value.message
    assert f"« {departement} »" in caught.value.message


@pytest.mark.parametrize(
    ("finess", "reason"),
    [
        ("75000123", "doit comporter 9 caractères ; 8 reçus."),
        ("7500012345", "doit comporter 9 caractères ; 10 reçus."),
        ("75000A123", "les 7 derniers caractères doivent être des chiffres."),
        ("", "aucun numéro n'a été saisi."),
    ],
)
def test_a_malformed_finess_is_rejected_with_the_reason(finess: str, reason: str) -> None:
    """IDN-2 / IDN-3: wrong length or non-digits after the département are refused."""
    with pytest.raises(IdentifierError) as caught:
        validate_finess(finess)
    assert caught.value.message == "Numéro FINESS : " + reason
    assert_french_error(caught.value, "finess", "Numéro FINESS : ")
