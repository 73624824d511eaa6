"""Migration 0016 on a populated PostgreSQL database while it is written, and per-patient reads before and after
(issue #18-2: tables partitioned by patient, migrations that apply without stopping the service).

    .venv/bin/python bench/partitions.py --database-url postgresql://postgres@127.0.0.1:5432/postgres
        [--patients 10000] [--documents 20] [--terms 50] [--entries 50] [--profile 10]

In a temporary database (created, migrated to 0015, dropped at the end), fills with SQL alone: ``--patients`` people,
``--documents`` documents each with ``--terms`` blind search terms each, ``--entries`` history entries and
``--profile`` profile entries each. Then:

1. per-patient reads on the plain tables, idle: a word search in ``document_terms`` (patient, 2 terms), a history
   page (``audit_entries``, chain, last 51), a profile section (``profile_entries``), a document list, and a profile
   entry and a document read by id alone (look-ups that name no patient) — p50 / p99 of ``--reads`` each;
2. ``carnet migrate`` (0015 → 0016: documents and their terms, messages, profile and history partitioned) while a
   writer keeps depositing (one transaction: a document, its ``--terms`` terms, a history entry) and a reader keeps
   searching: the migration's time, the writer's and the reader's latencies during it (p50 / p99 / max; the longest
   waits are the locks of the foreign keys and of the swap) and in the 10 s before it, and the deposits refused
   (there must be none);
3. the same reads on the partitioned tables, and the tables' sizes before and after.

The writes are plain SQL, as the services' statements are, without the services' sealing and hashing: this measures
the database, not Carnet's Python.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from sqlalchemy import Connection, Engine, text  # noqa: E402
from sqlalchemy.exc import DBAPIError  # noqa: E402

from bench.tempdb import create_database, drop_database  # noqa: E402
from carnet.storage.db import make_engine  # noqa: E402
from carnet.storage.migrate import upgrade  # noqa: E402

TABLES = ("document_terms", "audit_entries", "profile_entries", "documents")

FILL = [
    (
        "patients",
        "INSERT INTO patients (id, ins, ins_oid, birth_name, first_names, birth_date, sex, birth_place, status, "
        "created_at) SELECT 'p' || g, lpad(g::text, 13, '0'), '1.2.250.1.213.1.4.8', 'NOM', 'Prénom', "
        "date '1970-01-01', 'F', '2A004', 'active', now() FROM generate_series(%(low)d, %(high)d) g",
    ),
    (
        "documents",
        "INSERT INTO documents (id, patient_id, status, category, type_system, type_code, type_display, title, "
        "mime_type, size, body_mac, blob_key, confidentiality, masked, source, author_kind, author_label, created_at, "
        "document_date, version) SELECT md5(p || '-' || d), 'p' || p, 'current', 'report', 'http://loinc.org', "
        "'11488-4', 'Compte rendu', 'Titre', 'application/pdf', 1000, md5('x'), md5(p || '/' || d), '[]', false, "
        "'mhd', 'professional', 'Dr X', now(), now(), 1 "
        "FROM generate_series(%(low)d, %(high)d) p, generate_series(1, %(documents)d) d",
    ),
    (
        "document_terms",
        "INSERT INTO document_terms (document_id, term, patient_id) SELECT md5(p || '-' || d), "
        "substr(md5(p || '-' || d || '-' || t), 1, 24), 'p' || p "
        "FROM generate_series(%(low)d, %(high)d) p, generate_series(1, %(documents)d) d, "
        "generate_series(1, %(terms)d) t",
    ),
    (
        "audit_entries",
        "INSERT INTO audit_entries (chain, seq, at, actor_kind, actor_label, action, patient_id, outcome, reason, "
        "details, prev_hash, hash) SELECT 'p' || p, s, now(), 'professional', 'Dr X', 'document.read', 'p' || p, "
        "'allow', '', '{}', md5('a'), md5(p || '-' || s) FROM generate_series(%(low)d, %(high)d) p, "
        "generate_series(1, %(entries)d) s",
    ),
    (
        "profile_entries",
        "INSERT INTO profile_entries (id, patient_id, section, sealed, source, author_label, masked, created_at, "
        "updated_at, version, effective_at) SELECT md5('e' || p || '-' || e), 'p' || p, "
        "(ARRAY['allergy', 'treatment', 'measure'])[1 + mod(e, 3)], '\\x00', 'patient', 'Moi', false, now(), now(), 1, "
        "now() - e * interval '1 day' FROM generate_series(%(low)d, %(high)d) p, generate_series(1, %(profile)d) e",
    ),
]

DEPOSIT = (
    "INSERT INTO documents (id, patient_id, status, category, type_system, type_code, type_display, title, "
    "mime_type, size, body_mac, blob_key, confidentiality, masked, source, author_kind, author_label, created_at, "
    "document_date, version) VALUES (:d, :p, 'current', 'report', 'http://loinc.org', '11488-4', 'Compte rendu', "
    "'Titre', 'application/pdf', 1000, md5('x'), :d, '[]', false, 'mhd', 'professional', 'Dr X', now(), now(), 1)"
)

READS = {
    "word search (2 terms)": (
        "SELECT document_id FROM document_terms WHERE patient_id = :p AND term IN (:t1, :t2) GROUP BY document_id"
    ),
    "history page (51)": "SELECT * FROM audit_entries WHERE chain = :p ORDER BY seq DESC LIMIT 51",
    "profile section": (
        "SELECT * FROM profile_entries WHERE patient_id = :p AND section = 'allergy' ORDER BY effective_at"
    ),
    "profile entry by id alone": "SELECT * FROM profile_entries WHERE id = :e",
    "document list (20 latest)": (
        "SELECT id, title, created_at FROM documents WHERE patient_id = :p AND status = 'current' "
        "ORDER BY created_at DESC LIMIT 20"
    ),
    "document by id alone (ITI-68)": "SELECT * FROM documents WHERE id = :d",
}


def _deposit(connection: Connection, document: str, patient: str, n: int, terms: int) -> None:
    """One deposit as the vault writes it: the document, its search terms and a history entry, one transaction."""
    with connection.begin():
        connection.execute(text(DEPOSIT), {"d": document, "p": patient})
        connection.execute(
            text("INSERT INTO document_terms (document_id, term, patient_id) VALUES (:d, :t, :p)"),
            [{"d": document, "t": _md5(f"{document}-{t}")[:24], "p": patient} for t in range(terms)],
        )
        connection.execute(
            text(
                "INSERT INTO audit_entries (chain, seq, at, actor_kind, actor_label, action, outcome, "
                "reason, details, prev_hash, hash) VALUES ('writer', :n, now(), 'system', 'bench', "
                "'document.deposit', 'allow', '', '{}', md5('a'), md5('b'))"
            ),
            {"n": n},
        )


def _params(patients: int, documents: int) -> dict[str, str]:
    p, d = random.randint(1, patients), random.randint(1, documents)
    return {
        "p": f"p{p}",
        "t1": _md5(f"{p}-{d}-1")[:24],
        "t2": _md5(f"{p}-{d}-2")[:24],
        "e": _md5(f"e{p}-1"),
        "d": _md5(f"{p}-{d}"),
    }


def _md5(value: str) -> str:
    import hashlib

    return hashlib.md5(value.encode()).hexdigest()  # noqa: S324 — the fill's ids, not security


def _ms(values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered) * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms, max {ordered[-1] * 1000:.1f} ms"


def _reads(engine: Engine, args: argparse.Namespace) -> None:
    with engine.connect() as connection:
        for label, sql in READS.items():
            timings = []
            for _ in range(args.reads):
                params = _params(args.patients, args.documents)
                started = time.perf_counter()
                connection.execute(text(sql), params).all()
                timings.append(time.perf_counter() - started)
            print(f"  {label}: {_ms(timings)}")


def _sizes(engine: Engine) -> None:
    with engine.connect() as connection:
        for table in TABLES:
            size = connection.execute(
                text(
                    "SELECT coalesce(sum(pg_total_relation_size(relid)), pg_total_relation_size(CAST(:t AS regclass))) "
                    "FROM pg_partition_tree(CAST(:t AS regclass))"
                ),
                {"t": table},
            ).scalar_one()
            rows = connection.execute(text(f'SELECT count(*) FROM "{table}"')).scalar_one()  # noqa: S608
            print(f"  {table}: {rows:,} rows, {size / 2**20:,.0f} MiB ({size / max(rows, 1):.0f} B a row)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True, help="a PostgreSQL server (a temporary database is made)")
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--documents", type=int, default=20)
    parser.add_argument("--terms", type=int, default=50)
    parser.add_argument("--entries", type=int, default=50)
    parser.add_argument("--profile", type=int, default=10)
    parser.add_argument("--reads", type=int, default=1000)
    args = parser.parse_args()

    env: dict[str, str] = {}
    name = create_database(args.database_url, env)
    url = env["CARNET_DATABASE_URL"]
    try:
        upgrade(url, "0015")
        engine = make_engine(url)
        started = time.perf_counter()
        step = 1000
        for table, sql in FILL:
            for low in range(1, args.patients + 1, step):
                high = min(args.patients, low + step - 1)
                with engine.begin() as connection:
                    connection.execute(text(sql % ({"low": low, "high": high} | vars(args))))
            print(f"filled {table} ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
        print(f"Filled in {time.perf_counter() - started:.0f} s; before the migration:")
        _sizes(engine)
        print("Per-patient reads on plain tables (idle):")
        _reads(engine, args)

        stop = threading.Event()
        writes: list[float] = []
        searches: list[float] = []
        failed: list[str] = []  # deposits refused (a deadlock with the migration, a lock timeout…): must stay empty

        def writer() -> None:
            n = 0
            with engine.connect() as connection:
                while not stop.is_set():
                    n += 1
                    patient = f"p{random.randint(1, args.patients)}"
                    document = _md5(f"new-{n}")
                    begun = time.perf_counter()
                    try:
                        _deposit(connection, document, patient, n, args.terms)
                    except DBAPIError as error:
                        failed.append(type(error.orig).__name__)
                        continue
                    writes.append(time.perf_counter() - begun)

        def reader() -> None:
            with engine.connect() as connection:
                while not stop.is_set():
                    params = _params(args.patients, args.documents)
                    begun = time.perf_counter()
                    connection.execute(text(READS["word search (2 terms)"]), params).all()
                    connection.commit()
                    searches.append(time.perf_counter() - begun)
                    time.sleep(0.005)

        threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
        for thread in threads:
            thread.start()
        time.sleep(10)
        before, searched = len(writes), len(searches)
        print("Before the migration, 10 s of the same load on plain tables:")
        print(f"  deposits: {before:,} — {_ms(writes[:before])}")
        print(f"  searches: {searched:,} — {_ms(searches[:searched])}")
        started = time.perf_counter()
        upgrade(url, "0016")
        migration = time.perf_counter() - started
        during = writes[before:]
        stop.set()
        for thread in threads:
            thread.join()
        print(f"Migration 0015 → 0016: {migration:.1f} s, while depositing and searching")
        print(f"  deposits during it: {len(during):,} — {_ms(during)}")
        print(f"  deposits refused: {len(failed)} {sorted(set(failed))}")
        print(f"  searches during it: {len(searches) - searched:,} — {_ms(searches[searched:])}")
        print("After the migration:")
        _sizes(engine)
        print("Per-patient reads on partitioned tables (idle):")
        _reads(engine, args)
        engine.dispose()
    finally:
        drop_database(args.database_url, name)


if __name__ == "__main__":
    main()
