"""The messaging's test kit: the demo's people, a real gateway on a free port, mail built as real clients do."""

from __future__ import annotations

import smtplib
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage

import pytest
from sqlalchemy import select

from carnet.bootstrap import Services
from carnet.demo import LAB_MAIL, secure_mail_of
from carnet.messaging.smtp import GatewayController
from carnet.people.tables import Patient
from tests.support.actors import PATIENT, PROFESSIONAL, STRANGER, UNAUTHORISED

DOCTOR_MAIL = secure_mail_of(PROFESSIONAL)
DENTIST_MAIL = secure_mail_of(UNAUTHORISED)
__all__ = ["DENTIST_MAIL", "DOCTOR_MAIL", "LAB_MAIL", "STRANGER", "Gateway", "free_port", "mail"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Gateway:
    services: Services
    port: int
    ins: str
    patient_id: str
    domain: str

    @property
    def address(self) -> str:
        return f"{self.ins}@{self.domain}"

    def client(self) -> smtplib.SMTP:
        return smtplib.SMTP("127.0.0.1", self.port, timeout=30)

    def send(
        self, message: EmailMessage | bytes, sender: str = DOCTOR_MAIL, to: list[str] | None = None
    ) -> tuple[int, bytes]:
        """MAIL, RCPT, DATA over a real connection; the reply to DATA (or the refusal before it)."""
        raw = message if isinstance(message, bytes) else message.as_bytes(policy=policy.SMTP)
        with self.client() as smtp:
            smtp.ehlo("cabinet.exemple.fr")
            code, answer = smtp.mail(sender)
            if code != 250:
                return code, answer
            for rcpt in to or [self.address]:
                code, answer = smtp.rcpt(rcpt)
                if code not in (250, 251):
                    return code, answer
            return smtp.data(raw)


def mail(
    subject: str = "Vos résultats",
    text: str = "Bonjour,\nvoici le compte rendu.",
    files: list[tuple[str, str, bytes]] | None = None,
    **headers: str,
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = headers.pop("From", DOCTOR_MAIL)
    message["To"] = headers.pop("To", "patient")
    message["Subject"] = subject
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(text)
    for filename, mime, body in files or []:
        maintype, _, subtype = mime.partition("/")
        message.add_attachment(body, maintype=maintype, subtype=subtype, filename=filename)
    return message


@pytest.fixture
def gateway(demo: Services) -> Iterator[Gateway]:
    with demo.db.unit_of_work() as db:
        patient = db.scalar(select(Patient).where(Patient.email == f"{PATIENT}@exemple.fr"))
        assert patient is not None
        ins, patient_id = patient.ins, patient.id
    port = free_port()
    controller = GatewayController(demo, "127.0.0.1", port)
    controller.start()
    try:
        yield Gateway(demo, port, ins, patient_id, demo.settings.messaging_domain)
    finally:
        controller.stop()
