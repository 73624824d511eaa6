"""Background jobs on every database (issue #9): leases keep a job to one worker at a time, a killed worker's
job is taken over when its lease runs out, and real processes send a campaign's e-mails to a real SMTP server
— ``carnet serve`` alone on the embedded default, ``carnet serve`` + ``carnet worker`` on PostgreSQL."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from carnet.bootstrap import Services, build_services
from carnet.enrolment.service import campaigns
from carnet.hall.actors import Actor, ActorKind
from carnet.jobs.tables import JobLease
from carnet.jobs.worker import Job, Worker, claim
from carnet.storage.types import utcnow
from tests.conftest import empty_tables, make_settings
from tests.enrolment.test_campaign_mail import Inbox, inbox  # noqa: F401 — the real SMTP server fixture
from tests.support.enrolment import add_registered

OPERATOR = Actor(ActorKind.OPERATOR, None, "Opérateur de test")


def _counting_job(name: str, runs: list[str], pause: float = 0.0) -> Job:
    def run(services: Services) -> int:
        runs.append(threading.current_thread().name)
        time.sleep(pause)
        return 1

    return Job(name, timedelta(minutes=1), run, lease=timedelta(minutes=5))


def test_two_workers_never_run_the_same_job_at_the_same_moment(services: Services) -> None:
    other = build_services(services.settings)  # a second process would have its own engine and pool
    try:
        runs: list[str] = []
        job = _counting_job("test.compte", runs, pause=0.3)
        workers = [Worker(services, [job]), Worker(other, [job])]
        workers[1].holder += ":b"
        barrier = threading.Barrier(2)

        def go(worker: Worker) -> None:
            barrier.wait()
            worker.run_once()

        threads = [threading.Thread(target=go, args=(w,), name=f"w{i}") for i, w in enumerate(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(runs) == 1
        # released with its next run set: not due again now, for either worker
        assert workers[0].run_once() == {} and workers[1].run_once() == {}
        assert len(runs) == 1
    finally:
        other.db.dispose()


def test_a_killed_workers_job_is_taken_over_only_once_its_lease_ran_out(services: Services) -> None:
    runs: list[str] = []
    job = _counting_job("test.reprise", runs)
    now = utcnow()
    Worker(services, [job]).run_once(now - timedelta(hours=1))  # creates the row, runs, releases
    with services.db.unit_of_work() as db:  # a worker took it, then died: lease held, never released
        row = db.get(JobLease, "test.reprise")
        assert row is not None
        row.next_run_at, row.holder, row.leased_until = now, "mort:1", now + timedelta(minutes=5)
    assert not claim(services, job, "vivant:2", now)
    assert claim(services, job, "vivant:2", now + timedelta(minutes=6))
    with services.db.unit_of_work() as db:
        assert db.scalar(select(JobLease.holder).where(JobLease.name == "test.reprise")) == "vivant:2"


def test_a_failing_job_does_not_stop_the_others_and_is_retried_at_its_next_run(services: Services) -> None:
    runs: list[str] = []

    def broken(services: Services) -> int:
        raise RuntimeError("panne")

    jobs = [Job("test.panne", timedelta(seconds=1), broken), _counting_job("test.suivant", runs)]
    assert Worker(services, jobs).run_once() == {"test.suivant": 1}
    with services.db.unit_of_work() as db:
        row = db.get(JobLease, "test.panne")
        assert row is not None and row.last_outcome == "RuntimeError" and row.holder is None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        process.terminate()
    for process in started:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def test_real_processes_send_a_campaigns_emails_to_a_real_smtp_server(
    tmp_path: Path,
    database_url: str,
    inbox: tuple[Inbox, int],  # noqa: F811
    processes: list[subprocess.Popen[bytes]],
) -> None:
    server, smtp_port = inbox
    settings = make_settings(tmp_path / "data", database_url, smtp_url=f"smtp://127.0.0.1:{smtp_port}")
    services = build_services(settings)
    try:
        empty_tables(services)
        people = add_registered(services, 6, "2A", with_email=True)
        campaigns.start_campaign(services, "2A", OPERATOR)
        env = {
            **os.environ,
            "CARNET_DATA_DIR": str(settings.data_dir),
            "CARNET_DATABASE_URL": database_url,
            "CARNET_SMTP_URL": settings.smtp_url,
            "CARNET_ARGON2_PROFILE": "test",
        }
        command = [sys.executable, "-m", "carnet"]
        processes.append(subprocess.Popen([*command, "serve", "--port", str(_free_port())], env=env))
        if not settings.is_embedded:  # on PostgreSQL the server runs no job: the worker does
            processes.append(subprocess.Popen([*command, "worker"], env=env))
        deadline = time.monotonic() + 90
        while len(server.messages) < len(people) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert sorted(str(m["To"]) for m in server.messages) == sorted(p.email for p in people if p.email)
    finally:
        services.db.dispose()
