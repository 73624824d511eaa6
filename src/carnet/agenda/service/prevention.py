"""The recommended examinations of one space (AGD-2): the use cases of the page « Examens recommandés », of its
professional view and of FHIR ``ImmunizationRecommendation``, and what the person says was done or not.

What counts as done, for the engine (``carnet.agenda.model.prevention.evaluate``):

- the vaccinations recorded in the medical profile (section « Vaccinations », or FHIR ``Immunization``): each
  name written (« Infanrix Hexa », « ROR », « Gardasil 9 »…) gives its vaccine families, and the dates go to the
  family's doses in date order (``assign_doses``) — a status then says « d'après votre profil médical »;
- the person's own answers, kept sealed in one ``PreventionAnswers`` row per space — ``{code: {"answer":
  "fait" | "non_fait", "date": "AAAA-MM-JJ"}}``: « Fait le … » is a record of that item on that day, « Pas
  fait » declines it from the day it was said (for a recurring item, for its current cycle only);
- not the documents of the vault: no document type says which examination or which vaccine it is about (« Note
  de vaccination », « Prévention (document personnel) » name no vaccine, an imaging report no mammography), so
  none is read as a record; a person who keeps such a document says « Fait le … ».

Each use case opens its unit of work, asks the policy (``PREVENTION_READ`` / ``PREVENTION_WRITE`` on
``Resource("prevention")``), and writes the history in the same transaction (a page seen again the same day is
one line, issue #15-10). The day of the calculation is today in Paris.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.agenda.model.prevention import (
    KINDS,
    BadPerson,
    Calendar,
    ItemStatus,
    Source,
    evaluate,
    load_calendar,
)
from carnet.agenda.tables import PreventionAnswers
from carnet.bootstrap import Services
from carnet.errors import CarnetError
from carnet.hall import audit
from carnet.hall.actors import Actor, ActorKind
from carnet.hall.guard import guard
from carnet.hall.policy import Action, Decision, Resource
from carnet.hall.vocabulary import PARIS
from carnet.people.service.lookup import PatientView, patient_view
from carnet.people.tables import Patient
from carnet.profile.service.vaccinations import Vaccination, vaccinations_of
from carnet.storage import keyring
from carnet.storage.types import utcnow
from carnet.vault.service.mhd import Subject, patient_for

NOT_FOUND = "Élément introuvable."
CHOICES = ("fait", "non_fait", "effacer")
_FRENCH_DAY = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
_FAMILIES: dict[tuple[str, str], frozenset[str]] = {}  # (calendar version, name written) → vaccine families
_FAMILIES_KEPT = 20_000


class PreventionNotFound(CarnetError):
    """An item the calendar does not know, or that does not concern this person (the page answers 404)."""

    def __init__(self) -> None:
        super().__init__(NOT_FOUND)

    def __reduce__(self) -> tuple[type[PreventionNotFound], tuple[()]]:
        return (type(self), ())


class AnswerError(CarnetError):
    """What the person typed cannot be kept (the French reason; nothing is written)."""


# ------------------------------------------------------------------ values


@dataclass(frozen=True)
class Answer:
    answer: str  # fait | non_fait
    day: date


@dataclass(frozen=True)
class Line:
    """One item of the calendar for this person: its status, the source the calendar cites, and where the
    « réalisé » comes from — the profile's vaccinations or the person's answer."""

    status: ItemStatus
    source: Source
    answer: Answer | None = None
    from_profile: bool = False

    @property
    def code(self) -> str:
        return self.status.code


@dataclass(frozen=True)
class Group:
    kind: str
    lines: list[Line]


@dataclass(frozen=True)
class Statuses:
    """What the page shows: every item that applies, grouped by kind in the calendar's order."""

    patient: PatientView
    calendar: Calendar
    today: date
    groups: list[Group]
    sources: list[Source]  # the sources cited by the items shown, in the calendar's order
    people_of_space: bool  # the person, a representative or a caregiver: they answer
    vaccinations: int  # how many vaccinations of the profile were read

    @property
    def lines(self) -> list[Line]:
        return [line for group in self.groups for line in group.lines]


# ------------------------------------------------------------------ the calculation (no I/O)


def today_in_paris() -> date:
    return utcnow().astimezone(PARIS).date()


def parse_answers(raw: Mapping[str, Any], calendar: Calendar) -> dict[str, Answer]:
    """The stored answers the calendar still knows (a code retired by a later calendar is left aside)."""
    answers = {}
    for code, value in raw.items():
        if code not in calendar.by_code or not isinstance(value, dict):
            continue
        try:
            answers[code] = Answer(str(value["answer"]), date.fromisoformat(str(value["date"])))
        except (KeyError, ValueError):
            continue
    return answers


def families_of(calendar: Calendar, label: str) -> frozenset[str]:
    """The vaccine families a name written by a person answers to, remembered: people write the same few names
    again and again, and matching a name against every label of the calendar is the costly part of a status."""
    key = (calendar.version, label)
    found = _FAMILIES.get(key)
    if found is None:
        if len(_FAMILIES) >= _FAMILIES_KEPT:
            _FAMILIES.clear()
        found = _FAMILIES[key] = calendar.families_for(label)
    return found


def person_statuses(
    calendar: Calendar,
    birth: date,
    sex: str,
    today: date,
    vaccinations: Iterable[Vaccination],
    answers: Mapping[str, Answer],
) -> list[Line]:
    """Every item of ``calendar`` that applies to this person today, with what was recorded: the profile's
    vaccinations (by vaccine name: their dates go to the family's doses in date order, as ``evaluate`` gives
    them) and the person's answers (« fait » a record of that very item). A dose answered « fait » on the day a
    vaccination of its family is in the profile is the same dose, counted once. A sex the calendar does not know
    gives nothing."""
    profile: dict[str, list[date]] = {}
    for label, day in vaccinations:
        for family in families_of(calendar, label):
            profile.setdefault(family, []).append(day)
    done: dict[str, list[date]] = {family: list(days) for family, days in profile.items()}
    declined: dict[str, date] = {}
    for code, answer in answers.items():
        if answer.answer == "fait":
            done.setdefault(code, []).append(answer.day)
            same = calendar.by_code[code].family
            if same is not None and answer.day in done.get(same, ()):
                done[same].remove(answer.day)
        elif answer.answer == "non_fait":
            declined[code] = answer.day
    try:
        statuses = evaluate(calendar, birth, sex, today, done, declined)
    except BadPerson:
        return []
    return [_line(calendar, status, answers.get(status.code), profile) for status in statuses]


def _line(calendar: Calendar, status: ItemStatus, answer: Answer | None, profile: Mapping[str, list[date]]) -> Line:
    answered = answer is not None and answer.answer == "fait" and answer.day == status.last_done
    from_profile = (
        status.last_done is not None
        and not answered
        and status.family is not None
        and status.last_done in profile.get(status.family, ())
    )
    return Line(status, calendar.sources[calendar.by_code[status.code].source], answer, from_profile)


def _grouped(lines: Sequence[Line]) -> list[Group]:
    groups = [Group(kind, [line for line in lines if line.status.kind == kind]) for kind in KINDS]
    return [group for group in groups if group.lines]


def _sources(calendar: Calendar, lines: Sequence[Line]) -> list[Source]:
    cited = {line.source.id for line in lines}
    return [source for key, source in calendar.sources.items() if key in cited]


# ------------------------------------------------------------------ storage of the answers


def _aad(patient_id: str) -> bytes:
    return b"prevention:" + patient_id.encode()


def open_answers(data_key: bytes, patient_id: str, sealed: bytes, calendar: Calendar) -> dict[str, Answer]:
    raw = orjson.loads(keyring.open_sealed(data_key, sealed, _aad(patient_id)))
    return parse_answers(raw if isinstance(raw, dict) else {}, calendar)


def _answers_row(db: Session, patient_id: str, for_update: bool = False) -> PreventionAnswers | None:
    query = select(PreventionAnswers).where(PreventionAnswers.patient_id == patient_id)
    return db.scalar(query.with_for_update() if for_update else query)


def _answers(services: Services, db: Session, patient_id: str, calendar: Calendar) -> dict[str, Answer]:
    row = _answers_row(db, patient_id)
    if row is None:
        return {}
    data_key = keyring.data_key(db, services.keyring, patient_id, create=False)
    return open_answers(data_key, patient_id, row.sealed, calendar)


def _patient(db: Session, patient_id: str) -> Patient:
    patient = db.get(Patient, patient_id)
    assert patient is not None  # the policy refuses unknown spaces first
    return patient


def _people_of_space(actor: Actor) -> bool:
    return actor.kind == ActorKind.PATIENT


def _sees_masked(actor: Actor, decision: Decision) -> bool:
    """Whether a vaccination the person masked to professionals counts for this reader: the people of the space
    and the médecin traitant / administrators see masked items; other professionals (an emergency access
    included, to stay on the safe side) do not learn of them through a status."""
    return _people_of_space(actor) or decision.rule == "professional_administrator"


def _lines(
    services: Services, db: Session, actor: Actor, patient: Patient, decision: Decision
) -> tuple[list[Line], int]:
    calendar = load_calendar()
    vaccinations = vaccinations_of(services, db, patient.id, include_masked=_sees_masked(actor, decision))
    answers = _answers(services, db, patient.id, calendar)
    lines = person_statuses(calendar, patient.birth_date, patient.sex, today_in_paris(), vaccinations, answers)
    return lines, len(vaccinations)


def _record_read(db: Session, actor: Actor, patient_id: str, always: bool = False, **details: Any) -> None:
    """A read in the history; the same page seen again the same day is one line (issue #15-10)."""
    if always or not audit.seen_today(db, actor, str(Action.PREVENTION_READ), patient_id):
        audit.record(
            db,
            actor,
            str(Action.PREVENTION_READ),
            patient_id=patient_id,
            resource_type="prevention",
            details=details or None,
        )


# ------------------------------------------------------------------ use cases: reading


def statuses(services: Services, actor: Actor, patient_id: str) -> Statuses:
    """« Examens recommandés » of one space (AGD-2), as the actor may read them, recorded in the history."""
    with services.db.unit_of_work() as db:
        decision = guard(db, actor, patient_id, Action.PREVENTION_READ, Resource("prevention"))
        patient = _patient(db, patient_id)
        lines, vaccinations = _lines(services, db, actor, patient, decision)
        _record_read(db, actor, patient_id)
        calendar = load_calendar()
        return Statuses(
            patient=patient_view(patient),
            calendar=calendar,
            today=today_in_paris(),
            groups=_grouped(lines),
            sources=_sources(calendar, lines),
            people_of_space=_people_of_space(actor),
            vaccinations=vaccinations,
        )


@dataclass(frozen=True)
class Recommendation:
    """The vaccines of the calendar for one patient, for FHIR ``ImmunizationRecommendation``."""

    subject: Subject
    calendar: Calendar
    today: date
    generated_at: datetime
    lines: list[Line]


def _recommendation(services: Services, db: Session, actor: Actor, subject: Subject) -> Recommendation:
    decision = guard(db, actor, subject.id, Action.PREVENTION_READ, Resource("prevention"))
    patient = db.get(Patient, subject.id)
    assert patient is not None  # patient_for found it
    lines, _ = _lines(services, db, actor, patient, decision)
    _record_read(db, actor, patient.id, always=True, fhir="ImmunizationRecommendation")
    vaccines = [line for line in lines if line.status.kind == "vaccination"]
    return Recommendation(subject, load_calendar(), today_in_paris(), utcnow(), vaccines)


def recommendation(services: Services, actor: Actor, designation: dict[str, Any], path: str) -> Recommendation:
    """FHIR search: the patient designated by INS (or ``Patient/<id>``); ``MhdError`` 404 when there is no open
    space, ``AccessDenied`` when the policy refuses (recorded)."""
    with services.db.unit_of_work() as db:
        return _recommendation(services, db, actor, patient_for(db, designation, path))


def recommendation_of(services: Services, actor: Actor, patient_id: str) -> Recommendation:
    """FHIR read (``ImmunizationRecommendation/prevention-<patient id>``): ``MhdError`` for an unknown or closed
    space, ``AccessDenied`` (recorded) for one the actor may not read — the interface answers both with one 404."""
    with services.db.unit_of_work() as db:
        return _recommendation(services, db, actor, patient_for(db, {"reference": f"Patient/{patient_id}"}, "id"))


# ------------------------------------------------------------------ use case: answering


def parse_day(text: str) -> date:
    """A date typed by a person: ``AAAA-MM-JJ`` (the date field) or ``JJ/MM/AAAA``."""
    text = text.strip()
    try:
        if match := _FRENCH_DAY.fullmatch(text):
            return date(int(match[3]), int(match[2]), int(match[1]))
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return date.fromisoformat(text)
    except ValueError:
        pass
    if not text:
        raise AnswerError("Indiquez la date à laquelle cela a été fait.")
    raise AnswerError("La date n'est pas valide : saisissez-la sous la forme JJ/MM/AAAA.")


def _checked_day(typed: str, birth: date, today: date) -> date:
    day = parse_day(typed)
    if day > today:
        raise AnswerError("La date ne peut pas être dans le futur.")
    if day < birth:
        raise AnswerError("La date ne peut pas précéder la naissance.")
    return day


def _store(services: Services, db: Session, patient_id: str, answers: Mapping[str, Answer]) -> None:
    data_key = keyring.data_key(db, services.keyring, patient_id)
    payload = {code: {"answer": a.answer, "date": a.day.isoformat()} for code, a in sorted(answers.items())}
    sealed = keyring.seal(data_key, orjson.dumps(payload), _aad(patient_id))
    row = _answers_row(db, patient_id, for_update=True)
    if row is None:
        db.add(PreventionAnswers(patient_id=patient_id, sealed=sealed, updated_at=utcnow(), version=1))
    else:
        row.sealed, row.updated_at, row.version = sealed, utcnow(), row.version + 1


def answer(services: Services, actor: Actor, patient_id: str, code: str, choice: str, typed_date: str = "") -> str:
    """The person says an item was done (« fait », on ``typed_date``), not done (« non_fait », today), or clears
    what they said (« effacer »). Returns the choice. ``PreventionNotFound`` for a code the calendar does not know
    or that does not concern this person; ``AnswerError`` (French) for a bad choice or date."""
    if choice not in CHOICES:
        raise AnswerError("Choisissez « Fait le… », « Pas fait » ou « Effacer ma réponse ».")
    calendar = load_calendar()
    with services.db.unit_of_work() as db:
        guard(db, actor, patient_id, Action.PREVENTION_WRITE, Resource("prevention"))
        if code not in calendar.by_code:
            raise PreventionNotFound()
        patient, today = _patient(db, patient_id), today_in_paris()
        answers = _answers(services, db, patient_id, calendar)
        if choice == "effacer":
            if answers.pop(code, None) is None:
                return choice  # nothing was said: nothing to clear, nothing recorded
        else:
            vaccinations = vaccinations_of(services, db, patient_id)
            listed = person_statuses(calendar, patient.birth_date, patient.sex, today, vaccinations, answers)
            if code not in {line.code for line in listed}:
                raise PreventionNotFound()
            day = _checked_day(typed_date, patient.birth_date, today) if choice == "fait" else today
            answers[code] = Answer(choice, day)
        _store(services, db, patient_id, answers)
        audit.record(
            db,
            actor,
            str(Action.PREVENTION_WRITE),
            patient_id=patient_id,
            resource_type="prevention",
            details={"op": choice, "code": code},
        )
        return choice
