"""The daily reminders (AGD-3): one e-mail per person and run, before things fall due — never twice, never lost.

What is reminded, for every open space with an e-mail address, per the person's settings (``PatientSettings``):

- ``notify_appointments``: the appointments and personal reminders of the agenda (``agenda_events``, status
  « prévu ») starting within the next ``reminder_days`` days (today included, from now on);
- ``notify_exams``: the items of the prevention calendar that are vaccinations, child examinations, dental
  check-ups (M'T dents) or prevention check-ups; ``notify_screening``: the organised cancer screenings — in both
  cases the items whose status is « à planifier » and whose due date falls between today and ``reminder_days``
  days ahead (1 to 30, 7 by default). What is already late, done, declined or unknown is on the page, not in
  an e-mail: a reminder comes before the date, once.
- ``reminder_details`` off (the default): the e-mail says only that there is an appointment, a reminder or « un
  examen ou un vaccin recommandé » and on which day — no health detail; on: it names the item (the calendar's
  label) or the appointment (its title, opened from the sealed event).

Durable and idempotent. People are read in id order, ``batch`` at a time. For each batch, one transaction
*claims* each reminder by inserting its ``Reminder`` row — primary key (patient, ``key_token``), the token a
blind HMAC under the patient's key of ``"<item code or event id>|<due date>"`` — and queues the person's e-mail
(sealed, in the durable mail queue ``mail_queue``) in the same transaction; a reminder already claimed is not
claimed again, so a second run the same day (or the next day, for what is still ahead) sends nothing new. Then
the run hands the batch's e-mails to the relay, ``chunk`` per SMTP connection, and deletes each delivered one
from the queue (a transaction per chunk). A run killed anywhere loses nothing: a batch is claimed and queued
together or not at all; an e-mail queued but not yet handed over stays in the queue, held ``HOLD`` (so that the
queue's own job, ``mail.retry``, cannot race the run for it), then sent by ``mail.retry``. The one window left
is the relay accepting a chunk whose deletion is not yet committed: at most ``chunk`` e-mails can go twice
(SMTP offers nothing better). A relay that refuses for now leaves the rest of the run's e-mails queued for
``mail.retry``; a recipient refused for good is dropped (the reminder stays claimed).

No history line per reminder: the job reads as the system, for the person's own e-mail; the reminders claimed
carry only blind tokens and dates, and rows more than ``KEEP_DAYS`` past their date are removed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import orjson
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from carnet.agenda.model.prevention import KIND_LABELS, load_calendar
from carnet.agenda.service import events
from carnet.agenda.service.prevention import Answer, Line, open_answers, person_statuses
from carnet.agenda.tables import AgendaEvent, PreventionAnswers, Reminder
from carnet.bootstrap import Services
from carnet.hall.vocabulary import PARIS, PatientStatus
from carnet.mail import queue
from carnet.mail.outbound import Mail
from carnet.mail.tables import QueuedMail
from carnet.people.tables import Patient, PatientSettings
from carnet.profile.service.vaccinations import vaccinations_in_range
from carnet.storage import keyring
from carnet.storage.tables import PatientKey
from carnet.storage.types import new_id, utcnow

log = logging.getLogger("carnet.agenda")

BATCH = 500  # people per claiming transaction
CHUNK = 50  # e-mails per SMTP connection and per deleting transaction: the at-least-once bound
HOLD = timedelta(minutes=15)  # a queued reminder e-mail is the run's alone this long, then mail.retry's
KEEP_DAYS = 30
MAX_DAYS = 30
DEFAULTS = (True, True, True, 7, False)  # notify_appointments, notify_exams, notify_screening, days, details
SCREENING = "depistage"
Hook = Callable[[str, int], None]

WEEKDAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
MONTHS = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)
SUBJECT = "Carnet : vos rappels des prochains jours"


# ------------------------------------------------------------------ values


@dataclass(frozen=True)
class Due:
    """One thing to remind of: ``key`` (``"<code or event id>|<due date>"``), the day, what it is."""

    key: str
    day: date
    kind: str  # prevention | rendez_vous | rappel
    at: datetime | None = None  # an event's moment (None: a whole day, or an item of the calendar)
    label: str = ""  # the item's label or the event's title: only written when the person opted in
    family: str = ""  # the calendar's kind of an item (vaccination, depistage…)


@dataclass(frozen=True)
class Choices:
    appointments: bool
    exams: bool
    screening: bool
    days: int
    details: bool

    @property
    def prevention(self) -> bool:
        return self.exams or self.screening

    @property
    def anything(self) -> bool:
        return self.appointments or self.prevention


@dataclass(frozen=True)
class Person:
    id: str
    email: str
    birth: date
    sex: str


@dataclass
class Report:
    people: int = 0  # open spaces with an e-mail address looked at
    reminders: int = 0  # reminders claimed by this run
    emails: int = 0  # e-mails queued by this run (one per person reminded)
    sent: int = 0  # e-mails the relay accepted during the run
    kept: int = 0  # e-mails left in the mail queue for mail.retry (relay unavailable)
    dropped: int = 0  # e-mails refused for good by the relay


@dataclass(frozen=True)
class _Outgoing:
    queued_id: str
    patient_id: str
    mail: Mail


# ------------------------------------------------------------------ what falls due (no I/O)


def prevention_dues(lines: Iterable[Line], today: date, choices: Choices) -> list[Due]:
    """The items « à planifier » due between today and ``choices.days`` days ahead, per the two toggles."""
    last = today + timedelta(days=choices.days)
    found = []
    for line in lines:
        status = line.status
        wanted = choices.screening if status.kind == SCREENING else choices.exams
        if wanted and status.status == "a_planifier" and status.due is not None and today <= status.due <= last:
            found.append(
                Due(
                    f"{status.code}|{status.due.isoformat()}",
                    status.due,
                    "prevention",
                    None,
                    status.libelle,
                    status.kind,
                )
            )
    return found


def event_due(event: AgendaEvent, title: str, today: date, now: datetime, choices: Choices) -> Due | None:
    """An appointment or a personal reminder starting between now and ``choices.days`` days ahead."""
    day = event.starts_at.astimezone(PARIS).date()
    upcoming = day >= today if event.all_day else event.starts_at >= now
    if not upcoming or day > today + timedelta(days=choices.days):
        return None
    at = None if event.all_day else event.starts_at
    return Due(f"{event.id}|{day.isoformat()}", day, event.kind, at, title)


def french_day(day: date) -> str:
    return f"{WEEKDAYS[day.weekday()]} {day.day}{'er' if day.day == 1 else ''} {MONTHS[day.month - 1]} {day.year}"


def _moment(due: Due) -> str:
    text = f"le {french_day(due.day)}"
    if due.at is not None:
        local = due.at.astimezone(PARIS)
        text += f" à {local.hour} h {local.minute:02d}"
    return text


def _line(due: Due, details: bool) -> str:
    if due.kind == "prevention":
        if details:
            kind = KIND_LABELS.get(due.family, "Prévention")
            return f"{kind} : {due.label}, à prévoir à partir du {french_day(due.day)}"
        return f"un examen ou un vaccin recommandé, à prévoir à partir du {french_day(due.day)}"
    what = "Rendez-vous" if due.kind == "rendez_vous" else "Rappel de votre agenda"
    if details and due.label:
        return f"{what} : « {due.label} », {_moment(due)}"
    return f"{'un rendez-vous' if due.kind == 'rendez_vous' else 'un rappel de votre agenda'} {_moment(due)}"


def compose(person: Person, dues: Sequence[Due], choices: Choices, base_url: str) -> Mail:
    """The person's e-mail: every reminder of the run, in French, no health detail unless they opted in."""
    space = f"{base_url.rstrip('/')}/espace/{person.id}"
    ordered = sorted(dues, key=lambda d: (d.day, d.at or datetime.min.replace(tzinfo=UTC), d.kind, d.key))
    items = [f"- {_line(due, choices.details)}" for due in ordered]
    items = [item + (" ;" if n < len(items) - 1 else ".") for n, item in enumerate(items)]
    days = f"{choices.days} jour{'s' if choices.days > 1 else ''}"
    links = []
    if any(d.kind == "prevention" for d in dues):
        links.append(f"Examens recommandés : {space}/prevention")
    if any(d.kind != "prevention" for d in dues):
        links.append(f"Agenda : {space}/agenda")
    text = "\n".join(
        [
            "Bonjour,",
            "",
            f"Votre espace santé vous rappelle ce qui arrive d'ici {days} :",
            "",
            *items,
            "",
            "Pour en savoir plus, connectez-vous à votre espace santé :",
            *links,
            "",
            "Cet e-mail ne contient aucune information médicale : le détail est dans votre espace."
            if not choices.details
            else "Vous avez choisi de recevoir le détail de vos rappels par e-mail.",
            f"Pour changer vos rappels ou ne plus en recevoir : {space}/parametres#rappels",
            "",
            "Carnet — votre espace santé",
        ]
    )
    return Mail(person.email, SUBJECT, text)


def token(data_key: bytes, key: str) -> str:
    """The blind token of a reminder: what and when, unreadable without the patient's key."""
    return keyring.blind_term(data_key, "rappel:" + key)[:32]


# ------------------------------------------------------------------ reading a batch


def _people(db: Session, after: str, limit: int) -> list[Person]:
    rows = db.execute(
        select(Patient.id, Patient.email, Patient.birth_date, Patient.sex)
        .where(
            Patient.id > after,
            Patient.status == PatientStatus.ACTIVE.value,
            Patient.email.is_not(None),
            Patient.email != "",
        )
        .order_by(Patient.id)
        .limit(limit)
    )
    return [Person(pid, email or "", birth, sex) for pid, email, birth, sex in rows]


def _in_range(column: Any, people: Sequence[Person]) -> list[Any]:
    return [column >= people[0].id, column <= people[-1].id]


def _choices(db: Session, people: Sequence[Person]) -> dict[str, Choices]:
    rows = db.execute(
        select(
            PatientSettings.patient_id,
            PatientSettings.notify_appointments,
            PatientSettings.notify_exams,
            PatientSettings.notify_screening,
            PatientSettings.reminder_days,
            PatientSettings.reminder_details,
        ).where(*_in_range(PatientSettings.patient_id, people))
    )
    found: dict[str, tuple[Any, ...]] = {pid: tuple(values) for pid, *values in rows}
    choices = {}
    for person in people:
        appointments, exams, screening, days, details = found.get(person.id, DEFAULTS)
        days = min(max(int(days or 7), 1), MAX_DAYS)
        choices[person.id] = Choices(bool(appointments), bool(exams), bool(screening), days, bool(details))
    return choices


class _Keys:
    """The batch's data keys, read at once and unwrapped on first use (created for a person who has none yet,
    as the first reminder needs one for its token)."""

    def __init__(self, services: Services, db: Session, people: Sequence[Person]) -> None:
        self.services, self.db = services, db
        rows = db.execute(
            select(PatientKey.patient_id, PatientKey.wrapped_key, PatientKey.master_key_id).where(
                *_in_range(PatientKey.patient_id, people), PatientKey.wrapped_key.is_not(None)
            )
        )
        self.wrapped: dict[str, tuple[str, str]] = {pid: (wrapped, key_id) for pid, wrapped, key_id in rows if wrapped}
        self.opened: dict[str, bytes] = {}

    def __call__(self, patient_id: str) -> bytes:
        key = self.opened.get(patient_id)
        if key is None:
            wrapped = self.wrapped.get(patient_id)
            if wrapped is not None:
                key = self.services.keyring.unwrap(wrapped[0], wrapped[1])
            else:
                key = keyring.data_key(self.db, self.services.keyring, patient_id)
            self.opened[patient_id] = key
        return key


def _answers(db: Session, people: Sequence[Person], keys: _Keys, calendar: Any) -> dict[str, dict[str, Answer]]:
    rows = db.execute(
        select(PreventionAnswers.patient_id, PreventionAnswers.sealed).where(
            *_in_range(PreventionAnswers.patient_id, people)
        )
    )
    answers = {}
    for pid, sealed in rows:
        try:
            answers[pid] = open_answers(keys(pid), pid, sealed, calendar)
        except keyring.DecryptionError:  # one damaged row does not stop the run for the others
            log.warning("réponses illisibles ignorées (espace %s)", pid)
    return answers


def _events(db: Session, people: Sequence[Person], today: date) -> dict[str, list[AgendaEvent]]:
    start = datetime.combine(today, time(), PARIS).astimezone(UTC)
    end = datetime.combine(today + timedelta(days=MAX_DAYS + 1), time(), PARIS).astimezone(UTC)
    rows = db.scalars(
        select(AgendaEvent).where(
            *_in_range(AgendaEvent.patient_id, people),
            AgendaEvent.status == "prevu",
            AgendaEvent.starts_at >= start,
            AgendaEvent.starts_at < end,
        )
    )
    found: dict[str, list[AgendaEvent]] = {}
    for row in rows:
        found.setdefault(row.patient_id, []).append(row)
    return found


def _claimed(db: Session, people: Sequence[Person], today: date) -> set[tuple[str, str]]:
    rows = db.execute(
        select(Reminder.patient_id, Reminder.key_token).where(
            *_in_range(Reminder.patient_id, people), Reminder.due_on >= today
        )
    )
    return {(pid, key) for pid, key in rows}


# ------------------------------------------------------------------ claiming a batch


@dataclass
class _Batch:
    """What one batch reads, then what it claims."""

    today: date
    now: datetime
    choices: Mapping[str, Choices]
    keys: _Keys
    answers: Mapping[str, Mapping[str, Answer]]
    vaccinations: Mapping[str, list[tuple[str, date]]]
    events: Mapping[str, list[AgendaEvent]]
    claimed: set[tuple[str, str]]


def _read(services: Services, db: Session, people: Sequence[Person], today: date, now: datetime) -> _Batch:
    calendar = load_calendar()
    keys = _Keys(services, db, people)
    return _Batch(
        today,
        now,
        _choices(db, people),
        keys,
        _answers(db, people, keys, calendar),
        vaccinations_in_range(db, people[0].id, people[-1].id, keys),
        _events(db, people, today),
        _claimed(db, people, today),
    )


def _title(batch: _Batch, person: Person, event: AgendaEvent) -> str:
    """The appointment's title, for a person who opted into details (a damaged row: no title, the date stays)."""
    try:
        return events.view_of(batch.keys(person.id), event).title
    except keyring.DecryptionError:
        log.warning("rendez-vous illisible, rappelé sans intitulé (espace %s)", person.id)
        return ""


def _dues(person: Person, batch: _Batch, choices: Choices) -> list[Due]:
    dues: list[Due] = []
    if choices.prevention:
        calendar = load_calendar()
        lines = person_statuses(
            calendar,
            person.birth,
            person.sex,
            batch.today,
            batch.vaccinations.get(person.id, ()),
            batch.answers.get(person.id, {}),
        )
        dues += prevention_dues(lines, batch.today, choices)
    if choices.appointments:
        for event in batch.events.get(person.id, ()):
            title = _title(batch, person, event) if choices.details else ""
            due = event_due(event, title, batch.today, batch.now, choices)
            if due is not None:
                dues.append(due)
    return dues


def _claim(services: Services, people: Sequence[Person], today: date, now: datetime, report: Report) -> list[_Outgoing]:
    """One transaction: the batch's new reminders claimed and their e-mails queued, together."""
    outgoing: list[_Outgoing] = []
    reminders: list[dict[str, Any]] = []
    queued: list[dict[str, Any]] = []
    with services.db.unit_of_work() as db:
        batch = _read(services, db, people, today, now)
        for person in people:
            choices = batch.choices[person.id]
            if not choices.anything:
                continue
            fresh = []
            for due in _dues(person, batch, choices):
                key_token = token(batch.keys(person.id), due.key)
                if (person.id, key_token) not in batch.claimed:
                    batch.claimed.add((person.id, key_token))
                    fresh.append(due)
                    reminders.append(
                        {"patient_id": person.id, "key_token": key_token, "due_on": due.day, "created_at": now}
                    )
            if fresh:
                mail = compose(person, fresh, choices, services.settings.base_url)
                queued_id = new_id()
                queued.append(_queue_row(services, queued_id, mail, now))
                outgoing.append(_Outgoing(queued_id, person.id, mail))
        if reminders:
            db.execute(insert(Reminder), reminders)
            db.execute(insert(QueuedMail), queued)
    report.reminders += len(reminders)
    report.emails += len(outgoing)
    return outgoing


def _queue_row(services: Services, queued_id: str, mail: Mail, now: datetime) -> dict[str, Any]:
    """The e-mail as the durable mail queue keeps it (sealed, as ``carnet.mail.queue`` reads it back)."""
    return {
        "id": queued_id,
        "sealed": services.keys.seal(orjson.dumps(asdict(mail)).decode(), queue.PURPOSE),
        "attempts": 0,
        "next_attempt_at": utcnow() + HOLD,  # from the moment it is queued, however long the run
        "discard_after": now + queue.GIVE_UP_AFTER,
        "last_error": "",
        "created_at": now,
    }


# ------------------------------------------------------------------ sending


def _send(services: Services, outgoing: Sequence[_Outgoing], chunk: int, run_at: datetime, report: Report) -> bool:
    """Hand the batch's e-mails to the relay, ``chunk`` per connection; each delivered one leaves the queue and
    its reminders (claimed by this run: ``created_at`` is the run's moment) are marked sent. False when the relay
    refuses for now: what is left stays queued for ``mail.retry``."""
    for start in range(0, len(outgoing), chunk):
        part = outgoing[start : start + chunk]
        deliveries = services.mailer.send_many([item.mail for item in part])
        done = [item for item, d in zip(part, deliveries, strict=True) if d.delivered or d.permanent]
        delivered = [item.patient_id for item, d in zip(part, deliveries, strict=True) if d.delivered]
        with services.db.unit_of_work() as db:
            if done:
                db.execute(delete(QueuedMail).where(QueuedMail.id.in_([item.queued_id for item in done])))
            if delivered:
                db.execute(
                    update(Reminder)
                    .where(Reminder.patient_id.in_(delivered), Reminder.created_at == run_at)
                    .values(sent_at=utcnow())
                    .execution_options(synchronize_session=False)
                )
        report.sent += len(delivered)
        report.dropped += len(done) - len(delivered)
        if len(done) < len(part):
            report.kept += len(outgoing) - start - len(done)
            log.warning(
                "relais de messagerie indisponible : %d rappel(s) laissés en file", len(outgoing) - start - len(done)
            )
            return False
    return True


def _purge(services: Services, today: date) -> None:
    with services.db.unit_of_work() as db:
        db.execute(delete(Reminder).where(Reminder.due_on < today - timedelta(days=KEEP_DAYS)))


# ------------------------------------------------------------------ the run


def run(
    services: Services,
    today: date | None = None,
    *,
    batch: int = BATCH,
    chunk: int = CHUNK,
    hook: Hook | None = None,
) -> Report:
    """The daily run (the worker's job ``agenda.reminders``). ``hook(stage, people)`` is called after each
    batch is claimed (« claimed ») and after it is sent (« sent ») — for tests that stop a run midway."""
    now = utcnow()
    today = today or now.astimezone(PARIS).date()
    report = Report()
    relay_up, after = True, ""
    while True:
        with services.db.unit_of_work() as db:
            people = _people(db, after, batch)
        if not people:
            break
        try:
            outgoing = _claim(services, people, today, now, report)
        except IntegrityError:  # another run claimed some of these meanwhile: read them again
            outgoing = _claim(services, people, today, now, report)
        report.people += len(people)
        after = people[-1].id
        if hook:
            hook("claimed", report.people)
        if relay_up and outgoing:
            relay_up = _send(services, outgoing, chunk, now, report)
        elif outgoing:
            report.kept += len(outgoing)
        if hook:
            hook("sent", report.people)
    _purge(services, today)
    return report


def job(services: Services) -> int:
    """The worker's daily job: the e-mails queued (one per person reminded)."""
    report = run(services)
    if report.emails:
        log.info(
            "rappels : %d personne(s), %d rappel(s), %d e-mail(s), %d envoyé(s), %d en file",
            report.people,
            report.reminders,
            report.emails,
            report.sent,
            report.kept,
        )
    return report.emails
