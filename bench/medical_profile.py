"""Benchmark of the medical profile (PRF-1..3) against a real `carnet serve` process.

    .venv/bin/python bench/medical_profile.py [--database-url postgresql://postgres@127.0.0.1:5432/postgres]
        [--measures 10000] [--pages 300] [--seconds 15]

1. Pages: Marie-Ange Santoni's profile holds --measures measures (the 13 that are entered, spread over
   ten years, sealed and audited like any other) and a few items; she is logged in (password + e-mailed
   code) and opens, sequentially, her profile overview, the weight page (one year) and the weight page
   (all of it), --pages times each. Prints p50/p95/p99 of the server time, i.e. the time between the
   request and the last byte of the answer, measured by the client on the same machine.
2. Observation create over FHIR (POST /fhir/Observation, one body weight per request, checked,
   converted, sealed, audited), by the demo GP's software, 1 then 8 clients for --seconds each.
The server runs on the embedded default (SQLite + local folder) unless --database-url is given (a
temporary database is created on that server and dropped at the end). Client and server share the machine.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from bench.mhd import carnet, free_port, percentile, run_clients, server_memory_mb, serving  # noqa: E402
from bench.tempdb import create_database, drop_database  # noqa: E402

INS_SYSTEM = "urn:oid:1.2.250.1.213.1.4.8"
LOGIN = "marie-ange.santoni"
PASSWORD = "Carnet-Demo-2026!"  # noqa: S105 — the published demo credential


def populate(env: dict[str, str], measures: int) -> tuple[str, str]:
    """Demo data + ``measures`` measures for Marie-Ange, sealed and audited through the profile's store."""
    carnet(env, "demo")
    os.environ.update(env)
    from sqlalchemy import select

    from carnet.bootstrap import build_services
    from carnet.config import Settings
    from carnet.hall import audit
    from carnet.hall.actors import Actor, ActorKind
    from carnet.people.tables import Account, Patient
    from carnet.profile.model import measures as catalogue
    from carnet.profile.service import entries, portal

    services = build_services(Settings())
    with services.db.unit_of_work() as db:
        account = db.scalar(select(Account).where(Account.login == LOGIN))
        assert account is not None and account.patient_id
        patient = db.get(Patient, account.patient_id)
        assert patient is not None
        actor = Actor(ActorKind.PATIENT, account.id, account.display_name, patient_id=patient.id)
        ins, patient_id = patient.ins, patient.id
    typed = {
        "weight": "63,5",
        "height": "165",
        "heart_rate": "72",
        "waist": "78",
        "steps": "8500",
        "head_circumference": "55",
        "pain": "2",
        "temperature": "36,8",
        "glucose": "0,95",
        "interstitial_glucose": "1,02",
        "hba1c": "5,6",
        "gmi": "5,8",
    }
    keys = [k for k, m in catalogue.MEASURES.items() if not m.computed]
    now = datetime.now(UTC)
    step = timedelta(days=3650) / max(measures, 1)
    for start in range(0, measures, 1000):
        with services.db.unit_of_work() as db:
            for index in range(start, min(start + 1000, measures)):
                key = keys[index % len(keys)]
                value = portal.MeasureInput(typed.get(key, ""), systolic="124", diastolic="80")
                new = portal.measure_entry(catalogue.MEASURES[key], value, now)
                new = entries.NewEntry(**{**new.__dict__, "effective_at": now - step * (measures - index)})
                entry = entries.store(services, db, actor, patient_id, new)
                audit.record(db, actor, "profile.write", patient_id=patient_id, resource_id=entry.id)
    for section, fields in (("allergies", {"label": "Pénicilline"}), ("conditions", {"label": "Asthme"})):
        portal.add_item(services, actor, patient_id, section, fields)
    services.db.dispose()
    return ins, patient_id


def log_in(port: int, work: Path) -> str:
    """Password then the e-mailed code (read from the local outbox), as a person would; the session cookie."""
    import httpx2 as httpx  # the HTTP client of the test extra

    def csrf(html: str) -> str:
        found = re.search(r'name="csrf_token" value="([^"]+)"', html)
        return found.group(1) if found else ""

    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as browser:
        page = browser.get("/connexion")
        browser.post("/connexion", data={"identifiant": LOGIN, "mot_de_passe": PASSWORD, "csrf_token": csrf(page.text)})
        page = browser.get("/connexion/verification")
        mails = sorted((work / "outbox").iterdir(), key=lambda p: p.stat().st_mtime)
        code = re.search(r"\b(\d{6})\b", mails[-1].read_text(errors="replace"))
        assert code, "no code in the outbox"
        data = {"code": code.group(1), "methode": "email", "csrf_token": csrf(page.text)}
        answer = browser.post("/connexion/verification", data=data)
        assert answer.status_code == 303, answer.text[:300]
        return "; ".join(f"{name}={value}" for name, value in browser.cookies.items())


def time_pages(port: int, cookie: str, paths: list[str], rounds: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port)
    for path in paths:
        latencies = []
        for index in range(rounds + 20):
            started = time.perf_counter()
            connection.request("GET", path, headers={"Cookie": cookie})
            response = connection.getresponse()
            body = response.read()
            if index >= 20:  # warm-up excluded
                latencies.append((time.perf_counter() - started) * 1000)
            assert response.status == 200, (path, response.status, body[:200])
        print(
            f"  {path.split('/profil', 1)[1] or '/':<34} {len(body) // 1024:>4} KiB"
            f"  p50 {percentile(latencies, 50):.1f} ms  p95 {percentile(latencies, 95):.1f} ms"
            f"  p99 {percentile(latencies, 99):.1f} ms"
        )


def observation(ins: str, kilos: float) -> str:
    return json.dumps(
        {
            "resourceType": "Observation",
            "status": "final",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "vital-signs",
                        }
                    ]
                }
            ],
            "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7", "display": "Body weight"}]},
            "subject": {"identifier": {"system": INS_SYSTEM, "value": ins}},
            "effectiveDateTime": datetime.now(UTC).isoformat(timespec="seconds"),
            "valueQuantity": {"value": kilos, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"},
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--measures", type=int, default=10_000)
    parser.add_argument("--pages", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--workers", type=int, default=1, help="server processes (carnet serve --workers)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="carnet-bench-"))
    env = {**os.environ, "CARNET_DATA_DIR": str(work), "CARNET_LOG_LEVEL": "WARNING", "CARNET_SMTP_URL": "outbox:"}
    pg_db = create_database(args.database_url, env)
    if pg_db:
        carnet(env, "migrate")
    port = free_port()
    env["CARNET_BASE_URL"] = f"http://127.0.0.1:{port}"
    try:
        started = time.perf_counter()
        ins, patient_id = populate(env, args.measures)
        print(f"setup: {args.measures} measures for one patient in {time.perf_counter() - started:.0f} s")
        gp = json.loads(carnet(env, "clients", "create", "--name", "GP bench", "--rpps", "10001234567"))
        with serving(env, port, args.workers, work) as server:
            cookie = log_in(port, work)
            base = f"/espace/{patient_id}/profil"
            print(f"\nPages of a profile with {args.measures} measures ({args.pages} sequential requests each):")
            time_pages(
                port,
                cookie,
                [base, f"{base}/mesures/weight?periode=1a", f"{base}/mesures/weight?periode=tout"],
                args.pages,
            )

            connection = http.client.HTTPConnection("127.0.0.1", port)
            form = {"grant_type": "client_credentials", **{k: gp[k] for k in ("client_id", "client_secret")}}
            connection.request(
                "POST", "/oauth/token", urlencode(form), {"Content-Type": "application/x-www-form-urlencoded"}
            )
            token = json.loads(connection.getresponse().read())["access_token"]
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}
            errors_seen: list[bytes] = []

            def create(conn: http.client.HTTPConnection) -> int:
                conn.request("POST", "/fhir/Observation", observation(ins, 63.4), headers)
                response = conn.getresponse()
                answer = response.read()
                if response.status != 201 and not errors_seen:
                    errors_seen.append(answer[:300])
                return response.status if response.status != 201 else 200

            print(f"\nObservation create over FHIR ({args.seconds:.0f} s each):")
            for clients in (1, 8):
                rate, lat, errors = run_clients(port, clients, args.seconds, create)
                print(
                    f"  {clients} client(s): {rate} creates/s, p50 {percentile(lat, 50):.1f} ms, "
                    f"p99 {percentile(lat, 99):.1f} ms, errors {errors}"
                )
            if errors_seen:
                print(f"  first error: {errors_seen[0]!r}")
            print(f"\nserver peak memory (VmHWM, all processes): {server_memory_mb(server.pid):.0f} MB")
    finally:
        drop_database(args.database_url, pg_db)


if __name__ == "__main__":
    main()
