"""``carnet serve --smtp-port`` (MSG-3): on the embedded default one process serves the portal and the gateway — a
doctor's mail sent to the running server lands in the space, and the portal still answers."""

from __future__ import annotations

import os
import smtplib
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from carnet.demo import secure_mail_of
from tests.messaging.conftest import free_port, mail
from tests.support.actors import PROFESSIONAL


def test_carnet_serve_runs_the_gateway_beside_the_portal(tmp_path: Path) -> None:
    env = {**os.environ, "CARNET_DATA_DIR": str(tmp_path), "CARNET_DATABASE_URL": "", "CARNET_ARGON2_PROFILE": "test"}
    subprocess.run([sys.executable, "-m", "carnet", "demo"], env=env, check=True, capture_output=True, timeout=120)
    web, smtp_port = free_port(), free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "carnet", "serve", "--port", str(web), "--smtp-port", str(smtp_port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{web}/connexion", timeout=2) as page:
                    assert page.status == 200
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "le serveur n'a pas démarré"
                time.sleep(0.3)
        with sqlite3.connect(tmp_path / "carnet.sqlite3") as db:
            ins = db.execute("select ins from patients where email = 'marie-ange.santoni@exemple.fr'").fetchone()[0]
            before = db.execute("select count(*) from messages").fetchone()[0]
        sender = secure_mail_of(PROFESSIONAL)
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as client:
            refused = client.sendmail(sender, [f"{ins}@patient.carnet.localhost"], mail(From=sender).as_bytes())
        assert refused == {}
        with sqlite3.connect(tmp_path / "carnet.sqlite3") as db:
            assert db.execute("select count(*) from messages").fetchone()[0] == before + 1
    finally:
        server.terminate()
        server.wait(timeout=30)
