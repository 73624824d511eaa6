"""Finding the person an enrolment act is about (ENR-2, ENR-3): the fields typed, and the look-up.

A field in a wrong format says which one (``FormError``: no record was looked at yet); a person who
cannot be found by what was typed is ``NotIdentified`` (which part did not match is not said).
"""

from __future__ import annotations

import re
from datetime import date

from sqlalchemy.orm import Session

from carnet.enrolment.model import activation_codes as codes
from carnet.errors import CarnetError
from carnet.people.model.identifiers import IdentifierError, parse_nir
from carnet.people.service.lookup import patient_by_ins
from carnet.people.tables import Patient


class FormError(CarnetError):
    """A field typed in a wrong format (says which: no record was looked at)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field

    def __reduce__(self) -> tuple[type[FormError], tuple[str, str]]:
        return (type(self), (self.field, self.message))


class NotIdentified(Exception):
    """The code, the NIR and the date of birth do not match one invitation (which one is not said)."""


_DATE_FORMATS = (
    re.compile(r"^(?P<d>\d{1,2})[/.\- ](?P<m>\d{1,2})[/.\- ](?P<y>\d{4})$"),
    re.compile(r"^(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})$"),
    re.compile(r"^(?P<d>\d{2})(?P<m>\d{2})(?P<y>\d{4})$"),
)


def parse_birth_date(text: str) -> date:
    cleaned = text.strip()
    for pattern in _DATE_FORMATS:
        match = pattern.match(cleaned)
        if match:
            try:
                return date(int(match["y"]), int(match["m"]), int(match["d"]))
            except ValueError:
                break
    raise FormError("naissance", "Date de naissance : saisissez-la au format JJ/MM/AAAA, par exemple 14/03/1985.")


def parse_nir_field(text: str) -> str:
    try:
        return parse_nir(text).value
    except IdentifierError as exc:
        raise FormError("nir", exc.message) from None


def parse_code_field(text: str) -> str:
    code = codes.normalise(text)
    if not codes.is_well_formed(code):
        raise FormError(
            "code",
            "Code d'activation : il comporte 12 caractères (chiffres de 2 à 9 et lettres), par exemple ABCD-EFGH-JKMN.",
        )
    return code


def patient_by_identity(db: Session, nir: str, born: date) -> Patient:
    """The registered person with this NIR and date of birth (an operator's look-up), or ``NotIdentified``."""
    patient = patient_by_ins(db, nir)
    if patient is None or patient.birth_date != born:
        raise NotIdentified
    return patient
