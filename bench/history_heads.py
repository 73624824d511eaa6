"""History appends and the size of the chains' heads on PostgreSQL (issue #18: billions of history entries).

    .venv/bin/python bench/history_heads.py --database-url postgresql://postgres@127.0.0.1:5432/postgres
        [--entries 50000] [--chains 5000] [--per-transaction 1]

Appends ``--entries`` history entries spread over ``--chains`` patients' chains, one transaction each (as requests
do), through ``carnet.hall.audit.record``, in a temporary database (created, migrated, dropped). Prints the time per
entry and what the tables weigh afterwards (``--per-transaction N``: N entries of one chain per transaction, as a batch
deposit writes them) — the heads (``audit_heads``: one row per chain, rewritten at every
entry) with their dead row versions, which only a vacuum reclaims when updates cannot be HOT. Autovacuum is
switched off on this database, as it is on this machine's PostgreSQL: the figures are the worst case.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from bench.tempdb import create_database, drop_database  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True, help="a PostgreSQL server (a temporary database is made)")
    parser.add_argument("--entries", type=int, default=50_000)
    parser.add_argument("--chains", type=int, default=5_000)
    parser.add_argument("--per-transaction", type=int, default=1, help="entries of one chain per transaction")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="carnet-bench-")
    env = {**os.environ, "CARNET_DATA_DIR": work, "CARNET_LOG_LEVEL": "WARNING", "CARNET_SMTP_URL": "outbox:"}
    name = create_database(args.database_url, env)
    try:
        subprocess.run([sys.executable, "-m", "carnet", "migrate"], env=env, check=True, capture_output=True)
        os.environ.update(env)
        from sqlalchemy import text

        from carnet.hall import audit
        from carnet.hall.actors import Actor, ActorKind
        from carnet.storage.db import Database

        db = Database(env["CARNET_DATABASE_URL"])
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in ("audit_heads", "audit_entries"):
                conn.execute(text(f"ALTER TABLE {table} SET (autovacuum_enabled = false)"))
        lab = Actor(ActorKind.ESTABLISHMENT, "bench", "Laboratoire de bench", finess="2B0000020")
        chains = [str(uuid.uuid4()) for _ in range(args.chains)]
        started = time.perf_counter()
        for index in range(args.entries // args.per_transaction):
            with db.unit_of_work() as session:
                for _ in range(args.per_transaction):
                    audit.record(session, lab, "document.deposit", patient_id=chains[index % len(chains)])
        elapsed = time.perf_counter() - started
        with db.engine.connect() as conn:
            sizes = {
                table: conn.execute(text(f"SELECT pg_total_relation_size('{table}')")).scalar_one()
                for table in ("audit_heads", "audit_entries")
            }
            conn.execute(text("SELECT pg_stat_force_next_flush()"))
            dead, hot, updates = conn.execute(
                text(
                    "SELECT n_dead_tup, n_tup_hot_upd, n_tup_upd FROM pg_stat_user_tables WHERE relname = 'audit_heads'"
                )
            ).one()
        db.engine.dispose()
        print(f"{args.entries} entries over {args.chains} chains: {elapsed / args.entries * 1000:.2f} ms per entry")
        print(
            f"audit_heads: {sizes['audit_heads'] / 2**20:.1f} MiB for {args.chains} rows "
            f"({dead} dead row versions; {hot} of {updates} updates HOT)"
        )
        print(f"audit_entries: {sizes['audit_entries'] / 2**20:.1f} MiB")
    finally:
        drop_database(args.database_url, name)


if __name__ == "__main__":
    main()
