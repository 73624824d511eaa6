"""The professional directory (ACC-1): one professional's fields, and one line of the Annuaire Santé extract.

Why this module exists
----------------------
Access rules (ACC-1 and after) start from "who is this professional": a client created with
``--rpps`` acts as the professional holding that RPPS number, so the directory must only hold
well-formed numbers, real names and a known profession.  The operator fills it by hand
(``carnet professionals add``) or loads the public extract of the Annuaire Santé of the ANS
(``carnet professionals import``, file ``PS_LibreAcces_Personne_activite_<date>.txt``).  The rules
live here, pure (standard library only, no I/O); the service streams the file and writes the database.

Rules
-----
* RPPS: 11 digits (spaces dropped, :func:`validate_rpps`) whose last digit is the Luhn key of the
  first ten.  Every RPPS number of the public extract checked while writing this passes that key
  (e.g. 10001045367, 10104335319); a typo of one digit or a swap of two neighbours fails it.
* names: trimmed, inner runs of spaces collapsed, not empty, at most 100 characters, no control
  characters; the profession: a code of the TRE_G15 nomenclature (:data:`PROFESSIONS`).
* specialty, address, city (optional): typed by the operator, they must fit their column; read from
  the extract, a longer value is cut to the column's size (the directory stays usable).

The extract
-----------
Pipe-separated, one header line, one line per (person, activity).  Lines and header usually end
with a ``|`` (an empty last column).  Column names vary slightly between releases (« (coord.
Structure) » vs « (coord. structure) », savoir-faire columns moved to another file in recent
releases...), so they are matched trimmed and case-insensitively, and only the identity columns
are required.  Mapping to the ``professionals`` table:

* ``rpps`` ← « Identification nationale PP » without its leading type digit ``8``, or else
  « Identifiant PP »; a line whose « Type d'identifiant PP » is not ``8`` (an ADELI number, not an
  RPPS) is skipped, not refused;
* ``last_name`` ← « Nom d'exercice »; ``first_name`` ← « Prénom d'exercice »;
  ``profession_code`` ← « Code profession »; ``specialty`` ← « Libellé savoir-faire »;
* ``practice_address`` ← « Numéro Voie » + « Indice répétition voie », « Libellé type de voie »,
  « Libellé Voie », then « Complément point géographique » and « Mention distribution », all
  « (coord. structure) »;
* ``city`` ← « Libellé commune (coord. structure) », or else the town of « Bureau cedex ».
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, NamedTuple

from carnet.enrolment.model.registry import HeaderError, RowError
from carnet.errors import CarnetError
from carnet.people.model.identifiers import IdentifierError, validate_rpps
from carnet.people.model.professions import PROFESSIONS, professions_listing

__all__ = [
    "COLUMN_SIZES",
    "DirectoryError",
    "ExtractLayout",
    "ProfessionalEntry",
    "check_profession",
    "check_professional",
    "check_rpps",
    "parse_activity",
    "read_header",
    "rpps_key_is_valid",
]

# Sizes of the columns of the ``professionals`` table (PostgreSQL enforces them).
COLUMN_SIZES: Final = {"last_name": 100, "first_name": 100, "specialty": 100, "practice_address": 300, "city": 100}

_DIGITS: Final = frozenset("0123456789")
_RPPS_TYPE: Final = "8"

# Column names of the extract, as the ANS spells them.
ID_TYPE: Final = "Type d'identifiant PP"
ID_PP: Final = "Identifiant PP"
ID_NATIONAL: Final = "Identification nationale PP"
LAST_NAME: Final = "Nom d'exercice"
FIRST_NAME: Final = "Prénom d'exercice"
PROFESSION: Final = "Code profession"
SPECIALTY: Final = "Libellé savoir-faire"
STREET_NUMBER: Final = "Numéro Voie (coord. structure)"
REPETITION: Final = "Indice répétition voie (coord. structure)"
STREET_TYPE: Final = "Libellé type de voie (coord. structure)"
STREET: Final = "Libellé Voie (coord. structure)"
COMPLEMENT: Final = "Complément point géographique (coord. structure)"
DISTRIBUTION: Final = "Mention distribution (coord. structure)"
CITY: Final = "Libellé commune (coord. structure)"
CEDEX: Final = "Bureau cedex (coord. structure)"
_ADDRESS_COLUMNS: Final = (STREET_NUMBER, REPETITION, STREET_TYPE, STREET, COMPLEMENT, DISTRIBUTION)


class DirectoryError(CarnetError):
    """A refused value; ``message`` (also ``str(exc)``) is a complete French sentence naming the field."""


class ProfessionalEntry(NamedTuple):
    """A valid professional, normalised; field names are those of the ``professionals`` table."""

    rpps: str
    last_name: str
    first_name: str
    profession_code: str
    specialty: str | None = None
    practice_address: str | None = None
    city: str | None = None


def rpps_key_is_valid(rpps: str) -> bool:
    """True when the last digit of the 11-digit ``rpps`` is the Luhn key of the first ten."""
    total = 0
    for position, char in enumerate(reversed(rpps)):
        digit = ord(char) - 48
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def check_rpps(value: str, *, check_key: bool = True) -> str:
    """The normalised 11-digit RPPS, or :class:`DirectoryError` (format, then — unless ``check_key`` is
    false — the Luhn key)."""
    try:
        rpps = validate_rpps(value)
    except IdentifierError as exc:
        raise DirectoryError(exc.message) from None
    if check_key and not rpps_key_is_valid(rpps):
        raise DirectoryError(
            "Numéro RPPS : la clé de contrôle (11e chiffre) ne correspond pas aux 10 premiers — "
            "vérifiez le numéro (chiffre mal saisi ou deux chiffres inversés ?)."
        )
    return rpps


def _clean(value: str | None) -> str:
    return " ".join(value.split()) if value else ""


def _checked_text(label: str, value: str | None, limit: int, *, required: bool) -> str | None:
    text = _clean(value)
    if not text:
        if required:
            raise DirectoryError(f"{label} : aucune valeur n'a été saisie.")
        return None
    if not text.isprintable():
        raise DirectoryError(f"{label} : contient des caractères de contrôle.")
    if len(text) > limit:
        raise DirectoryError(f"{label} : dépasse {limit} caractères ({len(text)} reçus).")
    return text


def check_profession(code: str) -> str:
    """The TRE_G15 profession code, trimmed, or :class:`DirectoryError` listing the known codes."""
    normalised = code.strip()
    if normalised in PROFESSIONS:
        return normalised
    shown = f" « {normalised} »" if normalised.isprintable() and len(normalised) <= 10 else ""
    raise DirectoryError(
        f"Code profession{shown} inconnu. Codes de la nomenclature TRE_G15 acceptés : {professions_listing()}."
    )


_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")


def check_email(value: str) -> str:
    """A secure-mail address for the directory (MSG-3), lowercase; ``DirectoryError`` when it is not one."""
    address = value.strip().lower()
    if len(address) > 254 or not _EMAIL.fullmatch(address):
        raise DirectoryError(f"L'adresse de messagerie « {value.strip()[:80]} » n'est pas une adresse e-mail valide.")
    return address


def check_professional(
    rpps: str,
    last_name: str,
    first_name: str,
    profession_code: str,
    specialty: str | None = None,
    practice_address: str | None = None,
    city: str | None = None,
    *,
    check_key: bool = True,
) -> ProfessionalEntry:
    """Validate and normalise a professional typed by the operator (first problem found, left to right).

    ``check_key=False`` skips the Luhn key of the RPPS (for a number already in the directory).
    """
    return ProfessionalEntry(
        rpps=check_rpps(rpps, check_key=check_key),
        last_name=_checked_text("Nom", last_name, COLUMN_SIZES["last_name"], required=True) or "",
        first_name=_checked_text("Prénom", first_name, COLUMN_SIZES["first_name"], required=True) or "",
        profession_code=check_profession(profession_code),
        specialty=_checked_text("Spécialité", specialty, COLUMN_SIZES["specialty"], required=False),
        practice_address=_checked_text(
            "Adresse d'exercice", practice_address, COLUMN_SIZES["practice_address"], required=False
        ),
        city=_checked_text("Commune", city, COLUMN_SIZES["city"], required=False),
    )


# --- the Annuaire Santé extract --------------------------------------------------------------------


def _key(name: str) -> str:
    """Column names compared trimmed, spaces collapsed, case-insensitive, typographic apostrophes as '."""
    return " ".join(name.split()).casefold().replace("’", "'")


@dataclass(frozen=True)
class ExtractLayout:
    """Where the columns used by Carnet are in the extract's lines (``None`` when absent)."""

    width: int  # number of fields of a line
    trailing_separator: bool  # the header ends with "|": a line may then omit its last, empty field
    id_type: int | None
    id_pp: int | None
    id_national: int | None
    last_name: int
    first_name: int
    profession: int
    specialty: int | None
    address: tuple[int | None, ...]  # positions of _ADDRESS_COLUMNS
    city: int | None
    cedex: int | None

    @property
    def has_specialty(self) -> bool:
        return self.specialty is not None

    @property
    def has_address(self) -> bool:
        return any(position is not None for position in self.address)

    @property
    def has_city(self) -> bool:
        return self.city is not None or self.cedex is not None


def read_header(names: Sequence[str]) -> ExtractLayout:
    """Locate the columns; :class:`HeaderError` when an identity column is missing or repeated."""
    positions: dict[str, int] = {}
    repeated: list[str] = []
    for position, name in enumerate(names):
        key = _key(name)
        if not key:
            continue
        if key in positions:
            repeated.append(" ".join(name.split()))
        positions.setdefault(key, position)

    def find(column: str) -> int | None:
        return positions.get(_key(column))

    required = (LAST_NAME, FIRST_NAME, PROFESSION)
    missing = [column for column in required if find(column) is None]
    if find(ID_NATIONAL) is None and find(ID_PP) is None:
        missing.insert(0, f"{ID_NATIONAL} (ou {ID_PP})")
    problems: list[str] = []
    if missing:
        problems.append("colonne(s) manquante(s) : " + ", ".join(f"« {column} »" for column in missing))
    if repeated:
        problems.append("colonne(s) en double : " + ", ".join(f"« {name} »" for name in repeated[:10]))
    if problems:
        raise HeaderError(
            "En-tête du fichier incorrect — "
            + " ; ".join(problems)
            + ". Le fichier attendu est l'extraction « PS_LibreAcces_Personne_activite » de l'Annuaire Santé "
            "(colonnes séparées par « | »)."
        )
    return ExtractLayout(
        width=len(names),
        trailing_separator=len(names) > 1 and not names[-1].strip(),
        id_type=find(ID_TYPE),
        id_pp=find(ID_PP),
        id_national=find(ID_NATIONAL),
        last_name=find(LAST_NAME) or 0,
        first_name=find(FIRST_NAME) or 0,
        profession=find(PROFESSION) or 0,
        specialty=find(SPECIALTY),
        address=tuple(find(column) for column in _ADDRESS_COLUMNS),
        city=find(CITY),
        cedex=find(CEDEX),
    )


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _cell(fields: Sequence[str], position: int | None) -> str:
    if position is None:
        return ""
    value = fields[position]
    return " ".join(value.split()) if value else ""


def _rpps_of(line: int, fields: Sequence[str], layout: ExtractLayout) -> str | None:
    """The line's RPPS text (not yet validated), or ``None`` for a person without an RPPS (ADELI)."""
    kind = _cell(fields, layout.id_type)
    if kind and kind != _RPPS_TYPE:
        return None
    national = _cell(fields, layout.id_national)
    ident = _cell(fields, layout.id_pp)
    if national:
        if national[0] != _RPPS_TYPE:
            if kind == _RPPS_TYPE:
                raise RowError(
                    line, f"{ID_NATIONAL} doit commencer par 8 (le type d'identifiant 8 désigne un numéro RPPS)"
                )
            return None
        rpps = national[1:]
        if ident and ident != rpps:
            raise RowError(line, f"{ID_PP} et {ID_NATIONAL} ne désignent pas le même numéro RPPS")
        return rpps
    if ident:
        return ident
    raise RowError(line, f"{ID_NATIONAL} et {ID_PP} sont vides : la ligne n'identifie personne")


def _address(fields: Sequence[str], layout: ExtractLayout) -> str | None:
    number, repetition, street_type, street, complement, distribution = (
        _cell(fields, position) for position in layout.address
    )
    street_line = " ".join(part for part in (f"{number}{repetition}", street_type, street) if part)
    address = ", ".join(part for part in (street_line, complement, distribution) if part)
    return _cut(address, COLUMN_SIZES["practice_address"]) if address else None


def _city(fields: Sequence[str], layout: ExtractLayout) -> str | None:
    city = _cell(fields, layout.city)
    if not city:
        cedex = _cell(fields, layout.cedex)  # e.g. "75015 PARIS" or "20090 AJACCIO CEDEX 9"
        head, _, rest = cedex.partition(" ")
        city = rest if len(head) == 5 and rest else cedex
    return _cut(city, COLUMN_SIZES["city"]) if city else None


def parse_activity(line: int, fields: Sequence[str], layout: ExtractLayout) -> ProfessionalEntry | None:
    """One line of the extract as a professional, ``None`` for a person without an RPPS number.

    Raises :class:`RowError` (``"ligne N : …"``) with the column and the reason on the first problem.
    """
    count = len(fields)
    if count != layout.width and not (layout.trailing_separator and count == layout.width - 1):
        raise RowError.wrong_field_count(line, count, layout.width)
    rpps_text = _rpps_of(line, fields, layout)
    if rpps_text is None:
        return None
    column = ID_NATIONAL if _cell(fields, layout.id_national) else ID_PP
    try:
        rpps = check_rpps(rpps_text)
    except DirectoryError as exc:
        raise RowError(line, f"{column} — {exc.message}") from None
    names: list[str] = []
    for label, position, size in (
        (LAST_NAME, layout.last_name, COLUMN_SIZES["last_name"]),
        (FIRST_NAME, layout.first_name, COLUMN_SIZES["first_name"]),
    ):
        try:
            names.append(_checked_text(label, fields[position], size, required=True) or "")
        except DirectoryError as exc:
            raise RowError(line, exc.message.rstrip(".")) from None
    code = _cell(fields, layout.profession)
    if code not in PROFESSIONS:
        shown = f" « {code} »" if code.isprintable() and len(code) <= 10 else ""
        reason = f"{PROFESSION}{shown} inconnu de la nomenclature TRE_G15" if code else f"{PROFESSION} est vide"
        raise RowError(line, reason)
    specialty = _cell(fields, layout.specialty)
    address = _address(fields, layout)
    city = _city(fields, layout)
    if not "".join((specialty, address or "", city or "")).isprintable():
        raise RowError(line, "la spécialité ou l'adresse contient des caractères de contrôle")
    return ProfessionalEntry(
        rpps=rpps,
        last_name=names[0],
        first_name=names[1],
        profession_code=code,
        specialty=_cut(specialty, COLUMN_SIZES["specialty"]) if specialty else None,
        practice_address=address,
        city=city,
    )
