"""The prevention calendar (AGD-2): recommended vaccinations, screenings and check-ups, and their status for one
person on one day.

Pure. The calendar is data — ``carnet/data/prevention_<version>.json`` (vaccinations 2025, the three organised
screening programmes, the 20 examinations of the child, M'T dents, Mon bilan prévention), each item citing its
source — read and checked once by :func:`load_calendar` into a :class:`Calendar` whose items are compiled (ages
as month/day offsets, an index of the items that may apply at each age in months). Next year's calendar is a new
data file, not code. A malformed file is a ``ValueError`` naming the file, the item and what is wrong.

:func:`evaluate` takes a birth date, a sex, the day, what was done (dates per item code, or per vaccine family:
``ROR``, ``GRIPPE``…) and what the person declined, and returns the status of every item that applies — items of
the other sex or outside their ages are not listed. The five statuses (docs/decisions.md, « Prevention calendar
(AGD-2) — issue #11 », says why):

- ``realise``: a record covers the item — a one-off dose or visit was recorded; a screening was recorded and its
  next one is not yet within the horizon (``horizon_days`` of the calendar, 45 days in 2025); a seasonal vaccine
  was recorded during the current season;
- ``non_realise``: the person said it was not done or declined it (after any record; for a recurring item, for
  the current cycle only);
- ``a_planifier``: nothing covers it and it is due now or within the horizon, its recommended window still open
  (a one-off until its ``to`` age, shifted by as much as its due date was shifted by an earlier dose; a screening
  until ``grace`` after its due date, or during its first window when the person has just entered the target; a
  seasonal vaccine until the end of the campaign);
- ``en_retard``: nothing covers it and its window has passed, while it may still be done — the calendar's
  tolerance (``late_until``), a catch-up it defines (``catch_up``: HPV 15–26 years with 3 doses, MenACWY until 24,
  dTcaP until 39, ROR for people born since 1980), or a screening whose recorded rhythm has lapsed;
- ``non_renseigne``: the person is in the target of a recurring item but nothing is known that gives a date — a
  screening never recorded after the first window of the programme (when was the last one? ``due`` is None), or a
  seasonal vaccine between two campaigns without a record this season (nothing is due yet; ``due`` is the next
  campaign).

Vaccines a person records by name (« Infanrix Hexa », « Gardasil 9 », « grippe »…) are turned into families by
:meth:`Calendar.families_for` (the ``labels`` of the data file) and the dates of a family are given to its dose
codes in date order by :func:`assign_doses` (each dose goes to the first dose of the family, in the order of the
file, not yet given whose ``accept`` ages contain the age on that day).

Every message a person reads is French (:class:`PreventionError` and its subclasses, all ``CarnetError``).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from carnet.errors import CarnetError

__all__ = [
    "KINDS",
    "KIND_LABELS",
    "STATUSES",
    "STATUS_LABELS",
    "BadPerson",
    "Calendar",
    "Family",
    "Item",
    "ItemStatus",
    "PreventionError",
    "Source",
    "UnknownCalendar",
    "UnknownCode",
    "assign_doses",
    "available_versions",
    "evaluate",
    "load_calendar",
    "parse_calendar",
    "vaccine_codes_for",
]

STATUSES: Final = ("a_planifier", "en_retard", "realise", "non_realise", "non_renseigne")
STATUS_LABELS: Final = MappingProxyType(
    {
        "a_planifier": "à planifier",
        "en_retard": "en retard",
        "realise": "réalisé",
        "non_realise": "non réalisé",
        "non_renseigne": "non renseigné",
    }
)
KINDS: Final = ("vaccination", "depistage", "examen_enfant", "bilan_dentaire", "bilan_prevention")
KIND_LABELS: Final = MappingProxyType(
    {
        "vaccination": "Vaccination",
        "depistage": "Dépistage",
        "examen_enfant": "Examen de l'enfant",
        "bilan_dentaire": "Bilan bucco-dentaire",
        "bilan_prevention": "Bilan prévention",
    }
)
SEXES: Final = ("F", "M")
RULES: Final = ("once", "every", "season")

_FILE = re.compile(r"prevention_([0-9A-Za-z][0-9A-Za-z._-]*)\.json")
_CODE = re.compile(r"[A-Z][A-Z0-9]*(-[A-Z0-9]+)*")
_AGE = re.compile(r"(?:(\d+)y)?(?:(\d+)m)?(?:(\d+)w)?(?:(\d+)d)?")
_DAY_OF_YEAR = re.compile(r"(\d\d)-(\d\d)")
_MAX_MONTHS = 130 * 12  # the index covers ages up to 130 years; older people use its last row
_MDAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_TOP_KEYS = frozenset({"version", "valid_from", "titre", "horizon_days", "sources", "families", "items", "_notes"})
_COMMON_KEYS = frozenset({"code", "kind", "rule", "libelle", "source", "sex", "family", "from", "accept"})
_RULE_KEYS: Final = MappingProxyType(
    {
        "once": frozenset(
            {"to", "late_until", "catch_up", "gap", "catch_up_gap", "catch_up_only", "series", "dose", "at_risk_from"}
        ),
        "every": frozenset({"to", "intervals", "first_window", "grace", "follows"}),
        "season": frozenset({"to", "season", "at_risk_from"}),
    }
)
_EMPTY: Mapping[str, Any] = MappingProxyType({})

Offset = tuple[int, int]  # (months, days) after a date: ages and intervals


class PreventionError(CarnetError):
    """A question the calendar cannot answer as asked (French message, safe to show)."""


class UnknownCode(PreventionError):
    def __init__(self, code: str, version: str) -> None:
        super().__init__(f"Code inconnu du calendrier de prévention {version} : « {code} ».")
        self.code = code


class UnknownCalendar(PreventionError):
    def __init__(self, version: str, known: Sequence[str]) -> None:
        listed = ", ".join(known) or "aucun"
        super().__init__(f"Calendrier de prévention inconnu : « {version} » (disponibles : {listed}).")


class BadPerson(PreventionError):
    """A birth date after the day of the computation, or a sex that is neither F nor M."""


# --- values ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Source:
    id: str
    titre: str
    editeur: str
    url: str


@dataclass(frozen=True, slots=True)
class Family:
    """A vaccine family: the doses a person records under one of its names count for its dose codes."""

    code: str
    libelle: str
    labels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Item:
    """One compiled item of the calendar. Ages are (months, days) offsets from the birth date; ``None`` as an
    upper bound means « no limit »."""

    code: str
    libelle: str
    kind: str
    rule: str
    source: str
    sex: str | None = None
    family: str | None = None
    series: str | None = None
    dose: int | None = None
    start: Offset = (0, 0)
    to: Offset | None = None
    late_until: Offset | None = None
    catch_up: bool = False
    catch_until: Offset | None = None
    born_from: date | None = None
    gap: Offset | None = None
    catch_up_gap: Offset | None = None
    catch_up_only: bool = False
    previous: str | None = None
    accept: tuple[int, int] = (0, _MAX_MONTHS + 1)  # ages in whole months [from, until)
    at_risk_from: Offset | None = None
    intervals: tuple[Offset, ...] = ()
    first_window: Offset | None = None
    grace: Offset = (0, 0)
    follows: tuple[tuple[str, Offset], ...] = ()
    season: tuple[tuple[int, int], tuple[int, int]] | None = None  # ((month, day) start, (month, day) end)


@dataclass(frozen=True, slots=True)
class ItemStatus:
    """The status of one item for one person on one day. ``due`` is the date the item is (or was) due — for a
    recurring item the next one — or None when nothing gives one; ``dose``/``doses`` number a dose in its series
    (``doses`` is 3 for HPV in the catch-up schedule); ``catch_up`` says the item is offered as a catch-up."""

    code: str
    libelle: str
    kind: str
    status: str
    due: date | None
    last_done: date | None = None
    dose: int | None = None
    doses: int | None = None
    catch_up: bool = False
    family: str | None = None

    @property
    def status_label(self) -> str:
        return STATUS_LABELS[self.status]

    @property
    def kind_label(self) -> str:
        return KIND_LABELS[self.kind]


@dataclass(frozen=True, slots=True)
class _Series:
    first: str
    routine_doses: int
    catch_up_doses: int
    catch_start: Offset | None  # the age from which a series not yet started follows the catch-up schedule
    born_from: date | None


@dataclass(frozen=True)
class Calendar:
    version: str
    valid_from: date
    titre: str
    horizon_days: int
    sources: Mapping[str, Source]
    families: Mapping[str, Family]
    items: tuple[Item, ...]
    by_code: Mapping[str, Item] = field(repr=False)
    _index: tuple[tuple[Item, ...], ...] = field(repr=False)
    _slots: Mapping[str, tuple[tuple[str, int, int, bool], ...]] = field(repr=False)
    _series: Mapping[str, _Series] = field(repr=False)
    _patterns: tuple[tuple[tuple[str, ...], str], ...] = field(repr=False)

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(item.code for item in self.items)

    def item(self, code: str) -> Item:
        try:
            return self.by_code[code]
        except KeyError:
            raise UnknownCode(code, self.version) from None

    def family_codes(self, family: str) -> tuple[str, ...]:
        """The dose codes of a vaccine family, in the order recorded doses are given to them."""
        return tuple(slot[0] for slot in self._slots.get(family, ()))

    def families_for(self, label: str) -> frozenset[str]:
        """The vaccine families a name written by a person answers to (« Infanrix Hexa » → HEXA, « Gardasil 9 »
        → HPV, « ROR » → ROR…): accents, case and punctuation aside, a family's label must appear as whole words
        (a label's last word also matches when digits follow it: « prevenar13 »). Unknown names give no family."""
        return _families_for(self, label)


# --- ages and dates -------------------------------------------------------------------------------------------


def _plus(day: date, offset: Offset) -> date:
    """``day`` moved by (months, days); the 31st of a shorter month becomes its last day (29 Feb → 28 Feb)."""
    months, days = offset
    if months:
        years, month0 = divmod(day.month - 1 + months, 12)
        year = day.year + years
        dom = day.day
        if dom > 28:
            last = _MDAYS[month0]
            if month0 == 1 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
                last = 29
            dom = min(dom, last)
        day = date(year, month0 + 1, dom)
    if days:
        day = day + timedelta(days=days)
    return day


def _months(birth: date, day: date) -> int:
    """Age in whole months on ``day``."""
    return (day.year - birth.year) * 12 + day.month - birth.month - (day.day < birth.day)


# --- loading --------------------------------------------------------------------------------------------------


def _fail(where: str, what: str) -> ValueError:
    return ValueError(f"{where} : {what}")


def _age(value: object, where: str, name: str) -> Offset:
    if not isinstance(value, str) or not value or not (match := _AGE.fullmatch(value)):
        raise _fail(where, f"« {name} » doit être un âge ou une durée comme « 11y6m », « 8d » (lu : {value!r})")
    years, months, weeks, days = (int(g) if g else 0 for g in match.groups())
    return (years * 12 + months, weeks * 7 + days)


def _optional_age(entry: Mapping[str, Any], name: str, where: str) -> Offset | None:
    value = entry.get(name)
    return None if value is None else _age(value, where, name)


def _approx(offset: Offset) -> int:
    """An offset in days from a fixed reference date, to compare two offsets when checking the file."""
    return (_plus(date(2000, 1, 1), offset) - date(2000, 1, 1)).days


def _whole_months(offset: Offset) -> int:
    return offset[0] + offset[1] // 30


def _text(entry: Mapping[str, Any], name: str, where: str) -> str:
    value = entry.get(name)
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, f"« {name} » doit être un texte non vide")
    return value


def _iso(value: object, where: str, name: str) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise _fail(where, f"« {name} » doit être une date AAAA-MM-JJ (lu : {value!r})") from None


def _day_of_year(value: object, where: str) -> tuple[int, int]:
    match = _DAY_OF_YEAR.fullmatch(str(value))
    if not match:
        raise _fail(where, f"une saison se donne en « MM-JJ » (lu : {value!r})")
    month, day = int(match.group(1)), int(match.group(2))
    if not (1 <= month <= 12 and 1 <= day <= _MDAYS[month - 1]):
        raise _fail(where, f"jour de l'année impossible : {value!r}")
    return month, day


def _sources(data: Mapping[str, Any], name: str) -> dict[str, Source]:
    raw = data.get("sources")
    if not isinstance(raw, dict) or not raw:
        raise _fail(name, "« sources » doit lister au moins une source")
    sources = {}
    for key, entry in raw.items():
        where = f"{name}, source {key}"
        if not isinstance(entry, dict):
            raise _fail(where, "une source est un objet (titre, editeur, url)")
        titre, editeur, url = (_text(entry, name, where) for name in ("titre", "editeur", "url"))
        sources[key] = Source(key, titre, editeur, url)
    return sources


def _families(data: Mapping[str, Any], name: str) -> dict[str, Family]:
    raw = data.get("families", {})
    if not isinstance(raw, dict):
        raise _fail(name, "« families » doit être un objet")
    families = {}
    for code, entry in raw.items():
        where = f"{name}, famille {code}"
        if not _CODE.fullmatch(code) or not isinstance(entry, dict):
            raise _fail(where, "une famille a un code en majuscules et un objet (libelle, labels)")
        labels = entry.get("labels")
        if not isinstance(labels, list) or not labels or not all(isinstance(x, str) and _tokens(x) for x in labels):
            raise _fail(where, "« labels » doit lister les noms du vaccin (textes non vides)")
        families[code] = Family(code, _text(entry, "libelle", where), tuple(labels))
    return families


def _catch_up(entry: Mapping[str, Any], where: str) -> tuple[bool, Offset | None, date | None]:
    raw = entry.get("catch_up")
    if raw is None:
        return False, None, None
    if not isinstance(raw, dict) or "until" not in raw or set(raw) - {"until", "born_from"}:
        raise _fail(where, "« catch_up » est un objet { until: âge ou null, born_from: date facultative }")
    born_from = _iso(raw["born_from"], where, "catch_up.born_from") if raw.get("born_from") else None
    return True, _optional_age(raw, "until", where), born_from


def _accept(entry: Mapping[str, Any], where: str) -> tuple[int, int]:
    raw = entry.get("accept")
    if raw is None:
        return (0, _MAX_MONTHS + 1)
    if not isinstance(raw, list) or len(raw) != 2 or raw[0] is None:
        raise _fail(where, "« accept » est [âge minimal, âge limite ou null]")
    low = _whole_months(_age(raw[0], where, "accept"))
    high = _MAX_MONTHS + 1 if raw[1] is None else _whole_months(_age(raw[1], where, "accept"))
    if high <= low:
        raise _fail(where, "« accept » : l'âge limite doit suivre l'âge minimal")
    return (low, high)


def _check_once_ages(item: Item, where: str) -> None:
    start = _approx(item.start)
    to = None if item.to is None else _approx(item.to)
    if to is not None and to <= start:
        raise _fail(where, "« to » doit suivre « from »")
    if item.late_until is not None and (to is None or _approx(item.late_until) <= to):
        raise _fail(where, "« late_until » doit suivre « to »")
    if item.catch_up:
        if to is None:
            raise _fail(where, "un rattrapage suit la fenêtre recommandée : « to » est nécessaire")
        floor = _approx(item.late_until) if item.late_until is not None else to
        if item.catch_until is not None and _approx(item.catch_until) <= floor:
            raise _fail(where, "« catch_up.until » doit suivre « to » et « late_until »")


def _once(entry: Mapping[str, Any], common: dict[str, Any], where: str) -> Item:
    catch_up, catch_until, born_from = _catch_up(entry, where)
    dose = entry.get("dose")
    if ("series" in entry) != ("dose" in entry) or (dose is not None and (type(dose) is not int or dose < 1)):
        raise _fail(where, "« series » et « dose » (entier ≥ 1) vont ensemble")
    series = entry.get("series")
    if series is not None and not (isinstance(series, str) and _CODE.fullmatch(series)):
        raise _fail(where, "« series » est un code en majuscules")
    item = Item(
        **common,
        series=series,
        dose=dose,
        to=_optional_age(entry, "to", where),
        late_until=_optional_age(entry, "late_until", where),
        catch_up=catch_up,
        catch_until=catch_until,
        born_from=born_from,
        gap=_optional_age(entry, "gap", where),
        catch_up_gap=_optional_age(entry, "catch_up_gap", where),
        catch_up_only=entry.get("catch_up_only") is True,
        at_risk_from=_optional_age(entry, "at_risk_from", where),
    )
    _check_once_ages(item, where)
    return item


def _every(entry: Mapping[str, Any], common: dict[str, Any], where: str) -> Item:
    intervals = entry.get("intervals")
    if not isinstance(intervals, list) or not intervals:
        raise _fail(where, "« intervals » liste les délais entre deux examens (le dernier se répète)")
    follows_raw = entry.get("follows", [])
    if not isinstance(follows_raw, list) or not all(
        isinstance(f, dict) and set(f) == {"code", "gap"} for f in follows_raw
    ):
        raise _fail(where, "« follows » liste des objets { code, gap }")
    to = _optional_age(entry, "to", where)
    if to is None or _approx(to) <= _approx(common["start"]):
        raise _fail(where, "un examen répété a une cible d'âges : « to » doit suivre « from »")
    steps = tuple(_age(v, where, "intervals") for v in intervals)
    if any(_approx(step) <= 0 for step in steps):
        raise _fail(where, "« intervals » : un délai est positif")
    return Item(
        **common,
        to=to,
        intervals=steps,
        first_window=_optional_age(entry, "first_window", where) or steps[0],
        grace=_optional_age(entry, "grace", where) or (0, 0),
        follows=tuple((str(f["code"]), _age(f["gap"], where, "follows.gap")) for f in follows_raw),
    )


def _season(entry: Mapping[str, Any], common: dict[str, Any], where: str) -> Item:
    raw = entry.get("season")
    if not isinstance(raw, dict) or set(raw) != {"start", "end"}:
        raise _fail(where, "« season » est { start: « MM-JJ », end: « MM-JJ » } (début et fin de la campagne)")
    return Item(
        **common,
        to=_optional_age(entry, "to", where),
        at_risk_from=_optional_age(entry, "at_risk_from", where),
        season=(_day_of_year(raw["start"], where), _day_of_year(raw["end"], where)),
    )


def _item(entry: object, position: int, name: str, sources: Mapping[str, Source], families: Mapping[str, Any]) -> Item:
    where = f"{name}, élément {position}"
    if not isinstance(entry, dict):
        raise _fail(where, "un élément est un objet")
    code = entry.get("code")
    if not isinstance(code, str) or not _CODE.fullmatch(code):
        raise _fail(where, f"code absent ou mal formé (lu : {code!r}) : majuscules, chiffres et tirets")
    where = f"{name}, {code}"
    rule, kind = entry.get("rule"), entry.get("kind")
    if rule not in RULES or kind not in KINDS:
        raise _fail(where, f"« rule » est l'un de {', '.join(RULES)} et « kind » l'un de {', '.join(KINDS)}")
    if stray := set(entry) - _COMMON_KEYS - _RULE_KEYS[rule]:
        raise _fail(where, f"clé(s) inconnue(s) pour la règle « {rule} » : {', '.join(sorted(stray))}")
    source, sex, family = entry.get("source"), entry.get("sex"), entry.get("family")
    if source not in sources:
        raise _fail(where, f"source inconnue : {source!r}")
    if sex is not None and sex not in SEXES:
        raise _fail(where, f"« sex » est F, M ou absent (lu : {sex!r})")
    if (kind == "vaccination") != (family is not None) or (family is not None and family not in families):
        raise _fail(where, "une vaccination, et elle seule, nomme sa famille de vaccins (connue de « families »)")
    if rule == "season" and family is None:
        raise _fail(where, "une campagne saisonnière est une vaccination")
    common: dict[str, Any] = {
        "code": code,
        "libelle": _text(entry, "libelle", where),
        "kind": kind,
        "rule": rule,
        "source": source,
        "sex": sex,
        "family": family,
        "start": _age(entry.get("from"), where, "from"),
        "accept": _accept(entry, where),
    }
    builder = {"once": _once, "every": _every, "season": _season}[rule]
    return builder(entry, common, where)


def _link_series(items: list[Item], name: str) -> tuple[list[Item], dict[str, _Series]]:
    """Each dose of a series after the first knows the previous one; doses are numbered 1, 2… in file order."""
    members: dict[str, list[int]] = {}
    for position, item in enumerate(items):
        if item.series is not None:
            members.setdefault(item.series, []).append(position)
    series: dict[str, _Series] = {}
    for key, positions in members.items():
        doses = [items[p] for p in positions]
        if [d.dose for d in doses] != list(range(1, len(doses) + 1)):
            raise _fail(f"{name}, série {key}", "les doses sont numérotées 1, 2, 3… dans l'ordre du fichier")
        if len({d.family for d in doses}) != 1 or doses[0].catch_up_only:
            raise _fail(f"{name}, série {key}", "une série a une seule famille et commence par une dose de routine")
        for before, position in zip(doses, positions[1:], strict=False):
            items[position] = _replace(items[position], previous=before.code)
        first = doses[0]
        catch_start = None
        if first.catch_up and first.to is not None:
            catch_start = first.late_until if first.late_until is not None else first.to
        series[key] = _Series(
            first=first.code,
            routine_doses=sum(1 for d in doses if not d.catch_up_only),
            catch_up_doses=len(doses),
            catch_start=catch_start,
            born_from=first.born_from,
        )
    return items, series


def _replace(item: Item, **changes: Any) -> Item:
    values = {name: getattr(item, name) for name in Item.__dataclass_fields__}
    values.update(changes)
    return Item(**values)


def _listing_months(item: Item, horizon_days: int) -> tuple[int, int]:
    """The ages in whole months at which ``item`` may be listed (a superset: evaluation decides by the day)."""
    starts = [item.start] + ([item.at_risk_from] if item.at_risk_from is not None else [])
    low = min(_whole_months(s) for s in starts) - horizon_days // 28 - 2
    if item.rule == "once":
        end = item.catch_until if item.catch_up else (item.late_until or item.to)
        unlimited = (item.catch_up and item.catch_until is None) or end is None
    else:
        end, unlimited = item.to, item.to is None
    high = _MAX_MONTHS if unlimited or end is None else end[0] + end[1] // 28 + 2
    return max(low, 0), min(high, _MAX_MONTHS)


def _build_index(items: Sequence[Item], horizon_days: int) -> tuple[tuple[Item, ...], ...]:
    rows: list[list[Item]] = [[] for _ in range(_MAX_MONTHS + 1)]
    for item in items:
        low, high = _listing_months(item, horizon_days)
        for month in range(low, high + 1):
            rows[month].append(item)
    return tuple(tuple(row) for row in rows)


def _slots(items: Sequence[Item]) -> dict[str, tuple[tuple[str, int, int, bool], ...]]:
    """Per family: (dose code, accepted from, accepted until — ages in months, several doses accepted?)."""
    slots: dict[str, list[tuple[str, int, int, bool]]] = {}
    for item in items:
        if item.family is not None:
            slots.setdefault(item.family, []).append((item.code, *item.accept, item.rule == "season"))
    return {family: tuple(rows) for family, rows in slots.items()}


def parse_calendar(data: Mapping[str, Any], name: str = "calendrier") -> Calendar:
    """Checks and compiles a calendar read from its JSON file (``name`` is used in error messages)."""
    if not isinstance(data, Mapping):
        raise _fail(name, "un objet JSON est attendu")
    if stray := set(data) - _TOP_KEYS:
        raise _fail(name, f"clé(s) inconnue(s) : {', '.join(sorted(stray))}")
    version = _text(data, "version", name)
    horizon = data.get("horizon_days")
    if type(horizon) is not int or not 0 <= horizon <= 366:
        raise _fail(name, "« horizon_days » est un nombre de jours entre 0 et 366")
    sources, families = _sources(data, name), _families(data, name)
    raw_items = data.get("items")
    if not isinstance(raw_items, list) or not raw_items:
        raise _fail(name, "« items » liste les éléments du calendrier")
    items = [_item(entry, n, name, sources, families) for n, entry in enumerate(raw_items, 1)]
    codes = [item.code for item in items]
    if len(set(codes)) != len(codes) or set(codes) & set(families):
        raise _fail(name, "chaque code d'élément est unique et distinct des codes de familles")
    for item in items:
        if any(code not in codes for code, _gap in item.follows):
            raise _fail(f"{name}, {item.code}", "« follows » nomme un élément inconnu")
    items, series = _link_series(items, name)
    patterns = tuple((tuple(_tokens(label)), family.code) for family in families.values() for label in family.labels)
    by_code = {item.code: item for item in items}
    return Calendar(
        version=version,
        valid_from=_iso(data.get("valid_from"), name, "valid_from"),
        titre=_text(data, "titre", name),
        horizon_days=horizon,
        sources=MappingProxyType(sources),
        families=MappingProxyType(families),
        items=tuple(items),
        by_code=MappingProxyType(by_code),
        _index=_build_index(items, horizon),
        _slots=MappingProxyType(_slots(items)),
        _series=MappingProxyType(series),
        _patterns=patterns,
    )


def _folder(folder: Path | Traversable | None) -> Path | Traversable:
    return resources.files("carnet.data") if folder is None else folder


def available_versions(folder: Path | Traversable | None = None) -> tuple[str, ...]:
    """The versions of the calendar files (``prevention_<version>.json``), sorted."""
    names = (_FILE.fullmatch(entry.name) for entry in _folder(folder).iterdir())
    return tuple(sorted(match.group(1) for match in names if match))


def _read(version: str, folder: Path | Traversable | None) -> Calendar:
    known = available_versions(folder)
    if version not in known:
        raise UnknownCalendar(version, known)
    name = f"prevention_{version}.json"
    calendar = parse_calendar(json.loads(_folder(folder).joinpath(name).read_text(encoding="utf-8")), name)
    if calendar.version != version:
        raise _fail(name, f"« version » vaut {calendar.version!r}, le nom du fichier dit {version!r}")
    return calendar


@cache
def _packaged(version: str) -> Calendar:
    return _read(version, None)


@cache
def _packaged_latest() -> Calendar:
    return _latest([_packaged(version) for version in available_versions()])


def _latest(calendars: Sequence[Calendar]) -> Calendar:
    if not calendars:
        raise UnknownCalendar("(le plus récent)", ())
    return max(calendars, key=lambda c: (c.valid_from, c.version))


def load_calendar(version: str | None = None, *, folder: Path | Traversable | None = None) -> Calendar:
    """The calendar of that version, or the latest one (the greatest ``valid_from``). Files are read from
    ``carnet/data`` (once, then cached) unless ``folder`` is given."""
    if folder is not None:
        if version is None:
            return _latest([_read(v, folder) for v in available_versions(folder)])
        return _read(version, folder)
    return _packaged_latest() if version is None else _packaged(version)


# --- vaccine names ------------------------------------------------------------------------------------------


def _tokens(text: str) -> list[str]:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    return re.findall(r"[a-z0-9]+", plain)


def _word_matches(word: str, pattern: str) -> bool:
    return word == pattern or (word.startswith(pattern) and word[len(pattern) :].isdigit())


def _families_for(calendar: Calendar, label: str) -> frozenset[str]:
    words = _tokens(label)
    found = set()
    for pattern, family in calendar._patterns:
        size = len(pattern)
        for start in range(len(words) - size + 1):
            if words[start : start + size - 1] == list(pattern[:-1]) and _word_matches(
                words[start + size - 1], pattern[-1]
            ):
                found.add(family)
                break
    return frozenset(found)


def vaccine_codes_for(label: str, calendar: Calendar | None = None) -> frozenset[str]:
    """The vaccine families (``HEXA``, ``ROR``, ``HPV``, ``GRIPPE``…) a vaccine written as ``label`` belongs to,
    in ``calendar`` (the latest one by default); empty for a name the calendar does not know."""
    return (calendar or load_calendar()).families_for(label)


# --- records ---------------------------------------------------------------------------------------------------


def _give_doses(calendar: Calendar, birth: date, family: str, days: Iterable[date], out: dict[str, list[date]]) -> None:
    """Gives the family's recorded dates to its dose codes in date order (see the module docstring)."""
    slots = calendar._slots.get(family, ())
    taken = {code for code, _low, _high, many in slots if not many and code in out}
    for day in sorted(days):
        age = _months(birth, day)
        for code, low, high, many in slots:
            if low <= age < high and (many or code not in taken):
                out.setdefault(code, []).append(day)
                if not many:
                    taken.add(code)
                break


def _records(calendar: Calendar, birth: date, today: date, done: Mapping[str, Sequence[date]]) -> dict[str, list[date]]:
    out: dict[str, list[date]] = {}
    by_family: list[tuple[str, list[date]]] = []
    for key, days in done.items():
        kept = [day for day in days if birth <= day <= today]  # a future or pre-birth date is a typing slip
        if key in calendar.by_code:
            if kept:
                out.setdefault(key, []).extend(kept)
        elif key in calendar.families:
            by_family.append((key, kept))
        else:
            raise UnknownCode(key, calendar.version)
    for days in out.values():
        days.sort()
    for family, days in by_family:
        _give_doses(calendar, birth, family, days, out)
    for days in out.values():
        days.sort()
    return out


def assign_doses(
    calendar: Calendar, birth_date: date, records: Iterable[tuple[str, date]], today: date | None = None
) -> dict[str, tuple[date, ...]]:
    """The vaccinations of a profile (name as written, date) as dates per dose code: each name gives its
    families, each family's dates go to its doses in date order. Names the calendar does not know are left out;
    dates after ``today`` (default: no limit) or before the birth are ignored."""
    per_family: dict[str, list[date]] = {}
    for label, day in records:
        for family in calendar.families_for(label):
            per_family.setdefault(family, []).append(day)
    limit = today or date.max
    done = _records(calendar, birth_date, limit, per_family)
    return {code: tuple(days) for code, days in done.items()}


# --- evaluation ------------------------------------------------------------------------------------------------


class _Person:
    __slots__ = ("at_risk", "birth", "calendar", "declined", "dues", "horizon", "modes", "records", "today")

    def __init__(
        self,
        calendar: Calendar,
        birth: date,
        today: date,
        records: dict[str, list[date]],
        declined: Mapping[str, date],
        at_risk: bool,
    ) -> None:
        self.calendar = calendar
        self.birth = birth
        self.today = today
        self.records = records
        self.declined = declined
        self.at_risk = at_risk
        self.horizon = timedelta(days=calendar.horizon_days)
        self.modes: dict[str, bool] = {}
        self.dues: dict[str, date] = {}

    def catching_up(self, key: str) -> bool:
        """Whether the series follows its catch-up schedule: begun (or, not begun, still to begin) at or after
        the age its routine schedule ends (HPV: a first dose from 15 years on means 3 doses)."""
        mode = self.modes.get(key)
        if mode is None:
            series = self.calendar._series[key]
            mode = False
            if series.catch_start is not None and (series.born_from is None or self.birth >= series.born_from):
                first = self.records.get(series.first)
                mode = (first[0] if first else self.today) >= _plus(self.birth, series.catch_start)
            self.modes[key] = mode
        return mode


def _status(item: Item, status: str, due: date | None, last: date | None = None, **more: Any) -> ItemStatus:
    return ItemStatus(item.code, item.libelle, item.kind, status, due, last, family=item.family, **more)


def _once_end(item: Item, p: _Person) -> tuple[date | None, bool]:
    """The day the item stops being listed (None: never) and whether its catch-up applies to this person."""
    catch = item.catch_up and (item.born_from is None or p.birth >= item.born_from)
    if catch:
        return (None if item.catch_until is None else _plus(p.birth, item.catch_until)), True
    end = item.late_until or item.to
    return (None if end is None else _plus(p.birth, end)), False


def _start(item: Item, p: _Person) -> date:
    offset = item.at_risk_from if p.at_risk and item.at_risk_from is not None else item.start
    return _plus(p.birth, offset)


def _due(item: Item, p: _Person, catching_up: bool) -> date:
    """A dose is due at its age, or ``gap`` after the previous dose of its series — the day it was recorded, or
    else the day it is itself due — whichever is later (HPV begun at 17: 2nd dose 2 months after the 1st)."""
    due = p.dues.get(item.code)
    if due is None:
        due = _start(item, p)
        gap = item.catch_up_gap if catching_up and item.catch_up_gap is not None else item.gap
        if gap is not None and item.previous is not None:
            before = p.records.get(item.previous)
            base = before[-1] if before else _due(p.calendar.by_code[item.previous], p, catching_up)
            due = max(due, _plus(base, gap))
        p.dues[item.code] = due
    return due


def _declined(item: Item, p: _Person) -> bool:
    """Declined, or a previous dose of its series was declined and never recorded (no 2nd dose without a 1st)."""
    code: str | None = item.code
    while code is not None:
        if code in p.declined:
            return True
        code = p.calendar.by_code[code].previous
        if code is not None and code in p.records:
            return False
    return False


def _eval_once(item: Item, p: _Person) -> ItemStatus | None:
    birth, today = p.birth, p.today
    start = _start(item, p)
    if today < start - p.horizon:
        return None
    end, catch = _once_end(item, p)
    if end is not None and today >= end:
        return None
    catching_up, doses = False, None
    if item.series is not None:
        catching_up = p.catching_up(item.series)
        if item.catch_up_only and not catching_up:
            return None
        series = p.calendar._series[item.series]
        doses = series.catch_up_doses if catching_up else series.routine_doses
    recorded = p.records.get(item.code)
    if recorded:
        return _status(item, "realise", None, recorded[-1], dose=item.dose, doses=doses, catch_up=catching_up)
    due = _due(item, p, catching_up)
    if p.declined and _declined(item, p):
        return _status(item, "non_realise", due, dose=item.dose, doses=doses, catch_up=catching_up)
    if today < due - p.horizon:
        return None  # a later dose of a series, not yet in view
    late_at = None if item.to is None else _plus(birth, item.to) + (due - start)
    if late_at is None or today < late_at:
        return _status(item, "a_planifier", due, dose=item.dose, doses=doses, catch_up=catching_up)
    if catch and not catching_up:
        catching_up = today >= _plus(birth, item.late_until or item.to or (0, 0))
    return _status(item, "en_retard", due, dose=item.dose, doses=doses, catch_up=catching_up)


def _next_due(item: Item, p: _Person) -> tuple[date | None, date | None]:
    """(next due date, last record of this item or of an item it follows) of a recurring item."""
    own = p.records.get(item.code)
    due = last = None
    if own:
        last = own[-1]
        due = _plus(last, item.intervals[min(len(own), len(item.intervals)) - 1])
    for code, gap in item.follows:
        other = p.records.get(code)
        if other:
            candidate = _plus(other[-1], gap)
            due = candidate if due is None or candidate > due else due
            last = other[-1] if last is None or other[-1] > last else last
    return due, last


def _eval_every(item: Item, p: _Person) -> ItemStatus | None:
    birth, today = p.birth, p.today
    start = _plus(birth, item.start)
    end = _plus(birth, item.to or (0, 0))
    if today < start - p.horizon or today >= end:
        return None
    due, last_any = _next_due(item, p)
    declined = p.declined.get(item.code)
    if declined is not None and (last_any is None or declined > last_any):
        recorded = len(p.records.get(item.code) or ())
        cycle = item.intervals[max(min(recorded, len(item.intervals)) - 1, 0)]
        if today < _plus(declined, cycle):
            return _status(item, "non_realise", due, last_any)
    if due is None:
        if today < _plus(start, item.first_window or item.intervals[0]):
            return _status(item, "a_planifier", start)
        return _status(item, "non_renseigne", None)
    due = max(due, start)
    if due >= end:
        return _status(item, "realise", None, last_any)  # the programme ends before the next one
    if today < due - p.horizon:
        return _status(item, "realise", due, last_any)
    if today < _plus(due, item.grace):
        return _status(item, "a_planifier", due, last_any)
    return _status(item, "en_retard", due, last_any)


def _eval_season(item: Item, p: _Person) -> ItemStatus | None:
    birth, today = p.birth, p.today
    offset = item.at_risk_from if p.at_risk and item.at_risk_from is not None else item.start
    if today < _plus(birth, offset) - p.horizon or (item.to is not None and today >= _plus(birth, item.to)):
        return None
    assert item.season is not None
    (start_month, start_day), (end_month, end_day) = item.season
    opens = date(today.year, start_month, start_day)
    if today < opens - p.horizon:
        opens = date(today.year - 1, start_month, start_day)
    closes_year = opens.year + (1 if (end_month, end_day) < (start_month, start_day) else 0)
    closes = date(closes_year, end_month, end_day)
    next_opens = date(opens.year + 1, start_month, start_day)
    cycle = opens - p.horizon
    recorded = p.records.get(item.code)
    last = recorded[-1] if recorded else None
    if last is not None and last >= cycle:
        return _status(item, "realise", next_opens, last)
    declined = p.declined.get(item.code)
    if declined is not None and declined >= cycle:
        return _status(item, "non_realise", opens, last)
    if today <= closes:
        return _status(item, "a_planifier", opens, last)
    return _status(item, "non_renseigne", next_opens, last)


_RULE_EVALUATORS = {"once": _eval_once, "every": _eval_every, "season": _eval_season}


def evaluate(
    calendar: Calendar,
    birth_date: date,
    sex: str,
    today: date,
    done: Mapping[str, Sequence[date]] = _EMPTY,
    declined: Mapping[str, date] = _EMPTY,
    *,
    at_risk: bool = False,
) -> list[ItemStatus]:
    """The status of every item of ``calendar`` that applies to a person born on ``birth_date`` of sex ``sex``
    (F or M) on ``today``, in the calendar's order.

    ``done`` gives the dates things were done, per item code (``DEP-SEIN``, ``VAC-ROR-1``) or per vaccine family
    (``ROR``, ``GRIPPE``: given to its doses in date order); ``declined`` the day the person said an item was not
    done or declined. ``at_risk``: the person has one of the conditions the calendar names for an earlier start
    (RSV from 65 years). An unknown code is :class:`UnknownCode`."""
    if sex not in SEXES:
        raise BadPerson(f"Sexe inconnu : « {sex} » (F ou M attendu).")
    if birth_date > today:
        raise BadPerson("La date de naissance est postérieure au jour du calcul.")
    for code in declined:
        if code not in calendar.by_code:
            raise UnknownCode(code, calendar.version)
    person = _Person(calendar, birth_date, today, _records(calendar, birth_date, today, done), declined, at_risk)
    row = calendar._index[min(_months(birth_date, today), _MAX_MONTHS)]
    statuses = []
    for item in row:
        if item.sex is not None and item.sex != sex:
            continue
        status = _RULE_EVALUATORS[item.rule](item, person)
        if status is not None:
            statuses.append(status)
    return statuses
