"""Benchmark of a whole-Corsica invitation campaign (ENR-2 target: < 5 minutes, < 500 MB).

    .venv/bin/python bench/campaign.py [--people 345000] [--email-share 0.8] [--connections 4]
        [--smtp-processes 1] [--database-url postgresql://postgres@127.0.0.1:5432/postgres]

1. ``--people`` registered persons (2A and 2B, ``--email-share`` of them with an e-mail) are bulk-inserted
   directly into a fresh database (SQLite in a temporary data folder, or a temporary PostgreSQL database).
2. A local SMTP server (aiosmtpd, ``--smtp-processes`` processes sharing the port) accepts and discards.
3. The operator's commands run as separate processes, each timed with its peak memory (ru_maxrss):
   ``carnet campaign start --departements 2A,2B`` (invitations + codes), ``carnet campaign send``
   (every e-mail, ``--connections`` SMTP connections), ``carnet campaign letters ID`` (PDF batches of 1,000).
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
import time
import uuid
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(env: dict[str, str], *args: str) -> tuple[str, float, float, float]:
    """Run ``carnet ARGS``; returns (stdout, seconds, peak memory in MB, CPU seconds)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "carnet", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    out = process.stdout.read() if process.stdout else ""
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"carnet {' '.join(args)} a échoué ({status}) :\n{out}")
    return out, elapsed, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def populate(database_url: str, people: int, email_share: float) -> tuple[int, int]:
    from sqlalchemy import insert

    from carnet.domain.identifiers import nir_from_body
    from carnet.storage.db import Database
    from carnet.storage.tables import Patient

    db = Database(database_url)
    emails = 0
    batch: list[dict[str, object]] = []
    every = round(1 / (1 - email_share)) if email_share < 1 else 0  # one in `every` has no e-mail
    with db.engine.begin() as conn:
        for index in range(people):
            departement = "2A" if index % 100 < 46 else "2B"
            has_email = not every or index % every != 0
            emails += has_email
            year, month = 1930 + index % 90, 1 + index % 12
            body = (
                f"{1 + index % 2}{year % 100:02d}{month:02d}{departement}{index // 1000 % 1000:03d}{index % 1000:03d}"
            )
            batch.append(
                {
                    "id": str(uuid.uuid4()),
                    "ins": nir_from_body(body),
                    "ins_oid": "1.2.250.1.213.1.4.8",
                    "birth_name": f"NOM{index}",
                    "first_names": "Ghjuvanni" if index % 2 == 0 else "Maria",
                    "birth_date": date(year, month, 1 + index % 28),
                    "sex": "M" if index % 2 == 0 else "F",
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
    db.dispose()
    return emails, people - emails


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=345_000)
    parser.add_argument("--email-share", type=float, default=0.8)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--smtp-processes", type=int, default=1)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data folder")
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
    pg_db = None
    if args.database_url:
        import psycopg

        pg_db = f"carnet_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(args.database_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{pg_db}"')
        env["CARNET_DATABASE_URL"] = re.sub(r"/[^/]*$", f"/{pg_db}", args.database_url)
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
                [sys.executable, "-c", SINK, str(port)], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True
            )
            assert sink.stdout is not None
            sink.stdout.readline()
            sinks.append(sink)

        begin = time.perf_counter()
        out, t_start, m_start, c_start = run(env, "campaign", "start", "--departements", "2A,2B")
        campaign_id = out.split()[1]
        out, t_send, m_send, c_send = run(env, "campaign", "send", "--connexions", str(args.connections))
        sent = int(re.search(r"E-mails envoyés : (\d+)", out).group(1))  # type: ignore[union-attr]
        out, t_letters, m_letters, c_letters = run(env, "campaign", "letters", campaign_id)
        produced = int(re.search(r"(\d+) courrier\(s\) produit\(s\)", out).group(1))  # type: ignore[union-attr]
        total = time.perf_counter() - begin

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
        print(f"backend: {backend}, {os.cpu_count()} cores, {args.connections} SMTP connections")
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
        print(f"TOTAL:          {total:6.1f} s  peak {max(m_start, m_send, m_letters):4.0f} MB")
        print(f"load average after the run: {os.getloadavg()[0]:.2f} (other work on the machine skews the times)")
        if sent != emails or received != emails or produced != letters:
            raise SystemExit(f"comptes faux : {sent=} {received=} {emails=} {produced=} {letters=}")
    finally:
        for sink in sinks:
            sink.kill()
        if pg_db:
            import psycopg

            with psycopg.connect(args.database_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{pg_db}" WITH (FORCE)')
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
