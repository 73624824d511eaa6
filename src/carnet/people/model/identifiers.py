"""French health identifiers: NIR / INS matricule, RPPS and FINESS.

Why this module exists
----------------------
Carnet stores and displays identifiers that patients and professionals type by
hand: the social-security number (NIR, which is also the matricule of the INS,
the national health identity), the RPPS number of a health professional and the
FINESS number of an establishment.  A typo in one of them silently attaches a
document to the wrong person, so every entry point must validate them the same
way and explain a refusal in plain French ("la clé est invalide", "le mois de
naissance 13 n'existe pas"), never with a stack trace.  Keeping the rules here,
in pure standard-library Python with no I/O, lets the web forms, the CLI, the
demo-data generator and the tests share one implementation that is easy to
property-test.

Requirements covered
--------------------
* IDN-1 -- NIR / INS matricule: 13 characters and a 2-digit key, where
  ``key = 97 - (number mod 97)`` and the Corsican départements 2A / 2B count as
  19 / 18 in the computation.  Input may contain spaces and lowercase 2a / 2b.
* IDN-2 -- RPPS (11 digits) and FINESS (9 characters: a département code then
  7 digits): format checks only.  No check digit is enforced because the
  algorithm has not been confirmed for our sources.
* IDN-3 -- every refusal is an :class:`IdentifierError` that names the field and
  gives the reason in French.

Error messages deliberately never repeat the whole number typed (it is personal
health data and messages end up in logs); at most they quote the offending one
or two characters.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Final

from carnet.errors import CarnetError

__all__ = [
    "INS_NIA_OID",
    "INS_NIA_TEST_OID",
    "INS_NIR_OID",
    "INS_NIR_TEST_OID",
    "IdentifierError",
    "Nir",
    "format_nir",
    "nir_from_body",
    "nir_key",
    "parse_nir",
    "validate_finess",
    "validate_rpps",
]

# OIDs (object identifiers) of the INS matricule, as used in CDA / FHIR documents.
INS_NIR_OID: Final = "1.2.250.1.213.1.4.8"
INS_NIA_OID: Final = "1.2.250.1.213.1.4.9"
INS_NIR_TEST_OID: Final = "1.2.250.1.213.1.4.10"
INS_NIA_TEST_OID: Final = "1.2.250.1.213.1.4.11"

_DIGITS: Final = frozenset("0123456789")
# Only ASCII letters are uppercased: str.upper() would turn "ß" into "SS" and
# change the length of what the user typed.
_ASCII_UPPER: Final = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")

_NIR_LABEL: Final = "Numéro de sécurité sociale (NIR)"
_RPPS_LABEL: Final = "Numéro RPPS"
_FINESS_LABEL: Final = "Numéro FINESS"

_NIR_BODY_LENGTH: Final = 13
_NIR_LENGTH: Final = 15
_RPPS_LENGTH: Final = 11
_FINESS_LENGTH: Final = 9

# First digit: 1 / 2 = man / woman; 3 / 4 are also issued (commonly accepted for
# persons pending registration); 7 / 8 = provisional (temporary) numbers.
_NIR_SEX_DIGITS: Final = "123478"
_NIR_MALE_DIGITS: Final = frozenset("137")
_NIR_PROVISIONAL_DIGITS: Final = frozenset("78")
# Birth month: 01-12, plus 20-42 and 50-99 which INSEE uses for incomplete
# civil-status records.
_NIR_MONTHS: Final = frozenset(f"{month:02d}" for month in (*range(1, 13), *range(20, 43), *range(50, 100)))
# Corsica: 2A and 2B replace 19 and 18 (i.e. "20" minus 1 or 2) for the key.
_CORSICA_FOR_KEY: Final = {"2A": "19", "2B": "18"}
# Overseas births use a 3-digit département (971, 972, ... 988) and a 2-digit commune.
_NIR_OVERSEAS_PREFIXES: Final = frozenset({"97", "98"})

_FINESS_DEPARTEMENTS: Final = frozenset(
    {f"{number:02d}" for number in range(1, 96) if number != 20} | {"2A", "2B", "97"}
)


class IdentifierError(CarnetError):
    """A malformed identifier.

    ``field`` is the machine name of the identifier (``"nir"``, ``"rpps"`` or
    ``"finess"``); ``message`` is a complete French sentence naming the field
    and the reason, fit to show to the user as is.  ``str(exc) == message``.
    """

    field: str

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field

    def __reduce__(self) -> tuple[type[IdentifierError], tuple[str, str]]:
        # Keeps the exception picklable (e.g. across worker processes) despite
        # its two-argument constructor.
        return (type(self), (self.field, self.message))


def _nir_error(reason: str) -> IdentifierError:
    return IdentifierError("nir", f"{_NIR_LABEL} : {reason}.")


def _normalise(value: str) -> str:
    """Drop every kind of whitespace (including non-breaking spaces) and uppercase ASCII letters."""
    return "".join(value.split()).translate(_ASCII_UPPER)


def _all_digits(text: str) -> bool:
    # Not str.isdigit(): it accepts "²" or Arabic-Indic digits.
    return all(char in _DIGITS for char in text)


def _received(count: int) -> str:
    return f"{count} reçu" if count <= 1 else f"{count} reçus"


def _quoted(text: str) -> str:
    """`` (reçu « X »)`` when the text is safe to echo back, else nothing."""
    return f" (reçu « {text} »)" if text.isprintable() else ""


def _check_nir_body(body: str) -> None:
    """Raise :class:`IdentifierError` unless ``body`` (normalised, 13 chars) is a well-formed NIR body."""
    sex = body[0]
    if sex not in _NIR_SEX_DIGITS:
        raise _nir_error(f"le premier chiffre doit être 1, 2, 3, 4, 7 ou 8{_quoted(sex)}")
    if not _all_digits(body[1:3]):
        raise _nir_error("l'année de naissance (2e et 3e caractères) doit comporter 2 chiffres")
    month = body[3:5]
    if not _all_digits(month):
        raise _nir_error("le mois de naissance (4e et 5e caractères) doit comporter 2 chiffres")
    if month not in _NIR_MONTHS:
        raise _nir_error(f"le mois de naissance {month} n'existe pas")
    departement = body[5:7]
    if not (_all_digits(departement) or departement in _CORSICA_FOR_KEY):
        raise _nir_error(
            "le département de naissance (6e et 7e caractères) doit comporter 2 chiffres, "
            f"ou 2A / 2B pour la Corse{_quoted(departement)}"
        )
    if not _all_digits(body[7:10]):
        raise _nir_error("le code de la commune de naissance (8e à 10e caractères) doit comporter 3 chiffres")
    if not _all_digits(body[10:13]):
        raise _nir_error("le numéro d'ordre de naissance (11e à 13e caractères) doit comporter 3 chiffres")


def _normalised_nir_body(body: str) -> str:
    normalised = _normalise(body)
    if not normalised:
        raise _nir_error("aucun numéro n'a été saisi")
    if len(normalised) != _NIR_BODY_LENGTH:
        raise _nir_error(f"le numéro sans sa clé doit comporter 13 caractères ; {_received(len(normalised))}")
    _check_nir_body(normalised)
    return normalised


def _key_of_valid_body(body: str) -> int:
    departement = body[5:7]
    numeric = body[:5] + _CORSICA_FOR_KEY.get(departement, departement) + body[7:]
    return 97 - int(numeric) % 97


def nir_key(body: str) -> int:
    """Return the control key (1..97) of a 13-character NIR body.

    ``body`` may contain spaces and a lowercase ``2a`` / ``2b``.  Raises
    :class:`IdentifierError` (field ``"nir"``) when the body is malformed.
    """
    return _key_of_valid_body(_normalised_nir_body(body))


def nir_from_body(body: str) -> str:
    """Return the full 15-character NIR (body followed by its computed 2-digit key)."""
    normalised = _normalised_nir_body(body)
    return f"{normalised}{_key_of_valid_body(normalised):02d}"


@dataclass(frozen=True)
class Nir:
    """A validated NIR / INS matricule.

    Instances are always valid: the constructor normalises ``body`` (spaces,
    lowercase 2a / 2b) and raises :class:`IdentifierError` if the body is
    malformed or ``key`` does not match it.
    """

    body: str
    key: int

    def __post_init__(self) -> None:
        body = _normalised_nir_body(self.body)
        object.__setattr__(self, "body", body)
        expected = _key_of_valid_body(body)
        if self.key != expected:
            raise _nir_error(f"la clé est invalide (attendue {expected:02d}, reçue {self.key:02d})")

    @property
    def value(self) -> str:
        """The 15-character NIR: body then the 2-digit key."""
        return f"{self.body}{self.key:02d}"

    @property
    def sex(self) -> str:
        """``"M"`` when the first digit is 1, 3 or 7; ``"F"`` when it is 2, 4 or 8."""
        return "M" if self.body[0] in _NIR_MALE_DIGITS else "F"

    @property
    def provisional(self) -> bool:
        """True for a provisional (temporary) number, whose first digit is 7 or 8."""
        return self.body[0] in _NIR_PROVISIONAL_DIGITS

    @property
    def departement(self) -> str:
        """Birth département: 2 characters (``"75"``, ``"2A"``, ``"99"`` = born abroad),
        or 3 digits for overseas births (``"971"``, ``"988"``...)."""
        prefix = self.body[5:7]
        return self.body[5:8] if prefix in _NIR_OVERSEAS_PREFIXES else prefix

    def __str__(self) -> str:
        return self.value


def parse_nir(value: str) -> Nir:
    """Validate a NIR typed by a user (spaces and lowercase 2a / 2b allowed).

    Checks the length, the structure (sex digit, birth month, département...)
    and the key.  Raises :class:`IdentifierError` (field ``"nir"``) with a
    French message on the first problem found, reading left to right.
    """
    normalised = _normalise(value)
    if not normalised:
        raise _nir_error("aucun numéro n'a été saisi")
    if len(normalised) != _NIR_LENGTH:
        raise _nir_error(f"doit comporter 15 caractères (13 + clé de 2 chiffres) ; {_received(len(normalised))}")
    body, key = normalised[:_NIR_BODY_LENGTH], normalised[_NIR_BODY_LENGTH:]
    _check_nir_body(body)
    if not _all_digits(key):
        raise _nir_error("la clé (2 derniers caractères) doit comporter 2 chiffres")
    return Nir(body, int(key))


def _grouped(text: str, sizes: Iterable[int]) -> str:
    groups: list[str] = []
    start = 0
    for size in sizes:
        groups.append(text[start : start + size])
        start += size
    return " ".join(groups)


def format_nir(nir: str) -> str:
    """Human display of a NIR, e.g. ``"1 84 12 2A 004 123 23"``.

    The NIR is validated first (see :func:`parse_nir`): a number whose key is
    wrong must not be made to look legitimate.  The grouping is the usual fixed
    1-2-2-2-3-3-2 one, overseas births included.
    """
    return _grouped(parse_nir(nir).value, (1, 2, 2, 2, 3, 3, 2))


def validate_rpps(value: str) -> str:
    """Return the normalised 11-digit RPPS number, or raise :class:`IdentifierError` (field ``"rpps"``).

    Format check only: the last digit is not verified as a check digit.
    """
    normalised = _normalise(value)
    if not normalised:
        raise IdentifierError("rpps", f"{_RPPS_LABEL} : aucun numéro n'a été saisi.")
    if not _all_digits(normalised):
        raise IdentifierError("rpps", f"{_RPPS_LABEL} : ne doit contenir que des chiffres.")
    if len(normalised) != _RPPS_LENGTH:
        raise IdentifierError("rpps", f"{_RPPS_LABEL} : doit comporter 11 chiffres ; {_received(len(normalised))}.")
    return normalised


def validate_finess(value: str) -> str:
    """Return the normalised 9-character FINESS number (uppercase), or raise
    :class:`IdentifierError` (field ``"finess"``).

    The first two characters are the département (01 to 95, 2A, 2B, or 97 for
    overseas) and the other seven are digits.  Format check only.
    """
    normalised = _normalise(value)
    if not normalised:
        raise IdentifierError("finess", f"{_FINESS_LABEL} : aucun numéro n'a été saisi.")
    if len(normalised) != _FINESS_LENGTH:
        raise IdentifierError(
            "finess",
            f"{_FINESS_LABEL} : doit comporter 9 caractères ; {_received(len(normalised))}.",
        )
    departement = normalised[:2]
    if departement not in _FINESS_DEPARTEMENTS:
        raise IdentifierError(
            "finess",
            f"{_FINESS_LABEL} : les 2 premiers caractères doivent être un département "
            f"(01 à 95, 2A, 2B, ou 97 pour l'outre-mer){_quoted(departement)}.",
        )
    if not _all_digits(normalised[2:]):
        raise IdentifierError("finess", f"{_FINESS_LABEL} : les 7 derniers caractères doivent être des chiffres.")
    return normalised


def is_minor(birth_date: date, today: date) -> bool:
    """Under 18 on ``today`` (someone born on 29 February comes of age on 1 March)."""
    return (today.year - birth_date.year - ((today.month, today.day) < (birth_date.month, birth_date.day))) < 18


def born_adult_by(today: date) -> date:
    """The latest date of birth of someone 18 or older on ``today``: ``is_minor(born, today)`` is ``born >`` this."""
    try:
        return today.replace(year=today.year - 18)
    except ValueError:  # 29 February, 18 years after a year without one
        return today.replace(year=today.year - 18, day=28)


def display_name(first_names: str, birth_name: str, used_name: str | None) -> str:
    """How letters, e-mails and pages name a person: first names, then the used name or else the birth name."""
    return f"{first_names} {used_name or birth_name}".strip()
