"""AGD-3: the daily reminders, through a real SMTP server (aiosmtpd) — one e-mail per person and run, no health
detail unless the person opted in, nothing when their settings say no, never twice (a second run, a run killed
midway in another process, a run failing after a batch, a relay outage), and the settings page « Rappels » with
the three actors. On SQLite and PostgreSQL."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select, update

from carnet.agenda.model.prevention import evaluate, load_calendar
from carnet.agenda.service import events, reminders
from carnet.agenda.tables import Reminder
from carnet.bootstrap import Services, build_services
from carnet.hall.actors import Actor, ActorKind
from carnet.hall.tables import AuditEntry
from carnet.hall.vocabulary import PARIS
from carnet.jobs.schedule import all_jobs
from carnet.jobs.worker import Worker
from carnet.mail import queue
from carnet.mail.tables import QueuedMail
from carnet.people.service import preferences
from carnet.people.tables import Patient, PatientSettings
from carnet.storage.types import utcnow
from tests.conftest import csrf_of, empty_tables, log_in, make_settings, text_of
from tests.support.actors import Actors

ROOT = Path(__file__).resolve().parents[2]


class Collect:
    """The SMTP server's mailbox: every message, with its envelope recipients."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append((list(envelope.rcpt_tos), message))  # type: ignore[arg-type]
        return "250 Message accepted for delivery"

    def per_recipient(self) -> Counter[str]:
        return Counter(rcpt for rcpts, _ in self.messages for rcpt in rcpts)

    def text_for(self, address: str) -> str:
        [body] = [
            m.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
            for rcpts, m in self.messages
            if address in rcpts
        ]
        return str(body)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Relay:
    port: int
    box: Collect
    controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.box, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def relay() -> Iterator[Relay]:
    server = Relay(free_port(), Collect())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def mailing(tmp_path: Path, database_url: str, relay: Relay) -> Iterator[Services]:
    """Services whose mail goes to the real SMTP server of ``relay``."""
    settings = make_settings(
        tmp_path / "data", database_url, smtp_url=f"smtp://127.0.0.1:{relay.port}", base_url="https://carnet.exemple.fr"
    )
    services = build_services(settings)
    empty_tables(services)
    yield services
    services.db.dispose()


def today() -> date:
    return utcnow().astimezone(PARIS).date()


def years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def person(
    services: Services, name: str, birth: date, sex: str, *, email: bool = True, status: str = "active", **settings: Any
) -> str:
    with services.db.unit_of_work() as db:
        number = db.scalar(select(func.count()).select_from(Patient)) or 0
        patient = Patient(
            ins=f"{1 if sex == 'M' else 2}{number:014d}",
            birth_name=name.upper(),
            first_names=name.capitalize(),
            birth_date=birth,
            sex=sex,
            birth_place="2A004",
            email=f"{name}@exemple.fr" if email else None,
            status=status,
        )
        db.add(patient)
        db.flush()
        if settings:
            db.add(PatientSettings(patient_id=patient.id, **settings))
        return patient.id


def turning(services: Services, name: str, years: int, in_days: int, sex: str = "M", **kw: Any) -> str:
    """Someone whose ``years``-th birthday is in ``in_days`` days."""
    return person(services, name, years_before(today() + timedelta(days=in_days), years), sex, **kw)


def appointment(services: Services, patient_id: str, title: str, in_days: int, hour: int = 14, **kw: Any) -> str:
    me = Actor(ActorKind.PATIENT, "compte", "La personne", patient_id=patient_id)
    starts = datetime.combine(today() + timedelta(days=in_days), time(hour, 30), PARIS).astimezone(UTC)
    with services.db.unit_of_work() as db:
        event = events.store(services, db, me, patient_id, events.NewEvent("rendez_vous", title, starts, **kw))
        return event.id


def expected_codes(birth: date, sex: str, days: int = 7) -> list[str]:
    """What the engine says falls due within the window: the reminders the person must get."""
    t = today()
    return [
        s.code
        for s in evaluate(load_calendar(), birth, sex, t)
        if s.status == "a_planifier" and s.due is not None and t <= s.due <= t + timedelta(days=days)
    ]


def claimed(services: Services) -> int:
    with services.db.unit_of_work() as db:
        return db.scalar(select(func.count()).select_from(Reminder)) or 0


def queued(services: Services) -> int:
    with services.db.unit_of_work() as db:
        return db.scalar(select(func.count()).select_from(QueuedMail)) or 0


def french(day: date) -> str:
    return reminders.french_day(day)


# ------------------------------------------------------------------ what is sent


def test_one_email_per_person_without_health_detail_then_nothing_more(mailing: Services, relay: Relay) -> None:
    t = today()
    turning(mailing, "ghjuvanni", 45, 3)  # dTP booster and Mon bilan prévention at 45
    woman = turning(mailing, "maria", 50, 2, "F")  # breast and colorectal screenings at 50
    busy = person(mailing, "anton", date(1990, 5, 5), "M")
    appointment(mailing, busy, "Consultation de cardiologie", 2)
    appointment(mailing, busy, "Contrôle dans trois semaines", 20)  # beyond the 7 days
    appointment(mailing, busy, "Annulé", 1, status="annule")
    person(mailing, "rien", date(1990, 5, 5), "M")  # nothing due
    assert expected_codes(years_before(t + timedelta(days=3), 45), "M") == ["VAC-DTP-45", "BILAN-PREVENTION-45"]
    assert expected_codes(years_before(t + timedelta(days=2), 50), "F") == ["DEP-SEIN", "DEP-COLORECTAL"]

    report = reminders.run(mailing)
    assert (report.people, report.reminders, report.emails, report.sent) == (4, 5, 3, 3)
    assert relay.box.per_recipient() == {"ghjuvanni@exemple.fr": 1, "maria@exemple.fr": 1, "anton@exemple.fr": 1}
    text = relay.box.text_for("ghjuvanni@exemple.fr")
    due = french(t + timedelta(days=3))
    assert text.count(f"un examen ou un vaccin recommandé, à prévoir à partir du {due}") == 2
    assert "d'ici 7 jours" in text and "aucune information médicale" in text
    assert "https://carnet.exemple.fr/espace/" in text and "/prevention" in text
    rdv = relay.box.text_for("anton@exemple.fr")
    assert f"- un rendez-vous le {french(t + timedelta(days=2))} à 14 h 30." in rdv and "/agenda" in rdv
    for words in ("Diphtérie", "bilan", "Dépistage", "sein", "colorectal", "cardiologie", "trois semaines", "Annulé"):
        for address in ("ghjuvanni@exemple.fr", "maria@exemple.fr", "anton@exemple.fr"):
            assert words not in relay.box.text_for(address), (words, address)
    [(_, message)] = [m for m in relay.box.messages if "maria@exemple.fr" in m[0]]
    assert message["Subject"] == "Carnet : vos rappels des prochains jours"
    with mailing.db.unit_of_work() as db:  # the claims say neither what nor which appointment
        rows = db.scalars(select(Reminder).where(Reminder.patient_id == woman)).all()
    assert {r.due_on for r in rows} == {t + timedelta(days=2)} and all(r.sent_at for r in rows)
    assert not any("DEP" in r.key_token for r in rows) and len({r.key_token for r in rows}) == 2

    again = reminders.run(mailing)
    assert (again.reminders, again.emails) == (0, 0)
    assert len(relay.box.messages) == 3 and queued(mailing) == 0


def test_with_details_opted_in_the_email_names_the_items_and_the_appointment(mailing: Services, relay: Relay) -> None:
    detailed = {"reminder_details": True, "reminder_days": 10}
    turning(mailing, "ghjuvanni", 45, 9, **detailed)  # 9 days: inside their 10
    busy = person(mailing, "anton", date(1990, 5, 5), "M", **detailed)
    appointment(mailing, busy, "Consultation de cardiologie", 2, hour=9)
    reminders.run(mailing)
    text = relay.box.text_for("ghjuvanni@exemple.fr")
    assert "Vaccination : Diphtérie, tétanos, polio (dTP) — rappel à 45 ans, à prévoir à partir du" in text
    assert "Bilan prévention : Mon bilan prévention" in text and "d'ici 10 jours" in text
    assert "aucune information médicale" not in text and "Vous avez choisi de recevoir le détail" in text
    rdv = relay.box.text_for("anton@exemple.fr")
    assert f"Rendez-vous : « Consultation de cardiologie », le {french(today() + timedelta(days=2))} à 9 h 30." in rdv


def test_settings_off_mean_no_reminder(mailing: Services, relay: Relay) -> None:
    off = {"notify_appointments": False, "notify_exams": False, "notify_screening": False}
    turning(mailing, "silence", 45, 3, **off)
    turning(mailing, "sansdepistage", 50, 2, "F", notify_screening=False)  # only screenings due: nothing
    turning(mailing, "sansexamens", 45, 3, notify_exams=False)  # only vaccinations and check-ups due: nothing
    quiet = person(mailing, "sansrdv", date(1990, 5, 5), "M", notify_appointments=False)
    appointment(mailing, quiet, "Consultation", 1)
    turning(mailing, "court", 45, 5, reminder_days=3)  # due in 5 days, reminded 3 days ahead: not yet
    turning(mailing, "sansadresse", 45, 3, email=False)
    turning(mailing, "ferme", 45, 3, status="closed")
    screening_only = turning(mailing, "depistage", 50, 2, "F", notify_exams=False)
    report = reminders.run(mailing)
    assert relay.box.per_recipient() == {"depistage@exemple.fr": 1}
    assert report.people == 6  # the open spaces with an e-mail address
    with mailing.db.unit_of_work() as db:
        assert {r.patient_id for r in db.scalars(select(Reminder))} == {screening_only}
    later = reminders.run(mailing, today() + timedelta(days=2))  # two days on, « court » is within its 3 days
    assert later.emails == 1 and relay.box.per_recipient()["court@exemple.fr"] == 1


# ------------------------------------------------------------------ durable and idempotent

KILLED_RUN = textwrap.dedent(
    """
    import os, sys
    from carnet.agenda.service import reminders
    from carnet.bootstrap import build_services
    from carnet.config import Settings

    stop_after = int(sys.argv[1])

    def hook(stage, people):
        if stage == "claimed" and people >= stop_after:
            os._exit(3)  # killed: the batch just claimed is queued, not yet handed to the relay

    reminders.run(build_services(Settings()), batch=2, hook=hook)
    """
)


def crowd(services: Services, size: int = 8) -> dict[str, str]:
    """``size`` people with something due this week (birthdays of 45 years in 0 to 6 days), e-mail → id."""
    return {f"p{n}@exemple.fr": turning(services, f"p{n}", 45, n % 7, "M" if n % 2 else "F") for n in range(size)}


def test_a_run_killed_midway_loses_nothing_and_sends_nothing_twice(
    mailing: Services, relay: Relay, tmp_path: Path
) -> None:
    people = crowd(mailing)
    settings = mailing.settings
    env = {
        **os.environ,
        "CARNET_DATA_DIR": str(settings.data_dir),
        "CARNET_DATABASE_URL": settings.database_url,
        "CARNET_SMTP_URL": settings.smtp_url,
        "CARNET_BASE_URL": settings.base_url,
        "CARNET_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT / "src"),
    }
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, "4"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert killed.returncode == 3, killed.stderr
    assert len(relay.box.messages) == 2  # the first batch went out; the second was claimed and queued
    assert claimed(mailing) == 8 and queued(mailing) == 2  # 2 people × 2 reminders claimed per batch

    resumed = reminders.run(mailing, batch=2)
    assert (resumed.people, resumed.emails, resumed.sent) == (8, 4, 4)  # only the four not claimed before
    assert queued(mailing) == 2  # the killed batch's e-mails wait out their hold in the mail queue
    with mailing.db.unit_of_work() as db:  # … which passes: the mail queue's own job sends them
        db.execute(update(QueuedMail).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
    assert queue.retry_job(mailing) == 2
    assert reminders.run(mailing, batch=2).emails == 0
    assert relay.box.per_recipient() == dict.fromkeys(people, 1)
    assert queued(mailing) == 0 and claimed(mailing) == 16


def test_a_run_failing_after_a_batch_resumes_without_duplicates(mailing: Services, relay: Relay) -> None:
    people = crowd(mailing, 6)

    def fail(stage: str, count: int) -> None:
        if stage == "sent" and count >= 2:
            raise RuntimeError("arrêt brutal")

    with pytest.raises(RuntimeError):
        reminders.run(mailing, batch=2, hook=fail)
    assert len(relay.box.messages) == 2 and queued(mailing) == 0
    assert reminders.run(mailing, batch=2).emails == 4
    assert relay.box.per_recipient() == dict.fromkeys(people, 1)


def test_with_the_relay_down_reminders_wait_in_the_queue(mailing: Services, relay: Relay) -> None:
    people = crowd(mailing, 4)
    relay.stop()
    report = reminders.run(mailing, batch=2)
    assert (report.emails, report.sent, report.kept) == (4, 0, 4)
    assert queued(mailing) == 4 and claimed(mailing) == 8
    with mailing.db.unit_of_work() as db:  # sealed: no address, no date in clear
        assert not any("exemple.fr" in s for s in db.scalars(select(QueuedMail.sealed)))
    assert reminders.run(mailing, batch=2).emails == 0  # claimed: not queued twice
    relay.start()
    with mailing.db.unit_of_work() as db:
        db.execute(update(QueuedMail).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
    assert queue.retry_job(mailing) == 4
    assert relay.box.per_recipient() == dict.fromkeys(people, 1)


def test_the_worker_runs_the_daily_job(mailing: Services, relay: Relay) -> None:
    assert "agenda.reminders" in {job.name for job in all_jobs()}
    turning(mailing, "ghjuvanni", 45, 1)
    worker = Worker(mailing, all_jobs())
    assert worker.run_once()["agenda.reminders"] == 1
    assert relay.box.per_recipient() == {"ghjuvanni@exemple.fr": 1}
    assert "agenda.reminders" not in worker.run_once()  # daily: not due again
    assert "agenda.reminders" in worker.run_once(utcnow() + timedelta(days=1, minutes=1))
    assert len(relay.box.messages) == 1


# ------------------------------------------------------------------ the settings page « Rappels »


def test_the_person_chooses_her_reminders_and_others_cannot(actors: Actors, demo: Services) -> None:
    url = f"/espace/{actors.patient_id}/parametres"
    page = actors.patient.get(url)
    text = text_of(page)
    assert "Rappels" in text and "Inclure le détail dans l'e-mail" in text and "Attention" in text
    assert 'name="reminder_days" value="7"' in page.text
    form = {"notify_appointments": "oui", "notify_screening": "oui", "reminder_days": "12", "reminder_details": "oui"}
    saved = actors.patient.post(f"{url}/rappels", data={**form, "csrf_token": csrf_of(page.text)})
    assert saved.status_code == 303 and saved.headers["location"] == f"{url}?rappels=1#rappels"
    with demo.db.unit_of_work() as db:
        prefs = preferences.settings_of(db, actors.patient_id)
        chosen = (prefs.notify_appointments, prefs.notify_exams, prefs.notify_screening)
        assert chosen == (True, False, True) and (prefs.reminder_days, prefs.reminder_details) == (12, True)
        [entry] = db.scalars(
            select(AuditEntry).where(AuditEntry.patient_id == actors.patient_id, AuditEntry.action == "settings.write")
        ).all()
    assert entry.details == {"notify_exams": False, "reminder_days": 12, "reminder_details": True}
    page = actors.patient.get(f"{url}?rappels=1")
    assert "Vos choix de rappels sont enregistrés." in text_of(page) and 'value="12"' in page.text

    for typed in ("0", "31", "sept", ""):
        bad = actors.patient.post(f"{url}/rappels", data={"reminder_days": typed, "csrf_token": csrf_of(page.text)})
        assert bad.status_code == 400, typed
        assert "Le délai des rappels est un nombre de jours entre 1 et 30." in text_of(bad)
    with demo.db.unit_of_work() as db:
        assert preferences.settings_of(db, actors.patient_id).reminder_days == 12

    for other, home in ((actors.professional, "/pro"), (actors.stranger, "/espace"), (actors.unauthorised, "/pro")):
        token = csrf_of(other.get(home, follow_redirects=True).text)
        refused = other.post(f"{url}/rappels", data={"reminder_days": "3", "csrf_token": token})
        assert refused.status_code == 403
    with demo.db.unit_of_work() as db:
        assert preferences.settings_of(db, actors.patient_id).reminder_days == 12


def test_the_legal_representative_sets_the_childs_reminders(demo: Services, new_client: Any) -> None:
    mother = new_client()
    log_in(mother, demo, "laetitia.casanova")
    with demo.db.unit_of_work() as db:
        child = db.scalar(select(Patient.id).where(Patient.first_names == "Lisandru"))
    url = f"/espace/{child}/parametres"
    token = csrf_of(mother.get(url).text)
    assert mother.post(f"{url}/rappels", data={"reminder_days": "2", "csrf_token": token}).status_code == 303
    with demo.db.unit_of_work() as db:
        prefs = preferences.settings_of(db, child)
    assert (prefs.reminder_days, prefs.notify_appointments, prefs.notify_exams) == (2, False, False)
