"""ENR-5 with a real SMTP server (aiosmtpd): the second-factor code arrives by mail."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient

from carnet.bootstrap import build_services
from carnet.demo import DEMO_PASSWORD, load_demo
from carnet.web.app import create_app
from tests.conftest import csrf_of, empty_tables, make_settings


class Collect:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))  # type: ignore[attr-defined,arg-type]
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server() -> Iterator[tuple[Controller, Collect]]:
    handler = Collect()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield controller, handler
    controller.stop()


def test_the_login_code_is_delivered_over_smtp(tmp_path: Path, database_url: str, smtp_server: tuple) -> None:
    controller, inbox = smtp_server
    port = controller.port
    settings = make_settings(tmp_path, database_url, smtp_url=f"smtp://127.0.0.1:{port}")
    services = build_services(settings)
    empty_tables(services)
    with services.db.unit_of_work() as db:
        load_demo(services, db)
    with TestClient(create_app(services=services), follow_redirects=False) as client:
        assert client.get("/dev/boite-mail").status_code == 404  # no outbox page with a real mail server
        page = client.get("/connexion")
        client.post(
            "/connexion",
            data={
                "identifiant": "pierre-paul.luciani",
                "mot_de_passe": DEMO_PASSWORD,
                "csrf_token": csrf_of(page.text),
            },
        )
        assert len(inbox.messages) == 1
        mail = inbox.messages[0]
        assert mail["To"] == "pierre-paul.luciani@exemple.fr"
        assert mail["Subject"] == "Votre code de connexion Carnet"
        code = re.search(r"\b(\d{6})\b", mail.get_body(preferencelist=("plain",)).get_content()).group(1)  # type: ignore[union-attr]
        page = client.get("/connexion/verification")
        done = client.post(
            "/connexion/verification", data={"code": code, "methode": "email", "csrf_token": csrf_of(page.text)}
        )
        assert done.status_code == 303 and done.headers["location"].startswith("/espace/")
    services.db.dispose()
