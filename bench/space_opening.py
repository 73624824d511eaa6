"""What the space-opening job (ENR-3, every minute) costs for a campaign of ``--people`` e-mails (issue #18).

    .venv/bin/python bench/space_opening.py [--people 100000] [--database-url postgresql://postgres@127.0.0.1:5432/postgres]

Fills a new database (a temporary one on that PostgreSQL server, or a temporary SQLite file) with ``--people``
registered people and one campaign whose e-mails were all sent, then times, with the job's own code:
1. one run a month after the sending, when no deadline has come (what every run costs until then);
2. the runs the day after the deadline, until every space is open (the job runs every minute: the number of runs is
   printed too), with an ``ANALYZE`` after each run on PostgreSQL, as autovacuum would do (see ``analyze``).
To measure an older version, put its ``src/`` first on ``PYTHONPATH``: the bench only writes columns every version
has, and calls ``auto_create_spaces`` until it opens nothing more.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT / "src"))  # after PYTHONPATH: an older version's src/ given there is the one measured
sys.path.insert(0, str(ROOT / "bench"))

from sqlalchemy import inspect, text  # noqa: E402
from tempdb import SERIES, carnet_services  # noqa: E402

from carnet.enrolment.model.opposition import objection_deadline  # noqa: E402
from carnet.enrolment.service import campaigns  # noqa: E402
from carnet.storage.types import utcnow  # noqa: E402

PATIENTS = (
    "INSERT INTO patients (id, ins, ins_oid, birth_name, first_names, birth_date, sex, birth_place, status, "
    "created_at) SELECT 'p' || i, 'INS' || i, '1.2.250.1.213.1.4.8', 'NOM', 'Anna', '1985-03-14', 'F', '2A004', "
    "'registered', :sent FROM ({series}) AS n"
)
CAMPAIGN = "INSERT INTO campaigns (id, departements, started_at, started_by) VALUES ('c1', '[\"2A\"]', :at, 'op')"
INVITATIONS = (
    "INSERT INTO invitations (id, patient_id, campaign_id, channel, status, code_hash, code_sealed, code_expires_at, "
    "attempts, sent_at, objection_deadline) SELECT 'i' || i, 'p' || i, 'c1', 'email', 'sent', 'h' || i, 'x', :sent, 0, "
    ":sent, :deadline FROM ({series}) AS n"
)


def fill(services: object, people: int, sent: object, deadline: object) -> float:
    db = services.db  # type: ignore[attr-defined]
    started = time.perf_counter()
    series = SERIES["sqlite" if db.is_sqlite else "postgresql"]
    values = {"n": people, "sent": sent, "deadline": deadline}
    with db.engine.begin() as connection:
        connection.execute(text(PATIENTS.format(series=series)), values)
        connection.execute(
            text(
                "INSERT INTO campaigns (id, departements, started_at, started_by) VALUES ('c1', '[\"2A\"]', :at, 'op')"
            ),
            {"at": sent},
        )
        connection.execute(text(INVITATIONS.format(series=series)), values)
    with db.engine.begin() as connection:  # the version measured schedules its walk from the start (0020)
        columns = {column["name"] for column in inspect(connection).get_columns("campaigns")}
        if "opening_due_at" in columns:
            connection.execute(text("UPDATE campaigns SET opening_due_at = :at"), {"at": deadline})
    if not db.is_sqlite:
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
    return time.perf_counter() - started


def analyze(services: object) -> None:
    """What autovacuum does about once a minute (the job's period) while tables grow — off on this machine's
    PostgreSQL. Without it the server keeps the plans it prepared while ``audit_heads`` was empty: each lookup of a
    history head then reads the whole table, and every space opened costs more than the one before."""
    db = services.db  # type: ignore[attr-defined]
    if not db.is_sqlite:
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("ANALYZE"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    with carnet_services(args.database_url, "carnet-bench-opening-") as services:
        sent = utcnow()
        deadline = objection_deadline(sent)
        seconds = fill(services, args.people, sent, deadline)
        print(f"{args.people:,} people, their e-mails sent: filled in {seconds:.0f} s ({campaigns.__file__})")
        before = []
        for _ in range(3):
            started = time.perf_counter()
            assert campaigns.auto_create_spaces(services, now=sent + timedelta(days=30)) == 0
            before.append((time.perf_counter() - started) * 1000)
        print(f"one run before the deadline: {min(before):9.1f} ms (best of 3)")
        started, runs, opened = time.perf_counter(), 0, 0
        while count := campaigns.auto_create_spaces(services, now=deadline + timedelta(days=1)):
            runs, opened = runs + 1, opened + count
            analyze(services)
        elapsed = time.perf_counter() - started
        rate = opened / elapsed if elapsed else 0.0
        print(f"after the deadline: {opened:,} spaces opened in {elapsed:.1f} s, {runs} run(s) ({rate:,.0f}/s)")


if __name__ == "__main__":
    main()
