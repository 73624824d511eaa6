"""The inbound SMTP gateway (MSG-3): an aiosmtpd server that takes mail for ``<INS>@<CARNET_MESSAGING_DOMAIN>``
from the senders the directory knows, and answers every refusal with an SMTP reply — never a silent drop:

- ``MAIL FROM`` an address the directory does not hold: ``550 5.7.1``;
- ``RCPT TO`` an unknown, malformed or closed space: ``550 5.1.1`` (other recipients of the same mail still go);
- more than ``SIZE`` (``messages.MESSAGE_MAX_BYTES``): ``552 5.3.4``; a space whose messaging is full: ``552 5.2.2``;
- MIME that cannot be read whole, or an attachment refused: ``554 5.6.0`` with the reason, nothing stored;
- anything else failing while storing: ``451 4.3.0`` (the sender tries again), nothing stored.
``250`` is sent only after the transaction that stores the message (encrypted) and its history line has committed.
STARTTLS is offered when ``CARNET_GATEWAY_TLS_CERT`` and ``_KEY`` are set.

The interface parses and answers; ``carnet.messaging.service.gateway`` decides and stores. ``DATA`` is read in
large chunks rather than line by line (aiosmtpd's own reader costs ~5 ms per 270 KB message in Python; this one
~0.2 ms), with the same dot-unstuffing (RFC 5321 §4.5.2) and size limit.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as Conversation  # the SMTP connection, not a database session

from carnet.bootstrap import Services
from carnet.messaging.model import messages as rules
from carnet.messaging.model.inbound import UnreadableMail, read_mail
from carnet.messaging.service import gateway

log = logging.getLogger("carnet.gateway")
END_OF_DATA = b"\r\n.\r\n"
CHUNK = 256 * 1024


def _ascii(text: str) -> str:
    import unicodedata

    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


class GatewaySMTP(SMTP):
    """aiosmtpd's server with a chunked ``DATA`` reader."""

    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed():
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        buffer = bytearray(b"\r\n")  # so that a first line "." is found like any other
        limit = self.data_size_limit
        too_much = False
        searched = 0
        while True:
            chunk = await self._reader.read(CHUNK)
            if not chunk:  # the connection closed in the middle of DATA
                return
            buffer += chunk
            end = buffer.find(END_OF_DATA, max(searched - len(END_OF_DATA), 0))
            if end >= 0:
                break
            searched = len(buffer)
            if limit and len(buffer) > limit + 2:
                too_much = True  # keep reading to the end, without keeping what is read
                del buffer[: -len(END_OF_DATA)]
                searched = len(buffer)
        pipelined = bytes(buffer[end + len(END_OF_DATA) :])
        if pipelined:
            self._reader._buffer[:0] = pipelined  # type: ignore[attr-defined]  # commands sent after the data (PIPELINING)
        if too_much or (limit and end - 2 > limit):
            await self.push("552 5.3.4 Message trop volumineux")
            self._set_post_data_state()
            return
        content = bytes(buffer[2 : end + 2]).replace(b"\r\n.", b"\r\n")  # de-transparency, RFC 5321 4.5.2
        self.envelope.original_content = content
        self.envelope.content = content
        status = await self._call_handler_hook("DATA")
        await self.push("250 OK" if status is None else status)
        self._set_post_data_state()


class Handler:
    """The SMTP commands' answers, each from one use case of ``carnet.messaging.service.gateway``."""

    def __init__(self, services: Services) -> None:
        self.services = services

    async def handle_MAIL(
        self, server: SMTP, session: Conversation, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        try:
            envelope.sender_info = gateway.sender(self.services, address)  # type: ignore[attr-defined]
        except gateway.Refused as refused:
            log.info("passerelle : expéditeur refusé")
            return refused.reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        envelope.patient_ids = []  # type: ignore[attr-defined]
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Conversation, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        try:
            patient_id = gateway.recipient(self.services, address)
        except gateway.Refused as refused:
            return refused.reply
        envelope.rcpt_tos.append(address)
        envelope.patient_ids.append(patient_id)  # type: ignore[attr-defined]
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Conversation, envelope: Envelope) -> str:
        raw = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        try:
            mail = read_mail(raw)
        except UnreadableMail as exc:
            return f"554 5.6.0 {_ascii(exc.message)[:400]}"
        who = envelope.sender_info  # type: ignore[attr-defined]
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, gateway.deliver, self.services, who, envelope.patient_ids, mail)  # type: ignore[attr-defined]
        except gateway.Refused as refused:
            return refused.reply
        except Exception as exc:  # nothing was stored: the sender tries again later
            log.error("passerelle : message non enregistré (%s)", type(exc).__name__)
            log.debug("passerelle", exc_info=True)
            return "451 4.3.0 Erreur temporaire, reessayez plus tard"
        return "250 OK"


def tls_context(services: Services) -> ssl.SSLContext | None:
    settings = services.settings
    if not (settings.gateway_tls_cert and settings.gateway_tls_key):
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.gateway_tls_cert, settings.gateway_tls_key)
    return context


class GatewayController(Controller):
    """Runs the gateway in a thread of its own (its own event loop): ``start()``, ``stop()``."""

    def __init__(self, services: Services, host: str, port: int, *, shared_port: bool = False, **kwargs: Any) -> None:
        self.services = services
        self.tls = tls_context(services)
        # shared_port: several gateway processes listen on the same port (SO_REUSEPORT) and the kernel spreads the
        # connections — one process per core (``carnet gateway --processus N``)
        self.shared_port = shared_port
        super().__init__(Handler(services), hostname=host, port=port, **kwargs)

    def _create_server(self) -> Awaitable[asyncio.AbstractServer]:
        return self.loop.create_server(
            self._factory_invoker, host=self.hostname, port=self.port, reuse_port=self.shared_port or None
        )

    def factory(self) -> SMTP:
        return GatewaySMTP(
            self.handler,
            data_size_limit=rules.MESSAGE_MAX_BYTES,
            hostname=self.services.settings.messaging_domain,
            ident="Carnet",
            tls_context=self.tls,
            decode_data=False,
        )
