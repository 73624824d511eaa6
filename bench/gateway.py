"""Benchmark of the messaging's inbound SMTP gateway (MSG-3; issue #12 target: ≥ 200 messages/s, each with a
200 KB attachment, over real SMTP connections, each stored encrypted and audited before its 250).

    .venv/bin/python bench/gateway.py [--messages 3000] [--connections 8] [--spaces 2000]
        [--database-url postgresql://postgres@127.0.0.1:5432/postgres] [--keep]

1. A fresh instance (``carnet migrate``: SQLite in a temporary data folder, or a temporary PostgreSQL database) with
   ``--spaces`` open spaces and one professional whose secure-mail address is in the directory.
2. ``carnet gateway`` runs in its own process, as in production.
3. ``--connections`` client threads each open one SMTP connection and send their share of ``--messages`` messages
   (a text and a 200 KB PDF, base64: ~274 KB on the wire) to random spaces, timing each message from ``MAIL FROM`` to
   the ``250`` after ``DATA``.
4. Afterwards the database is counted: as many messages, attachments (sealed blobs on disk) and ``message.write``
   history lines as 250s received, none of the PDF's bytes in clear on disk. Prints messages/s, MB/s, latency
   percentiles, the gateway's CPU time and the load average.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, date, datetime
from email import policy
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from bench.tempdb import create_database, drop_database  # noqa: E402

SENDER = "dr.bench@pro.mssante.exemple.fr"
DOMAIN = "patient.carnet.localhost"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def populate(url: str, key_file: Path, spaces: int, seed: int) -> list[str]:
    """``spaces`` open spaces (valid INS, each with its data key, as a space that has documents has) and the sending
    professional; the INS list."""
    from sqlalchemy import insert

    from carnet.people.model.identifiers import nir_from_body
    from carnet.people.tables import Patient, Professional
    from carnet.storage import keyring
    from carnet.storage.db import Database
    from carnet.storage.tables import PatientKey

    ring = keyring.Keyring(key_file)
    keys = []
    rng = random.Random(seed)
    db = Database(url)
    now = datetime.now(UTC)
    rows, ins = [], []
    for index in range(spaces):
        born = f"{1 + index % 2}{rng.randint(40, 99):02d}{rng.randint(1, 12):02d}"
        body = f"{born}75{rng.randint(100, 999)}{index % 1000:03d}"
        nir = nir_from_body(body)
        ins.append(nir)
        patient_id = str(uuid.uuid4())
        wrapped, key_id = ring.wrap(os.urandom(32))
        keys.append({"patient_id": patient_id, "wrapped_key": wrapped, "master_key_id": key_id, "created_at": now})
        rows.append(
            {
                "id": patient_id,
                "ins": nir,
                "birth_name": "BANC",
                "first_names": f"Personne {index}",
                "birth_date": date(1970, 1, 1),
                "sex": "M" if index % 2 == 0 else "F",
                "birth_place": "75056",
                "status": "active",
                "opened_at": now,
                "created_at": now,
            }
        )
    with db.engine.begin() as conn:
        conn.execute(insert(Patient), rows)
        conn.execute(insert(PatientKey), keys)
        conn.execute(
            insert(Professional),
            [
                {
                    "id": str(uuid.uuid4()),
                    "rpps": "10009999990",
                    "last_name": "BANC",
                    "first_name": "Essai",
                    "profession_code": "10",
                    "email": SENDER,
                    "created_at": now,
                }
            ],
        )
    db.dispose()
    return ins


def message_bytes(pdf: bytes, index: int) -> bytes:
    message = EmailMessage()
    message["From"] = SENDER
    message["To"] = "patient"
    message["Subject"] = f"Compte rendu n° {index}"
    message["Message-ID"] = f"<{uuid.uuid4().hex}@cabinet.exemple.fr>"
    message.set_content("Bonjour,\n\nveuillez trouver ci-joint le compte rendu de votre examen.\n\nDr Banc")
    message.add_attachment(pdf, maintype="application", subtype="pdf", filename="compte-rendu.pdf")
    return message.as_bytes(policy=policy.SMTP)


def send_share(port: int, messages: list[tuple[str, bytes]], latencies: list[float], codes: list[int]) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=120) as smtp:
        smtp.ehlo("cabinet.exemple.fr")
        for rcpt, raw in messages:
            began = time.perf_counter()
            smtp.mail(SENDER)
            smtp.rcpt(rcpt)
            code, _ = smtp.data(raw)
            latencies.append(time.perf_counter() - began)
            codes.append(code)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of the gateway process and its children (``--processus``)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat.parent.name == str(pid) or fields[1] == str(pid):
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def count(url: str, work: Path, pdf_marker: bytes) -> dict[str, int]:
    from sqlalchemy import func, select

    from carnet.hall.tables import AuditEntry
    from carnet.messaging.tables import Attachment, Message, Thread
    from carnet.storage.db import Database

    db = Database(url)
    with db.engine.connect() as conn:
        figures = {
            "threads": conn.scalar(select(func.count()).select_from(Thread)),
            "messages": conn.scalar(select(func.count()).select_from(Message)),
            "attachments": conn.scalar(select(func.count()).select_from(Attachment)),
            "history": conn.scalar(
                select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "message.write")
            ),
        }
    db.dispose()
    blobs = list((work / "blobs").rglob("msg-*"))
    figures["blobs"] = len(blobs)
    figures["clear"] = sum(pdf_marker in path.read_bytes() for path in blobs[:200])
    return {k: int(v or 0) for k, v in figures.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--processes", type=int, default=2, help="gateway processes (carnet gateway --processus)")
    parser.add_argument("--spaces", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data folder")
    args = parser.parse_args()

    from tests.support.documents import make_pdf

    work = Path(tempfile.mkdtemp(prefix="carnet-bench-gateway-"))
    port = free_port()
    env = {
        **os.environ,
        "CARNET_DATA_DIR": str(work),
        "CARNET_LOG_LEVEL": "WARNING",
        "CARNET_MESSAGING_DOMAIN": DOMAIN,
        "PYTHONPATH": str(ROOT / "src"),
    }
    pg_db = create_database(args.database_url, env)
    gateway = None
    try:
        subprocess.run([sys.executable, "-m", "carnet", "migrate"], env=env, check=True, capture_output=True)
        url = env.get("CARNET_DATABASE_URL") or f"sqlite:///{work / 'carnet.sqlite3'}"
        ins = populate(url, work / "keys" / "master.key", args.spaces, args.seed)
        marker = b"BANC-MARQUEUR-EN-CLAIR"
        pdf = make_pdf("Compte rendu " + marker.decode(), padding=200_000)
        rng = random.Random(args.seed)
        batch = [(f"{rng.choice(ins)}@{DOMAIN}", message_bytes(pdf, i)) for i in range(args.messages)]
        gateway = subprocess.Popen(
            [sys.executable, "-m", "carnet", "gateway", "--port", str(port), "--processus", str(args.processes)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert gateway.stdout is not None
        gateway.stdout.readline()  # "Passerelle SMTP … sur …"
        time.sleep(3)  # the other processes start their own listener
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as warm:  # first connection, first key: not timed
            warm.sendmail(SENDER, [batch[0][0]], message_bytes(pdf, -1))
        load_before = os.getloadavg()
        cpu_before = cpu_seconds(gateway.pid)
        latencies: list[float] = []
        codes: list[int] = []
        shares = [batch[i :: args.connections] for i in range(args.connections)]
        threads = [threading.Thread(target=send_share, args=(port, s, latencies, codes)) for s in shares]
        began = time.perf_counter()
        client_cpu = time.process_time()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - began
        client_cpu = time.process_time() - client_cpu
        cpu = cpu_seconds(gateway.pid) - cpu_before
        figures = count(url, work, marker)
        accepted = codes.count(250)
        wire = sum(len(raw) for _, raw in batch) / 1_048_576
        quantiles = statistics.quantiles(latencies, n=100)
        backend = "PostgreSQL" if pg_db else "SQLite"
        print(f"backend: {backend}, {os.cpu_count()} cores, load average before {load_before[0]:.2f}")
        print(
            f"{accepted}/{len(batch)} messages accepted (250) in {elapsed:.1f} s over {args.connections} connections: "
            f"{accepted / elapsed:.0f} messages/s, {wire / elapsed:.1f} MB/s on the wire "
            f"({len(batch[0][1]) // 1000} KB each, a {len(pdf) // 1000} KB PDF)"
        )
        print(
            f"latency MAIL→250: p50 {quantiles[49] * 1000:.0f} ms, p95 {quantiles[94] * 1000:.0f} ms, "
            f"max {max(latencies) * 1000:.0f} ms; gateway CPU {cpu:.1f} s ({cpu / elapsed * 100:.0f} % of one core, "
            f"{args.processes} processes), {cpu / max(accepted, 1) * 1000:.1f} ms CPU per message; "
            f"clients (smtplib, this process) {client_cpu:.1f} s CPU"
        )
        print(f"stored: {figures} (PDF marker found in clear in {figures['clear']} blobs)")
        print(f"load average after: {os.getloadavg()[0]:.2f} (other work on the machine skews the times)")
        expected = accepted + 1  # and the warm-up message
        if not (figures["messages"] == figures["attachments"] == figures["history"] == figures["blobs"] == expected):
            raise SystemExit(f"comptes faux : {figures}, {expected} attendus")
        if figures["clear"]:
            raise SystemExit("des pièces jointes sont stockées en clair")
    finally:
        if gateway is not None:
            gateway.terminate()
            try:
                gateway.wait(timeout=30)
            except subprocess.TimeoutExpired:
                gateway.kill()
        drop_database(args.database_url, pg_db)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
