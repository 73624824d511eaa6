"""Outbound e-mail: real SMTP at ``CARNET_SMTP_URL``, or a local outbox folder (``outbox:``).

E-mails never carry health data: they say that something happened and point to the portal.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import re
import secrets
import smtplib
import socket
import ssl
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from email import policy
from email.header import Header
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import formatdate, make_msgid, parseaddr
from functools import lru_cache
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    text: str
    html: str | None = None
    # Messaging (MSG-1, MSG-3): an answer of a patient leaves from their address, threaded with the conversation,
    # with its attachments as (file name, MIME type, base64) — plain values, so a queued mail stays JSON.
    sender: str | None = None
    message_id: str | None = None
    in_reply_to: str | None = None
    references: str | None = None
    attachments: tuple[tuple[str, str, str], ...] = ()


@dataclass(frozen=True)
class Delivery:
    """What became of one message of a batch (``send_many``)."""

    delivered: bool
    permanent: bool = False  # refused for good for this recipient (SMTP 5xx): a bounce
    error: str = ""


class Mailer(Protocol):
    def send(self, mail: Mail) -> None: ...

    def send_many(self, mails: Sequence[Mail]) -> list[Delivery]: ...


def build_message(mail: Mail, sender: str) -> EmailMessage:
    sender = mail.sender or sender
    message = EmailMessage()
    message["From"] = sender
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = mail.message_id or make_msgid(domain=sender.rsplit("@", 1)[-1].rstrip(">"))
    if mail.in_reply_to:
        message["In-Reply-To"] = mail.in_reply_to
    if mail.references:
        message["References"] = mail.references
    message.set_content(mail.text)
    if mail.html:
        message.add_alternative(mail.html, subtype="html")
    for filename, mime_type, encoded in mail.attachments:
        maintype, _, subtype = mime_type.partition("/")
        message.add_attachment(base64.b64decode(encoded), maintype=maintype, subtype=subtype, filename=filename)
    return message


@lru_cache(maxsize=64)
def _header(value: str) -> str:
    return value if value.isascii() else Header(value, "utf-8").encode()


def _body(text: str, eight_bit: bool) -> tuple[str, bytes]:
    """(Content-Transfer-Encoding, CRLF-terminated body) — 8bit when the server takes it, else quoted-printable."""
    raw = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    if eight_bit and max(map(len, raw.split(b"\n"))) <= 998:
        return "8bit", raw.replace(b"\n", b"\r\n")
    return "quoted-printable", binascii.b2a_qp(raw, istext=True).replace(b"\n", b"\r\n")


@lru_cache(maxsize=16)
def _address_of(sender: str) -> str:
    return parseaddr(sender)[1]


_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+")


def _deliver(smtp: smtplib.SMTP, sender: str, to: str, data: bytes, options: Sequence[str]) -> None:
    """MAIL, RCPT, DATA: ``smtplib.sendmail`` for one plain recipient, without its per-message address parsing."""
    code, answer = smtp.docmd("mail", f"FROM:<{sender}>" + "".join(f" {option}" for option in options))
    if code != 250:
        _reset(smtp)
        raise smtplib.SMTPSenderRefused(code, answer, sender)
    code, answer = smtp.docmd("rcpt", f"TO:<{to}>")
    if code not in (250, 251):
        _reset(smtp)
        raise smtplib.SMTPRecipientsRefused({to: (code, answer)})
    code, answer = smtp.data(data)
    if code != 250:
        _reset(smtp)
        raise smtplib.SMTPDataError(code, answer)


_LEADING_DOT = re.compile(rb"(?m)^\.")


def _content(data: bytes) -> bytes:
    """The DATA section of one message: leading dots doubled, ended by CRLF ``.`` CRLF (RFC 5321 § 4.5.2)."""
    if data.startswith(b".") or b"\n." in data:  # rare: a search is ~20× cheaper than the substitution
        data = _LEADING_DOT.sub(b"..", data)
    return data + (b".\r\n" if data.endswith(b"\r\n") else b"\r\n.\r\n")


def _answer(reply: tuple[int, bytes]) -> str:
    return f"{reply[0]} {reply[1].decode(errors='replace')}"[:250]


def _pipelined(
    smtp: smtplib.SMTP, sender: str, messages: Sequence[tuple[str, bytes]], options: Sequence[str]
) -> list[Delivery]:
    """RFC 2920 PIPELINING, when the server offers it: one round trip per message instead of four.

    Each write carries the previous message's content and this message's MAIL, RCPT and DATA; the content
    goes only after the server's 354. Outcomes are those of ``_deliver``: a refused recipient or content has
    its own result (5xx: permanent); a refused sender or a broken connection stops the batch, and the
    messages whose outcome was not read back are left out, to be reported as not tried.
    """
    envelope = f"MAIL FROM:<{sender}>" + "".join(f" {option}" for option in options) + "\r\n"
    results: list[Delivery] = []
    content = b""  # the previous message's, accepted with 354: sent with the next commands, answered first
    try:
        for to, data in messages:
            smtp.send(content + f"{envelope}RCPT TO:<{to}>\r\nDATA\r\n".encode("ascii"))
            if content:
                results.append(_settled(smtp.getreply()))
                content = b""
            mail, rcpt, start = smtp.getreply(), smtp.getreply(), smtp.getreply()
            if mail[0] == 250 and rcpt[0] in (250, 251) and start[0] == 354:
                content = _content(data)
                continue
            if start[0] == 354:  # a server that opened DATA after a refusal: close it empty, and forget it
                smtp.send(b".\r\n")
                smtp.getreply()
            _reset(smtp)
            if mail[0] != 250:
                results.append(Delivery(False, error=_answer(mail)))
                return results
            refusal = rcpt if rcpt[0] not in (250, 251) else start
            results.append(Delivery(False, refusal[0] >= 500, _answer(refusal)))
        if content:
            smtp.send(content)
            results.append(_settled(smtp.getreply()))
    except (OSError, smtplib.SMTPException):
        smtp.close()  # answers may be out of step now: no QUIT; the rest is reported as not tried
    return results


def _settled(reply: tuple[int, bytes]) -> Delivery:
    return Delivery(True) if reply[0] == 250 else Delivery(False, reply[0] >= 500, _answer(reply))


def _reset(smtp: smtplib.SMTP) -> None:
    with contextlib.suppress(smtplib.SMTPServerDisconnected):
        smtp.rset()


def mime_bytes(mail: Mail, sender: str, eight_bit: bool = False) -> bytes:
    """The message, built directly as bytes: ~100× faster than ``email.message`` for campaigns of 10⁵ e-mails.

    Same structure as ``build_message``: text, and HTML as an alternative when given. ASCII recipients only
    (``send_many`` falls back to ``build_message`` for others).
    """
    domain = _address_of(sender).rsplit("@", 1)[-1] or "localhost"
    head = (
        f"From: {_header(sender)}\r\nTo: {mail.to}\r\nSubject: {_header(mail.subject)}\r\n"
        f"Date: {formatdate(localtime=False)}\r\nMessage-ID: <{uuid.uuid4().hex}@{domain}>\r\nMIME-Version: 1.0\r\n"
    ).encode("ascii")
    parts = [("plain", mail.text)] + ([("html", mail.html)] if mail.html else [])
    encoded = []
    for subtype, content in parts:
        cte, body = _body(content, eight_bit)
        part_head = f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: {cte}\r\n\r\n'
        encoded.append(part_head.encode("ascii") + body)
    if len(encoded) == 1:
        return head + encoded[0]
    boundary = f"=_carnet_{secrets.token_hex(12)}"
    message = head + f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'.encode("ascii")
    for part in encoded:
        message += f"--{boundary}\r\n".encode("ascii") + part + b"\r\n"
    return message + f"--{boundary}--\r\n".encode("ascii")


class OutboxMailer:
    """Keeps each message as an ``.eml`` file; the dev page lists them."""

    def __init__(self, folder: Path, sender: str) -> None:
        self.folder = folder
        self.sender = sender

    def send(self, mail: Mail) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.eml"
        tmp = self.folder / (name + ".tmp")
        descriptor = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)  # codes, names: private
        with os.fdopen(descriptor, "wb") as file:
            file.write(bytes(build_message(mail, self.sender)))
        tmp.rename(self.folder / name)

    def send_many(self, mails: Sequence[Mail]) -> list[Delivery]:
        results = []
        for mail in mails:
            try:
                self.send(mail)
            except OSError as exc:
                results.append(Delivery(False, error=f"boîte d'envoi : {exc.strerror or exc}"))
            else:
                results.append(Delivery(True))
        return results

    def messages(self, limit: int = 50) -> list[EmailMessage]:
        if not self.folder.exists():
            return []
        files = sorted(self.folder.glob("*.eml"), reverse=True)[:limit]
        parser = BytesParser(policy=policy.default)
        return [parser.parsebytes(path.read_bytes()) for path in files]


class SmtpMailer:
    """``smtp://[user:pass@]host[:port]`` (STARTTLS when offered), or ``smtps://`` for TLS."""

    def __init__(self, url: str, sender: str) -> None:
        parts = urlsplit(url)
        self.tls = parts.scheme == "smtps"
        self.host = parts.hostname or "localhost"
        self.port = parts.port or (465 if self.tls else 25)
        self.user = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.sender = sender
        self._context: ssl.SSLContext | None = None
        self._local_name: str | None = None

    def _ssl(self) -> ssl.SSLContext:
        if self._context is None:  # loading the CA store takes ~40 ms: once per mailer, not per connection
            self._context = ssl.create_default_context()
        return self._context

    def _connect(self) -> smtplib.SMTP:
        if self._local_name is None:  # smtplib would look the machine's name up (DNS) at each connection
            self._local_name = socket.getfqdn()
        smtp: smtplib.SMTP
        if self.tls:
            smtp = smtplib.SMTP_SSL(
                self.host, self.port, local_hostname=self._local_name, timeout=30, context=self._ssl()
            )
        else:
            smtp = smtplib.SMTP(self.host, self.port, local_hostname=self._local_name, timeout=30)
        try:
            smtp.ehlo()
            if not self.tls and smtp.has_extn("starttls"):
                smtp.starttls(context=self._ssl())
                smtp.ehlo()
            if self.user:
                smtp.login(self.user, self.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def send(self, mail: Mail) -> None:
        message = build_message(mail, self.sender)
        with self._connect() as smtp:
            smtp.send_message(message)

    def send_many(self, mails: Sequence[Mail]) -> list[Delivery]:
        """Send over one connection; each message gets its own outcome (a 5xx for a recipient is permanent).

        A broken connection or a refused sender stops the batch: the messages not tried are reported
        as temporary failures, to be tried again later.
        """
        results: list[Delivery] = []
        try:
            smtp = self._connect()
        except (OSError, smtplib.SMTPException) as exc:
            return [Delivery(False, error=_smtp_error(exc))] * len(mails)
        with smtp:
            eight_bit = smtp.has_extn("8bitmime")
            options = ["BODY=8BITMIME"] if eight_bit else []
            envelope_from = _address_of(self.sender)
            plain_sender = bool(_PLAIN_ADDRESS.fullmatch(envelope_from))
            if plain_sender and smtp.has_extn("pipelining") and all(map(_pipelinable, mails)):
                messages = [(mail.to, mime_bytes(mail, self.sender, eight_bit)) for mail in mails]
                results = _pipelined(smtp, envelope_from, messages, options)
                mails_left: Sequence[Mail] = ()
            else:
                mails_left = mails
            for mail in mails_left:
                try:
                    simple = not (mail.sender or mail.attachments or mail.in_reply_to)  # what mime_bytes builds
                    if not simple:
                        smtp.send_message(build_message(mail, self.sender))
                    elif plain_sender and _PLAIN_ADDRESS.fullmatch(mail.to):
                        _deliver(smtp, envelope_from, mail.to, mime_bytes(mail, self.sender, eight_bit), options)
                    elif mail.to.isascii():
                        smtp.sendmail(envelope_from, [mail.to], mime_bytes(mail, self.sender, eight_bit), options)
                    else:
                        smtp.send_message(build_message(mail, self.sender))
                except smtplib.SMTPRecipientsRefused as exc:
                    code, answer = next(iter(exc.recipients.values()))
                    results.append(Delivery(False, code >= 500, f"{code} {answer.decode(errors='replace')}"))
                except smtplib.SMTPSenderRefused as exc:
                    results.append(Delivery(False, error=_smtp_error(exc)))
                    break
                except smtplib.SMTPResponseException as exc:
                    results.append(Delivery(False, exc.smtp_code >= 500, _smtp_error(exc)))
                except (OSError, smtplib.SMTPException) as exc:
                    results.append(Delivery(False, error=_smtp_error(exc)))
                    break
                else:
                    results.append(Delivery(True))
        not_tried = Delivery(False, error="non tenté : la connexion au serveur SMTP a été interrompue")
        return results + [not_tried] * (len(mails) - len(results))


def _pipelinable(mail: Mail) -> bool:
    """A message ``mime_bytes`` builds, to a plain ASCII address."""
    return not (mail.sender or mail.attachments or mail.in_reply_to) and bool(_PLAIN_ADDRESS.fullmatch(mail.to))


def _smtp_error(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        answer = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return f"{exc.smtp_code} {answer}"[:250]
    return f"{type(exc).__name__}: {exc}"[:250]


def make_mailer(smtp_url: str, sender: str, data_dir: Path) -> OutboxMailer | SmtpMailer:
    if smtp_url.startswith("outbox:"):
        return OutboxMailer(data_dir / "outbox", sender)
    if smtp_url.startswith(("smtp://", "smtps://")):
        return SmtpMailer(smtp_url, sender)
    raise ValueError("CARNET_SMTP_URL doit commencer par smtp://, smtps:// ou outbox:")
