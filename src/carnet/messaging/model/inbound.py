"""Reading a message that arrived by mail (MSG-3) — pure: bytes in, a subject, a text and files out, or a French
reason (``UnreadableMail``) the gateway answers with ``554`` before anything is stored.

What is read: the subject (RFC 2047 words decoded), the first ``text/plain`` part (else the text of the first
``text/html`` part — never the HTML itself, which the portal would have to trust), and every attachment (any part
with a file name, or a non-text part), with RFC 2231/2047 names, base64 or quoted-printable bodies. What refuses the
whole message: MIME the parser reports as broken (boundaries not found, undecodable base64), nesting deeper than
``MAX_DEPTH``, more than ``MAX_PARTS`` parts, and every attachment ``messages.check_attachment`` refuses (empty, too
large, a type the vault does not keep, bytes that are not what the name and type say — a zip named ``.pdf``).
A message is kept whole or not at all: dropping a part silently would let a patient miss a result.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from email import errors as email_errors
from email import policy
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesParser
from html.parser import HTMLParser

from carnet.errors import CarnetError
from carnet.messaging.model.messages import ATTACHMENTS_MAX, CleanMessage, MessageError, SentFile, check_message

MAX_DEPTH = 8
MAX_PARTS = 50
BROKEN = (
    email_errors.StartBoundaryNotFoundDefect,
    email_errors.CloseBoundaryNotFoundDefect,
    email_errors.MultipartInvariantViolationDefect,
    email_errors.InvalidBase64PaddingDefect,
    email_errors.InvalidBase64CharactersDefect,
    email_errors.InvalidBase64LengthDefect,
    email_errors.MissingHeaderBodySeparatorDefect,
)
NO_SUBJECT = "(sans objet)"


class UnreadableMail(CarnetError):
    """The message cannot be read as a whole (French reason, sent back in the SMTP reply)."""


@dataclass(frozen=True)
class InboundMail:
    message: CleanMessage
    message_id: str  # as sent (``<…>``), to thread the answers; "" when the sender gave none
    in_reply_to: tuple[str, ...]  # In-Reply-To then References, the nearest first


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in {"script", "style", "head"}:
            self._skip += 1
        elif tag in {"br", "p", "div", "li", "tr", "h1", "h2", "h3"}:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in {"script", "style", "head"} and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_text(html: str) -> str:
    reader = _Text()
    reader.feed(html)
    reader.close()
    lines = (" ".join(line.split()) for line in "".join(reader.parts).split("\n"))
    return "\n".join(line for line in lines if line)


def _ids(value: str | None) -> list[str]:
    return [token for token in (value or "").split() if token.startswith("<") and token.endswith(">")][:50]


@dataclass(frozen=True)
class _Leaf:
    """One part that is not a container: its headers (as the standard library parsed them) and its body as sent."""

    headers: Message
    body: bytes


BASE64_TEXT = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\r\n \t"
BROKEN_STRUCTURE = "Message illisible : structure MIME endommagée (délimiteurs ou encodage)."
_HEADERS = BytesParser(policy=policy.compat32)


def _headers_and_body(entity: bytes, nl: bytes) -> tuple[Message, bytes]:
    """The header block (parsed by the standard library: it is small) and the body, left as bytes."""
    if entity.startswith(nl):
        return _HEADERS.parsebytes(b"", headersonly=True), entity[len(nl) :]
    end = entity.find(nl + nl)
    head, body = (entity, b"") if end < 0 else (entity[: end + len(nl)], entity[end + 2 * len(nl) :])
    headers = _HEADERS.parsebytes(head + nl, headersonly=True)
    if any(isinstance(defect, BROKEN) for defect in headers.defects):
        raise UnreadableMail(BROKEN_STRUCTURE)
    return headers, body


def _split(body: bytes, boundary: bytes, nl: bytes) -> list[bytes]:
    """The parts of a multipart body (RFC 2046 §5.1.1): between delimiter lines ``--boundary``, up to the close
    delimiter ``--boundary--``; preamble and epilogue ignored. No delimiter, or no close one: broken."""
    text = nl + body
    dash = nl + b"--" + boundary
    parts: list[bytes] = []
    at = text.find(dash)
    while at >= 0:
        after = at + len(dash)
        if text.startswith(b"--", after):
            return parts
        eol = text.find(nl, after)
        if eol < 0 or text[after:eol].strip(b" \t"):
            break
        following = text.find(dash, eol)
        if following < 0:
            break
        parts.append(text[eol + len(nl) : following])
        at = following
        if len(parts) > MAX_PARTS:
            raise UnreadableMail(f"Message illisible : plus de {MAX_PARTS} parties.")
    raise UnreadableMail(BROKEN_STRUCTURE)


def _walk(entity: bytes, depth: int, leaves: list[_Leaf], nl: bytes) -> Message:
    """Split ``entity`` into its leaves (in order); the entity's own headers. The standard library's parser reads a
    message line by line in Python (~3 ms for a 275 KB mail); here only header blocks go through it and bodies are
    cut with ``bytes.find`` — what makes the gateway keep up (docs/decisions.md, Messaging)."""
    if depth > MAX_DEPTH:
        raise UnreadableMail("Message illisible : parties MIME imbriquées trop profondément.")
    headers, body = _headers_and_body(entity, nl)
    if headers.get_content_maintype() == "multipart":
        boundary = headers.get_boundary()
        if not boundary:
            raise UnreadableMail(BROKEN_STRUCTURE)
        for part in _split(body, boundary.encode("ascii", "replace"), nl):
            _walk(part, depth + 1, leaves, nl)
    else:
        leaves.append(_Leaf(headers, body))
    if len(leaves) > MAX_PARTS:
        raise UnreadableMail(f"Message illisible : plus de {MAX_PARTS} parties.")
    return headers


def _decoded(leaf: _Leaf) -> bytes:
    encoding = str(leaf.headers.get("Content-Transfer-Encoding", "7bit") or "7bit").strip().lower()
    try:
        if encoding == "base64":
            if leaf.body.translate(None, BASE64_TEXT):  # characters base64 does not have: not base64
                raise binascii.Error
            return binascii.a2b_base64(leaf.body)
        if encoding == "quoted-printable":
            return binascii.a2b_qp(leaf.body)
    except (binascii.Error, ValueError):
        raise UnreadableMail("Message illisible : une partie n'a pas pu être décodée.") from None
    return leaf.body


def _text_of(leaf: _Leaf) -> str:
    raw = _decoded(leaf)
    charset = leaf.headers.get_content_charset() or "utf-8"
    try:
        return raw.decode(charset, errors="replace")
    except LookupError:
        return raw.decode("utf-8", errors="replace")


def read_mail(raw: bytes) -> InboundMail:
    """The message in ``raw`` (RFC 5322 with MIME), checked whole; ``UnreadableMail`` otherwise."""
    try:
        leaves: list[_Leaf] = []
        head = raw[: raw.find(b"\n") + 1]
        mail = _walk(raw, 0, leaves, b"\r\n" if head.endswith(b"\r\n") else b"\n")  # as sent: SMTP's CRLF
        subject = _words(mail.get("Subject", ""))
    except UnreadableMail:
        raise
    except (email_errors.MessageError, ValueError, TypeError, LookupError, IndexError):
        raise UnreadableMail("Message illisible : en-têtes ou structure MIME invalides.") from None
    plain: str | None = None
    html: str | None = None
    files: list[SentFile] = []
    for leaf in leaves:
        part = leaf.headers
        content_type = part.get_content_type()
        filename = _filename(part)
        attachment = filename is not None or part.get_content_disposition() == "attachment"
        if not attachment and content_type == "text/plain" and plain is None:
            plain = _text_of(leaf)
        elif not attachment and content_type == "text/html" and html is None:
            html = _text_of(leaf)
        elif not attachment and content_type.startswith("text/"):
            continue  # another alternative of the text
        else:
            if len(files) >= ATTACHMENTS_MAX:
                raise UnreadableMail(f"Message refusé : {ATTACHMENTS_MAX} pièces jointes au plus par message.")
            files.append(SentFile(filename or "piece-jointe", content_type, _decoded(leaf)))
    text = plain if plain is not None else html_text(html) if html is not None else ""
    try:
        clean = check_message(subject or NO_SUBJECT, text, files)
    except MessageError as exc:
        raise UnreadableMail(f"Message refusé : {exc.message}") from None
    message_id = _ids(str(mail.get("Message-ID", "") or ""))
    answered = _ids(str(mail.get("In-Reply-To", "") or ""))
    referenced = _ids(str(mail.get("References", "") or ""))
    nearest = [*reversed(answered), *reversed(referenced)]
    return InboundMail(clean, message_id[0] if message_id else "", tuple(dict.fromkeys(nearest)))


def _words(value: object) -> str:
    """A header's text with its RFC 2047 encoded words decoded (undecodable words kept as they are)."""
    text = str(value or "")
    if "=?" not in text:
        return " ".join(text.split())
    try:
        return " ".join(str(make_header(decode_header(text))).split())
    except (ValueError, LookupError, UnicodeDecodeError, email_errors.HeaderParseError):
        return " ".join(text.split())


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename()  # RFC 2231 decoded by the parser; RFC 2047 words (as Outlook sends) here
    except (ValueError, TypeError, LookupError):
        return "piece-jointe"
    return _words(name) if name else None
