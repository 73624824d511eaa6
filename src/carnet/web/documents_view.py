"""What the patient's and the professional's document pages share, for the page only: the list's filters as
they travel in its address, the upload field, and how a document's bytes are sent back. No decision here:
what a viewer may see or do is the policy's answer, through the vault's services."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass, replace
from datetime import timedelta
from pathlib import PurePosixPath
from urllib.parse import urlencode

from fastapi import UploadFile
from fastapi.responses import Response

from carnet.vault.model import documents as rules
from carnet.vault.service.documents import DocumentContent, SearchFilters
from carnet.web.forms import paris_midnight, parse_day

PER_PAGE = 20
ACCEPT = ",".join(ext for extensions in rules.UPLOAD_TYPES.values() for ext in extensions)
MIME_OF_EXTENSION = {ext: mime for mime, extensions in rules.UPLOAD_TYPES.items() for ext in extensions}
NO_PREVIEW = "Aperçu indisponible pour ce format : téléchargez le document."
PREVIEW_POLICY = "default-src 'none'; object-src 'self'; frame-ancestors 'self'; base-uri 'none'; form-action 'none'"


@dataclass(frozen=True)
class ListQuery:
    """The filters of the list page, as they travel in its address."""

    categorie: str = ""
    dossier: str = ""
    auteur: str = ""
    du: str = ""
    au: str = ""
    q: str = ""
    page: int = 1

    def params(self, **changes: object) -> dict[str, str]:
        values = asdict(replace(self, **changes))  # type: ignore[arg-type]
        params = {k: str(v).strip() for k, v in values.items() if k != "page" and str(v).strip()}
        if values["page"] > 1:
            params["page"] = str(values["page"])
        return params

    def link(self, base: str, **changes: object) -> str:
        params = self.params(**changes)
        return f"{base}?{urlencode(params)}" if params else base

    @property
    def encoded(self) -> str:
        return urlencode(self.params())

    @property
    def filtered(self) -> bool:
        return any(self.params(page=1).values())


def page_number(page: str) -> int:
    return int(page) if page.isdigit() and int(page) > 0 else 1


def search_filters(query: ListQuery, errors: list[str]) -> SearchFilters:
    """The vault's search for this query (one page of ``PER_PAGE``); a French message in ``errors`` per bad date."""
    day_from = parse_day(query.du, "ajouté depuis le", errors)
    day_to = parse_day(query.au, "ajouté jusqu'au", errors)
    return SearchFilters(
        text=query.q,
        category=query.categorie or None,
        author=query.auteur.strip() or None,
        folder_id=query.dossier or None,
        date_from=paris_midnight(day_from) if day_from else None,
        date_to=paris_midnight(day_to + timedelta(days=1)) if day_to else None,
        limit=PER_PAGE,
        offset=(query.page - 1) * PER_PAGE,
    )


def declared_mime(filename: str, content_type: str | None) -> str:
    """What the file says it is: its extension first, the browser's type otherwise (the vault checks the bytes)."""
    suffix = PurePosixPath(filename.lower()).suffix
    return MIME_OF_EXTENSION.get(suffix) or (content_type or "application/octet-stream")


def too_big(size: int) -> str:
    megabytes = f"{size / 1_048_576:.1f}".replace(".", ",")
    return f"Le document dépasse la taille maximale de 5 Mo ({megabytes} Mo)."


@dataclass(frozen=True)
class SentFile:
    """The file field of an upload form, read (at most 5 Mo and one byte of it), or why not."""

    filename: str = ""
    content_type: str | None = None
    body: bytes = b""
    error: str | None = None

    @property
    def mime_type(self) -> str:
        return declared_mime(self.filename, self.content_type)


def read_upload(fichier: UploadFile | None, type_known: bool, missing: str) -> SentFile:
    """The file, checked as the form is: chosen, with a type, not too big (refused before reading when the
    size is known)."""
    filename = ((fichier.filename or "") if fichier else "").replace("\\", "/").split("/")[-1].strip()
    if fichier is None or not filename:
        return SentFile(error=missing)
    if not type_known:
        return SentFile(filename, error="Choisissez le type du document.")
    if fichier.size is not None and fichier.size > rules.MAX_SIZE:
        return SentFile(filename, error=too_big(fichier.size))
    body = fichier.file.read(rules.MAX_SIZE + 1)
    if len(body) > rules.MAX_SIZE:
        return SentFile(filename, error=too_big(fichier.size or len(body)))
    return SentFile(filename, fichier.content_type, body)


def safe_filename(title: str, mime: str) -> str:
    """An ASCII file name from the title (« Bilan d'hémoglobine » → Bilan-d-hemoglobine.pdf)."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", ascii_title).strip("-.")[:80].strip("-.") or "document"
    extensions = rules.UPLOAD_TYPES.get(mime) or ((".xml",) if "xml" in mime else ("",))
    if extensions[0] and stem.lower().endswith(tuple(extensions)):
        return stem
    return stem + extensions[0]


def previewable(content: DocumentContent) -> bool:
    return rules.preview_kind(content.mime_type) is not None


def inline(content: DocumentContent) -> Response:
    """The document itself, inline, for the frame or image of the document page (same origin only)."""
    mime = content.mime_type
    return Response(
        content.body,
        media_type=f"{mime}; charset=utf-8" if mime == "text/plain" else mime,
        headers={
            "Content-Disposition": f'inline; filename="{safe_filename(content.title, mime)}"',
            "Content-Security-Policy": PREVIEW_POLICY,
            "X-Frame-Options": "SAMEORIGIN",
        },
    )


def attachment(content: DocumentContent) -> Response:
    return Response(
        content.body,
        media_type=content.mime_type,
        headers={"Content-Disposition": f'attachment; filename="{safe_filename(content.title, content.mime_type)}"'},
    )
