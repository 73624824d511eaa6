"""Forwarded headers are believed only from the configured proxies (issue #15-7): without CARNET_TRUSTED_PROXIES,
a client reaching `carnet serve` directly cannot pick the address the login limit counts by sending
X-Forwarded-For; behind a configured proxy, the forwarded address is the client's. A real server process."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[object]:
    started: list[subprocess.Popen[bytes]] = []

    def start(trusted: str) -> str:
        port = free_port()
        env = {
            **os.environ,
            "CARNET_DATA_DIR": str(tmp_path / f"data-{port}"),
            "CARNET_DATABASE_URL": "",
            "CARNET_ARGON2_PROFILE": "test",
            "CARNET_LOGIN_IP_LIMIT_PER_MINUTE": "2",
            "CARNET_TRUSTED_PROXIES": trusted,
            "CARNET_BASE_URL": f"http://127.0.0.1:{port}",
        }
        command = [sys.executable, "-m", "carnet", "serve", "--port", str(port)]
        started.append(subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                httpx.get(f"{base}/connexion", timeout=1)
                return base
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError("carnet serve did not start")

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=20)


def attempts(base: str) -> list[int]:
    """Five wrong logins (five logins typed, so no login locks), each claiming another address in X-Forwarded-For."""
    statuses = []
    with httpx.Client(base_url=base) as browser:
        page = browser.get("/connexion").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token
        for n in range(5):
            form = {"identifiant": f"personne-{n}", "mot_de_passe": "faux", "csrf_token": token.group(1)}
            answer = browser.post("/connexion", data=form, headers={"X-Forwarded-For": f"203.0.113.{n}"})
            statuses.append(answer.status_code)
    return statuses


def test_a_direct_client_cannot_choose_its_address(serve: object) -> None:
    base = serve("")  # type: ignore[operator]
    assert attempts(base) == [400, 400, 429, 429, 429]  # the peer's address is counted, whatever it claims


def test_behind_a_configured_proxy_the_forwarded_address_is_counted(serve: object) -> None:
    base = serve("127.0.0.1")  # type: ignore[operator]
    assert attempts(base) == [400, 400, 400, 400, 400]  # five clients, one try each
