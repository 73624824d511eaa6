"""Benchmark of the MHD endpoints against a real `carnet serve` process (VLT-2 targets).

    .venv/bin/python bench/mhd.py [--database-url postgresql://postgres@127.0.0.1:5432/postgres]
        [--seconds 15] [--patients 100000] [--documents 4000] [--workers N] [--blob-url s3://bucket?endpoint=…]

1. ITI-65: one 100 KiB PDF per transaction Bundle (encrypted, indexed, audited), 1 then 8 clients.
2. ITI-67: search of one patient's 4,000 documents (50 per page) among --patients patients, by each of
   --searchers: ``lab`` (the establishment that wrote them: its own documents), ``gp`` (the médecin
   traitant of the demo patient: everything, ACC-2) and ``pharmacist`` (authorised: the categories of
   the profession, ACC-1). The 4,000 documents are filed on the demo patient Marie-Ange Santoni.
Prints throughput, latency percentiles, the server's CPU time a document and its peak memory. The server runs on the
embedded default (SQLite + local folder) unless --database-url is given (a temporary database is
created on that server and dropped at the end); the bodies go to S3 with --blob-url (the bucket is created if
missing; credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, e.g. a radosgw started by
``scripts/s3-test-server start DIR``). Client and server share the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from bench.tempdb import create_database, drop_database  # noqa: E402
from carnet.people.model.identifiers import nir_from_body  # noqa: E402
from tests.support.documents import document_entry, make_pdf, provide_bundle  # noqa: E402

INS_SYSTEM = "urn:oid:1.2.250.1.213.1.4.8"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pdf_of_size(size: int) -> bytes:
    """A real-shaped PDF of about ``size`` bytes: a text page plus an image-like binary stream."""
    text = "Compte rendu de biologie : hémoglobine glyquée 6,5 %, ferritine, créatinine."
    return make_pdf(text, padding=size - len(make_pdf(text)))


def carnet(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "carnet", *args], env=env, capture_output=True, text=True, check=True)
    return done.stdout


def bench_bundles(patients: list[str], count: int) -> list[str]:
    """``count`` ITI-65 bundles as JSON, one 100 KiB PDF each, to ``patients`` (INS) in turn; each bundle's
    masterIdentifier is ``urn:uuid:MASTER-ID``, to be replaced by a fresh UUID at every send."""
    pdf = pdf_of_size(100 * 1024)
    return [
        json.dumps(
            provide_bundle(
                document_entry(patients[i % len(patients)], pdf, title=f"Bilan {i}", master="urn:uuid:MASTER-ID")
            )
        )
        for i in range(count)
    ]


def populate(env: dict[str, str], patients: int, documents: int) -> tuple[str, list[str]]:
    """Demo data + many patients (bulk SQL) + one patient with many small documents (through the vault)."""
    carnet(env, "demo")
    os.environ.update(env)
    from carnet.bootstrap import build_services
    from carnet.config import Settings
    from carnet.hall.actors import Actor, ActorKind
    from carnet.people.tables import Establishment, Patient
    from carnet.vault.service import documents as vault

    services = build_services(Settings())
    rows = []
    for index in range(patients):
        body = (
            f"{1 + index % 2}{(50 + index % 50):02d}{1 + index % 12:02d}2A{index % 1000:03d}{index // 1000 % 1000:03d}"
        )
        rows.append(
            {
                "id": str(uuid.uuid4()),
                "ins": nir_from_body(body),
                "ins_oid": "1.2.250.1.213.1.4.8",
                "birth_name": f"PATIENT{index}",
                "first_names": "Bench",
                "birth_date": date(1970, 1, 1),
                "sex": "M",
                "birth_place": "2A004",
                "status": "active",
                "departement": "2A",
            }
        )
    with services.db.unit_of_work() as db:
        existing = {ins for (ins,) in db.query(Patient.ins)}
        rows = [r for r in rows if r["ins"] not in existing]
        for start in range(0, len(rows), 5000):
            db.execute(Patient.__table__.insert(), rows[start : start + 5000])
        target = db.query(Patient).filter(Patient.email == "marie-ange.santoni@exemple.fr").one()
        target_ins, target_id = target.ins, target.id
        others = [ins for (ins,) in db.query(Patient.ins).filter(Patient.birth_name.like("PATIENT1%")).limit(50)]
        lab_id = db.query(Establishment.id).filter(Establishment.finess == "2B0000020").scalar()
    lab = Actor(ActorKind.ESTABLISHMENT, "bench", "Laboratoire de bench", finess="2B0000020", establishment_id=lab_id)
    small = make_pdf("Résultat de biologie")
    types = ["11502-2", "11488-4", "18748-4", "57833-6"]
    batch: list[vault.NewDocument] = []
    for index in range(documents):
        batch.append(
            vault.NewDocument(
                patient_id=target_id,
                type_system="http://loinc.org",
                type_code=types[index % 4],
                title=f"Document {index}",
                mime_type="application/pdf",
                body=small,
            )
        )
        if len(batch) == 200:
            vault.deposit_many(services, lab, batch)
            batch = []
    if batch:
        vault.deposit_many(services, lab, batch)
    if services.db.engine.dialect.name == "postgresql":
        # What autovacuum does after such a load (it is off on this machine's PostgreSQL): statistics, and the
        # visibility map without which the covering index's scans still read every row.
        with services.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    services.db.dispose()
    return target_ins, others


@contextlib.contextmanager
def serving(env: dict[str, str], port: int, workers: int, work: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``carnet serve`` on ``port`` (its errors in ``work/server.log``), once it answers, until the block ends."""
    server = subprocess.Popen(
        [sys.executable, "-m", "carnet", "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(work / "server.log").open("wb"),
    )
    try:
        for _ in range(100):
            try:
                http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/fhir/metadata")
                break
            except OSError:
                time.sleep(0.1)
        yield server
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:  # nothing answered in time
        return float("nan")
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def run_clients(port: int, clients: int, seconds: float, request: callable) -> tuple[int, list[float], int]:  # type: ignore[valid-type]
    stop = time.monotonic() + seconds
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()

    def worker() -> None:
        nonlocal errors
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine: list[float] = []
        failed = 0
        while time.monotonic() < stop:
            started = time.perf_counter()
            status = request(connection)
            mine.append((time.perf_counter() - started) * 1000)
            failed += status >= 300
        with lock:
            latencies.extend(mine)
            errors += failed

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    begin = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - begin
    return int(len(latencies) / elapsed), latencies, errors


def server_pids(pid: int) -> list[int]:
    """The server process and its children (worker processes)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    return [pid, *(int(p) for p in children.read_text().split())] if children.exists() else [pid]


def server_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by the server's processes: per document, a figure that a machine whose
    speed varies blurs less than a rate."""
    ticks = 0
    for each in server_pids(pid):
        fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def server_memory_mb(pid: int) -> float:
    """Peak resident memory of the server process and its children (worker processes)."""
    total = 0
    for each in server_pids(pid):
        status = Path(f"/proc/{each}/status").read_text()
        total += int(re.search(r"VmHWM:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    return total / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--documents", type=int, default=4000)
    parser.add_argument("--searches", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=1, help="server processes (carnet serve --workers)")
    parser.add_argument("--searchers", default="lab,gp,pharmacist", help="who searches over ITI-67 (lab,gp,pharmacist)")
    parser.add_argument("--blob-url", default="", help="CARNET_BLOB_URL: s3://bucket?endpoint=… (default: a folder)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="carnet-bench-"))
    env = {**os.environ, "CARNET_DATA_DIR": str(work), "CARNET_LOG_LEVEL": "WARNING", "CARNET_SMTP_URL": "outbox:"}
    if args.blob_url:
        from carnet.storage.s3 import S3BlobStore

        env["CARNET_BLOB_URL"] = args.blob_url
        S3BlobStore.from_url(args.blob_url).ensure_bucket()
    pg_db = create_database(args.database_url, env)
    if pg_db:
        carnet(env, "migrate")
    port = free_port()
    env["CARNET_BASE_URL"] = f"http://127.0.0.1:{port}"
    try:
        started = time.perf_counter()
        target_ins, others = populate(env, args.patients, args.documents)
        print(
            f"setup: {args.patients} patients, {args.documents} documents for one patient "
            f"in {time.perf_counter() - started:.0f} s"
        )
        lab = json.loads(carnet(env, "clients", "create", "--name", "LBM bench", "--finess", "2B0000020"))
        searchers = {
            "lab": lab,
            "gp": json.loads(carnet(env, "clients", "create", "--name", "GP bench", "--rpps", "10001234567")),
            "pharmacist": json.loads(carnet(env, "clients", "create", "--name", "Ph bench", "--rpps", "10002345678")),
        }
        with serving(env, port, args.workers, work) as server:

            def token_headers(client: dict[str, str]) -> dict[str, str]:
                connection = http.client.HTTPConnection("127.0.0.1", port)
                form = {"grant_type": "client_credentials", **{k: client[k] for k in ("client_id", "client_secret")}}
                connection.request(
                    "POST", "/oauth/token", urlencode(form), {"Content-Type": "application/x-www-form-urlencoded"}
                )
                token = json.loads(connection.getresponse().read())["access_token"]
                return {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}

            headers = token_headers(lab)
            bodies = bench_bundles(others, 64)

            def provide(conn: http.client.HTTPConnection) -> int:
                body = random.choice(bodies).replace("MASTER-ID", str(uuid.uuid4()), 1)
                conn.request("POST", "/fhir", body, headers)
                response = conn.getresponse()
                answer = response.read()
                if response.status >= 300 and not errors_seen:
                    errors_seen.append(answer[:300])
                return response.status

            errors_seen: list[bytes] = []
            print(f"\nITI-65, one 100 KiB document per bundle ({args.seconds:.0f} s each):")
            for clients in (1, 8):
                cpu = server_cpu_seconds(server.pid)
                rate, lat, errors = run_clients(port, clients, args.seconds, provide)
                cpu = (server_cpu_seconds(server.pid) - cpu) / max(len(lat), 1) * 1000
                print(
                    f"  {clients} client(s): {rate} docs/s, p50 {percentile(lat, 50):.1f} ms, "
                    f"p99 {percentile(lat, 99):.1f} ms, errors {errors}, server CPU {cpu:.1f} ms a document"
                )
            if errors_seen:
                print(f"  first error: {errors_seen[0]!r}")

            query = "/fhir/DocumentReference?" + urlencode(
                {"patient.identifier": f"{INS_SYSTEM}|{target_ins}", "status": "current", "_count": "50"}
            )

            print(
                f"\nITI-67, one patient's {args.documents}+ documents among {args.patients} patients, "
                f"50 per page, {args.searches} sequential searches:"
            )
            for who in args.searchers.split(","):
                search_headers = token_headers(searchers[who])
                totals: set[int] = set()

                def find(conn: http.client.HTTPConnection, headers: dict[str, str] = search_headers) -> bytes:
                    offset = random.randrange(0, args.documents, 50)
                    conn.request("GET", f"{query}&_offset={offset}", headers=headers)
                    response = conn.getresponse()
                    body = response.read()
                    assert response.status == 200, response.status
                    return body

                conn = http.client.HTTPConnection("127.0.0.1", port)
                for _ in range(50):
                    find(conn)
                lat = []
                for _ in range(args.searches):
                    t0 = time.perf_counter()
                    body = find(conn)  # the latency: from the request to the last byte of the answer…
                    lat.append((time.perf_counter() - t0) * 1000)
                    totals.add(json.loads(body).get("total", -1))  # …the client's own parse left out
                print(
                    f"  {who:<10} (total {max(totals)}): p50 {percentile(lat, 50):.1f} ms, "
                    f"p99 {percentile(lat, 99):.1f} ms, mean {statistics.mean(lat):.1f} ms"
                )
            print(f"\nserver peak memory (VmHWM, all processes): {server_memory_mb(server.pid):.0f} MB")
    finally:
        drop_database(args.database_url, pg_db)


if __name__ == "__main__":
    main()
