"""The agenda's rules and store (AGD-1): what a typed appointment or reminder must be (French messages, French
time), the calendar views' arithmetic, events sealed with the patient's key under ``agenda:<id>``, the policy's
scope (a professional reads only what they gave), the erasure of every agenda table with the space, the demo
loaded twice, and the history's words for the four agenda actions."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select

from carnet.agenda.model import events as rules
from carnet.agenda.model.events import EventError, TypedEvent
from carnet.agenda.service import calendar, events, portal
from carnet.agenda.tables import AgendaEvent, CalendarFeed, PreventionAnswers, Reminder
from carnet.bootstrap import Services
from carnet.demo import load_agenda_demo
from carnet.enrolment.service import lifecycle
from carnet.hall.actors import Actor, ActorKind
from carnet.hall.guard import AccessDenied
from carnet.hall.policy import Action
from carnet.hall.tables import AuditEntry
from carnet.hall.vocabulary import PatientStatus
from carnet.history import labels as history_labels
from carnet.history.service import KIND_ACTIONS
from carnet.people.tables import Account, Patient, Professional
from carnet.storage import keyring

# ------------------------------------------------------------------ the rules (pure)


def typed(**fields: object) -> TypedEvent:
    values: dict[str, object] = {"title": "Dentiste", "day": "2031-03-10", "start": "10:30", "end": "11:15"}
    values.update(fields)
    return TypedEvent(**values)  # type: ignore[arg-type]


def test_an_appointment_is_kept_in_utc_from_french_time() -> None:
    kept = rules.clean(typed(place="  Ajaccio\t centre ", with_whom="Dr Leca", comment="Ligne 1\r\nLigne 2"))
    assert kept.starts_at == datetime(2031, 3, 10, 9, 30, tzinfo=UTC)  # winter: UTC+1
    assert kept.ends_at == datetime(2031, 3, 10, 10, 15, tzinfo=UTC)
    assert kept.place == "Ajaccio centre" and kept.with_whom == "Dr Leca" and kept.comment == "Ligne 1\nLigne 2"
    summer = rules.clean(typed(day="2031-07-10"))
    assert summer.starts_at == datetime(2031, 7, 10, 8, 30, tzinfo=UTC)  # summer: UTC+2


def test_an_all_day_reminder_starts_at_french_midnight_and_has_no_place() -> None:
    kept = rules.clean(typed(kind=rules.REMINDER, all_day=True, start="", end="", place="ignoré", with_whom="x"))
    assert kept.all_day and kept.ends_at is None
    assert kept.starts_at == datetime(2031, 3, 9, 23, 0, tzinfo=UTC)
    assert kept.place == "" and kept.with_whom == ""
    assert rules.hours_text(kept.starts_at, kept.ends_at, True) == "Toute la journée"


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"title": "  "}, "title", "« Titre » : ce champ est obligatoire."),
        ({"title": "x" * 201}, "title", "« Titre » : 200 caractères au plus."),
        ({"day": ""}, "day", "« Date » : ce champ est obligatoire."),
        ({"day": "2031-02-30"}, "day", "« Date » : la date n'est pas valide (jour/mois/année)."),
        ({"day": "1850-01-01"}, "day", "« Date » : choisissez une date entre 1900 et 2100."),
        ({"start": ""}, "start", "« Heure de début » : indiquez l'heure, ou cochez « Toute la journée »."),
        ({"start": "25:00"}, "start", "« Heure de début » : l'heure n'est pas valide"),
        ({"end": "10:00"}, "end", "« Heure de fin » : elle doit être après l'heure de début."),
        ({"end": "10:30"}, "end", "« Heure de fin » : elle doit être après l'heure de début."),
        ({"comment": "x" * 2001}, "comment", "« Commentaire » : 2000 caractères au plus."),
        ({"kind": "autre"}, "", "Choisissez un rendez-vous ou un rappel."),
    ],
)
def test_what_cannot_be_kept_is_told_in_french_on_its_field(fields: dict[str, str], field: str, message: str) -> None:
    with pytest.raises(EventError) as caught:
        rules.clean(typed(**fields))
    assert caught.value.field == field
    assert caught.value.message.startswith(message)


def test_control_characters_never_reach_what_is_kept() -> None:
    kept = rules.clean(typed(title="Den\x00tiste\u202e", comment="a\x07b\nc"))
    assert kept.title == "Dentiste" and kept.comment == "ab\nc"


def test_the_month_and_week_views_cover_whole_weeks_from_monday() -> None:
    weeks = rules.month_weeks(date(2026, 12, 5))
    assert weeks[0][0] == date(2026, 11, 30) and weeks[-1][-1] == date(2027, 1, 3)
    assert all(len(week) == 7 and week[0].weekday() == 0 for week in weeks)
    assert rules.week_days(date(2026, 12, 5))[0] == date(2026, 11, 30)
    assert rules.step("mois", date(2026, 12, 31), forward=True) == date(2027, 1, 1)
    assert rules.step("mois", date(2026, 1, 31), forward=False) == date(2025, 12, 1)
    assert rules.step("semaine", date(2026, 12, 5), forward=False) == date(2026, 11, 23)
    assert rules.month_title(date(2026, 8, 1)) == "août 2026"
    assert rules.long_day(date(2026, 12, 1)) == "mardi 1er décembre 2026"
    assert rules.week_title(date(2026, 12, 31)) == "Semaine du 28 décembre 2026 au 3 janvier 2027"
    assert rules.parse_day("pas une date", date(2026, 1, 2)) == date(2026, 1, 2)
    assert rules.parse_day("3000-01-01", date(2026, 1, 2)) == date(2026, 1, 2)
    assert rules.view_of("agenda") == "liste"


# ------------------------------------------------------------------ the store (SQLite and PostgreSQL)


def _patient_actor(services: Services, login: str = "marie-ange.santoni") -> Actor:
    with services.db.unit_of_work() as db:
        account = db.scalar(select(Account).where(Account.login == login))
        assert account is not None and account.patient_id
        return Actor(ActorKind.PATIENT, account.id, account.display_name, patient_id=account.patient_id)


def _pro_actor(services: Services, login: str) -> Actor:
    with services.db.unit_of_work() as db:
        account = db.scalar(select(Account).where(Account.login == login))
        assert account is not None and account.professional_id
        pro = db.get(Professional, account.professional_id)
        assert pro is not None
        return Actor(
            ActorKind.PROFESSIONAL,
            account.id,
            account.display_name,
            professional_id=pro.id,
            rpps=pro.rpps,
            profession_code=pro.profession_code,
        )


def test_an_event_is_sealed_with_the_patients_key_under_its_own_id(demo: Services) -> None:
    marie = _patient_actor(demo)
    assert marie.patient_id
    added = portal.add(demo, marie, marie.patient_id, typed(title="Cardiologue secret", comment="Bilan"))
    with demo.db.unit_of_work() as db:
        row = db.get(AgendaEvent, added.id)
        assert row is not None
        assert b"Cardiologue" not in row.sealed and row.source == "patient" and row.author_id == marie.patient_id
        key = keyring.data_key(db, demo.keyring, marie.patient_id, create=False)
        assert events.view_of(key, row).title == "Cardiologue secret"
        other = AgendaEvent(**{c.name: getattr(row, c.name) for c in AgendaEvent.__table__.columns} | {"id": "x"})
        with pytest.raises(Exception):  # noqa: B017 — the associated data binds the sealed words to their row
            events.view_of(key, other)


def test_a_professional_reads_only_what_they_gave(demo: Services) -> None:
    marie = _patient_actor(demo)
    doctor = _pro_actor(demo, "dr.ferracci")
    dentist = _pro_actor(demo, "dominique.orsini")
    space = marie.patient_id
    assert space
    portal.add(demo, marie, space, typed(title="Le mien"))
    given = portal.add(demo, doctor, space, typed(title="Donné par le médecin"))
    assert given.source == "professional" and not given.from_space
    seen_by_doctor = portal.agenda(demo, doctor, space, "mois", date(2031, 3, 10))
    assert [e.title for e in seen_by_doctor.events] == ["Donné par le médecin"] and not seen_by_doctor.whole
    assert portal.agenda(demo, dentist, space, "mois", date(2031, 3, 10)).events == []
    everything = portal.agenda(demo, marie, space, "mois", date(2031, 3, 10))
    assert {e.title for e in everything.events} == {"Le mien", "Donné par le médecin"} and everything.whole
    with pytest.raises(events.EventNotFound):
        portal.event_page(demo, dentist, space, given.id)
    with pytest.raises(events.EventNotFound):
        portal.cancel(demo, dentist, space, given.id)


def test_the_people_of_the_space_do_not_rewrite_a_professionals_appointment(demo: Services) -> None:
    marie = _patient_actor(demo)
    doctor = _pro_actor(demo, "dr.ferracci")
    space = marie.patient_id
    assert space
    given = portal.add(demo, doctor, space, typed(title="Suivi"))
    with pytest.raises(portal.EventLocked):
        portal.update(demo, marie, space, given.id, typed(title="Changé"))
    assert portal.cancel(demo, marie, space, given.id).cancelled  # she cancels it …
    assert portal.agenda(demo, doctor, space, "mois", date(2031, 3, 10)).events[0].cancelled  # … he sees it
    assert portal.delete(demo, marie, space, given.id) == rules.APPOINTMENT  # and she may take it off her agenda
    assert portal.agenda(demo, doctor, space, "mois", date(2031, 3, 10)).events == []


def test_a_professional_manages_no_subscription_link(demo: Services) -> None:
    marie = _patient_actor(demo)
    doctor = _pro_actor(demo, "dr.ferracci")
    assert marie.patient_id
    with pytest.raises(AccessDenied) as caught:
        calendar.create_feed(demo, doctor, marie.patient_id, with_details=True)
    assert caught.value.decision.rule == "feed_people_only"
    stranger = _patient_actor(demo, "pierre-paul.luciani")
    with pytest.raises(AccessDenied):
        calendar.create_feed(demo, stranger, marie.patient_id, with_details=False)
    created = calendar.create_feed(demo, marie, marie.patient_id, with_details=False)
    with demo.db.unit_of_work() as db:
        feed = db.get(CalendarFeed, created.feed.id)
        assert feed is not None and feed.token_hash == calendar.token_hash(created.token)
        assert created.token not in feed.token_hash


def test_deleting_a_space_erases_every_agenda_table(demo: Services) -> None:
    marie = _patient_actor(demo)
    space = marie.patient_id
    assert space
    portal.add(demo, marie, space, typed())
    calendar.create_feed(demo, marie, space, with_details=True)
    with demo.db.unit_of_work() as db:
        db.add(PreventionAnswers(patient_id=space, sealed=b"x"))
        db.add(Reminder(patient_id=space, key_token="t" * 32, due_on=date(2031, 1, 1)))

    def count(table: type) -> int:
        with demo.db.unit_of_work() as db:
            column = table.patient_id  # type: ignore[attr-defined]
            return int(db.scalar(select(func.count()).select_from(table).where(column == space)) or 0)

    tables = (AgendaEvent, CalendarFeed, PreventionAnswers, Reminder)
    assert all(count(table) for table in tables)
    with demo.db.unit_of_work() as db:  # closed more than ten years ago: destroyed like a deletion request
        patient = db.get(Patient, space)
        assert patient is not None
        patient.status, patient.closed_at = PatientStatus.CLOSED, datetime(2010, 1, 1, tzinfo=UTC)
    assert lifecycle.purge_archives(demo) == 1
    assert [count(table) for table in tables] == [0, 0, 0, 0]


def test_the_demo_agenda_loads_once_whatever_the_key(demo: Services) -> None:
    load_agenda_demo(demo)
    with demo.db.unit_of_work() as db:
        first = db.scalar(select(func.count()).select_from(AgendaEvent)) or 0
        by_doctor = db.scalar(select(func.count()).where(AgendaEvent.source == "professional")) or 0
        assert first >= 5 and by_doctor == 1
        for row in db.scalars(select(AgendaEvent)):
            row.sealed = b"sealed under another master key"  # counted, never opened
    load_agenda_demo(demo)
    with demo.db.unit_of_work() as db:
        assert db.scalar(select(func.count()).select_from(AgendaEvent)) == first


def test_every_agenda_action_has_its_words_and_its_filter(demo: Services) -> None:
    for action in (Action.AGENDA_READ, Action.AGENDA_WRITE, Action.PREVENTION_READ, Action.PREVENTION_WRITE):
        done, attempted = history_labels.words(str(action))
        assert attempted and not attempted.startswith("agenda")
        assert "agenda" in done or "examen" in done
        assert not done.startswith("a effectué l'action")
    assert {"agenda.read", "prevention.read"} <= KIND_ACTIONS["consultations"]
    assert {"agenda.write", "prevention.write"} <= KIND_ACTIONS["modifications"]
    marie = _patient_actor(demo)
    assert marie.patient_id
    portal.add(demo, marie, marie.patient_id, typed(kind=rules.REMINDER, all_day=True, start="", end=""))
    with demo.db.unit_of_work() as db:
        entry = db.scalar(
            select(AuditEntry).where(AuditEntry.action == "agenda.write").order_by(AuditEntry.at.desc()).limit(1)
        )
        assert entry is not None and entry.details["op"] == "add"
        assert history_labels.DETAILED["agenda.write"].format_map(entry.details) == "a ajouté un rappel à l'agenda"
        assert "Dentiste" not in str(entry.details)  # the history says what was done, never what the event says
