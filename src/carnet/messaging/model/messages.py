"""What a message may hold and how it is worded (MSG-1, MSG-2) — pure rules, no I/O.

A conversation (« échange ») is started by a professional or an establishment; the people of the space answer in
it, or write again to a professional who already wrote; the professional closes it. Words typed in the portal and
words arriving by mail pass the same checks: a subject, a text, attachments of the types the vault keeps
(``carnet.vault.model.documents``) within a size per attachment, per message and a quota per space.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from carnet.errors import CarnetError
from carnet.vault.model.documents import MAX_SIZE, MHD_TYPES, DocumentError, check_body

SUBJECT_MAX = 200
TEXT_MAX = 20_000
ATTACHMENTS_MAX = 10  # per message
ATTACHMENT_MAX_BYTES = MAX_SIZE  # the vault's: every attachment can be filed into the documents as it is
MESSAGE_MAX_BYTES = 20 * 1024 * 1024  # the gateway's SIZE, base64 and headers included
DEFAULT_QUOTA_BYTES = 200 * 1024 * 1024  # attachments kept per space (CARNET_MESSAGING_QUOTA_MB)
FILENAME_MAX = 120

OPEN = "ouvert"
CLOSED = "clos"
TO_PATIENT = "vers_patient"  # written by the professional or the establishment
FROM_PATIENT = "vers_professionnel"  # written by the person or someone of their space


class MessageError(CarnetError):
    """What was written cannot be kept (French reason); nothing is stored."""


class QuotaExceeded(MessageError):
    """The space's attachments would exceed its quota."""


@dataclass(frozen=True)
class SentFile:
    """An attachment as it came (form upload or MIME part); ``check_attachment`` decides what is kept."""

    filename: str
    mime_type: str
    body: bytes


@dataclass(frozen=True)
class CleanFile:
    filename: str
    mime_type: str
    body: bytes


@dataclass(frozen=True)
class CleanMessage:
    subject: str
    text: str
    files: tuple[CleanFile, ...] = ()

    @property
    def size(self) -> int:
        return sum(len(f.body) for f in self.files)


def _clean_line(text: str, limit: int) -> str:
    cleaned = " ".join("".join(c for c in text if unicodedata.category(c)[0] != "C" or c == " ").split())
    return cleaned[:limit]


def _clean_text(text: str) -> str:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept = ["".join(c for c in line if unicodedata.category(c)[0] != "C" or c == "\t").rstrip() for line in lines]
    return "\n".join(kept).strip("\n")


def clean_filename(name: str) -> str:
    """A file name safe to show and to offer for download: no path, no control characters, bounded."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = _clean_line(base, FILENAME_MAX).strip(". ")
    return base or "piece-jointe"


def check_attachment(sent: SentFile) -> CleanFile:
    """One attachment: not empty, within the size, of a type the vault keeps and truly that type."""
    name = clean_filename(sent.filename)
    if not sent.body:
        raise MessageError(f"La pièce jointe « {name} » est vide.")
    if len(sent.body) > ATTACHMENT_MAX_BYTES:
        raise MessageError(
            f"La pièce jointe « {name} » dépasse {ATTACHMENT_MAX_BYTES // 1_048_576} Mo ({megabytes(len(sent.body))})."
        )
    declared = sent.mime_type.split(";")[0].strip().lower() or "application/octet-stream"
    try:
        mime = check_body(sent.body, declared, MHD_TYPES)
    except DocumentError as exc:
        reason = exc.message[:1].lower() + exc.message[1:]
        raise MessageError(f"Pièce jointe « {name} » : {reason}") from None
    return CleanFile(name, mime, sent.body)


def check_message(
    subject: str, text: str, files: list[SentFile] | tuple[SentFile, ...] = (), *, reply: bool = False
) -> CleanMessage:
    """The words and files of one message; ``reply``: a subject is not asked (the conversation has one)."""
    clean_subject = _clean_line(subject, SUBJECT_MAX)
    clean_text = _clean_text(text)
    if not reply and not clean_subject:
        raise MessageError("Indiquez l'objet du message.")
    if not clean_text and not files:
        raise MessageError("Le message est vide : écrivez un texte ou joignez un document.")
    if len(clean_text) > TEXT_MAX:
        raise MessageError(f"Le message est trop long ({len(clean_text)} caractères ; {TEXT_MAX} au plus).")
    if len(files) > ATTACHMENTS_MAX:
        raise MessageError(f"{ATTACHMENTS_MAX} pièces jointes au plus par message.")
    return CleanMessage(clean_subject, clean_text, tuple(check_attachment(f) for f in files))


def check_quota(used: int, adding: int, quota: int) -> None:
    if adding and used + adding > quota:
        raise QuotaExceeded(
            f"La messagerie de cet espace est pleine ({megabytes(used)} sur {megabytes(quota)}) : les pièces jointes "
            "n'y sont plus reçues. Le message peut partir sans pièce jointe ; supprimer des échanges, après avoir "
            "ajouté aux documents les pièces jointes à garder, libère de la place."
        )


def megabytes(size: int) -> str:
    value = size / 1_048_576
    if 0 < value < 0.1:
        return "moins de 0,1 Mo"
    return f"{value:.1f} Mo".replace(".", ",") if value < 10 else f"{value:.0f} Mo"


def fold(text: str) -> str:
    """Case- and accent-insensitive form for the search in messages."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def matches(query: str, *texts: str) -> bool:
    """Every word of ``query`` appears in one of ``texts`` (accents and case ignored)."""
    words = fold(query).split()
    haystack = " ".join(fold(t) for t in texts)
    return all(word in haystack for word in words)


def excerpt(text: str, limit: int = 140) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"
