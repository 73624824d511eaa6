"""Reading inside documents: text for the search index, and the PDF inside a CDA R2 level-1 document."""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import threading
from dataclasses import dataclass

import pypdfium2
from defusedxml import ElementTree

log = logging.getLogger("carnet.content")
CDA_NS = "{urn:hl7-org:v3}"
MAX_TEXT = 200_000
MAX_PAGES = 50
# PDFium (Chrome's PDF engine, in C) reads a PDF's text about twice as fast as pure-Python pypdf and releases the GIL
# while it works, so other requests go on meanwhile (issue #14). It is not thread-safe, even across documents: one
# call at a time in the process.
_PDFIUM = threading.Lock()


@dataclass(frozen=True)
class Unwrapped:
    body: bytes
    mime_type: str


def unwrap_cda(body: bytes) -> Unwrapped | None:
    """The embedded document of a CDA R2 level-1 ``nonXMLBody`` (e.g. a PDF), if any."""
    try:
        root = ElementTree.fromstring(body)
    except Exception:
        return None
    if root.tag != f"{CDA_NS}ClinicalDocument":
        return None
    text = root.find(f"{CDA_NS}component/{CDA_NS}nonXMLBody/{CDA_NS}text")
    if text is None or text.get("representation", "").upper() != "B64":
        return None
    try:
        inner = base64.b64decode("".join((text.text or "").split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    return Unwrapped(inner, text.get("mediaType", "application/octet-stream"))


def extract_text(body: bytes, mime_type: str) -> str:
    """Best-effort plain text (never raises: a document that cannot be read is still stored)."""
    try:
        if mime_type == "text/plain":
            return body.decode("utf-8", errors="replace")[:MAX_TEXT]
        if mime_type == "application/pdf":
            return _pdf_text(body)
        if mime_type == "application/rtf":
            return _rtf_text(body.decode("latin-1", errors="replace"))[:MAX_TEXT]
        if mime_type in {"text/xml", "application/xml", "application/hl7-v3+xml"}:
            root = ElementTree.fromstring(body)
            return " ".join(t.strip() for t in root.itertext() if t.strip())[:MAX_TEXT]
    except Exception as exc:  # a damaged file must not block the deposit
        log.info("texte non extrait (%s)", type(exc).__name__)
    return ""


def _pdf_text(body: bytes) -> str:
    """The text of a PDF's first pages, as PDFium lays it out."""
    parts: list[str] = []
    with _PDFIUM:
        document = pypdfium2.PdfDocument(body)
        try:
            for index in range(min(len(document), MAX_PAGES)):
                page = document[index]
                try:
                    text_page = page.get_textpage()
                    parts.append(text_page.get_text_bounded())
                    text_page.close()
                finally:
                    page.close()
                if sum(map(len, parts)) > MAX_TEXT:
                    break
        finally:
            document.close()
    return "\n".join(parts)[:MAX_TEXT]


def _rtf_text(rtf: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(rtf):
        char = rtf[i]
        if char == "\\":
            j = i + 1
            if j < len(rtf) and rtf[j] == "'":
                with contextlib.suppress(ValueError):
                    out.append(bytes([int(rtf[j + 1 : j + 3], 16)]).decode("cp1252"))
                i = j + 3
                continue
            while j < len(rtf) and rtf[j].isalpha():
                j += 1
            while j < len(rtf) and (rtf[j].isdigit() or rtf[j] == "-"):
                j += 1
            if j < len(rtf) and rtf[j] == " ":
                j += 1
            i = j
            continue
        if char not in "{}\r\n":
            out.append(char)
        i += 1
    return "".join(out)
