"""Benchmark of the daily reminder job (AGD-3; issue #11 target: the 345,000 people of Corsica in under 5 minutes,
e-mails through a real SMTP server).

    .venv/bin/python bench/reminders.py [--people 345000] [--email-share 0.9] [--seed 2025]
        [--database-url postgresql://postgres@127.0.0.1:5432/postgres] [--keep]

1. A fresh instance (``carnet migrate``: SQLite in a temporary data folder, or a temporary PostgreSQL database)
   is filled directly with ``--people`` open spaces — ages 0 to 100 (fewer past 85), both sexes, ``--email-share``
   of them with an e-mail address — and varied histories, sealed with each person's data key as Carnet seals
   them: vaccinations in the medical profile (written by name: « Infanrix Hexa », « ROR », « Boostrix Tetra »,
   « grippe »…), answers to the recommended examinations (« fait le… », « pas fait »), appointments in the next
   five weeks (some cancelled), and settings (reminders off for some, other delays, details for some).
2. A local SMTP server (aiosmtpd, in its own process) accepts and counts the messages and their recipients.
3. The job runs as the worker runs it, in its own process: ``Worker(services, agenda.jobs.JOBS).run_once()``
   — every person read, evaluated, reminded, the e-mails claimed, queued and sent — timed, with its peak memory.
   A second run follows (nothing new to send: the idempotence, measured).
Prints the figures and the load average; fails if the server did not receive exactly the e-mails sent, or got
two for one person.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from bench.tempdb import create_database, drop_database  # noqa: E402

SINK = r"""
import asyncio, os, signal, sys
from aiosmtpd.smtp import SMTP

class Count:
    messages = 0
    recipients = set()
    twice = 0
    async def handle_DATA(self, server, session, envelope):
        Count.messages += 1
        for rcpt in envelope.rcpt_tos:
            if rcpt in Count.recipients:
                Count.twice += 1
            Count.recipients.add(rcpt)
        return "250 OK"

async def main(port):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(Count()), "127.0.0.1", port)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await stop.wait()
    server.close()
    times = os.times()
    print(Count.messages, len(Count.recipients), Count.twice, round(times.user + times.system, 1), flush=True)

asyncio.run(main(int(sys.argv[1])))
"""

JOB = r"""
import resource, sys, time
from carnet.agenda import jobs
from carnet.agenda.service import reminders
from carnet.bootstrap import build_services
from carnet.config import Settings
from carnet.jobs.worker import Worker

services = build_services(Settings())
started = time.perf_counter()
if sys.argv[1] == "worker":  # the worker's own path: lease, job, release
    done = Worker(services, jobs.JOBS).run_once()
    print("emails", done.get("agenda.reminders", -1))
else:
    report = reminders.run(services)
    print("people", report.people, "reminders", report.reminders, "emails", report.emails, "sent", report.sent,
          "kept", report.kept)
usage = resource.getrusage(resource.RUSAGE_SELF)
print("seconds", round(time.perf_counter() - started, 2), "peak_mb", round(usage.ru_maxrss / 1024),
      "cpu", round(usage.ru_utime + usage.ru_stime, 1))
"""

VACCINE_NAMES = {  # what people write in their profile, per family (the calendar's labels find the family)
    "HEXA": ["Infanrix Hexa", "Hexyon", "Vaxelis"],
    "PNEUMO": ["Prevenar 13", "Prevenar 20"],
    "MENB": ["Bexsero"],
    "MENACWY": ["Nimenrix", "Menquadfi"],
    "ROR": ["ROR", "Priorix", "M-M-RVaxPro"],
    "DTP": ["Boostrix Tetra", "Repevax", "Revaxis", "dTcaPolio"],
    "HPV": ["Gardasil 9"],
    "GRIPPE": ["grippe", "Efluelda", "Vaxigrip Tetra"],
    "ZONA": ["Shingrix"],
}
ANSWER_CODES = ["DEP-SEIN", "DEP-COLORECTAL", "DEP-COL-UTERUS-HPV", "BILAN-PREVENTION-45", "VAC-DTP-45"]
TITLES = ["Consultation chez le médecin traitant", "Dentiste", "Kinésithérapie", "Prise de sang", "Ophtalmologie"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _birth(rng: random.Random, today: date) -> date:
    years = rng.random() * 85 if rng.random() < 0.93 else 85 + rng.random() * 15
    return today - timedelta(days=int(years * 365.25))


def _vaccinations(rng: random.Random, birth: date, today: date) -> list[tuple[str, date]]:
    age_months = (today - birth).days / 30.44
    found = []
    plan = [
        ("HEXA", (2, 4, 11)),
        ("PNEUMO", (2, 4, 11)),
        ("MENB", (3, 5, 12)),
        ("MENACWY", (6, 12)),
        ("ROR", (12, 17)),
        ("DTP", (72, 132, 300, 540, 780)),
        ("HPV", (140, 146)),
        ("ZONA", (790, 792)),
    ]
    chance = 0.85 if age_months < 120 else 0.35  # young parents record more than their elders remember
    for family, ages in plan:
        for at in ages:
            if age_months > at + 1 and rng.random() < chance:
                day = birth + timedelta(days=int(at * 30.44) + rng.randrange(0, 20))
                found.append((rng.choice(VACCINE_NAMES[family]), day))
    if age_months > 65 * 12 and rng.random() < 0.5:
        found.append((rng.choice(VACCINE_NAMES["GRIPPE"]), date(today.year - 1, 10, 20) + timedelta(rng.randrange(60))))
    return found


def populate(url: str, key_file: Path, people: int, email_share: float, seed: int) -> dict[str, int]:
    """Bulk-insert the people and their sealed histories, as Carnet stores them (batches of 5,000)."""
    import orjson
    from sqlalchemy import insert

    from carnet.agenda.tables import AgendaEvent, PreventionAnswers
    from carnet.people.tables import Patient, PatientSettings
    from carnet.profile.tables import ProfileEntry
    from carnet.storage import keyring
    from carnet.storage.db import Database
    from carnet.storage.tables import PatientKey

    rng = random.Random(seed)
    ring = keyring.Keyring(key_file)
    today = datetime.now(UTC).date()
    now = datetime.now(UTC)
    db = Database(url)
    counts = dict.fromkeys(("people", "emails", "keys", "vaccinations", "answers", "events", "settings"), 0)
    rows: dict[Any, list[dict[str, Any]]] = {}

    def flush(conn: Any) -> None:
        for table in (Patient, PatientKey, PatientSettings, ProfileEntry, PreventionAnswers, AgendaEvent):
            if rows.get(table):
                conn.execute(insert(table), rows[table])
        rows.clear()

    with db.engine.begin() as conn:
        for index in range(people):
            pid = str(uuid.uuid4())
            birth, sex = _birth(rng, today), "F" if index % 2 else "M"
            email = rng.random() < email_share
            rows.setdefault(Patient, []).append(
                {
                    "id": pid,
                    "ins": f"{1 if sex == 'M' else 2}{index:014d}",
                    "birth_name": f"NOM{index}",
                    "first_names": "Maria" if sex == "F" else "Ghjuvanni",
                    "birth_date": birth,
                    "sex": sex,
                    "birth_place": "2A004",
                    "email": f"personne{index}@exemple.fr" if email else None,
                    "status": "active",
                    "opened_at": now,
                }
            )
            counts["people"] += 1
            counts["emails"] += email
            data_key = os.urandom(32)
            wrapped, key_id = ring.wrap(data_key)
            rows.setdefault(PatientKey, []).append(
                {"patient_id": pid, "wrapped_key": wrapped, "master_key_id": key_id, "created_at": now}
            )
            counts["keys"] += 1

            for label, day in _vaccinations(rng, birth, today):
                entry_id = str(uuid.uuid4())
                payload = orjson.dumps({"fields": {"label": label, "date": day.isoformat()}})
                rows.setdefault(ProfileEntry, []).append(
                    {
                        "id": entry_id,
                        "patient_id": pid,
                        "section": "vaccinations",
                        "effective_at": datetime(day.year, day.month, day.day, 12, tzinfo=UTC),
                        "sealed": keyring.seal(data_key, payload, b"profile:" + entry_id.encode()),
                        "source": "patient",
                        "author_id": pid,
                        "author_label": "La personne",
                        "masked": False,
                        "created_at": now,
                        "updated_at": now,
                        "version": 1,
                    }
                )
                counts["vaccinations"] += 1
            if rng.random() < 0.12:
                answers = {
                    code: {
                        "answer": "fait" if rng.random() < 0.8 else "non_fait",
                        "date": (today - timedelta(days=rng.randrange(30, 1400))).isoformat(),
                    }
                    for code in rng.sample(ANSWER_CODES, rng.randrange(1, 3))
                }
                rows.setdefault(PreventionAnswers, []).append(
                    {
                        "patient_id": pid,
                        "sealed": keyring.seal(data_key, orjson.dumps(answers), b"prevention:" + pid.encode()),
                        "updated_at": now,
                        "version": 1,
                    }
                )
                counts["answers"] += 1
            for _ in range(rng.choice((0, 0, 0, 0, 0, 1, 2)) if rng.random() < 0.35 else 0):
                event_id = str(uuid.uuid4())
                starts = now + timedelta(minutes=rng.randrange(60, 35 * 24 * 60))
                rows.setdefault(AgendaEvent, []).append(
                    {
                        "id": event_id,
                        "patient_id": pid,
                        "kind": "rendez_vous" if rng.random() < 0.85 else "rappel",
                        "starts_at": starts,
                        "ends_at": starts + timedelta(minutes=30),
                        "all_day": False,
                        "status": "prevu" if rng.random() < 0.92 else "annule",
                        "sealed": keyring.seal(
                            data_key, orjson.dumps({"title": rng.choice(TITLES)}), b"agenda:" + event_id.encode()
                        ),
                        "source": "patient",
                        "author_id": pid,
                        "author_label": "La personne",
                        "created_at": now,
                        "updated_at": now,
                        "version": 1,
                    }
                )
                counts["events"] += 1
            if rng.random() < 0.2:
                rows.setdefault(PatientSettings, []).append(
                    {
                        "patient_id": pid,
                        "notify_appointments": rng.random() < 0.8,
                        "notify_exams": rng.random() < 0.8,
                        "notify_screening": rng.random() < 0.8,
                        "reminder_days": rng.choice((1, 3, 7, 14, 30)),
                        "reminder_details": rng.random() < 0.3,
                    }
                )
                counts["settings"] += 1
            if len(rows.get(Patient, ())) >= 5000:
                flush(conn)
        flush(conn)
    if db.engine.dialect.name == "postgresql":  # statistics, as autovacuum would gather after such a load
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
    db.dispose()
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=345_000)
    parser.add_argument("--email-share", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data folder")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="carnet-bench-reminders-"))
    port = free_port()
    env = {
        **os.environ,
        "CARNET_DATA_DIR": str(work),
        "CARNET_LOG_LEVEL": "WARNING",
        "CARNET_SMTP_URL": f"smtp://127.0.0.1:{port}",
        "CARNET_BASE_URL": "https://carnet.exemple.fr",
        "PYTHONPATH": str(ROOT / "src"),
    }
    pg_db = create_database(args.database_url, env)
    sink = None
    try:
        subprocess.run([sys.executable, "-m", "carnet", "migrate"], env=env, check=True, capture_output=True)
        url = env.get("CARNET_DATABASE_URL") or f"sqlite:///{work / 'carnet.sqlite3'}"
        key_file = work / "keys" / "master.key"
        started = time.perf_counter()
        counts = populate(url, key_file, args.people, args.email_share, args.seed)
        print(f"setup: {counts} in {time.perf_counter() - started:.0f} s")

        sink = subprocess.Popen(
            [sys.executable, "-c", SINK, str(port)], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True
        )
        assert sink.stdout is not None
        sink.stdout.readline()
        load_before = os.getloadavg()
        figures = []
        for mode in ("run", "worker"):
            begin = time.perf_counter()
            done = subprocess.run([sys.executable, "-c", JOB, mode], env=env, capture_output=True, text=True)
            elapsed = time.perf_counter() - begin
            if done.returncode != 0:
                raise SystemExit(f"la tâche a échoué :\n{done.stderr[-3000:]}")
            words = done.stdout.split()
            figures.append((elapsed, {words[i]: float(words[i + 1]) for i in range(0, len(words) - 1, 2)}))
        sink.terminate()
        messages, recipients, twice, sink_cpu = (sink.communicate(timeout=60)[0] or "0 0 0 0").split()
        sink = None
        (elapsed, first), (again, second) = figures
        sent = int(first["sent"])
        backend = "PostgreSQL" if pg_db else "SQLite"
        print(f"backend: {backend}, {os.cpu_count()} cores, load average before {load_before[0]:.2f}")
        print(
            f"first run: {elapsed:6.1f} s wall (job {first['seconds']:.1f} s, CPU {first['cpu']:.1f} s, "
            f"peak {first['peak_mb']:.0f} MB) — {first['people']:.0f} people with an e-mail address, "
            f"{first['people'] / first['seconds']:.0f} people/s, {first['reminders']:.0f} reminders, "
            f"{first['emails']:.0f} e-mails queued, {sent} sent, {first['kept']:.0f} left queued"
        )
        print(
            f"second run (the worker's job): {again:6.1f} s wall (job {second['seconds']:.1f} s, "
            f"peak {second['peak_mb']:.0f} MB) — {second['emails']:.0f} e-mails (idempotent: expected 0)"
        )
        print(f"SMTP server (aiosmtpd): {messages} messages, {recipients} recipients, {twice} twice, CPU {sink_cpu} s")
        print(f"load average after: {os.getloadavg()[0]:.2f} (other work on the machine skews the times)")
        if int(messages) != sent or int(recipients) != sent or int(twice) or second["emails"]:
            raise SystemExit(f"comptes faux : {messages=} {recipients=} {twice=} {sent=} second={second['emails']}")
    finally:
        if sink is not None:
            sink.kill()
        drop_database(args.database_url, pg_db)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
