"""ENR-2 at regional scale: when the relay offers PIPELINING (RFC 2920), a batch sends one message per round trip.

Two real servers: a strict one on a bare socket, which answers a MAIL/RCPT/DATA group only once the whole
group has arrived (a client waiting after each command would stall it), and aiosmtpd offering PIPELINING
for the outcomes of refusals and of a connection lost mid-batch.
"""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller

from carnet.mail.outbound import Mail, SmtpMailer

SENDER = "Carnet <ne-pas-repondre@carnet.localhost>"
TEXT = "Bonjour Élise,\n.ligne qui commence par un point\n..et par deux\nVotre code : ABCD-EFGH-JKMN\n"


class StrictRelay(socketserver.StreamRequestHandler):
    """Answers each MAIL/RCPT/DATA group only when its three commands are all in (RFC 2920 § 3.1)."""

    refused = "refuse@exemple.fr"
    received: list[bytes]
    stalled: list[str]

    def handle(self) -> None:
        self.connection.settimeout(2)
        self.wfile.write(b"220 strict ESMTP\r\n")
        try:
            self._session()
        except TimeoutError:
            self.stalled.append("the client waited for an answer inside a group")

    def _session(self) -> None:
        while line := self.rfile.readline():
            verb = line[:4].upper()
            if verb == b"EHLO":
                self.wfile.write(b"250-strict\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
            elif verb == b"MAIL":
                rcpt, data = self.rfile.readline(), self.rfile.readline()  # no answer before the group is in
                if not (rcpt.upper().startswith(b"RCPT") and data.upper() == b"DATA\r\n"):
                    self.stalled.append(f"unexpected group: {rcpt!r} {data!r}")
                    return
                refused = self.refused.encode() in rcpt
                self.wfile.write(
                    b"250 OK\r\n"
                    + (b"550 5.1.1 inconnu\r\n554 pas de destinataire\r\n" if refused else b"250 OK\r\n354 go on\r\n")
                )
                if not refused:
                    self.received.append(self._content())
                    self.wfile.write(b"250 accepted\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 OK\r\n")

    def _content(self) -> bytes:
        lines = []
        while (line := self.rfile.readline()) != b".\r\n":
            lines.append(line[1:] if line.startswith(b".") else line)
        return b"".join(lines)


@pytest.fixture
def strict_relay() -> Iterator[tuple[int, list[bytes], list[str]]]:
    received: list[bytes] = []
    stalled: list[str] = []
    handler = type("Relay", (StrictRelay,), {"received": received, "stalled": stalled})
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], received, stalled
    server.shutdown()
    server.server_close()


def test_a_batch_is_sent_in_groups_and_each_message_gets_its_own_outcome(
    strict_relay: tuple[int, list[bytes], list[str]],
) -> None:
    port, received, stalled = strict_relay
    mailer = SmtpMailer(f"smtp://127.0.0.1:{port}", SENDER)
    recipients = ["a@exemple.fr", "b@exemple.fr", StrictRelay.refused, "c@exemple.fr"]

    results = mailer.send_many([Mail(to, "Votre invitation", TEXT) for to in recipients])

    assert stalled == []
    assert [r.delivered for r in results] == [True, True, False, True]
    assert results[2].permanent and results[2].error.startswith("550")
    messages = [message_from_bytes(raw, policy=policy.default) for raw in received]
    assert [str(m["To"]) for m in messages] == ["a@exemple.fr", "b@exemple.fr", "c@exemple.fr"]
    texts = [m.get_content().replace("\r\n", "\n") for m in messages if isinstance(m, EmailMessage)]
    assert texts == [TEXT] * 3  # dots kept, accents too


class Pipelining:
    """aiosmtpd offering PIPELINING; refuses the sender, or drops the connection at the ``drop_at``-th message."""

    def __init__(self, refuse_sender: bool = False, drop_at: int = 0) -> None:
        self.refuse_sender = refuse_sender
        self.drop_at = drop_at
        self.contents: list[bytes] = []

    async def handle_EHLO(
        self, server: object, session: object, envelope: object, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname  # type: ignore[attr-defined]
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_MAIL(
        self, server: object, session: object, envelope: object, address: str, options: list[str]
    ) -> str:
        if self.refuse_sender:
            return "550 5.7.1 Expéditeur refusé"
        envelope.mail_from = address  # type: ignore[attr-defined]
        return "250 OK"

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.contents.append(envelope.content)  # type: ignore[attr-defined]
        if len(self.contents) == self.drop_at:
            server.transport.close()  # type: ignore[attr-defined]
        return "250 OK"


def _served(handler: Pipelining) -> tuple[Controller, SmtpMailer]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    return controller, SmtpMailer(f"smtp://127.0.0.1:{port}", SENDER)


def test_a_refused_sender_stops_the_batch_and_the_rest_is_reported_not_tried() -> None:
    handler = Pipelining(refuse_sender=True)
    controller, mailer = _served(handler)
    try:
        results = mailer.send_many([Mail(f"p{n}@exemple.fr", "Invitation", TEXT) for n in range(3)])
    finally:
        controller.stop()
    assert results[0].error.startswith("550") and not results[0].permanent
    assert all(r.error.startswith("non tenté") for r in results[1:])
    assert not any(r.delivered for r in results) and handler.contents == []


def test_a_connection_lost_mid_batch_leaves_the_unanswered_messages_to_try_again() -> None:
    handler = Pipelining(drop_at=2)
    controller, mailer = _served(handler)
    try:
        results = mailer.send_many([Mail(f"p{n}@exemple.fr", "Invitation", TEXT) for n in range(4)])
    finally:
        controller.stop()
    assert [r.delivered for r in results] == [True, False, False, False]
    # The second was received but its answer was lost: tried again later (at least once), never reported as sent.
    assert all(r.error.startswith("non tenté") and not r.permanent for r in results[1:])
    assert len(handler.contents) == 2
