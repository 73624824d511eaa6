"""What the vault's two timed jobs cost as the documents table grows (issue #18, TRC-3, VLT-6).

    .venv/bin/python bench/document_jobs.py [--documents 1000000] [--patients 1000] [--runs 5]
        [--database-url postgresql://postgres@127.0.0.1:5432/postgres]

Fills a new database (a temporary one on that PostgreSQL server, or a temporary SQLite file) with ``--documents``
documents already told and revealed, spread over ``--patients`` people, then times, median of ``--runs``:
- what the jobs read before migration 0019 (every 15 s: the documents not yet told, ``notified_at IS NULL``, oldest
  first, 5,000 at most; every 5 min: those whose reveal is due, ``reveal_at <= now``) — neither indexed;
- one run of each job as it is now (``vault.notifications``, ``vault.reveal``), reading the due timers.
Nothing is due: the figures are what the jobs cost at every run, forever, on a database of that size.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from sqlalchemy import text  # noqa: E402
from tempdb import SERIES, carnet_services  # noqa: E402

from carnet.vault.service import housekeeping, notifications  # noqa: E402

BEFORE_TELL = "SELECT id FROM documents WHERE notified_at IS NULL ORDER BY created_at LIMIT 5000"
BEFORE_REVEAL = "SELECT id FROM documents WHERE reveal_at IS NOT NULL AND reveal_at <= :now"


NOW = {"postgresql": "now()", "sqlite": "strftime('%Y-%m-%d %H:%M:%f+00:00', 'now')"}
PATIENTS = (
    "INSERT INTO patients (id, ins, ins_oid, birth_name, first_names, birth_date, sex, birth_place, status, "
    "created_at) SELECT 'p' || i, 'INS' || i, '1.2.250.1.213.1.4.8', 'NOM', 'Anna', '1985-03-14', 'F', '2A004', "
    "'active', {now} FROM ({series}) AS n"
)
DOCUMENTS = (
    "INSERT INTO documents (id, patient_id, status, category, type_system, type_code, type_display, title, "
    "mime_type, size, body_mac, blob_key, confidentiality, masked, source, author_kind, author_label, document_date, "
    "created_at, version, notified_at) SELECT 'd' || i, 'p' || (1 + i % :patients), 'current', 'bio', "
    "'http://loinc.org', '11502-2', 'CR de biologie', 'Bilan', 'application/pdf', 1, 'm', 'd' || i || 'b', '[]', "
    "false, 'professional', 'establishment', 'Laboratoire', {now}, {now}, 1, {now} FROM ({series}) AS n"
)


def fill(services: object, documents: int, patients: int) -> float:
    db = services.db  # type: ignore[attr-defined]
    started = time.perf_counter()
    dialect = "sqlite" if db.is_sqlite else "postgresql"
    parts = {"now": NOW[dialect], "series": SERIES[dialect]}
    with db.engine.begin() as connection:
        connection.execute(text(PATIENTS.format(**parts)), {"n": patients})
        connection.execute(text(DOCUMENTS.format(**parts)), {"n": documents, "patients": patients})
    if not db.is_sqlite:
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
    return time.perf_counter() - started


def median_ms(runs: int, call: Callable[[], object]) -> float:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=1_000_000)
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    with carnet_services(args.database_url, "carnet-bench-jobs-") as services:
        seconds = fill(services, args.documents, args.patients)
        print(f"{args.documents:,} documents told and revealed, {args.patients:,} people: filled in {seconds:.0f} s")
        db = services.db
        with db.engine.connect() as connection:
            before_tell = median_ms(args.runs, lambda: connection.execute(text(BEFORE_TELL)).all())
            before_reveal = median_ms(
                args.runs, lambda: connection.execute(text(BEFORE_REVEAL), {"now": "9999-12-31"}).all()
            )
        tell = median_ms(args.runs, lambda: notifications.send_pending(services))
        reveal = median_ms(args.runs, lambda: housekeeping.reveal_due_documents(services))
        print(f"before 0019, what the notifications job read every 15 s: {before_tell:9.1f} ms")
        print(f"before 0019, what the reveal job read every 5 min:       {before_reveal:9.1f} ms")
        print(f"now, one run of the notifications job:                   {tell:9.1f} ms")
        print(f"now, one run of the reveal job:                          {reveal:9.1f} ms")


if __name__ == "__main__":
    main()
