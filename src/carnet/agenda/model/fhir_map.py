"""The agenda as FHIR R4 ``Appointment`` (AGD-1), pure: a resource read as what the agenda keeps, a kept
appointment as a resource, and the parameters of a search.

**Incoming.** A resource whose structure the FHIR model accepted (the interface checks that) is read as: the patient
(the participant whose actor designates them by INS, ``Patient/<id>`` or ``Patient?identifier=``), the status
(``proposed``, ``pending``, ``booked``, ``arrived``, ``fulfilled``, ``checked-in``, ``waitlist`` are planned;
``cancelled`` and ``noshow`` cancelled; ``entered-in-error`` is not kept), ``start`` (required) and ``end`` (or
``minutesDuration``), the title (``description``, else the service or appointment type's text, else
« Rendez-vous »), with whom (the display of the other participants: practitioner, role, service, organisation),
the place (a ``Location`` participant's display), the comment (``comment`` and ``patientInstruction``). The resource
itself is kept as sent. What cannot be kept is an ``InputError`` listing OperationOutcome issues: **400** for what
is not understood, **422** for what is understood but refused (an end before the start, a text too long, a date
outside 1900–2100).

**Outgoing.** A kept appointment as a resource: as sent when it came over FHIR (its status ``cancelled`` when it was
cancelled since), otherwise built from what was typed in the portal; always with Carnet's id, ``meta.versionId``,
``meta.lastUpdated`` and the patient participant (reference and INS).

**Search.** ``patient`` or ``patient.identifier``, ``date`` (prefixes, partial dates) on the start, ``status``,
``_count``, ``_offset`` — read by the shared ``carnet.fhir.search``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any, Protocol

from carnet.agenda.model import events as rules
from carnet.fhir import search
from carnet.fhir.search import INS_SYSTEMS, InputError, date_bounds, designates_a_patient, instant, period_of
from carnet.hall.vocabulary import PARIS
from carnet.people.model.identifiers import INS_NIR_OID

__all__ = [
    "INS_SYSTEMS",
    "Incoming",
    "InputError",
    "SearchRequest",
    "incoming",
    "outgoing",
    "search_request",
]

PLANNED_STATUSES = frozenset({"proposed", "pending", "booked", "arrived", "fulfilled", "checked-in", "waitlist"})
CANCELLED_STATUSES = frozenset({"cancelled", "noshow"})
STATUS_SEARCH = PLANNED_STATUSES | CANCELLED_STATUSES
MAX_COUNT = 100
MAX_OFFSET = 100_000
MAX_MINUTES = 60 * 24 * 31  # a month: longer is not an appointment
SEARCH_PARAMETERS = frozenset({"patient", "patient.identifier", "date", "status", "_count", "_offset", "_format"})
OTHER_ACTORS = ("Practitioner/", "PractitionerRole/", "HealthcareService/", "Organization/", "RelatedPerson/")


def _fail(code: str, text: str, path: str, status: int = 400) -> InputError:
    return search.fail(code, text, path, status)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _concept_text(concept: Any) -> str:
    text = _str(_dict(concept).get("text"))
    if text:
        return text
    codings = [c for c in _list(_dict(concept).get("coding")) if isinstance(c, dict)]
    return next((_str(c.get("display")) for c in codings if _str(c.get("display"))), "")


@dataclass(frozen=True)
class Incoming:
    """An Appointment as the agenda keeps it: the patient element as sent, and what the event holds."""

    subject: dict[str, Any]
    status: str  # prevu | annule
    starts_at: datetime
    ends_at: datetime | None
    title: str
    with_whom: str
    place: str
    comment: str
    fhir: dict[str, Any]


def _patient(participants: list[Any]) -> dict[str, Any]:
    found = [_dict(p).get("actor") for p in participants if designates_a_patient(_dict(p).get("actor"))]
    if not found:
        raise _fail(
            "required",
            f"Le patient est obligatoire : un participant dont l'acteur est désigné par son INS "
            f"(identifier, system urn:oid:{INS_NIR_OID}).",
            "Appointment.participant.actor",
        )
    if len(found) > 1:
        raise _fail("invalid", "Un rendez-vous concerne un seul patient.", "Appointment.participant.actor")
    return dict(_dict(found[0]))


def _others(participants: list[Any]) -> tuple[str, str]:
    """With whom (the displays of the other participants) and where (a Location's display)."""
    people: list[str] = []
    places: list[str] = []
    for participant in participants:
        actor = _dict(_dict(participant).get("actor"))
        if designates_a_patient(actor) or not actor:
            continue
        display = _str(actor.get("display"))
        reference = _str(actor.get("reference"))
        if not display:
            continue
        if reference.startswith("Location/") or _str(actor.get("type")) == "Location":
            places.append(display)
        elif not reference or reference.startswith(OTHER_ACTORS):
            people.append(display)
    return " ; ".join(people), " ; ".join(places)


def _moment(value: Any, path: str) -> datetime:
    try:
        period = period_of(value)
    except ValueError:
        raise _fail("value", "Date et heure invalides (instant FHIR, avec le fuseau horaire).", path) from None
    if not rules.EARLIEST <= period.start.astimezone(PARIS).date() <= rules.LATEST:
        raise _fail("value", "Le rendez-vous doit avoir lieu entre 1900 et 2100.", path, 422)
    return period.start


def _when(raw: Mapping[str, Any]) -> tuple[datetime, datetime | None]:
    if raw.get("start") is None:
        raise _fail("required", "Le début du rendez-vous est obligatoire (start).", "Appointment.start")
    starts_at = _moment(raw["start"], "Appointment.start")
    ends_at = _moment(raw["end"], "Appointment.end") if raw.get("end") is not None else None
    minutes = raw.get("minutesDuration")
    if ends_at is None and isinstance(minutes, int) and not isinstance(minutes, bool):
        if not 0 < minutes <= MAX_MINUTES:
            raise _fail(
                "value",
                "La durée (minutesDuration) doit être comprise entre 1 minute et 31 jours.",
                "Appointment.minutesDuration",
                422,
            )
        ends_at = starts_at + timedelta(minutes=minutes)
    if ends_at is not None and ends_at <= starts_at:
        raise _fail(
            "invariant", "La fin du rendez-vous (end) doit être après son début (start).", "Appointment.end", 422
        )
    return starts_at, ends_at


def _text(value: str, limit: int, path: str, multiline: bool = False) -> str:
    field = {"Appointment.description": "title", "Appointment.comment": "comment"}.get(path, "with_whom")
    try:
        return rules.plain_text(value, limit, field, multiline)
    except rules.EventError:
        raise _fail("too-long", f"Texte trop long : {limit} caractères au plus.", path, 422) from None


def incoming(raw: Mapping[str, Any]) -> Incoming:
    """What the agenda keeps of ``raw`` (an Appointment the FHIR model accepted); ``InputError`` lists what
    cannot be kept."""
    if raw.get("resourceType") != "Appointment":
        raise _fail("invalid", "La ressource envoyée doit être un Appointment.", "resourceType")
    status = raw.get("status")
    if status == "entered-in-error":
        raise _fail("value", "Un rendez-vous saisi par erreur ne s'enregistre pas dans l'agenda.", "Appointment.status")
    if status not in STATUS_SEARCH:
        raise _fail("value", f"Statut de rendez-vous inconnu (reçu : « {str(status)[:30]} »).", "Appointment.status")
    participants = _list(raw.get("participant"))
    subject = _patient(participants)
    starts_at, ends_at = _when(raw)
    title = _str(raw.get("description"))
    if not title:
        kinds = [*_list(raw.get("serviceType")), raw.get("appointmentType"), *_list(raw.get("reasonCode"))]
        title = next((t for t in (_concept_text(c) for c in kinds) if t), "") or rules.KINDS[rules.APPOINTMENT]
    with_whom, place = _others(participants)
    notes = [_str(raw.get("comment")), _str(raw.get("patientInstruction"))]
    return Incoming(
        subject=subject,
        status=rules.CANCELLED if status in CANCELLED_STATUSES else rules.PLANNED,
        starts_at=starts_at,
        ends_at=ends_at,
        title=_text(title, rules.TITLE_MAX, "Appointment.description"),
        with_whom=_text(with_whom, rules.WITH_MAX, "Appointment.participant.actor.display"),
        place=_text(place, rules.PLACE_MAX, "Appointment.participant.actor.display"),
        comment=_text("\n".join(n for n in notes if n), rules.COMMENT_MAX, "Appointment.comment", multiline=True),
        fhir=dict(raw),
    )


# ------------------------------------------------------------------ a kept appointment as a resource


class StoredEvent(Protocol):
    """What a resource is built from (the service's ``EventView`` has all of it)."""

    @property
    def id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def starts_at(self) -> datetime: ...
    @property
    def ends_at(self) -> datetime | None: ...
    @property
    def all_day(self) -> bool: ...
    @property
    def status(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def with_whom(self) -> str: ...
    @property
    def place(self) -> str: ...
    @property
    def comment(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def updated_at(self) -> datetime: ...
    @property
    def version(self) -> int: ...
    @property
    def fhir(self) -> dict[str, Any] | None: ...


def _built(event: StoredEvent) -> dict[str, Any]:
    """An appointment typed in the portal as a resource."""
    start, end = event.starts_at, event.ends_at
    if event.all_day:
        day = start.astimezone(PARIS).date()
        start = datetime.combine(day, time(), PARIS)
        end = datetime.combine(day + timedelta(days=1), time(), PARIS)
    others = []
    if event.with_whom:
        others.append({"actor": {"display": event.with_whom}, "status": "accepted"})
    if event.place:
        others.append({"actor": {"type": "Location", "display": event.place}, "status": "accepted"})
    return {
        "status": "booked",
        "description": event.title,
        "start": instant(start),
        **({"end": instant(end)} if end is not None else {}),
        "created": instant(event.created_at),
        **({"comment": event.comment} if event.comment else {}),
        "participant": others,
    }


def outgoing(event: StoredEvent, patient: Mapping[str, Any]) -> dict[str, Any]:
    """The event as an Appointment: as sent, or built; Carnet's id, version and patient participant."""
    body = dict(event.fhir) if event.fhir else _built(event)
    sent_meta = {k: v for k, v in _dict(body.get("meta")).items() if k not in {"versionId", "lastUpdated", "source"}}
    rest = {k: v for k, v in body.items() if k not in {"resourceType", "id", "meta"}}
    cancelled_as_sent = rest.get("status") in CANCELLED_STATUSES
    if event.status == rules.CANCELLED and not cancelled_as_sent:
        rest["status"] = "cancelled"  # cancelled since it was sent
    elif event.status != rules.CANCELLED and cancelled_as_sent:
        rest["status"] = "booked"
    others = [p for p in _list(rest.get("participant")) if not designates_a_patient(_dict(p).get("actor"))]
    rest["participant"] = [{"actor": {**dict(patient), "type": "Patient"}, "status": "accepted"}, *others]
    return {
        "resourceType": "Appointment",
        "id": event.id,
        "meta": {**sent_meta, "versionId": str(event.version), "lastUpdated": instant(event.updated_at)},
        **rest,
    }


# ------------------------------------------------------------------ search parameters


@dataclass(frozen=True)
class SearchRequest:
    """Whose agenda (``{"reference"}`` or ``{"identifier"}``) and by which parameter, the period ``[from, to)``
    of the start, the kept statuses asked (empty: any), the page."""

    designation: dict[str, Any]
    designated_by: str
    date_from: datetime | None = None
    date_to: datetime | None = None
    statuses: frozenset[str] = frozenset()
    count: int = 50
    offset: int = 0


def _statuses(value: str | None) -> frozenset[str]:
    if value is None:
        return frozenset()
    asked = {token.strip() for token in value.split(",")}
    unknown = sorted(asked - STATUS_SEARCH)
    if unknown:
        raise search.invalid(f"Statut de rendez-vous inconnu : {unknown[0][:30]}.", "status")
    return frozenset(rules.CANCELLED if s in CANCELLED_STATUSES else rules.PLANNED for s in asked)


def search_request(params: Iterable[tuple[str, str]]) -> SearchRequest:
    """The query string of a search; ``InputError`` (400) on anything not understood — never silently ignored."""
    values = search.grouped(params, SEARCH_PARAMETERS)
    designation, designated_by = search.designation(values)
    date_from, date_to = date_bounds(values.get("date", []))
    return SearchRequest(
        designation,
        designated_by,
        date_from,
        date_to,
        _statuses(search.one(values, "status")),
        search.integer(search.one(values, "_count"), "_count", 50, MAX_COUNT),
        search.integer(search.one(values, "_offset"), "_offset", 0, MAX_OFFSET),
    )
