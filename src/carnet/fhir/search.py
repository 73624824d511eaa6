"""What every FHIR interface of Carnet reads the same way, pure (no framework, no storage): FHIR dates as the
periods they cover, the ``date`` search parameter with its prefixes and partial dates (as one period, or — with
every R4 prefix, ``ne`` and ``ap`` included — as criteria a service applies to its own columns), token parameters
(``system|code``, comma-separated alternatives, R4 escapes), the patient a search or a resource designates (by
INS, ``Patient/<id>``, the absolute URL or the conditional reference), single-valued and integer parameters
(``_count``, ``_offset``) and the ones of a closed list (``_summary``, ``_total``).

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
ALL_DATE_PREFIXES = DATE_PREFIXES | {"ne", "ap"}  # R4 search §3.1.1.4.5


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


def _date_value(raw: str, name: str, prefixes: frozenset[str]) -> tuple[str, Period]:
    """One value of a date parameter: its prefix (``eq`` when none) and the period it covers; a prefix of R4 not
    in ``prefixes`` is ``not-supported``, anything else not understood ``invalid`` (400, never a crash)."""
    text = raw.strip().replace(" ", "+")  # a « + » of a time zone not encoded in the query string
    prefix = text[:2] if text[:2].isalpha() else "eq"
    moment = text[2:] if text[:2].isalpha() else text
    if prefix in ALL_DATE_PREFIXES - prefixes:
        raise fail("not-supported", f"Le préfixe de date « {prefix} » n'est pas pris en charge.", name)
    if prefix not in prefixes:
        known = ", ".join(p for p in ("eq", "ne", "gt", "ge", "lt", "le", "sa", "eb", "ap") if p in prefixes)
        raise invalid(f"Préfixe de date inconnu : {prefix[:2]} ({known}).", name)
    try:
        return prefix, period_of(moment)
    except ValueError:
        raise invalid(
            f"Date de recherche invalide : {moment[:30]} (AAAA, AAAA-MM, AAAA-MM-JJ ou date et heure).", name
        ) from None


def date_bounds(values: Sequence[str]) -> tuple[datetime | None, datetime | None]:
    """``date`` parameters (ANDed) as one half-open period ``[from, to)`` of each entry's moment."""
    if len(values) > MAX_DATES:
        raise invalid(f"{MAX_DATES} paramètres date au plus.", "date")
    low: datetime | None = None
    high: datetime | None = None
    for raw in values:
        prefix, period = _date_value(raw, "date", DATE_PREFIXES)
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


@dataclass(frozen=True)
class DateCriterion:
    """One value of a date parameter as R4 compares it (search §3.1.1.4.7): its prefix and the range
    ``[start, end)`` its precision implies (``2026`` is the whole year, French time when no zone is given),
    widened for ``ap`` by a tenth of the gap between the value and now, as R4 recommends.

    Against a target range ``[s, e)`` (an instant is ``s = e``): ``eq`` the range holds the target, ``ne`` it does
    not, ``gt`` / ``ge`` the target reaches past the range's end / start, ``lt`` / ``le`` it begins before the
    range's start / end, ``sa`` it starts at or after the range's end, ``eb`` it ends before the range's start,
    ``ap`` it overlaps the widened range."""

    prefix: str
    start: datetime
    end: datetime


_EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
_LATEST = datetime(9999, 12, 30, tzinfo=UTC)


def _widened(period: Period, now: datetime) -> tuple[datetime, datetime]:
    margin = abs(now - period.start) / 10
    start = period.start - margin if period.start - _EARLIEST > margin else _EARLIEST
    end = period.end + margin if _LATEST - period.end > margin else _LATEST
    return start, end


def date_criteria(values: Sequence[str], name: str, now: datetime) -> tuple[tuple[DateCriterion, ...], ...]:
    """A date parameter with every R4 prefix, partial dates included: each occurrence (ANDed, at most
    ``MAX_DATES``) as its comma-separated alternatives (ORed); ``InputError`` 400 for anything else — an impossible
    date, a time of 25:00, an unknown prefix."""
    if len(values) > MAX_DATES:
        raise invalid(f"{MAX_DATES} paramètres {name} au plus.", name)
    groups = []
    for value in values:
        alternatives = []
        parts = value.split(",")
        if len(parts) > MAX_ALTERNATIVES:
            raise invalid(f"{MAX_ALTERNATIVES} valeurs au plus dans le paramètre {name}.", name)
        for raw in parts:
            prefix, period = _date_value(raw, name, ALL_DATE_PREFIXES)
            start, end = _widened(period, now) if prefix == "ap" else (period.start, period.end)
            alternatives.append(DateCriterion(prefix, start, end))
        groups.append(tuple(alternatives))
    return tuple(groups)


# ------------------------------------------------------------------ token parameters


@dataclass(frozen=True)
class Token:
    """One alternative of a token parameter: ``code`` (any system: ``system`` None), ``system|code``, ``|code`` (no
    system: ``system`` ""), ``system|`` (any code of that system: ``code`` None)."""

    system: str | None
    code: str | None


MAX_ALTERNATIVES = 20
MAX_TOKEN_PART = 250
_ESCAPABLE = frozenset(",|$\\")


def _alternatives(value: str, name: str) -> list[list[tuple[str, bool]]]:
    """A value cut at its unescaped commas; each character with whether it was escaped (``\\,`` ``\\|``
    ``\\$`` ``\\\\``, R4 search §3.1.1.4.19 — a backslash before anything else is refused)."""
    parts: list[list[tuple[str, bool]]] = [[]]
    characters = iter(value)
    for character in characters:
        if character == "\\":
            escaped = next(characters, "")
            if escaped not in _ESCAPABLE:
                raise invalid(f"Échappement invalide dans le paramètre {name} (\\, \\| \\$ ou \\\\).", name)
            parts[-1].append((escaped, True))
        elif character == ",":
            parts.append([])
        else:
            parts[-1].append((character, False))
    return parts


def _token(part: list[tuple[str, bool]], name: str) -> Token:
    bar = next((i for i, (c, escaped) in enumerate(part) if c == "|" and not escaped), None)
    system = None if bar is None else "".join(c for c, _ in part[:bar]).strip()
    code = "".join(c for c, _ in part[(bar + 1 if bar is not None else 0) :]).strip()
    if (not code and not system) or len(code) > MAX_TOKEN_PART or len(system or "") > MAX_TOKEN_PART:
        raise invalid(f"Valeur invalide pour {name} : code, system|code, |code ou system|.", name)
    return Token(system, code or None)


def token_groups(values: Sequence[str], name: str) -> tuple[tuple[Token, ...], ...]:
    """A token parameter: each occurrence (ANDed) as its comma-separated alternatives (ORed) — R4 search
    §3.1.1.4.9 and §3.1.1.5.4; ``InputError`` 400 on an empty alternative, a bad escape, too many values."""
    if len(values) > MAX_DATES:
        raise invalid(f"{MAX_DATES} paramètres {name} au plus.", name)
    groups = []
    for value in values:
        parts = _alternatives(value, name)
        if len(parts) > MAX_ALTERNATIVES:
            raise invalid(f"{MAX_ALTERNATIVES} valeurs au plus dans le paramètre {name}.", name)
        groups.append(tuple(_token(part, name) for part in parts))
    return tuple(groups)


# ------------------------------------------------------------------ the patient


FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")  # a FHIR logical id: anything else is no resource of Carnet's


def is_fhir_id(value: str) -> bool:
    """Whether ``value`` can be the id of a resource (NUL, slashes, 65 characters… are answered 404 without a
    look-up: PostgreSQL refuses NUL in a text parameter)."""
    return bool(FHIR_ID.fullmatch(value))


_INS_VALUE = re.compile(r"[0-9A-Za-z]{1,64}")
_PATIENT_ID = re.compile(r"Patient/[A-Za-z0-9.\-]{1,64}")
_CONDITIONAL = re.compile(r"Patient\?identifier=([^|]{1,200})\|([0-9A-Za-z]{1,64})")
_ABSOLUTE_PATIENT = re.compile(r"https?://[^\s?#]{1,300}/Patient/([A-Za-z0-9.\-]{1,64})")


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
        absolute = _ABSOLUTE_PATIENT.fullmatch(reference)
        if absolute:  # the fullUrl a search or a read gave: the same patient
            reference = f"Patient/{absolute[1]}"
        if not re.fullmatch(r"Patient/[A-Za-z0-9.\-]{1,64}", reference):
            raise invalid("Le paramètre patient est une référence : <id>, Patient/<id> ou son URL.", "patient")
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


def one_of(values: Mapping[str, list[str]], name: str, allowed: Sequence[str]) -> str | None:
    """A parameter given at most once whose value is one of ``allowed`` (``_summary``, ``_total``)."""
    value = one(values, name)
    if value is not None and value not in allowed:
        raise invalid(f"Le paramètre {name} vaut {', '.join(allowed)}.", name)
    return value
