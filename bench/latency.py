"""Per-patient latency on a populated instance (issue #18, "Performance"), against a real `carnet serve` process.

    .venv/bin/python bench/latency.py [--database-url …] [--blob-url s3://…] [--data-dir DIR] [--requests 300]

Run it on an instance bench/population.py built (same --database-url, --blob-url, --data-dir). For Marie-Ange
Santoni (the demo patient who holds --target-documents documents there), it times --requests sequential requests
of each, after 20 not counted:
  - her document list page (portal, logged in as her: password + the e-mailed code from the local outbox);
  - ITI-67 (GET /fhir/DocumentReference by her INS, status current, 50 per page) by the demo laboratory, which
    wrote her documents (OAuth 2 client credentials);
  - her history page;
  - her medical profile page.
Prints p50 and p99 (client-side time to the last byte; client and server share the machine).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from bench.medical_profile import log_in  # noqa: E402
from bench.mhd import free_port, percentile, server_memory_mb, serving  # noqa: E402
from bench.population import LAB_FINESS, TARGET_LOGIN, carnet, environment  # noqa: E402

INS_SYSTEM = "urn:oid:1.2.250.1.213.1.4.8"
WARM_UP = 20


def target(env: dict[str, str]) -> tuple[str, str]:
    """Marie-Ange's space and INS."""
    os.environ.update(env)
    from sqlalchemy import select

    from carnet.bootstrap import build_services
    from carnet.config import Settings
    from carnet.people.tables import Account, Patient

    services = build_services(Settings())
    try:
        with services.db.unit_of_work() as db:
            row = db.execute(
                select(Patient.id, Patient.ins)
                .join(Account, Account.patient_id == Patient.id)
                .where(Account.login == TARGET_LOGIN)
            ).one()
            return str(row[0]), str(row[1])
    finally:
        services.db.dispose()


def bearer(port: int, client: dict[str, str]) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", port)
    form = {"grant_type": "client_credentials", **{k: client[k] for k in ("client_id", "client_secret")}}
    connection.request("POST", "/oauth/token", urlencode(form), {"Content-Type": "application/x-www-form-urlencoded"})
    return str(json.loads(connection.getresponse().read())["access_token"])


def timed(port: int, path: str, headers: dict[str, str], rounds: int) -> tuple[list[float], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    latencies: list[float] = []
    body = b""
    for index in range(rounds + WARM_UP):
        started = time.perf_counter()
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        body = response.read()
        if index >= WARM_UP:
            latencies.append((time.perf_counter() - started) * 1000)
        if response.status != 200:
            raise SystemExit(f"{path} : réponse {response.status}\n{body[:300]!r}")
    return latencies, body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--blob-url", default="")
    parser.add_argument("--data-dir", default="carnet-population")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--workers", type=int, default=1, help="server processes (carnet serve --workers)")
    args = parser.parse_args()

    work = Path(args.data_dir).resolve()
    env = environment(args.database_url, str(work), args.blob_url)
    port = free_port()
    env["CARNET_BASE_URL"] = f"http://127.0.0.1:{port}"
    patient_id, ins = target(env)
    lab = json.loads(carnet(env, "clients", "create", "--name", "LBM latence", "--finess", LAB_FINESS))
    with serving(env, port, args.workers, work) as server:
        cookie = {"Cookie": log_in(port, work)}
        fhir = {"Authorization": f"Bearer {bearer(port, lab)}", "Accept": "application/fhir+json"}
        search = "/fhir/DocumentReference?" + urlencode(
            {"patient.identifier": f"{INS_SYSTEM}|{ins}", "status": "current", "_count": "50"}
        )
        cases = (
            ("document list (portal)", f"/espace/{patient_id}/documents", cookie),
            ("ITI-67 by the lab", search, fhir),
            ("history page", f"/espace/{patient_id}/historique", cookie),
            ("profile page", f"/espace/{patient_id}/profil", cookie),
        )
        print(f"One patient, {args.requests} sequential requests each ({WARM_UP} before, not counted):")
        for label, path, headers in cases:
            latencies, body = timed(port, path, headers, args.requests)
            total = f", total {json.loads(body)['total']}" if path.startswith("/fhir") else ""
            print(
                f"  {label:<24} {len(body) // 1024:>4} KiB{total}: p50 {percentile(latencies, 50):.1f} ms, "
                f"p99 {percentile(latencies, 99):.1f} ms"
            )
        print(f"server peak memory (VmHWM, all processes): {server_memory_mb(server.pid):.0f} MB")


if __name__ == "__main__":
    main()
