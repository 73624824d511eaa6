"""Benchmark of a whole-Corsica invitation campaign (ENR-2 target: < 5 minutes, < 500 MB).

    .venv/bin/python bench/campaign.py [--people 345000] [--email-share 0.8] [--connections 4]
        [--smtp-processes 1] [--database-url postgresql://postgres@127.0.0.1:5432/postgres]

1. ``--people`` registered persons (2A and 2B, ``--email-share`` of them with an e-mail) are bulk-inserted
   directly into a fresh database (SQLite in a temporary data folder, or a temporary PostgreSQL database).
2. A local SMTP server (aiosmtpd, ``--smtp-processes`` processes sharing the port) accepts and discards;
   ``--sink minimal`` replaces it by a bare asyncio sink, to tell Carnet's cost from aiosmtpd's.
3. The operator's commands run as separate processes, each timed with its peak memory (ru_maxrss):
   ``carnet campaign start --departements 2A,2B`` (invitations + codes), ``carnet campaign send``
   (every e-mail, ``--connections`` SMTP connections), ``carnet campaign letters ID`` (PDF batches of 1,000),
   the last one after the sending, or during it with ``--parallel-letters``.
The SMTP server shares the machine: its CPU time is reported too.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from bench.tempdb import create_database, drop_database  # noqa: E402

SINK = r"""
import asyncio, os, signal, sys
from aiosmtpd.smtp import SMTP

class Discard:
    count = 0
    async def handle_DATA(self, server, session, envelope):
        Discard.count += 1
        return "250 OK"

async def main(port):
    loop = asyncio.get_running_loop()
    handler = Discard()
    server = await loop.create_server(lambda: SMTP(handler), "127.0.0.1", port, reuse_port=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await stop.wait()
    server.close()
    times = os.times()
    print(Discard.count, times.user + times.system, flush=True)

asyncio.run(main(int(sys.argv[1])))
"""


# A minimal SMTP sink (asyncio protocol, no parsing beyond the verbs) to tell Carnet's cost from aiosmtpd's.
MINIMAL_SINK = r"""
import asyncio, os, signal, sys

class Sink(asyncio.Protocol):
    count = 0

    def connection_made(self, transport):
        self.transport, self.buffer, self.in_data = transport, b"", False
        transport.write(b"220 sink ESMTP\r\n")

    def data_received(self, chunk):
        self.buffer += chunk
        while True:
            if self.in_data:
                end = self.buffer.find(b"\r\n.\r\n")
                if end < 0:
                    return
                self.buffer, self.in_data = self.buffer[end + 5:], False
                Sink.count += 1
                self.transport.write(b"250 OK\r\n")
                continue
            eol = self.buffer.find(b"\r\n")
            if eol < 0:
                return
            verb, self.buffer = self.buffer[:4].upper(), self.buffer[eol + 2:]
            if verb == b"EHLO":
                self.transport.write(b"250-sink\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
            elif verb == b"DATA":
                self.in_data = True
                self.transport.write(b"354 go on\r\n")
            elif verb == b"QUIT":
                self.transport.write(b"221 bye\r\n")
                self.transport.close()
                return
            else:
                self.transport.write(b"250 OK\r\n")

async def main(port):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Sink, "127.0.0.1", port, reuse_port=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await stop.wait()
    server.close()
    times = os.times()
    print(Sink.count, times.user + times.system, flush=True)

asyncio.run(main(int(sys.argv[1])))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TreeMemory:
    """Samples the summed resident memory of this script's carnet processes (children and grandchildren)."""

    def __init__(self, exclude: set[int]) -> None:
        self.exclude = exclude
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _tree(self) -> list[int]:
        parents: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, ValueError, IndexError):
                    continue
        tree, frontier = [], [os.getpid()]
        while frontier:
            children = [pid for pid, ppid in parents.items() if ppid in frontier and pid not in self.exclude]
            tree += children
            frontier = children
        return tree

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            total = 0
            for pid in self._tree():
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                match = re.search(r"VmRSS:\s+(\d+)", status)
                total += int(match.group(1)) if match else 0
            self.peak_mb = max(self.peak_mb, total / 1024)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def launch(env: dict[str, str], *args: str) -> tuple[subprocess.Popen[str], float, tuple[str, ...]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "carnet", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    return process, time.perf_counter(), args


def finish(launched: tuple[subprocess.Popen[str], float, tuple[str, ...]]) -> tuple[str, float, float, float]:
    """Wait for ``carnet ARGS``; returns (stdout, seconds, peak memory in MB, CPU seconds)."""
    process, started, args = launched
    out = process.stdout.read() if process.stdout else ""
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"carnet {' '.join(args)} a échoué ({status}) :\n{out}")
    return out, elapsed, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def run(env: dict[str, str], *args: str) -> tuple[str, float, float, float]:
    return finish(launch(env, *args))


def populate(database_url: str, people: int, email_share: float) -> tuple[int, int]:
    from sqlalchemy import insert

    from carnet.people.model.identifiers import nir_from_body
    from carnet.people.tables import Patient
    from carnet.storage.db import Database
    from carnet.storage.types import TimeOrderedIds

    db = Database(database_url)
    new_id = TimeOrderedIds()  # as the registry import gives them (`carnet registry import`)
    emails = 0
    batch: list[dict[str, object]] = []
    every = round(1 / (1 - email_share)) if email_share < 1 else 0  # one in `every` has no e-mail
    with db.engine.begin() as conn:
        for index in range(people):
            departement = "2A" if index % 100 < 46 else "2B"
            has_email = not every or index % every != 0
            emails += has_email
            # commune and order number repeat every million people: the next million shifts sex, year and month
            # (unique for 180 million people)
            shifted = index + index // 1_000_000
            year, month = 1930 + shifted % 90, 1 + shifted % 12
            body = (
                f"{1 + shifted % 2}{year % 100:02d}{month:02d}{departement}{index // 1000 % 1000:03d}{index % 1000:03d}"
            )
            batch.append(
                {
                    "id": new_id(),
                    "ins": nir_from_body(body),
                    "ins_oid": "1.2.250.1.213.1.4.8",
                    "birth_name": f"NOM{index}",
                    "first_names": "Ghjuvanni" if shifted % 2 == 0 else "Maria",
                    "birth_date": date(year, month, 1 + index % 28),
                    "sex": "M" if shifted % 2 == 0 else "F",
                    "birth_place": f"{departement}004",
                    "email": f"personne{index}@exemple.fr" if has_email else None,
                    "address": f"{1 + index % 120} cours Napoléon",
                    "postal_code": "20000" if departement == "2A" else "20200",
                    "city": "Ajaccio" if departement == "2A" else "Bastia",
                    "departement": departement,
                    "status": "registered",
                }
            )
            if len(batch) == 10_000:
                conn.execute(insert(Patient), batch)
                batch = []
        if batch:
            conn.execute(insert(Patient), batch)
    if db.engine.dialect.name == "postgresql":  # the statistics autovacuum gathers after a load (off on this machine)
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE patients")
    db.dispose()
    return emails, people - emails


def wal_position(database_url: str) -> tuple[int, int]:
    """(bytes of WAL written so far, checkpoints so far) on PostgreSQL; (0, 0) on SQLite."""
    if not database_url.startswith("postgresql"):
        return 0, 0
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn, checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter"
            )
        ).one()
    engine.dispose()
    return int(row[0]), int(row[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=345_000)
    parser.add_argument("--email-share", type=float, default=0.8)
    parser.add_argument("--connections", type=int, default=4, help="SMTP connections per sending process")
    parser.add_argument("--processes", type=int, default=1, help="sending processes (carnet campaign send --processus)")
    parser.add_argument("--smtp-processes", type=int, default=1)
    parser.add_argument("--sink", choices=["aiosmtpd", "minimal"], default="aiosmtpd", help="local SMTP server")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data folder")
    parser.add_argument("--start-only", action="store_true", help="stop after `carnet campaign start`")
    parser.add_argument(
        "--parallel-letters", action="store_true", help="render the letters while the e-mails are sent (2 processes)"
    )
    parser.add_argument(
        "--letters-processes",
        type=int,
        default=1,
        help="letter-rendering processes once the e-mails are sent (with --parallel-letters: one during the sending, "
        "the others started when it ends)",
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="carnet-bench-campaign-"))
    port = free_port()
    env = {
        **os.environ,
        "CARNET_DATA_DIR": str(work),
        "CARNET_LOG_LEVEL": "WARNING",
        "CARNET_SMTP_URL": f"smtp://127.0.0.1:{port}",
        "CARNET_BASE_URL": "https://carnet.exemple.fr",
    }
    pg_db = create_database(args.database_url, env)
    sinks: list[subprocess.Popen[str]] = []
    try:
        run(env, "migrate")  # creates the keys too
        url = env.get("CARNET_DATABASE_URL") or f"sqlite:///{work / 'carnet.sqlite3'}"
        started = time.perf_counter()
        emails, letters = populate(url, args.people, args.email_share)
        print(
            f"setup: {args.people} registered persons ({emails} with e-mail) in {time.perf_counter() - started:.0f} s"
        )
        for _ in range(args.smtp_processes):
            sink = subprocess.Popen(
                [sys.executable, "-c", SINK if args.sink == "aiosmtpd" else MINIMAL_SINK, str(port)],
                stdout=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                text=True,
            )
            assert sink.stdout is not None
            sink.stdout.readline()
            sinks.append(sink)

        begin = time.perf_counter()
        memory = TreeMemory({sink.pid for sink in sinks}).__enter__()
        wal_before = wal_position(url)
        out, t_start, m_start, c_start = run(env, "campaign", "start", "--departements", "2A,2B")
        campaign_id = out.split()[1]
        wal_after = wal_position(url)
        if args.start_only:
            print(
                f"start_campaign: {t_start:6.1f} s  peak {m_start:4.0f} MB  CPU {c_start:5.1f} s  "
                f"({args.people} invitations with codes, {args.people / t_start:.0f}/s; "
                f"WAL {(wal_after[0] - wal_before[0]) / 2**20:.0f} MiB, {wal_after[1] - wal_before[1]} checkpoints)"
            )
            print(f"load average after the run: {os.getloadavg()[0]:.2f}")
            return
        letters_job = launch(env, "campaign", "letters", campaign_id) if args.parallel_letters else None
        out, t_send, m_send, c_send = run(
            env, "campaign", "send", "--connexions", str(args.connections), "--processus", str(args.processes)
        )
        sent = int(re.search(r"E-mails envoyés : (\d+)", out).group(1))  # type: ignore[union-attr]
        emails_done = time.perf_counter() - begin
        if letters_job:
            jobs = [
                letters_job,
                *(launch(env, "campaign", "letters", campaign_id) for _ in range(args.letters_processes - 1)),
            ]
        else:
            jobs = [launch(env, "campaign", "letters", campaign_id, "--processus", str(args.letters_processes))]
        finished = [finish(job) for job in jobs]
        t_letters = time.perf_counter() - jobs[0][1]  # from the first letter process's start to the last one's end
        m_letters = max(m for _, _, m, _ in finished)
        c_letters = sum(c for _, _, _, c in finished)
        produced = sum(
            int(re.search(r"(\d+) courrier\(s\) produit\(s\)", out).group(1))  # type: ignore[union-attr]
            for out, _, _, _ in finished
        )
        total = time.perf_counter() - begin
        memory.__exit__()

        received, sink_cpu = 0, 0.0
        for sink in sinks:
            sink.terminate()
            count, cpu = (sink.communicate(timeout=30)[0] or "0 0").split()
            received += int(count)
            sink_cpu += float(cpu)
        sinks = []
        pdfs = list((work / "letters" / campaign_id).glob("*.pdf"))
        size = sum(p.stat().st_size for p in pdfs) / 1e6
        backend = "PostgreSQL" if pg_db else "SQLite"
        print(
            f"backend: {backend}, {os.cpu_count()} cores, {args.processes} sending process(es) × "
            f"{args.connections} SMTP connections, "
            f"SMTP server: {args.sink} × {args.smtp_processes} process(es), "
            f"letters {'during' if args.parallel_letters else 'after'} the sending, "
            f"{args.letters_processes} letter process(es) once the e-mails are sent"
        )
        print(
            f"start_campaign: {t_start:6.1f} s  peak {m_start:4.0f} MB  CPU {c_start:5.1f} s  "
            f"({args.people} invitations with codes)"
        )
        print(
            f"send:           {t_send:6.1f} s  peak {m_send:4.0f} MB  CPU {c_send:5.1f} s  "
            f"({sent} e-mails, {sent / t_send:.0f}/s; SMTP server received {received}, used {sink_cpu:.0f} s CPU)"
        )
        print(
            f"letters:        {t_letters:6.1f} s  peak {m_letters:4.0f} MB  CPU {c_letters:5.1f} s  "
            f"({produced} letters, {produced / t_letters:.0f}/s, {len(pdfs)} PDFs, {size:.0f} MB)"
        )
        print(f"e-mails all sent {emails_done:6.1f} s after the start command")
        print(
            f"TOTAL:          {total:6.1f} s  peak {max(m_start, m_send, m_letters):4.0f} MB per process, "
            f"{memory.peak_mb:.0f} MB for all carnet processes together (sampled every 0.5 s)"
        )
        print(f"load average after the run: {os.getloadavg()[0]:.2f} (other work on the machine skews the times)")
        if sent != emails or received != emails or produced != letters:
            raise SystemExit(f"comptes faux : {sent=} {received=} {emails=} {produced=} {letters=}")
    finally:
        for sink in sinks:
            sink.kill()
        drop_database(args.database_url, pg_db)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
