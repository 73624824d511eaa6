"""A relay outage never blocks a login (issue #15-3): with the SMTP relay down, the password step answers, says the
code may be late, and keeps the code's e-mail durably; when the relay is back the worker's job sends it (a real
aiosmtpd server) and the code works; an e-mail whose code has expired meanwhile is dropped, not sent late."""

from __future__ import annotations

import re
import socket
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from carnet.bootstrap import build_services
from carnet.demo import DEMO_PASSWORD, load_demo
from carnet.enrolment.service import activation
from carnet.mail import queue
from carnet.mail.tables import QueuedMail
from carnet.storage.types import utcnow
from carnet.web.app import create_app
from tests.conftest import csrf_of, empty_tables, make_settings

LOGIN = "pierre-paul.luciani"


class Collect:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))  # type: ignore[attr-defined,arg-type]
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def queued(services: object) -> int:
    with services.db.unit_of_work() as db:  # type: ignore[attr-defined]
        return db.scalar(select(func.count()).select_from(QueuedMail)) or 0


def test_a_login_goes_on_while_the_relay_is_down_and_the_code_follows(tmp_path: Path, database_url: str) -> None:
    port = free_port()  # nothing listens there: the relay is down
    services = build_services(make_settings(tmp_path, database_url, smtp_url=f"smtp://127.0.0.1:{port}"))
    empty_tables(services)
    with services.db.unit_of_work() as db:
        load_demo(services, db)
    with TestClient(create_app(services=services), follow_redirects=False) as client:
        page = client.get("/connexion")
        form = {"identifiant": LOGIN, "mot_de_passe": DEMO_PASSWORD, "csrf_token": csrf_of(page.text)}
        started = client.post("/connexion", data=form)
        assert started.status_code == 303 and started.headers["location"].endswith("methode=email&retard=1")
        page = client.get(started.headers["location"])
        assert page.status_code == 200 and "Votre code peut arriver en retard" in page.text
        assert queued(services) == 1
        with services.db.unit_of_work() as db:  # sealed: neither the code nor the address in clear
            sealed = db.scalar(select(QueuedMail.sealed))
        assert sealed and "exemple.fr" not in sealed

        assert queue.retry_job(services) == 0  # still down (and not yet due): kept
        handler = Collect()
        controller = Controller(handler, hostname="127.0.0.1", port=port)
        controller.start()
        try:
            with services.db.unit_of_work() as db:  # its back-off delay passes
                db.execute(update(QueuedMail).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
            assert queue.retry_job(services) == 1
        finally:
            controller.stop()
        assert queued(services) == 0 and len(handler.messages) == 1
        body = handler.messages[0].get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
        code = re.search(r"\b(\d{6})\b", body)
        assert code
        done = client.post(
            "/connexion/verification",
            data={"code": code.group(1), "methode": "email", "csrf_token": csrf_of(page.text)},
        )
        assert done.status_code == 303
    services.db.dispose()


def test_a_code_that_expired_in_the_queue_is_not_sent_late(tmp_path: Path, database_url: str) -> None:
    port = free_port()
    services = build_services(make_settings(tmp_path, database_url, smtp_url=f"smtp://127.0.0.1:{port}"))
    empty_tables(services)
    with services.db.unit_of_work() as db:
        load_demo(services, db)
    with TestClient(create_app(services=services), follow_redirects=False) as client:
        page = client.get("/connexion")
        form = {"identifiant": LOGIN, "mot_de_passe": DEMO_PASSWORD, "csrf_token": csrf_of(page.text)}
        assert client.post("/connexion", data=form).status_code == 303
    handler = Collect()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with services.db.unit_of_work() as db:  # an hour later: the code is long expired
            past = utcnow() - timedelta(seconds=1)
            db.execute(update(QueuedMail).values(next_attempt_at=past, discard_after=past))
        assert queue.retry_job(services) == 0
    finally:
        controller.stop()
    assert queued(services) == 0 and handler.messages == []
    services.db.dispose()


def test_the_activation_code_step_says_the_relay_is_down_instead_of_failing(tmp_path: Path, database_url: str) -> None:
    services = build_services(make_settings(tmp_path, database_url, smtp_url=f"smtp://127.0.0.1:{free_port()}"))
    state = activation.State("invitation", "contact", utcnow().timestamp() + 600)
    with pytest.raises(activation.ActivationError) as refused:
        activation.send_contact_code(services, state, "marie@exemple.fr")
    assert refused.value.message == activation.MAIL_DOWN
    services.db.dispose()
