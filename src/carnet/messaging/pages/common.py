"""What the messaging's pages share: the files of a form read within the messaging's limits, an attachment's bytes
sent back for download, and the French words the templates use. No decision here: the use cases of
``carnet.messaging.service.conversations`` ask the policy."""

from __future__ import annotations

import re
import unicodedata
from typing import Any
from urllib.parse import quote

from fastapi import UploadFile
from fastapi.responses import Response

from carnet.messaging.model import messages as rules
from carnet.messaging.service.conversations import AttachmentContent
from carnet.web.documents_view import ACCEPT, declared_mime

MESSAGE_FIELD_MAX = 2 * rules.TEXT_MAX  # longer than the model's limit: the model says why in French, text kept
SUBJECT_FIELD_MAX = 2 * rules.SUBJECT_MAX


def too_big(name: str, size: int) -> str:
    return (
        f"La pièce jointe « {name} » dépasse {rules.ATTACHMENT_MAX_BYTES // 1_048_576} Mo "
        f"({rules.megabytes(size)}) : elle n'a pas été envoyée."
    )


def read_files(uploads: list[UploadFile] | None) -> list[rules.SentFile]:
    """The files of a form, at most ``ATTACHMENTS_MAX``, each read up to its limit and one byte (refused before
    reading when the size is known); ``MessageError`` in French otherwise. The messaging's rules check the rest
    (type, content) and the quota."""
    chosen = [u for u in uploads or [] if (u.filename or "").strip()]  # an empty file field sends a nameless part
    if len(chosen) > rules.ATTACHMENTS_MAX:
        raise rules.MessageError(f"{rules.ATTACHMENTS_MAX} pièces jointes au plus par message.")
    files = []
    for upload in chosen:
        name = rules.clean_filename(upload.filename or "")
        if upload.size is not None and upload.size > rules.ATTACHMENT_MAX_BYTES:
            raise rules.MessageError(too_big(name, upload.size))
        body = upload.file.read(rules.ATTACHMENT_MAX_BYTES + 1)
        if len(body) > rules.ATTACHMENT_MAX_BYTES:
            raise rules.MessageError(too_big(name, upload.size or len(body)))
        files.append(rules.SentFile(name, declared_mime(name, upload.content_type), body))
    return files


def ascii_filename(name: str) -> str:
    """« Compte rendu d'échographie.pdf » → Compte-rendu-d-echographie.pdf (the header's plain fallback)."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9._-]+", "-", plain).strip("-.")[:120] or "piece-jointe"


def download(content: AttachmentContent) -> Response:
    """An attachment as a download, never shown in the page: its (cleaned) name, its stored type, no sniffing, no
    cache."""
    name = rules.clean_filename(content.name)
    disposition = f"attachment; filename=\"{ascii_filename(name)}\"; filename*=UTF-8''{quote(name, safe='')}"
    return Response(
        content.body,
        media_type=content.mime_type or "application/octet-stream",
        headers={
            "Content-Disposition": disposition,
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )


def unread_words(count: int) -> str:
    return f"{count} non lu" if count == 1 else f"{count} non lus"


HELPERS: dict[str, Any] = {
    "unread_words": unread_words,
    "accept": ACCEPT,
    "attachments_max": rules.ATTACHMENTS_MAX,
    "attachment_max_mb": rules.ATTACHMENT_MAX_BYTES // 1_048_576,
    "text_max": rules.TEXT_MAX,
    "subject_max": rules.SUBJECT_MAX,
}
