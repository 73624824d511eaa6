"""ITI-65 deposits in one process, several threads, and SQLite's writer turn they queue for (issue #14).

    .venv/bin/python bench/writer_turn.py [--threads 1,4] [--seconds 20]

Each thread sends ITI-65 bundles (one 100 KiB PDF, the bench's bundle of ``bench/mhd.py``) straight to the service
(``authenticate`` then ``vault.fhir._provide``: no HTTP, no server process) on the embedded default, in a temporary
data folder. Prints, per number of threads: deposits a second, this process's CPU a deposit, and how long each
deposit held SQLite's writer turn (from the lock taken to COMMIT, median / mean / p99) and waited for it. With one
thread the turn is the transaction's own cost; with several, what the other threads' work adds to it through the GIL.
With 8 clients on 2 server processes the turn is held about 90 % of the time (docs/benchmarks.md, 2026-12-08).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from bench.mhd import bench_bundles  # noqa: E402
from bench.tempdb import carnet_services  # noqa: E402


class TimedTurn:
    """The database's writer lock, wrapped: each outermost hold's wait and length, per thread."""

    def __init__(self, lock: Any) -> None:
        self.lock = lock
        self.local = threading.local()
        self.waits: list[float] = []
        self.holds: list[float] = []

    def __enter__(self) -> None:
        depth = getattr(self.local, "depth", 0)
        asked = time.perf_counter()
        self.lock.__enter__()
        self.local.depth = depth + 1
        if depth == 0:
            self.local.taken = time.perf_counter()
            self.waits.append(self.local.taken - asked)

    def __exit__(self, *exc: object) -> None:
        self.local.depth -= 1
        outermost = self.local.depth == 0
        self.lock.__exit__(*exc)
        if outermost:
            self.holds.append(time.perf_counter() - self.local.taken)


def run(services: Any, token: str, bodies: list[str], threads: int, seconds: float) -> str:
    from carnet.identity.service import clients
    from carnet.vault import fhir

    turn = services.db._sqlite_lock
    done = [0] * threads
    failed = [0] * threads
    stop = time.monotonic() + seconds

    def deposit(index: int) -> None:
        sent = index
        while time.monotonic() < stop:
            body = bodies[sent % len(bodies)].replace("MASTER-ID", str(uuid.uuid4()), 1).encode()
            sent += 1
            answer = fhir._provide(services, clients.authenticate(services, token).actor, body)
            done[index] += 1
            failed[index] += answer.status_code >= 300

    turn.waits.clear()
    turn.holds.clear()
    cpu, began = time.process_time(), time.monotonic()
    workers = [threading.Thread(target=deposit, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed, cpu = time.monotonic() - began, time.process_time() - cpu
    total = sum(done)
    holds = sorted(turn.holds)
    ms = [1000 * holds[len(holds) // 2], 1000 * sum(holds) / len(holds), 1000 * holds[int(len(holds) * 0.99)]]
    return (
        f"  {threads} thread(s): {total / elapsed:.0f} deposits/s, CPU {1000 * cpu / total:.2f} ms a deposit, "
        f"turn held {ms[0]:.2f} / {ms[1]:.2f} / {ms[2]:.2f} ms (median / mean / p99), "
        f"waited {1000 * sum(turn.waits) / len(turn.waits):.2f} ms (mean), held {sum(holds) / elapsed:.0%} of the "
        f"time, errors {sum(failed)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", default="1,4", help="comma-separated numbers of threads, one run each")
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    os.environ["CARNET_ARGON2_PROFILE"] = "test"

    from sqlalchemy import select

    from carnet.demo import load_demo
    from carnet.identity.service import clients
    from carnet.people.tables import Patient

    with carnet_services("", "carnet-bench-") as services:
        services.db._sqlite_lock = TimedTurn(services.db._sqlite_lock)
        with services.db.unit_of_work() as db:
            load_demo(services, db)
            lab = clients.create_client(db, "LBM bench", finess="2B0000020")
            patients = list(db.scalars(select(Patient.ins).where(Patient.status == "active").limit(20)))
        with services.db.unit_of_work() as db:
            token = clients.issue_token(db, lab.client_id, lab.client_secret, None)[0]
        bodies = bench_bundles(patients, 32)
        run(services, token, bodies, 1, 2)  # warm-up
        print(f"ITI-65 in one process, to {len(patients)} demo patients, embedded default ({args.seconds:.0f} s each):")
        for threads in (int(n) for n in args.threads.split(",")):
            print(run(services, token, bodies, threads, args.seconds))


if __name__ == "__main__":
    main()
