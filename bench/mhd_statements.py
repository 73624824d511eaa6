"""SQL statements and CPU time per MHD request, in-process — figures that a busy machine does not blur.

    .venv/bin/python bench/mhd_statements.py [--requests 200] [--documents 200] [--database-url URL]

Loads the demo data and ``--documents`` small PDFs filed by the hospital lab on Marie-Ange Santoni, then
sends each kind of request ``--requests`` times through the ASGI app (no network, no server process):
ITI-65 (one small PDF per bundle, by the lab), ITI-67 (first page, 50 per page) by the lab, her médecin
traitant's software and an authorised pharmacist's software. Prints, per request: SQL statements sent
(counted on the engine: deterministic) and CPU milliseconds of this process (``time.process_time``:
less sensitive to other work than wall time, still sensitive to the processor's speed). With --database-url (a
PostgreSQL server), a temporary database is created on that server and dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import event, select  # noqa: E402
from tempdb import create_database, drop_database  # noqa: E402

from carnet.bootstrap import build_services  # noqa: E402
from carnet.config import Settings  # noqa: E402
from carnet.demo import load_demo  # noqa: E402
from carnet.identity.service.clients import create_client  # noqa: E402
from carnet.people.tables import Patient  # noqa: E402
from carnet.storage.migrate import upgrade  # noqa: E402
from carnet.web.app import create_app  # noqa: E402
from tests.support.documents import document_entry, make_pdf, provide_bundle  # noqa: E402

FHIR = {"Content-Type": "application/fhir+json"}
INS_SYSTEM = "urn:oid:1.2.250.1.213.1.4.8"


def token(client: TestClient, created: Any) -> dict[str, str]:
    answer = client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": created.client_id,
            "client_secret": created.client_secret,
        },
    )
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def measure(label: str, requests: int, statements: list[int], send: Any) -> None:
    send()  # warm-up
    before, started = statements[0], time.process_time()
    for _ in range(requests):
        response = send()
        assert response.status_code in {200, 201}, response.text[:300]
    cpu = (time.process_time() - started) / requests * 1000
    print(f"  {label:<28} {(statements[0] - before) / requests:6.1f} statements   {cpu:6.2f} ms CPU")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--documents", type=int, default=200)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="carnet-bench-"))
    os.environ.update({"CARNET_DATA_DIR": str(work), "CARNET_LOG_LEVEL": "WARNING", "CARNET_ARGON2_PROFILE": "test"})
    env: dict[str, str] = {}
    name = create_database(args.database_url, env)  # a database of its own on that server, dropped at the end
    try:
        run(args, Settings(database_url=env["CARNET_DATABASE_URL"]) if name else Settings())
    finally:
        drop_database(args.database_url, name)


def run(args: argparse.Namespace, settings: Settings) -> None:
    upgrade(settings.resolved_database_url)
    services = build_services(settings)
    statements = [0]

    @event.listens_for(services.db.engine, "before_cursor_execute")
    def count(*_: object) -> None:
        statements[0] += 1

    with services.db.unit_of_work() as db:
        load_demo(services, db)
        lab = create_client(db, "LBM bench", finess="2B0000020")
        gp = create_client(db, "GP bench", rpps="10001234567")
        pharmacist = create_client(db, "Ph bench", rpps="10002345678")
        ins = db.scalar(select(Patient.ins).where(Patient.email == "marie-ange.santoni@exemple.fr"))
    pdf = make_pdf("Résultat de biologie : hémoglobine glyquée 6,5 %.")
    with TestClient(create_app(services=services)) as client:
        headers = {name: token(client, c) for name, c in (("lab", lab), ("gp", gp), ("pharmacist", pharmacist))}
        for _ in range(args.documents):
            client.post("/fhir", json=provide_bundle(document_entry(ins, pdf)), headers={**headers["lab"], **FHIR})
        search = {"patient.identifier": f"{INS_SYSTEM}|{ins}", "_count": "50"}
        print(f"per request ({args.requests} each, {args.documents}+ documents on the patient):")
        measure(
            "ITI-65 deposit (lab)",
            args.requests,
            statements,
            lambda: client.post(
                "/fhir", json=provide_bundle(document_entry(ins, pdf)), headers={**headers["lab"], **FHIR}
            ),
        )
        for name in ("lab", "gp", "pharmacist"):
            measure(
                f"ITI-67 search ({name})",
                args.requests,
                statements,
                lambda name=name: client.get("/fhir/DocumentReference", params=search, headers=headers[name]),
            )
    services.db.dispose()


if __name__ == "__main__":
    main()
