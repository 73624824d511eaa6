"""ENR-1: validation of one registry line and of the header, with French reasons (IDN-3)."""

from __future__ import annotations

import pickle
import re
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carnet.enrolment.model.registry import (
    COLUMNS,
    HeaderError,
    RegistryRow,
    RowError,
    RowWarning,
    _nir,
    check_header,
    parse_row,
)
from carnet.people.model.identifiers import INS_NIA_OID, INS_NIR_OID, IdentifierError, nir_from_body, parse_nir

FAST = settings(max_examples=200, deadline=None)
TODAY = date(2026, 6, 15)
PARENT = nir_from_body("1850320004123")  # man, born March 1985 in Ajaccio (2A004)
CHILD = nir_from_body("2150520004045")  # woman, born May 2015
ENGLISH_WORDS = re.compile(r"\b(invalid|must|expected|error|traceback|got|should|required)\b", re.IGNORECASE)


def row(**changes: str | None) -> dict[str, str | None]:
    values: dict[str, str | None] = {
        "ins": PARENT,
        "nom_naissance": "Santoni",
        "prenoms": "Jean Pierre",
        "date_naissance": "1985-03-12",
        "sexe": "M",
        "lieu_naissance": "2A004",
        "email": "jp.santoni@exemple.fr",
        "telephone": "06 12 34 56 78",
        "adresse": "3 rue Fesch",
        "code_postal": "20000",
        "commune": "Ajaccio",
        "departement": "2A",
        "numero_serie_vitale": "123456789",
        "ins_ouvrant_droit": "",
    }
    values.update(changes)
    return values


def refused(line: int = 12, **changes: str | None) -> str:
    with pytest.raises(RowError) as caught:
        parse_row(line, row(**changes), today=TODAY)
    error = caught.value
    assert error.line == line
    assert str(error) == error.message == f"ligne {line} : {error.reason}"
    assert not ENGLISH_WORDS.search(error.message), error.message
    return error.message


# --- a good line -------------------------------------------------------------------------------


def test_a_good_line_is_normalised() -> None:
    parsed = parse_row(
        2,
        row(
            nom_naissance="  de  la   Rocca ",
            prenoms=" Marie   Ange ",
            sexe="m",
            lieu_naissance="2a004",
            departement="2a",
            telephone="06.12.34.56.78",
            numero_serie_vitale="1234 5678 9",
            ins=" " + PARENT[:5] + " " + PARENT[5:].lower() + " ",
            email=" jp.santoni@exemple.fr ",
        ),
        today=TODAY,
    )
    assert parsed == RegistryRow(
        ins=PARENT,
        ins_oid=INS_NIR_OID,
        birth_name="DE LA ROCCA",
        first_names="Marie Ange",
        birth_date=date(1985, 3, 12),
        sex="M",
        birth_place="2A004",
        email="jp.santoni@exemple.fr",
        phone="0612345678",
        address="3 rue Fesch",
        postal_code="20000",
        city="Ajaccio",
        departement="2A",
        vitale_serial="123456789",
        ouvrant_droit_ins=None,
    )


def test_optional_columns_may_be_empty() -> None:
    empty = dict.fromkeys(("email", "telephone", "adresse", "code_postal", "commune", "numero_serie_vitale"), "")
    parsed = parse_row(3, row(**empty), today=TODAY)
    assert (parsed.email, parsed.phone, parsed.address, parsed.postal_code, parsed.city, parsed.vitale_serial) == (
        None,
        None,
        None,
        None,
        None,
        None,
    )


def test_accented_birth_names_are_upper_cased_with_their_accents() -> None:
    assert parse_row(2, row(nom_naissance="Pérétti"), today=TODAY).birth_name == "PÉRÉTTI"


def test_a_minor_names_the_parent_it_is_attached_to() -> None:
    parsed = parse_row(
        4,
        row(ins=CHILD, prenoms="Lisa", date_naissance="2015-05-02", sexe="F", ins_ouvrant_droit=PARENT),
        today=TODAY,
    )
    assert parsed.ouvrant_droit_ins == PARENT


def test_a_provisional_number_gets_the_ins_nia_oid_and_any_sex() -> None:
    provisional = nir_from_body("7850320004123")
    parsed = parse_row(2, row(ins=provisional, sexe="F"), today=TODAY)
    assert parsed.ins_oid == INS_NIA_OID
    assert parse_row(2, row(), today=TODAY).ins_oid == INS_NIR_OID


@pytest.mark.parametrize("first", ["3", "4", "7", "8"])
def test_the_sex_is_compared_with_the_nir_only_for_1_and_2(first: str) -> None:
    for sex in ("M", "F"):
        assert parse_row(2, row(ins=nir_from_body(first + "850320004123"), sexe=sex), today=TODAY).sex == sex


@pytest.mark.parametrize("month", ["20", "42", "50", "99"])
def test_nir_months_of_incomplete_civil_records_are_not_compared_with_the_date(month: str) -> None:
    ins = nir_from_body(f"185{month}20004123")
    assert parse_row(2, row(ins=ins, date_naissance="1970-07-01"), today=TODAY).ins == ins


# --- each rule, with its French reason ---------------------------------------------------------


def test_impossible_date() -> None:
    assert refused(12, date_naissance="1985-02-30") == "ligne 12 : date_naissance « 1985-02-30 » n'existe pas"


@pytest.mark.parametrize("value", ["12/03/1985", "1985-3-12", "19850312", "1985-03-12T00:00", "l985-03-12"])
def test_date_format(value: str) -> None:
    assert f"date_naissance « {value} » doit être au format AAAA-MM-JJ" in refused(date_naissance=value)


def test_date_in_the_future_or_too_old() -> None:
    assert "est dans le futur" in refused(date_naissance="2026-06-16", ins=nir_from_body("1260620004123"))
    assert "remonte à plus de 130 ans" in refused(date_naissance="1890-03-12", ins=nir_from_body("1900320004123"))


@pytest.mark.parametrize("value", ["H", "X", "1", "Homme", "MF"])
def test_unknown_sex(value: str) -> None:
    assert refused(7, sexe=value).startswith("ligne 7 : sexe doit être M ou F")


def test_bad_nir_key_comes_with_the_identifiers_reason() -> None:
    wrong = PARENT[:13] + f"{(int(PARENT[13:]) % 97) + 1:02d}"
    message = refused(5, ins=wrong)
    assert message.startswith("ligne 5 : ins — Numéro de sécurité sociale (NIR) : la clé est invalide")
    assert PARENT[:13] not in message


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("18503", "doit comporter 15 caractères"),
        ("985032000412312", "le premier chiffre doit être"),
        ("185132000412312", "le mois de naissance 13 n'existe pas"),
    ],
)
def test_malformed_nir(value: str, reason: str) -> None:
    assert reason in refused(ins=value)


def test_nir_sex_must_agree_with_sexe() -> None:
    message = refused(9, sexe="F")
    assert message == "ligne 9 : sexe « F » ne correspond pas à l'ins (1er chiffre 1 = homme, attendu M)"
    woman = nir_from_body("2850320004123")
    assert "1er chiffre 2 = femme, attendu F" in refused(ins=woman, sexe="M")


@pytest.mark.parametrize("born", ["1986-03-12", "1985-04-12", "1984-03-12"])
def test_nir_year_and_month_must_agree_with_the_date(born: str) -> None:
    message = refused(date_naissance=born)
    assert f"date_naissance « {born} » ne correspond pas à l'ins (année et mois de naissance du NIR : 85-03)" in message


@pytest.mark.parametrize("value", ["pas-une-adresse", "jp@exemple", "jp santoni@exemple.fr", "@exemple.fr", "a@b@c.fr"])
def test_email_format(value: str) -> None:
    message = refused(email=value)
    assert message == "ligne 12 : email n'est pas une adresse e-mail valide (nom@domaine.fr)"


@pytest.mark.parametrize("value", ["2000", "200000", "2A000", "20 00"])
def test_postal_code_has_5_digits(value: str) -> None:
    assert "code_postal" in refused(code_postal=value) and "doit comporter 5 chiffres" in refused(code_postal=value)


@pytest.mark.parametrize("value", ["20", "00", "96", "99", "2C", "970", "977", "1", "A2"])
def test_unknown_departement(value: str) -> None:
    assert f"departement « {value} » n'existe pas (01 à 95 sauf 20, 2A, 2B, 971 à 976)" in refused(departement=value)


@pytest.mark.parametrize(
    ("value", "stored"), [("01", "01"), ("95", "95"), ("2b", "2B"), ("971", "971"), ("976", "976")]
)
def test_known_departements(value: str, stored: str) -> None:
    assert parse_row(2, row(departement=value), today=TODAY).departement == stored


@pytest.mark.parametrize("value", ["1234567", "12345678901234", "12345abc", "１２３４５６７８"])
def test_vitale_serial_has_8_to_13_digits(value: str) -> None:
    assert refused(numero_serie_vitale=value) == "ligne 12 : numero_serie_vitale doit comporter de 8 à 13 chiffres"


@pytest.mark.parametrize("value", ["12345678", "1234567890123"])
def test_vitale_serial_bounds(value: str) -> None:
    assert parse_row(2, row(numero_serie_vitale=value), today=TODAY).vitale_serial == value


@pytest.mark.parametrize("value", ["2C004", "2A04", "ABCDE", "200041", "2A 04"])
def test_birth_place_is_an_insee_code(value: str) -> None:
    assert "lieu_naissance" in refused(lieu_naissance=value)
    assert "doit être un code INSEE de 5 caractères (5 chiffres, ou 2A / 2B suivi de 3 chiffres)" in refused(
        lieu_naissance=value
    )


@pytest.mark.parametrize(("value", "stored"), [("99139", "99139"), ("2b033", "2B033"), ("75056", "75056")])
def test_known_birth_places(value: str, stored: str) -> None:
    assert parse_row(2, row(lieu_naissance=value), today=TODAY).birth_place == stored


def test_parent_ins_must_be_a_valid_nir_other_than_ins() -> None:
    bad = refused(ins_ouvrant_droit="123")
    assert bad.startswith("ligne 12 : ins_ouvrant_droit — Numéro de sécurité sociale (NIR) :")
    same = refused(ins_ouvrant_droit=PARENT.lower())
    assert same == "ligne 12 : ins_ouvrant_droit doit être l'INS d'une autre personne que ins"


@pytest.mark.parametrize("column", ["ins", "nom_naissance", "prenoms", "date_naissance", "sexe", "lieu_naissance"])
def test_required_columns(column: str) -> None:
    assert refused(**{column: "  "}) == f"ligne 12 : {column} est obligatoire et la case est vide"


def test_departement_is_required() -> None:
    assert refused(departement="") == "ligne 12 : departement est obligatoire et la case est vide"


def test_a_short_line_names_the_missing_column() -> None:
    assert refused(ins_ouvrant_droit=None) == "ligne 12 : la colonne ins_ouvrant_droit manque sur cette ligne"


def test_names_hold_no_digits_and_respect_their_size() -> None:
    assert refused(nom_naissance="Santoni2") == "ligne 12 : nom_naissance ne doit pas contenir de chiffres"
    assert refused(prenoms="Jean 2") == "ligne 12 : prenoms ne doit pas contenir de chiffres"
    assert refused(nom_naissance="A" * 101) == "ligne 12 : nom_naissance dépasse 100 caractères (101 reçus)"
    assert "adresse dépasse 300 caractères" in refused(adresse="x" * 301)


def test_control_characters_are_refused() -> None:
    assert refused(adresse="3 rue\x00Fesch") == "ligne 12 : adresse contient des caractères de contrôle"


@pytest.mark.parametrize("value", ["0612", "6123456789", "+33", "06 12 34 56 7a"])
def test_phone_format(value: str) -> None:
    assert "telephone doit comporter 10 chiffres commençant par 0" in refused(telephone=value)


def test_international_phone() -> None:
    assert parse_row(2, row(telephone="+33 6 12 34 56 78"), today=TODAY).phone == "+33612345678"


def test_messages_never_repeat_identifying_values() -> None:
    secrets = ("Santoni", "SANTONI", "jp.santoni", "123456789", PARENT[:13])
    for changes in (
        {"email": "jp.santoni@"},
        {"numero_serie_vitale": "123456789x"},
        {"nom_naissance": "Santoni9"},
        {"sexe": "F"},
        {"ins": PARENT[:13] + "00"},
        {"ins_ouvrant_droit": PARENT},
    ):
        message = refused(**changes)
        assert not any(secret in message for secret in secrets), message


def test_row_error_and_warning_are_plain_values() -> None:
    error = RowError(3, "sexe doit être M ou F")
    assert pickle.loads(pickle.dumps(error)).message  # noqa: S301 (our own bytes) == "ligne 3 : sexe doit être M ou F"
    assert RowError.wrong_field_count(4, 15).message.startswith("ligne 4 : la ligne comporte 15 champ(s) au lieu de 14")
    assert str(RowWarning(5, "parent inconnu")) == "ligne 5 : parent inconnu"


# --- the header ---------------------------------------------------------------------------------


def test_header_in_any_order_case_and_spaces() -> None:
    names = [f" {name.upper()} " for name in reversed(COLUMNS)]
    assert check_header(names) == tuple(reversed(COLUMNS))


def test_header_problems_are_one_message_for_the_whole_file() -> None:
    names = [name for name in COLUMNS if name not in {"telephone", "sexe"}] + ["tel", "ins"]
    with pytest.raises(HeaderError) as caught:
        check_header(names)
    message = caught.value.message
    assert message.startswith("En-tête du fichier incorrect — ")
    assert "colonne(s) manquante(s) : sexe, telephone" in message
    assert "colonne(s) inconnue(s) : « tel »" in message
    assert "colonne(s) en double : ins" in message
    assert "Colonnes attendues" in message and ", ".join(COLUMNS) in message
    assert pickle.loads(pickle.dumps(caught.value)).message == message  # noqa: S301


def test_a_header_split_on_the_wrong_separator_is_refused() -> None:
    with pytest.raises(HeaderError, match="colonne\\(s\\) manquante\\(s\\)"):
        check_header([";".join(COLUMNS)])


# --- properties ---------------------------------------------------------------------------------


@st.composite
def well_formed_rows(draw: st.DrawFn) -> tuple[dict[str, str | None], date, str]:
    born = draw(st.dates(min_value=date(1900, 1, 1), max_value=TODAY))
    sex = draw(st.sampled_from("MF"))
    first = draw(st.sampled_from({"M": "137", "F": "248"}[sex]))
    month = draw(st.sampled_from([f"{born.month:02d}", "20", "35", "50", "99"]))
    place = draw(
        st.one_of(
            st.builds(lambda d, c: f"{d}{c:03d}", st.sampled_from(["2A", "2B"]), st.integers(0, 999)),
            st.integers(1000, 99999).map(lambda n: f"{n:05d}"),
        )
    )
    body = f"{first}{born.year % 100:02d}{month}{place}{draw(st.integers(1, 999)):03d}"
    ins = nir_from_body(body)
    name_text = st.text(alphabet="abcdefghijklmnopqrstuvwxyzéèçïô' -", min_size=1, max_size=40).filter(
        lambda text: text.strip() != ""
    )
    parent = draw(st.one_of(st.just(""), st.builds(nir_from_body, st.just("2650120004123"))))
    values: dict[str, str | None] = {
        "ins": draw(st.sampled_from([ins, ins.lower(), f" {ins[:7]} {ins[7:]} "])),
        "nom_naissance": draw(name_text),
        "prenoms": draw(name_text),
        "date_naissance": born.isoformat(),
        "sexe": draw(st.sampled_from([sex, sex.lower(), f" {sex} "])),
        "lieu_naissance": draw(st.sampled_from([place, place.lower()])),
        "email": draw(st.sampled_from(["", "a.b@exemple.fr", "Jean-Pierre.X+carnet@corse.sante.fr"])),
        "telephone": draw(st.sampled_from(["", "0612345678", "04 95 12 34 56", "+33 4 95 12 34 56"])),
        "adresse": draw(st.text(alphabet="abc 123,'-éè", max_size=80)),
        "code_postal": draw(st.sampled_from(["", "20000", "20200", "75001"])),
        "commune": draw(st.sampled_from(["", "Ajaccio", "L'Île-Rousse"])),
        "departement": draw(st.sampled_from(["2A", "2b", "01", "95", "974"])),
        "numero_serie_vitale": draw(st.one_of(st.just(""), st.integers(10**7, 10**13 - 1).map(str))),
        "ins_ouvrant_droit": parent if parent != ins else "",
    }
    return values, born, ins


@FAST
@given(well_formed_rows(), st.integers(2, 10**6))
def test_a_well_formed_row_always_parses(generated: tuple[dict[str, str | None], date, str], line: int) -> None:
    values, born, ins = generated
    parsed = parse_row(line, values, today=TODAY)
    assert parsed.ins == ins
    assert parsed.birth_date == born
    assert parsed.birth_name == parsed.birth_name.upper() == parsed.birth_name.strip()
    assert "  " not in parsed.first_names
    assert parsed.sex in {"M", "F"}
    assert parsed.departement in {"2A", "2B", "01", "95", "974"}


nir_like = st.text(alphabet="0123456789ABab ²\u0663", min_size=0, max_size=18)


def mutated_nir(draw: st.DrawFn) -> str:
    valid = nir_from_body(draw(st.sampled_from(["1850320004123", "2850320004123", "185032A004123", "7991299123456"])))
    position = draw(st.integers(0, 14))
    replacement = draw(st.sampled_from("0123456789ABab ²"))
    return valid[:position] + replacement + valid[position + 1 :]


@FAST
@given(st.one_of(nir_like, st.composite(mutated_nir)()))
def test_the_fast_nir_check_agrees_with_parse_nir(value: str) -> None:
    try:
        expected: str | None = parse_nir(value).value
    except IdentifierError as exc:
        expected = None
        reason = exc.message
    try:
        got: str | None = _nir(2, "ins", value)
    except RowError as error:
        got = None
        assert error.reason == f"ins — {reason}"
    assert got == expected
