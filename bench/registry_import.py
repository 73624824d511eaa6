"""Benchmark of `carnet registry import` (ENR-1 target: Corsica, 345,000 rows, < 60 s, < 500 MB).

    .venv/bin/python bench/registry_import.py [--rows 345000] [--profile] [--files N] [--csv PATH]
        [--database-url postgresql://postgres@127.0.0.1:5432/postgres]

1. Generates a realistic Corsican registry CSV (valid NIRs built with ``nir_from_body`` and agreeing
   with sex and date of birth, 2A / 2B, households with minors attached to a parent through
   ``ins_ouvrant_droit``, about 80 % with an e-mail, shuffled so children may precede parents).
2. Imports it with the CLI into a fresh data folder (embedded default: SQLite), then imports it again
   (every row is an update). Prints elapsed time, rows/s and the peak resident memory of the CLI
   process (``ru_maxrss`` of that child, from ``os.wait4``).
3. ``--files N``: a region instead (Île-de-France: ``--rows 1540000 --files 8``, 12.3 M people): N files of
   --rows rows (INS unique across them), imported once each, one after the other, into the same database.
4. ``--profile``: an in-process, serial run of 50,000 rows under cProfile, and the same rows parsed
   without the database, to say where the time goes.

The command parses in a forked worker process while it writes (``parallel`` in the service): CPU is
reported for both, memory per process and for both together. The machine may be shared: the load
average is printed with each run, and CPU seconds are the figure that does not depend on it.

With ``--database-url`` a temporary database is created on that server, migrated, used, and dropped.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import csv
import io
import os
import pstats
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from bench.tempdb import create_database, drop_database  # noqa: E402
from carnet.enrolment.model.registry import COLUMNS  # noqa: E402
from carnet.people.model.identifiers import nir_from_body  # noqa: E402

SURNAMES = [
    "Santoni",
    "Casanova",
    "Orsini",
    "Peretti",
    "Ferracci",
    "Luciani",
    "Albertini",
    "Bartoli",
    "Cesari",
    "Colonna",
    "Giacomoni",
    "Leca",
    "Mattei",
    "Nicolai",
    "Paoli",
    "Pietri",
    "Poli",
    "Quilichini",
    "Rocca",
    "Sanguinetti",
    "Susini",
    "Tomasi",
    "Vincenti",
    "Antonetti",
    "Battesti",
    "Benedetti",
    "Bernardini",
    "Filippi",
    "Franceschi",
    "Giudicelli",
    "Guidicelli",
    "Lucchini",
    "Marchetti",
    "Marcaggi",
    "Mariani",
    "Mondoloni",
    "Moretti",
    "Ottavi",
    "Pasqualini",
    "Poggi",
    "Raffalli",
    "Rossi",
    "Simeoni",
    "Stefani",
    "Valentini",
    "Agostini",
    "Andreani",
    "Cristofari",
    "Desanti",
    "Emmanuelli",
    "Ghjuvanni",
    "Grimaldi",
    "Martinetti",
    "Milanini",
    "Negroni",
    "Pinelli",
    "Renucci",
    "Salini",
    "Santucci",
    "Torre",
    "Versini",
]
MALE = [
    "Jean",
    "Pierre",
    "Paul",
    "Antoine",
    "Dominique",
    "François",
    "Ange",
    "Toussaint",
    "Jacques",
    "Laurent",
    "Marc",
    "Lucien",
    "Michel",
    "Julien",
]
FEMALE = [
    "Marie",
    "Anna",
    "Lucie",
    "Catherine",
    "Jeanne",
    "Paule",
    "Françoise",
    "Laetitia",
    "Julie",
    "Chiara",
    "Sophie",
    "Camille",
    "Lisa",
    "Léa",
]
STREETS = (
    "rue Fesch",
    "cours Napoléon",
    "boulevard Paoli",
    "route du Salario",
    "chemin de la Punta",
    "rue César Campinchi",
)
# (commune, code INSEE, code postal, département)
COMMUNES = (
    ("Ajaccio", "2A004", "20000", "2A"),
    ("Ajaccio", "2A004", "20090", "2A"),
    ("Porto-Vecchio", "2A247", "20137", "2A"),
    ("Propriano", "2A249", "20110", "2A"),
    ("Sartène", "2A272", "20100", "2A"),
    ("Bonifacio", "2A041", "20169", "2A"),
    ("Alata", "2A006", "20167", "2A"),
    ("Bastia", "2B033", "20200", "2B"),
    ("Bastia", "2B033", "20600", "2B"),
    ("Biguglia", "2B037", "20620", "2B"),
    ("Borgo", "2B042", "20290", "2B"),
    ("Corte", "2B096", "20250", "2B"),
    ("Calvi", "2B050", "20260", "2B"),
    ("L'Île-Rousse", "2B134", "20220", "2B"),
    ("Ghisonaccia", "2B123", "20240", "2B"),
)
ELSEWHERE = ("13055", "75056", "06088", "69123", "83137", "99139", "99350", "99127")  # Marseille… Portugal, Maroc


class Registry:
    """Deterministic generator of registry rows (unique INS)."""

    def __init__(self, seed: int = 20260101) -> None:
        self.random = random.Random(seed)
        self.used: set[str] = set()

    def person(self, born: date, sex: str, surname: str, home: tuple[str, str, str, str]) -> dict[str, str]:
        r = self.random
        place = r.choice(COMMUNES)[1] if r.random() < 0.6 else r.choice(ELSEWHERE)
        while True:
            first = ("7" if sex == "M" else "8") if r.random() < 0.004 else ("1" if sex == "M" else "2")
            month = f"{born.month:02d}" if r.random() > 0.002 else "20"  # a few incomplete civil records
            body = f"{first}{born.year % 100:02d}{month}{place}{r.randrange(1, 1000):03d}"
            ins = nir_from_body(body)
            if ins not in self.used:
                self.used.add(ins)
                break
        commune, _insee, postal, departement = home
        given = " ".join(r.sample(MALE if sex == "M" else FEMALE, r.choice((1, 1, 2, 3))))
        return {
            "ins": ins,
            "nom_naissance": surname,
            "prenoms": given,
            "date_naissance": born.isoformat(),
            "sexe": sex,
            "lieu_naissance": place,
            "email": f"{given.split()[0].lower()}.{surname.lower()}{r.randrange(10000)}@exemple.fr"
            if r.random() < 0.8
            else "",
            "telephone": f"06 {r.randrange(10, 100)} {r.randrange(10, 100)} {r.randrange(10, 100)} "
            f"{r.randrange(10, 100)}"
            if r.random() < 0.6
            else "",
            "adresse": f"{r.randrange(1, 120)} {r.choice(STREETS)}",
            "code_postal": postal,
            "commune": commune,
            "departement": departement,
            "numero_serie_vitale": str(r.randrange(10**8, 10**11)) if r.random() < 0.95 else "",
            "ins_ouvrant_droit": "",
        }

    def rows(self, count: int) -> list[dict[str, str]]:
        r = self.random
        rows: list[dict[str, str]] = []
        while len(rows) < count:
            home = r.choice(COMMUNES)
            surname = r.choice(SURNAMES).upper()
            adult_born = date(1930, 1, 1) + timedelta(days=r.randrange(0, 365 * 76))
            parent = self.person(adult_born, r.choice("MF"), surname, home)
            rows.append(parent)
            if r.random() < 0.6:  # a partner
                partner_born = adult_born + timedelta(days=r.randrange(-2000, 2000))
                rows.append(self.person(partner_born, r.choice("MF"), r.choice(SURNAMES).upper(), home))
            if r.random() < 0.25 and adult_born.year >= 1970:
                for _ in range(r.choice((1, 1, 2, 3))):
                    child_born = date(2008, 1, 1) + timedelta(days=r.randrange(0, 365 * 17))
                    child = self.person(child_born, r.choice("MF"), surname, home)
                    child["numero_serie_vitale"] = ""
                    child["ins_ouvrant_droit"] = parent["ins"]
                    rows.append(child)
        del rows[count:]
        r.shuffle(rows)
        return rows


def write_csv(rows: list[dict[str, str]], path: Path, delimiter: str = ";") -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=COLUMNS, delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)


def generate(path: Path, count: int, files: int = 1) -> None:
    """``count`` rows in ``path`` — or, with ``files``, that many files of ``count`` rows each, ``<stem>-<n>.csv``,
    every INS unique across them (one generator), written one after the other to keep memory to one file's rows."""
    if files > 1:
        registry = Registry()
        for n in range(1, files + 1):
            started = time.perf_counter()
            part = path.with_name(f"{path.stem}-{n}.csv")
            write_csv(registry.rows(count), part)
            print(f"generated {part.name}: {count} rows in {time.perf_counter() - started:.1f} s", flush=True)
        return
    started = time.perf_counter()
    rows = Registry().rows(count)
    write_csv(rows, path)
    children = sum(1 for row in rows if row["ins_ouvrant_droit"])
    emails = sum(1 for row in rows if row["email"])
    corsica_2a = sum(1 for row in rows if row["departement"] == "2A")
    print(
        f"generated {count} rows ({path.stat().st_size / 1e6:.1f} MB; {children} minors attached, "
        f"{emails / count:.0%} with e-mail, 2A {corsica_2a} / 2B {count - corsica_2a}) "
        f"in {time.perf_counter() - started:.1f} s"
    )


def _tree_rss_kib(pid: int) -> int:
    """Resident memory of a process and its children (the parsing worker), from /proc."""
    total = 0
    pids = [pid]
    with contextlib.suppress(OSError):
        pids += [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    for each in pids:
        with contextlib.suppress(OSError):
            match = re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{each}/status").read_text())
            total += int(match.group(1)) if match else 0
    return total


def run_cli(env: dict[str, str], *args: str) -> dict[str, Any]:
    """Run the command; wall time, CPU (user + system, the command and its parsing worker), memory.

    ``os.wait4`` gives the rusage of that one child and of the processes it waited for (the worker):
    ``ru_maxrss`` is the largest of their peaks (what ``getrusage(RUSAGE_CHILDREN)`` reports).
    ``tree_peak_mb`` samples the sum of both resident sets every 50 ms (shared copy-on-write pages
    of the forked worker are counted twice: an upper bound).
    """
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "carnet", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss_kib(process.pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    assert process.stdout is not None
    out = process.stdout.read()
    _pid, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    done.set()
    sampler.join()
    process.returncode = os.waitstatus_to_exitcode(status)
    return {
        "elapsed": elapsed,
        "cpu": usage.ru_utime + usage.ru_stime,
        "maxrss_mb": usage.ru_maxrss / 1024,
        "tree_peak_mb": peak / 1024,
        "out": out.strip(),
        "code": process.returncode,
    }


def _wal_and_checkpoints(database_url: str) -> tuple[int, int] | None:
    """On PostgreSQL, the server's WAL position in bytes and its number of checkpoints so far (timed and requested):
    their growth over one file says how much the import wrote to the WAL and how often it forced a checkpoint, after
    which the first change to every page writes the whole page to the WAL again."""
    if not database_url:
        return None
    import psycopg

    with psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        row = conn.execute(
            "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn, checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def import_region(env: dict[str, str], csv_path: Path, rows: int, files: int) -> None:
    """The files of a region imported one after the other into one database: each one's rate and memory (the
    table holds ``(n - 1) * rows`` people when file ``n`` starts), and on PostgreSQL the WAL written and the
    checkpoints run during each."""
    database_url = env.get("CARNET_DATABASE_URL", "")
    started = time.perf_counter()
    for n in range(1, files + 1):
        load_before = os.getloadavg()[0]
        wal_before = _wal_and_checkpoints(database_url)
        run = run_cli(env, "registry", "import", str(csv_path.with_name(f"{csv_path.stem}-{n}.csv")))
        wal_after = _wal_and_checkpoints(database_url)
        wal = ""
        if wal_before and wal_after:
            wal = (
                f", WAL {(wal_after[0] - wal_before[0]) / 2**20:,.0f} MiB, {wal_after[1] - wal_before[1]} checkpoint(s)"
            )
        print(
            f"file {n}/{files} ({(n - 1) * rows:,} people already there): exit code {run['code']}, "
            f"{run['elapsed']:.1f} s, {rows / run['elapsed']:,.0f} rows/s, CPU {run['cpu']:.1f} s, "
            f"peak RSS {run['tree_peak_mb']:.0f} MB both processes, load {load_before:.1f} / {os.getloadavg()[0]:.1f}"
            f"{wal}",
            flush=True,
        )
    total = time.perf_counter() - started
    print(f"region: {files * rows:,} rows in {total:.0f} s, {files * rows / total:,.0f} rows/s")


def profile(env: dict[str, str], csv_path: Path, rows: int, work: Path) -> None:
    """In-process import of the first ``rows`` rows under cProfile, plus a parse-only timing."""
    from sqlalchemy import text

    from carnet.enrolment.model.registry import parse_row
    from carnet.enrolment.service.registry import import_registry
    from carnet.hall.actors import Actor
    from carnet.storage.db import Database
    from carnet.storage.migrate import upgrade

    sample = work / "sample.csv"
    with csv_path.open(encoding="utf-8") as source, sample.open("w", encoding="utf-8") as target:
        for index, line in enumerate(source):
            if index > rows:
                break
            target.write(line)
    server_url = env.get("CARNET_DATABASE_URL")

    def fresh(name: str) -> Database:
        """An empty migrated database: a new SQLite file, or the PostgreSQL one truncated.

        (DELETE would be quadratic: every deleted patient checks the self-referencing
        attached_to_id foreign key, which has no index.)"""
        if server_url is None:
            url = f"sqlite:///{work / name}"
            upgrade(url)
            return Database(url)
        database = Database(server_url)
        with database.engine.begin() as conn:
            conn.execute(text("TRUNCATE audit_entries, audit_heads, patients RESTART IDENTITY CASCADE"))
        return database

    started = time.perf_counter()
    with sample.open(encoding="utf-8", newline="") as text_file:
        reader = csv.reader(text_file, delimiter=";")
        header = next(reader)
        for number, fields in enumerate(reader, start=2):
            parse_row(number, dict(zip(header, fields, strict=True)))
    parse_only = time.perf_counter() - started

    database = fresh("plain.sqlite3")
    started = time.perf_counter()
    import_registry(database, sample, Actor.system(), parallel=False)
    plain = time.perf_counter() - started
    database.dispose()
    database = fresh("parallel.sqlite3")
    started = time.perf_counter()
    import_registry(database, sample, Actor.system(), parallel=True)
    plain_parallel = time.perf_counter() - started
    database.dispose()
    database = fresh("profiled.sqlite3")
    profiler = cProfile.Profile()
    profiler.enable()
    import_registry(database, sample, Actor.system(), parallel=False)  # cProfile sees one process
    profiler.disable()
    database.dispose()

    stats = pstats.Stats(profiler)
    by_name: dict[str, float] = {}
    for (filename, _line, name), (_cc, _nc, _tt, cumulative, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if "carnet" in filename or name.startswith("<method"):
            by_name[f"{Path(filename).name}:{name}"] = max(by_name.get(f"{Path(filename).name}:{name}", 0), cumulative)
    total = by_name.get("registry.py:import_registry", 0.0)
    parts = {
        key: by_name.get(key, 0.0)
        for key in (
            "registry.py:_inspect",
            "registry.py:_batches",
            "registry.py:_records",
            "registry.py:parse_row",
            "registry.py:params",
            "registry.py:write",
            "registry.py:_unattached_children",
            "registry.py:_warnings_for",
        )
    }
    rest = total - sum(parts[key] for key in ("registry.py:_inspect", "registry.py:_batches", "registry.py:write"))
    rest -= parts["registry.py:_unattached_children"] + parts["registry.py:_warnings_for"]
    print(f"\nProfile of {rows} rows in-process ({'PostgreSQL' if 'CARNET_DATABASE_URL' in env else 'SQLite'}):")
    print(
        f"  without profiler, serial (parallel=False): import {plain:.2f} s ({rows / plain:,.0f} rows/s); "
        f"csv + parse_row alone {parse_only:.2f} s; with the parsing worker (parallel=True) {plain_parallel:.2f} s"
    )
    print(f"  under cProfile: import_registry {total:.2f} s, of which (cumulative):")
    for label, value in (
        ("UTF-8 check + SHA-256 (binary pass)", parts["registry.py:_inspect"]),
        ("parsing side (what the worker does in the command)", parts["registry.py:_batches"]),
        ("  CSV reading (csv module)", parts["registry.py:_records"]),
        ("  row validation (parse_row)", parts["registry.py:parse_row"]),
        ("  row parameters + time-ordered id", parts["registry.py:params"]),
        ("database: look-ups, upsert, waiting children, per batch", parts["registry.py:write"]),
        ("database: unattached children query", parts["registry.py:_unattached_children"]),
        ("re-read of the file for warnings", parts["registry.py:_warnings_for"]),
        ("the rest: transactions, commits, ANALYZE, audit", rest),
    ):
        print(f"    {label:<55} {value:6.2f} s  {100 * value / total:5.1f} %")
    print("  top 12 functions by own time:")
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(12)
    for line in stream.getvalue().splitlines():
        if re.match(r"\s+\d", line):
            print("   ", line.strip()[:150])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=345_000)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--profile", action="store_true", help="also profile an in-process run of 50,000 rows")
    parser.add_argument("--profile-rows", type=int, default=50_000)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--generate-only", type=Path, help="only write the CSV to this path")
    parser.add_argument(
        "--csv", type=Path, help="import this CSV (with --files: <stem>-<n>.csv beside it), written by --generate-only"
    )
    parser.add_argument(
        "--files",
        type=int,
        default=1,
        help="a region: that many files of --rows rows each, imported one after the other into the same database "
        "(the rate of each shows whether imports slow down as the tables grow)",
    )
    args = parser.parse_args()
    if args.generate_only:
        generate(args.generate_only, args.rows, args.files)
        return

    work = Path(tempfile.mkdtemp(prefix="carnet-bench-registry-"))
    env = {**os.environ, "CARNET_DATA_DIR": str(work / "data"), "CARNET_LOG_LEVEL": "WARNING"}
    env.pop("CARNET_DATABASE_URL", None)
    pg_db = None
    try:
        csv_path = args.csv or work / "registre-corse.csv"
        if not args.csv:
            # In a child process: a child's ru_maxrss starts from its parent's resident set at fork
            # time, so the generator's memory must not live in the process that launches the CLI.
            generated = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--generate-only",
                    str(csv_path),
                    "--rows",
                    str(args.rows),
                    "--files",
                    f"{args.files}",
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            print(generated.stdout.strip())
        pg_db = create_database(args.database_url, env)
        if pg_db:
            subprocess.run([sys.executable, "-m", "carnet", "migrate"], env=env, check=True, capture_output=True)
            backend = "PostgreSQL (temporary database, migrated beforehand)"
        else:
            backend = "embedded default (SQLite, fresh data folder; the command also creates the schema)"
        print(f"backend: {backend}; machine: {os.cpu_count()} cores")

        if args.files > 1:
            import_region(env, csv_path, args.rows, args.files)
            return
        for label in ("first import (all inserts)", "re-import (all updates)"):
            load_before = os.getloadavg()[0]
            run = run_cli(env, "registry", "import", str(csv_path))
            print(f"\n{label}: exit code {run['code']}\n  {run['out']}")
            print(
                f"  elapsed {run['elapsed']:.1f} s, {args.rows / run['elapsed']:,.0f} rows/s; "
                f"CPU {run['cpu']:.1f} s (command + parsing worker); "
                f"peak RSS {run['maxrss_mb']:.0f} MB per process, {run['tree_peak_mb']:.0f} MB both together; "
                f"load average before / after {load_before:.1f} / {os.getloadavg()[0]:.1f}"
            )
            met = run["elapsed"] < 60 and run["tree_peak_mb"] < 500
            print(f"  target (< 60 s, < 500 MB): {'met' if met else 'MISSED'}")

        if args.profile:
            profile(env, csv_path, args.profile_rows, work)
    finally:
        drop_database(args.database_url, pg_db)
        if args.keep:
            print(f"\nkept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
