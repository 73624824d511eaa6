"""Benchmark of the app catalogue (CAT-2, CAT-3) against a real `carnet serve` process.

    .venv/bin/python bench/catalogue.py [--database-url postgresql://postgres@127.0.0.1:5432/postgres]
        [--seconds 15] [--clients 8] [--workers 1]

Setup: the demo data, one app referenced with `carnet apps register` and published with `carnet apps publish`;
Marie-Ange Santoni logs in (password + e-mailed code) and consents once per client on the consent screen
(`GET`/`POST /oauth/authorize`); each client exchanges its code with its PKCE verifier.
1. Token issuance: each client rotates its refresh token (`POST /oauth/token`, grant_type=refresh_token — a new
   access token and a new refresh token per request, the old one marked used), 1 then --clients clients.
2. A connected device posting Observations: `POST /fhir/Observation` (one body weight per request) with the app's
   access token (looked up with its consent and the app's status at every request, then the policy, the sealed
   entry and the history entry as for any actor), 1 then --clients clients. Issue #13 asks ≥ 500 tokens/s and,
   for the Observations with 8 clients, at least Medplum 4.5.2's 134 creates/s on this machine kind.
The server runs on the embedded default (SQLite + local folder) unless --database-url is given (a temporary
database is created on that server and dropped at the end). Client and server share the machine. The login rate
limit of the token endpoint is raised for the run (CARNET_LOGIN_IP_LIMIT_PER_MINUTE), as the clients share one
address.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import json
import os
import re
import secrets
import sys
import tempfile
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from bench.medical_profile import log_in, observation  # noqa: E402
from bench.mhd import carnet, free_port, percentile, run_clients, server_memory_mb, serving  # noqa: E402
from bench.tempdb import create_database, drop_database  # noqa: E402

REDIRECT = "https://appli.exemple.fr/retour"
SCOPE = "launch/patient offline_access patient/Observation.crs"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def connect_once(port: int, cookie: str, client_id: str) -> dict[str, str]:
    """One authorisation-code flow: the consent screen, the person's yes, the code exchanged with its verifier."""
    import httpx2 as httpx

    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = {
        "response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT, "scope": SCOPE,
        "state": "bench", "code_challenge": challenge, "code_challenge_method": "S256",
    }  # fmt: skip
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Cookie": cookie}) as browser:
        page = browser.get("/oauth/authorize?" + urlencode(query))
        fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
        answer = browser.post("/oauth/authorize", data={**fields, "decision": "autoriser"})
        code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
        token = browser.post(
            "/oauth/token",
            data={
                "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "client_id": client_id,
                "code_verifier": verifier,
            },
        )  # fmt: skip
        assert token.status_code == 200, token.text
        return token.json()  # type: ignore[no-any-return]


def measure(port: int, label: str, counts: tuple[int, ...], seconds: float, make: callable) -> None:  # type: ignore[valid-type]
    print(f"\n{label} ({seconds:.0f} s each):")
    for clients in counts:
        rate, lat, errors = run_clients(port, clients, seconds, make(clients))
        print(
            f"  {clients} client(s): {rate}/s, p50 {percentile(lat, 50):.1f} ms, p99 {percentile(lat, 99):.1f} ms, "
            f"errors {errors}"
        )


def per_thread(request: callable) -> callable:  # type: ignore[valid-type]
    """``request(conn, slot)`` with one slot (one token series) per client thread."""
    import threading

    local = threading.local()
    counter = iter(range(1_000_000))

    def call(conn: http.client.HTTPConnection) -> int:
        if not hasattr(local, "slot"):
            local.slot = next(counter)
        return request(conn, local.slot)  # type: ignore[no-any-return]

    return call


def run(port: int, work: Path, client_id: str, args: argparse.Namespace) -> None:
    cookie = log_in(port, work)
    tokens = [connect_once(port, cookie, client_id) for _ in range(max(args.clients, 1))]
    patient_id = tokens[0]["patient"]
    refresh = [t["refresh_token"] for t in tokens]
    access = [t["access_token"] for t in tokens]
    body = observation("-", 63.4).replace(
        '"subject": {"identifier": {"system": "urn:oid:1.2.250.1.213.1.4.8", "value": "-"}}',
        f'"subject": {{"reference": "Patient/{patient_id}"}}',
    )

    def rotate(conn: http.client.HTTPConnection, slot: int) -> int:
        form = urlencode({"grant_type": "refresh_token", "refresh_token": refresh[slot], "client_id": client_id})
        conn.request("POST", "/oauth/token", form, FORM)
        response = conn.getresponse()
        answer = json.loads(response.read())
        if response.status == 200:
            refresh[slot], access[slot] = answer["refresh_token"], answer["access_token"]
        return response.status

    def post(conn: http.client.HTTPConnection, slot: int) -> int:
        headers = {"Authorization": f"Bearer {access[slot]}", "Content-Type": "application/fhir+json"}
        conn.request("POST", "/fhir/Observation", body, headers)
        response = conn.getresponse()
        response.read()
        return 200 if response.status == 201 else response.status

    counts = (1, args.clients)
    measure(port, "Token issuance (refresh-token rotation)", counts, args.seconds, lambda _: per_thread(rotate))
    measure(port, "A connected device posting Observations", counts, args.seconds, lambda _: per_thread(post))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1, help="server processes (carnet serve --workers)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="carnet-bench-"))
    env = {
        **os.environ, "CARNET_DATA_DIR": str(work), "CARNET_LOG_LEVEL": "WARNING", "CARNET_SMTP_URL": "outbox:",
        "CARNET_LOGIN_IP_LIMIT_PER_MINUTE": "100000000",
    }  # fmt: skip
    pg_db = create_database(args.database_url, env)
    carnet(env, "migrate")
    port = free_port()
    env["CARNET_BASE_URL"] = f"http://127.0.0.1:{port}"
    try:
        carnet(env, "demo")
        made = json.loads(carnet(env, "apps", "register", "--nom", "Balance bench", "--redirect-uri", REDIRECT,
                                 "--scope", "patient/Observation.crs"))  # fmt: skip
        carnet(env, "apps", "publish", made["client_id"])
        with serving(env, port, args.workers, work) as server:
            run(port, work, made["client_id"], args)
            print(f"\nserver peak memory (VmHWM): {server_memory_mb(server.pid):.0f} MB")
    finally:
        drop_database(args.database_url, pg_db)


if __name__ == "__main__":
    main()
