"""Background work on every database: periodic jobs claimed by leases, run by ``carnet worker`` (and, on the
embedded default, inside ``carnet serve``).

How a job is claimed. Each job has one row in ``job_leases``. A worker claims a due job with one conditional
``UPDATE … SET holder, leased_until WHERE name = ? AND next_run_at <= now AND (leased_until IS NULL OR
leased_until < now)``: the database lets exactly one of several workers change that row (the others update
zero rows), on SQLite and PostgreSQL alike, so no job runs twice at the same moment. The lease is longer
than a run may take; when the run ends the worker releases the row and sets the next run.

A worker killed mid-way. Its lease runs out and another worker (or the same one restarted) runs the job
again. Every job is written to be repeated: it works through what is still due (unsent notifications,
invitations still "pending", spaces past their six weeks…) in small committed batches, so a kill loses
nothing and repeats at most the batch in flight — for campaign e-mails, the bound documented in
``carnet.enrolment.service.campaigns`` (at most 50 e-mails per SMTP connection).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError

from carnet.bootstrap import Services
from carnet.jobs.tables import JobLease
from carnet.storage.types import utcnow

log = logging.getLogger("carnet.jobs")


@dataclass(frozen=True)
class Job:
    """A periodic job: ``run`` calls one service and returns how many things it handled."""

    name: str
    every: timedelta
    run: Callable[[Services], int]
    lease: timedelta = timedelta(minutes=10)


def _holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"[:80]


def _ensure_rows(services: Services, jobs: Iterable[Job], now: datetime) -> None:
    with services.db.unit_of_work() as db:
        known = {name for (name,) in db.query(JobLease.name)}
        missing = [job.name for job in jobs if job.name not in known]
    for name in missing:  # two workers may add the same row: the second one's insert fails harmlessly
        try:
            with services.db.unit_of_work() as db:
                db.add(JobLease(name=name, next_run_at=now))
        except IntegrityError:
            pass


def claim(services: Services, job: Job, holder: str, now: datetime) -> bool:
    """Take the job's lease if it is due and nobody holds it; True for exactly one of competing workers."""
    with services.db.unit_of_work() as db:
        result = db.execute(
            update(JobLease)
            .where(
                JobLease.name == job.name,
                JobLease.next_run_at <= now,
                or_(JobLease.leased_until.is_(None), JobLease.leased_until < now),
            )
            .values(holder=holder, leased_until=now + job.lease, last_started_at=now)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0) == 1


def release(services: Services, job: Job, holder: str, outcome: str) -> None:
    now = utcnow()
    with services.db.unit_of_work() as db:
        db.execute(
            update(JobLease)
            .where(JobLease.name == job.name, JobLease.holder == holder)
            .values(
                holder=None,
                leased_until=None,
                next_run_at=now + job.every,
                last_finished_at=now,
                last_outcome=outcome[:40],
            )
            .execution_options(synchronize_session=False)
        )


class Worker:
    """Runs every due job it can claim; ``run_forever`` until ``stop`` is set."""

    def __init__(self, services: Services, jobs: Iterable[Job], tick_seconds: float = 5.0) -> None:
        self.services = services
        self.jobs = list(jobs)
        self.tick = tick_seconds
        self.holder = _holder()
        self.stop = threading.Event()
        self._ready = False

    def run_once(self, now: datetime | None = None) -> dict[str, int]:
        """One pass: each due job this worker could claim, run once. Returns what each handled."""
        now = now or utcnow()
        if not self._ready:
            _ensure_rows(self.services, self.jobs, now)
            self._ready = True
        done: dict[str, int] = {}
        for job in self.jobs:
            if self.stop.is_set() or not claim(self.services, job, self.holder, now):
                continue
            try:
                done[job.name] = job.run(self.services)
                outcome = "ok"
            except Exception as exc:  # one failing job must not stop the others; the next run retries
                log.exception("tâche de fond en échec : %s", job.name)
                outcome = type(exc).__name__
            release(self.services, job, self.holder, outcome)
            if done.get(job.name):
                log.info("tâche %s : %d traité(s)", job.name, done[job.name])
        return done

    def run_forever(self) -> None:
        while not self.stop.is_set():
            try:
                self.run_once()
            except Exception:  # the database may be away for a moment: try again at the next tick
                log.exception("passe des tâches de fond en échec")
            self.stop.wait(self.tick)

    def start_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.run_forever, name="carnet-jobs", daemon=True)
        thread.start()
        return thread
