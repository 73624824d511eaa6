"""What every FHIR interface of Carnet reads the same way, pure (no framework, no storage): FHIR dates as the
periods they cover, the ``date`` search parameter with its prefixes and partial dates, the patient a search or a
resource designates (by INS, ``Patient/<id>`` or the conditional reference), single-valued and integer
parameters (``_count``, ``_offset``).

What cannot be read is an ``InputError``: OperationOutcome issues ``(code, French diagnostics, FHIRPath)`` and the
HTTP status — 400 for what is not understood. Used by the medical profile's mapping
(``carnet.profile.model.fhir_map``) and the agenda's (``carnet.agenda.model.fhir_map``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

from carnet.errors import CarnetError
from carnet.hall.vocabulary import PARIS
from carnet.people.model.identifiers import INS_NIR_OID, INS_NIR_TEST_OID

Issue = tuple[str, str, str]  # (FHIR issue code, French diagnostics, FHIRPath or "")

INS_SYSTEMS = frozenset({f"urn:oid:{INS_NIR_OID}", f"urn:oid:{INS_NIR_TEST_OID}"})
INS_PARAMETER = f"urn:oid:{INS_NIR_OID}|<INS>"
MAX_DATES = 4
DATE_PREFIXES = frozenset({"eq", "gt", "ge", "lt", "le", "sa", "eb"})


class InputError(CarnetError):
    """What cannot be kept or searched as asked: OperationOutcome issues and the HTTP status."""

    def __init__(self, issues: list[Issue], status: int = 400) -> None:
        super().__init__(issues[0][1])
        self.issues = issues
        self.status = status

    def __reduce__(self) -> tuple[type[InputError], tuple[list[Issue], int]]:
        return (type(self), (self.issues, self.status))


def fail(code: str, text: str, path: str, status: int = 400) -> InputError:
    return InputError([(code, text, path)], status)


def invalid(text: str, path: str) -> InputError:
    return fail("invalid", text, path)


# ------------------------------------------------------------------ dates


@dataclass(frozen=True)
class Period:
    """What a FHIR date, dateTime or instant covers: ``[start, end)`` in UTC, and the French calendar day when
    the value is precise to the day at least."""

    start: datetime
    end: datetime
    day: date | None


_DATE = re.compile(
    r"(?P<y>\d{4})(?:-(?P<mo>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<h>\d{2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:\.(?P<f>\d{1,9}))?)?(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?"
)


def _zone(text: str | None) -> Any:
    if not text:
        return PARIS  # a time without a zone is French time
    if text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    return timezone(sign * timedelta(hours=int(text[1:3]), minutes=int(text[4:6])))


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), PARIS)


def _calendar(year: int, month: str | None, day: str | None) -> tuple[date, date]:
    if day is not None and month is not None:
        first = date(year, int(month), int(day))
        return first, first + timedelta(days=1)
    if month is not None:
        first = date(year, int(month), 1)
        return first, date(year + (first.month == 12), first.month % 12 + 1, 1)
    return date(year, 1, 1), date(year + 1, 1, 1)


def period_of(text: str) -> Period:
    """``2024``, ``2024-03``, ``2024-03-05``, ``2024-03-05T10:00:00+01:00`` … (``ValueError`` otherwise)."""
    match = _DATE.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError("date invalide")
    g = match.groupdict()
    try:
        first, after = _calendar(int(g["y"]), g["mo"], g["d"])
        if g["h"] is None:
            start, end = _midnight(first), _midnight(after)
            day = first if g["d"] else None
        else:
            fraction = g["f"] or ""
            micro = int((fraction + "000000")[:6]) if fraction else 0
            start = datetime.combine(first, time(int(g["h"]), int(g["mi"]), int(g["s"] or 0), micro), _zone(g["tz"]))
            if g["s"] is None:
                step = timedelta(minutes=1)
            elif not fraction:
                step = timedelta(seconds=1)
            else:
                step = timedelta(microseconds=10 ** max(0, 6 - len(fraction)))
            end = start + step
            day = start.astimezone(PARIS).date()
        return Period(start.astimezone(UTC), end.astimezone(UTC), day)
    except (ValueError, OverflowError):
        raise ValueError("date invalide") from None


def instant(moment: datetime) -> str:
    """A FHIR instant (UTC)."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


def date_bounds(values: Sequence[str]) -> tuple[datetime | None, datetime | None]:
    """``date`` parameters (ANDed) as one half-open period ``[from, to)`` of each entry's moment."""
    if len(values) > MAX_DATES:
        raise invalid(f"{MAX_DATES} paramètres date au plus.", "date")
    low: datetime | None = None
    high: datetime | None = None
    for raw in values:
        text = raw.strip().replace(" ", "+")  # a « + » of a time zone not encoded in the query string
        prefix = text[:2] if text[:2].isalpha() else "eq"
        moment = text[2:] if text[:2].isalpha() else text
        if prefix in {"ne", "ap"}:
            raise fail("not-supported", f"Le préfixe de date « {prefix} » n'est pas pris en charge.", "date")
        if prefix not in DATE_PREFIXES:
            raise invalid(f"Préfixe de date inconnu : {prefix[:2]} (eq, gt, ge, lt, le, sa, eb).", "date")
        try:
            period = period_of(moment)
        except ValueError:
            raise invalid(
                f"Date de recherche invalide : {moment[:30]} (AAAA, AAAA-MM, AAAA-MM-JJ ou date et heure).", "date"
            ) from None
        start, end = {
            "eq": (period.start, period.end),
            "gt": (period.end, None),
            "sa": (period.end, None),
            "ge": (period.start, None),
            "lt": (None, period.start),
            "eb": (None, period.start),
            "le": (None, period.end),
        }[prefix]
        if start is not None and (low is None or start > low):
            low = start
        if end is not None and (high is None or end < high):
            high = end
    return low, high


# ------------------------------------------------------------------ the patient


FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")  # a FHIR logical id: anything else is no resource of Carnet's


def is_fhir_id(value: str) -> bool:
    """Whether ``value`` can be the id of a resource (NUL, slashes, 65 characters… are answered 404 without a
    look-up: PostgreSQL refuses NUL in a text parameter)."""
    return bool(FHIR_ID.fullmatch(value))


_INS_VALUE = re.compile(r"[0-9A-Za-z]{1,64}")
_PATIENT_ID = re.compile(r"Patient/[A-Za-z0-9.\-]{1,64}")
_CONDITIONAL = re.compile(r"Patient\?identifier=([^|]{1,200})\|([0-9A-Za-z]{1,64})")


def designates_a_patient(subject: Any) -> bool:
    """Whether a patient element names the patient as Carnet finds them: an identifier of INS system, a
    ``Patient/<id>`` reference, or the conditional ``Patient?identifier=<INS system>|<INS>``."""
    if not isinstance(subject, dict):
        return False
    identifier = subject.get("identifier") if isinstance(subject.get("identifier"), dict) else {}
    reference = subject.get("reference")
    if identifier:
        value = identifier.get("value")
        return identifier.get("system") in INS_SYSTEMS and isinstance(value, str) and bool(_INS_VALUE.fullmatch(value))
    if isinstance(reference, str):
        conditional = _CONDITIONAL.fullmatch(reference)
        return bool(_PATIENT_ID.fullmatch(reference)) or (conditional is not None and conditional[1] in INS_SYSTEMS)
    return False


# ------------------------------------------------------------------ search parameters


def grouped(params: Iterable[tuple[str, str]], known: frozenset[str]) -> dict[str, list[str]]:
    """The query string's name/value pairs by name (repeated names kept); a name not in ``known`` is a 400 —
    never silently ignored."""
    values: dict[str, list[str]] = {}
    for name, value in params:
        values.setdefault(name, []).append(value)
    unknown = sorted(set(values) - known)
    if unknown:
        name = unknown[0][:40]
        raise fail("not-supported", f"Paramètre de recherche non pris en charge : {name}.", name)
    return values


def one(values: Mapping[str, list[str]], name: str) -> str | None:
    """A parameter given at most once, not empty."""
    found = values.get(name) or []
    if len(found) > 1:
        raise invalid(f"Le paramètre {name} ne peut être donné qu'une fois.", name)
    if found and not found[0].strip():
        raise invalid(f"Le paramètre {name} est vide.", name)
    return found[0].strip() if found else None


def designation(values: Mapping[str, list[str]]) -> tuple[dict[str, Any], str]:
    """Whose resources a search is about (``{"reference"}`` or ``{"identifier"}``) and by which parameter."""
    reference, identifier = one(values, "patient"), one(values, "patient.identifier")
    if reference is not None:
        if identifier is not None:
            raise invalid("Donnez patient ou patient.identifier, pas les deux.", "patient")
        if re.fullmatch(r"[A-Za-z0-9.\-]{1,64}", reference):
            reference = f"Patient/{reference}"
        if not re.fullmatch(r"Patient/[A-Za-z0-9.\-]{1,64}", reference):
            raise invalid("Le paramètre patient est une référence Patient/<id>.", "patient")
        return {"reference": reference}, "patient"
    system, bar, value = (identifier or "").partition("|")
    if identifier is None or not bar or system not in INS_SYSTEMS or not _INS_VALUE.fullmatch(value.strip()):
        raise fail(
            "required",
            f"Le patient est obligatoire : patient.identifier={INS_PARAMETER} (ou patient=Patient/<id>).",
            "patient.identifier",
        )
    return {"identifier": {"system": system, "value": value.strip()}}, "patient.identifier"


def integer(value: str | None, name: str, default: int, high: int) -> int:
    """``_count``, ``_offset``: an integer from 0 to ``high`` (``default`` when absent)."""
    if value is None:
        return default
    if not re.fullmatch(r"\d{1,7}", value) or int(value) > high:
        raise invalid(f"Le paramètre {name} est un entier de 0 à {high}.", name)
    return int(value)
