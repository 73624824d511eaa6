"""One row of the insured-persons registry (ENR-1): columns, validation, French reasons.

Why this module exists
----------------------
The operator loads the insurer's registry from a CSV file (``carnet registry import``).  A
registry row becomes a patient record whose traits (INS, birth name, first names, date of birth,
sex, place of birth) identify the person for the rest of their life, so a wrong row must be
refused with a reason the operator can act on: the line number, the column and why, in French.
This module is pure (no I/O, standard library only): the service streams the file and writes the
database, the rules live here where they are easy to test one by one.

Rules (one reason per refused line: structural problems first — a missing column, an empty
required cell, control characters, a value too long — then each column's format, left to right)
------------------------------------------------------------------------------------------------
* required: ``ins``, ``nom_naissance``, ``prenoms``, ``date_naissance``, ``sexe``,
  ``lieu_naissance``, ``departement``; the other columns may be empty (stored as NULL);
* ``ins`` and ``ins_ouvrant_droit``: a NIR / NIA with a valid key (:func:`parse_nir`, IDN-1);
  ``ins_ouvrant_droit`` (for a minor, the INS of the parent the child is attached to) must differ
  from ``ins``;
* ``date_naissance``: ``AAAA-MM-JJ``, a real date, not in the future, not more than 130 years ago;
* ``sexe``: ``M`` or ``F``;
* ``lieu_naissance``: the 5-character INSEE code (5 digits, or 2A / 2B + 3 digits; 99xxx = abroad);
* ``email``: one ``@``, a domain with a dot, no spaces; ``telephone``: 10 French digits starting
  with 0, or ``+`` and 8 to 15 digits (spaces, dots and dashes are dropped);
* ``code_postal``: 5 digits; ``departement``: 01 to 95 except 20, 2A, 2B, 971 to 976;
* ``numero_serie_vitale``: 8 to 13 digits (ENR-4);
* names are trimmed (inner runs of spaces collapsed), the birth name is upper-cased; names hold no
  digits; no value holds control characters or exceeds its column's size.

Choices made here (the specification is silent)
-----------------------------------------------
* **The NIR must agree with the other traits.**  When its first digit is 1 or 2 (a definitive
  number, not a provisional 7 / 8 one nor a 3 / 4), it must match ``sexe`` (1 = M, 2 = F); when
  its month (4th-5th characters) is 01 to 12, its year and month must match ``date_naissance``.
  A disagreement almost always means two persons' cells were mixed up, so the line is refused
  rather than loaded with a contradictory identity.  Months 20-42 and 50+ (incomplete civil
  records) are not compared.
* Provisional numbers (first digit 7 or 8, i.e. NIA) get the INS-NIA OID, the others INS-NIR.
* A whole file with a wrong header is refused at once (:class:`HeaderError`): all 14 columns must
  be present, in any order, each once, and no other (names are compared trimmed, lower-case).

Messages quote the offending value only when it is not identifying on its own (a date, a sex, a
postal or INSEE code); they never repeat a NIR, a name, an e-mail or a carte Vitale serial.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Final, NamedTuple, cast

from carnet.errors import CarnetError
from carnet.people.model.identifiers import INS_NIA_OID, INS_NIR_OID, IdentifierError, parse_nir

__all__ = [
    "COLUMNS",
    "REQUIRED_COLUMNS",
    "HeaderError",
    "RegistryRow",
    "RowError",
    "RowWarning",
    "check_header",
    "parse_row",
]

COLUMNS: Final = (
    "ins",
    "nom_naissance",
    "prenoms",
    "date_naissance",
    "sexe",
    "lieu_naissance",
    "email",
    "telephone",
    "adresse",
    "code_postal",
    "commune",
    "departement",
    "numero_serie_vitale",
    "ins_ouvrant_droit",
)
REQUIRED_COLUMNS: Final = frozenset(
    {"ins", "nom_naissance", "prenoms", "date_naissance", "sexe", "lieu_naissance", "departement"}
)

# Sizes of the matching columns of the ``patients`` table (PostgreSQL enforces them).
_MAX_LENGTH: Final = {"nom_naissance": 100, "prenoms": 200, "email": 254, "adresse": 300, "commune": 100}
_MAX_AGE_YEARS: Final = 130
_REQUIRED_INDEXES: Final = tuple(index for index, column in enumerate(COLUMNS) if column in REQUIRED_COLUMNS)
_LIMITED: Final = tuple((COLUMNS.index(column), column, limit) for column, limit in _MAX_LENGTH.items())

_DEPARTEMENTS: Final = frozenset(
    {f"{number:02d}" for number in range(1, 96) if number != 20} | {"2A", "2B"} | {str(n) for n in range(971, 977)}
)
_ANY_DIGIT: Final = re.compile(r"\d")
_EMAIL: Final = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")
_PHONE_SEPARATORS: Final = str.maketrans("", "", " .-")
_ASCII_UPPER: Final = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_NIR_SEX: Final = {"1": "M", "2": "F"}
_NIR_CALENDAR_MONTHS: Final = frozenset(f"{month:02d}" for month in range(1, 13))
_NIR_PROVISIONAL: Final = frozenset("78")
# The shape parse_nir accepts, once spaces are removed and letters upper-cased (IDN-1): sex digit,
# year, month (01-12, 20-42, 50-99), département (2 digits or 2A / 2B), commune, order, key.
_NIR_SHAPE: Final = re.compile(
    r"[123478][0-9]{2}(?:0[1-9]|1[0-2]|[23][0-9]|4[0-2]|[5-9][0-9])(?:[0-9]{2}|2A|2B)[0-9]{8}"
)
_CORSICA_FOR_KEY: Final = {"2A": "19", "2B": "18"}


class RowError(CarnetError):
    """A refused registry line.

    ``line`` is the line number in the file (the header is line 1); ``reason`` names the column and
    says why, in French; ``message`` (also ``str(exc)``) is ``"ligne 12 : <reason>"``.
    """

    line: int
    reason: str

    def __init__(self, line: int, reason: str) -> None:
        self.line = line
        self.reason = reason
        self.message = f"ligne {line} : {reason}"
        super().__init__(self.message)

    def __reduce__(self) -> tuple[type[RowError], tuple[int, str]]:
        return (type(self), (self.line, self.reason))

    @classmethod
    def wrong_field_count(cls, line: int, received: int, expected: int = len(COLUMNS)) -> RowError:
        return cls(
            line,
            f"la ligne comporte {received} champ(s) au lieu de {expected} "
            "(séparateur en trop ou en moins, ou guillemets mal fermés ?)",
        )


@dataclass(frozen=True)
class RowWarning:
    """A loaded line with something the operator should look at (e.g. a parent not in the registry)."""

    line: int
    reason: str

    @property
    def message(self) -> str:
        return f"ligne {self.line} : {self.reason}"

    def __str__(self) -> str:
        return self.message


class HeaderError(CarnetError):
    """The header row does not have the registry's columns: the whole file is refused."""


class RegistryRow(NamedTuple):
    """A valid registry line, normalised; field names are those of the ``patients`` table."""

    ins: str
    ins_oid: str
    birth_name: str
    first_names: str
    birth_date: date
    sex: str
    birth_place: str
    email: str | None
    phone: str | None
    address: str | None
    postal_code: str | None
    city: str | None
    departement: str
    vitale_serial: str | None
    ouvrant_droit_ins: str | None


def check_header(names: Iterable[str]) -> tuple[str, ...]:
    """Return the header's column names normalised (trimmed, lower-case), in file order.

    Raises :class:`HeaderError` with one message listing every problem (missing, unknown and
    repeated columns) when the header is not exactly the registry's 14 columns in some order.
    """
    normalised = tuple(name.strip().lower() for name in names)
    missing = [column for column in COLUMNS if column not in normalised]
    unknown = [name for name in normalised if name not in COLUMNS]
    repeated = sorted({name for name in normalised if name in COLUMNS and normalised.count(name) > 1})
    problems: list[str] = []
    if missing:
        problems.append(f"colonne(s) manquante(s) : {', '.join(missing)}")
    if unknown:
        shown = ", ".join(f"« {name} »" if name.isprintable() else "« ? »" for name in unknown[:10])
        more = f" et {len(unknown) - 10} autre(s)" if len(unknown) > 10 else ""
        problems.append(f"colonne(s) inconnue(s) : {shown}{more}")
    if repeated:
        problems.append(f"colonne(s) en double : {', '.join(repeated)}")
    if problems:
        raise HeaderError(
            "En-tête du fichier incorrect — "
            + " ; ".join(problems)
            + f". Colonnes attendues (séparées par « ; » ou « , ») : {', '.join(COLUMNS)}."
        )
    return normalised


def _all_digits(text: str) -> bool:
    """Non-empty and only 0-9 (str.isdigit alone would accept "²" or Arabic-Indic digits)."""
    return text.isascii() and text.isdigit()


def _quoted(value: str) -> str:
    return f" « {value} »" if value.isprintable() and len(value) <= 40 else ""


def _cells(line: int, row: Mapping[str, str | None]) -> list[str]:
    """The 14 cells in :data:`COLUMNS` order, trimmed with inner whitespace collapsed ("" when empty).

    Structural problems come first, in column order within each kind: a column missing from the
    line, an empty required cell, control characters, a value longer than its column.  (One pass
    over the row: this runs hundreds of thousands of times per import.)
    """
    raw = [row.get(column) for column in COLUMNS]
    if None in raw:
        raise RowError(line, f"la colonne {COLUMNS[raw.index(None)]} manque sur cette ligne")
    cells = [" ".join(value.split()) for value in cast(list[str], raw)]
    for index in _REQUIRED_INDEXES:
        if not cells[index]:
            raise RowError(line, f"{COLUMNS[index]} est obligatoire et la case est vide")
    if not "".join(cells).isprintable():
        column = next(column for column, cell in zip(COLUMNS, cells, strict=True) if not cell.isprintable())
        raise RowError(line, f"{column} contient des caractères de contrôle")
    for index, column, limit in _LIMITED:
        if len(cells[index]) > limit:
            raise RowError(line, f"{column} dépasse {limit} caractères ({len(cells[index])} reçus)")
    return cells


def _nir(line: int, column: str, value: str) -> str:
    """The normalised 15-character NIR, or :class:`RowError` with :func:`parse_nir`'s French reason.

    Fast path (a registry has hundreds of thousands of rows): a value without spaces that has the
    exact shape and key :func:`parse_nir` accepts is returned directly; anything else goes through
    :func:`parse_nir`, which gives the reason.  A property test checks both agree.
    """
    candidate = value.translate(_ASCII_UPPER)
    if _NIR_SHAPE.fullmatch(candidate):
        departement = candidate[5:7]
        numeric = candidate[:5] + _CORSICA_FOR_KEY.get(departement, departement) + candidate[7:13]
        if 97 - int(numeric) % 97 == int(candidate[13:]):
            return candidate
    try:
        return parse_nir(value).value
    except IdentifierError as exc:
        raise RowError(line, f"{column} — {exc.message}") from None


def _birth_date(line: int, value: str, today: date) -> date:
    # Shape checked first: date.fromisoformat alone would also accept "19850312" or "1985-W10-1".
    if not (len(value) == 10 and value[4] == "-" and value[7] == "-" and _all_digits(value.replace("-", ""))):
        raise RowError(line, f"date_naissance{_quoted(value)} doit être au format AAAA-MM-JJ (par exemple 1985-02-28)")
    try:
        born = date.fromisoformat(value)
    except ValueError:
        raise RowError(line, f"date_naissance « {value} » n'existe pas") from None
    if born > today:
        raise RowError(line, f"date_naissance « {value} » est dans le futur")
    if today.year - born.year > _MAX_AGE_YEARS:
        raise RowError(line, f"date_naissance « {value} » remonte à plus de {_MAX_AGE_YEARS} ans")
    return born


def _insee_place(line: int, value: str) -> str:
    code = value.translate(_ASCII_UPPER)
    if len(code) == 5 and (_all_digits(code) or (code[:2] in {"2A", "2B"} and _all_digits(code[2:]))):
        return code
    raise RowError(
        line,
        f"lieu_naissance{_quoted(value)} doit être un code INSEE de 5 caractères "
        "(5 chiffres, ou 2A / 2B suivi de 3 chiffres)",
    )


def _phone(line: int, value: str) -> str:
    compact = value.translate(_PHONE_SEPARATORS)
    if (len(compact) == 10 and compact[0] == "0" and _all_digits(compact)) or (
        compact[:1] == "+" and 8 <= len(compact) - 1 <= 15 and _all_digits(compact[1:])
    ):
        return compact
    raise RowError(line, "telephone doit comporter 10 chiffres commençant par 0, ou + suivi de 8 à 15 chiffres")


def _check_nir_agrees(line: int, nir: str, sex: str, born: date, born_text: str) -> None:
    expected_sex = _NIR_SEX.get(nir[0])
    if expected_sex is not None and expected_sex != sex:
        meaning = "homme" if expected_sex == "M" else "femme"
        raise RowError(
            line,
            f"sexe « {sex} » ne correspond pas à l'ins (1er chiffre {nir[0]} = {meaning}, attendu {expected_sex})",
        )
    month = nir[3:5]
    if month in _NIR_CALENDAR_MONTHS and (int(nir[1:3]) != born.year % 100 or int(month) != born.month):
        raise RowError(
            line,
            f"date_naissance « {born_text} » ne correspond pas à l'ins "
            f"(année et mois de naissance du NIR : {nir[1:3]}-{month})",
        )


def parse_row(line_number: int, row: Mapping[str, str | None], *, today: date | None = None) -> RegistryRow:
    """Validate and normalise one registry line (keys: :data:`COLUMNS`).

    ``line_number`` is the line in the file, quoted in the error.  A value of ``None`` means the
    line was too short to have that column.  Raises :class:`RowError` on the first problem found.
    ``today`` (default: the current date) bounds the date of birth.
    """
    line = line_number
    (
        ins_text,
        birth_name,
        first_names,
        born_text,
        sex_text,
        place_text,
        email,
        phone_text,
        address,
        postal_code,
        city,
        departement_text,
        vitale,
        ouvrant_text,
    ) = _cells(line, row)
    nir = _nir(line, "ins", ins_text)
    if _ANY_DIGIT.search(birth_name):
        raise RowError(line, "nom_naissance ne doit pas contenir de chiffres")
    if _ANY_DIGIT.search(first_names):
        raise RowError(line, "prenoms ne doit pas contenir de chiffres")
    born = _birth_date(line, born_text, today or date.today())
    sex = sex_text.translate(_ASCII_UPPER)
    if sex != "M" and sex != "F":
        received = f" (reçu « {sex_text} »)" if len(sex_text) <= 40 else ""
        raise RowError(line, f"sexe doit être M ou F{received}")
    birth_place = _insee_place(line, place_text)
    if email and not _EMAIL.fullmatch(email):
        raise RowError(line, "email n'est pas une adresse e-mail valide (nom@domaine.fr)")
    phone = _phone(line, phone_text) if phone_text else None
    if postal_code and not (len(postal_code) == 5 and _all_digits(postal_code)):
        raise RowError(line, f"code_postal{_quoted(postal_code)} doit comporter 5 chiffres")
    departement = departement_text.translate(_ASCII_UPPER)
    if departement not in _DEPARTEMENTS:
        raise RowError(
            line,
            f"departement{_quoted(departement_text)} n'existe pas (01 à 95 sauf 20, 2A, 2B, 971 à 976)",
        )
    if vitale:
        vitale = vitale.replace(" ", "")
        if not (8 <= len(vitale) <= 13 and _all_digits(vitale)):
            raise RowError(line, "numero_serie_vitale doit comporter de 8 à 13 chiffres")
    ouvrant: str | None = None
    if ouvrant_text:
        ouvrant = _nir(line, "ins_ouvrant_droit", ouvrant_text)
        if ouvrant == nir:
            raise RowError(line, "ins_ouvrant_droit doit être l'INS d'une autre personne que ins")
    _check_nir_agrees(line, nir, sex, born, born_text)
    return RegistryRow(
        ins=nir,
        ins_oid=INS_NIA_OID if nir[0] in _NIR_PROVISIONAL else INS_NIR_OID,
        birth_name=birth_name.upper(),
        first_names=first_names,
        birth_date=born,
        sex=sex,
        birth_place=birth_place,
        email=email or None,
        phone=phone,
        address=address or None,
        postal_code=postal_code or None,
        city=city or None,
        departement=departement,
        vitale_serial=vitale or None,
        ouvrant_droit_ins=ouvrant,
    )
