"""Document rules of the vault (VLT-1..7): categories, type codes, confidentiality, uploads.

Pure: the reference tables are data (``carnet/data/document_types.json``); content checks look at
the bytes themselves, never at what the sender claims.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

from carnet.errors import CarnetError

MAX_SIZE = 5 * 1024 * 1024
MAX_DELETE_BATCH = 10
CONFIDENTIALITY_SYSTEM_FR = "urn:oid:1.2.250.1.213.1.1.4.13"
CONFIDENTIALITY_SYSTEM_HL7 = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
FRENCH_LABELS = {"MASQUE_PS", "INVISIBLE_PATIENT", "INVISIBLE_REPRESENTANTS_LEGAUX"}
HL7_LABELS = {"N", "R", "V", "L", "M", "U"}
PATIENT_TYPE_SYSTEM = "urn:carnet:docpat"
LOINC = "http://loinc.org"
INVISIBLE_PATIENT_NOTICE_DAYS = 14
INVISIBLE_PATIENT_REVEAL_DAYS = 30

# MIME type → accepted file extensions (VLT-3)
UPLOAD_TYPES = {
    "application/pdf": (".pdf",),
    "text/plain": (".txt",),
    "application/rtf": (".rtf",),
    "image/jpeg": (".jpg", ".jpeg"),
    "image/png": (".png",),
    "image/tiff": (".tif", ".tiff"),
}
# What professionals' systems may also send over MHD (CDA R2 documents).
MHD_TYPES = {*UPLOAD_TYPES, "text/xml", "application/xml", "application/hl7-v3+xml"}
PREVIEWABLE = {"application/pdf", "image/jpeg", "image/png", "text/plain"}
FOLDER_NAME_MAX = 100


class DocumentError(CarnetError):
    """Bad document input; ``message`` is French and names what is wrong."""


@dataclass(frozen=True)
class DocumentType:
    system: str
    code: str
    display: str
    category: str


@cache
def _reference() -> dict[str, object]:
    text = resources.files("carnet.data").joinpath("document_types.json").read_text(encoding="utf-8")
    data: dict[str, object] = json.loads(text)
    return data


def categories() -> dict[str, str]:
    """Category code → exact French label, in display order (VLT-1)."""
    return dict(_reference()["categories"])  # type: ignore[call-overload]


def document_type(system: str, code: str) -> DocumentType:
    types: dict[str, dict[str, list[str]]] = _reference()["types"]  # type: ignore[assignment]
    entry = types.get(system, {}).get(code)
    if entry is None:
        raise DocumentError(f"Type de document inconnu : {code} ({system}) n'appartient pas au jeu de valeurs JDV_J07.")
    return DocumentType(system, code, entry[0], entry[1])


def types_of(system: str) -> list[DocumentType]:
    """The document types of one code system, in the reference's order: ``PATIENT_TYPE_SYSTEM`` for the
    patient's uploads (VLT-3), ``LOINC`` for what a professional deposits (JDV_J07 subset)."""
    types: dict[str, dict[str, list[str]]] = _reference()["types"]  # type: ignore[assignment]
    return [DocumentType(system, code, v[0], v[1]) for code, v in types[system].items()]


def patient_types() -> list[DocumentType]:
    return types_of(PATIENT_TYPE_SYSTEM)


def sniff(body: bytes) -> str | None:
    """The MIME type the bytes really are (None when not recognised)."""
    head = body[:16]
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "image/tiff"
    if head.startswith(b"{\\rtf"):
        return "application/rtf"
    stripped = body.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"<"):
        try:
            stripped[:4096].decode("utf-8")
        except UnicodeDecodeError:
            return None
        return "text/xml"
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if any(ord(c) < 32 and c not in "\t\r\n\f" for c in text[:4096]):
        return None
    return "text/plain"


def media_type(mime: str) -> str:
    """A MIME type as the media type it names (RFC 9110 §8.3.1: type and subtype are case-insensitive, parameters
    such as ``charset`` do not change it): ``Text/Plain; charset=utf-8`` is ``text/plain``; the common aliases
    (``image/jpg``, ``text/rtf``) are their registered type."""
    essence = mime.split(";")[0].strip().lower()
    return {"image/jpg": "image/jpeg", "text/rtf": "application/rtf"}.get(essence, essence)


def check_body(body: bytes, declared_mime: str, allowed: set[str] | frozenset[str] = frozenset(UPLOAD_TYPES)) -> str:
    """Size and content checks; returns the normalised MIME type."""
    declared = media_type(declared_mime)
    if not body:
        raise DocumentError("Le document est vide.")
    if len(body) > MAX_SIZE:
        raise DocumentError(f"Le document dépasse la taille maximale de 5 Mo ({len(body) / 1_048_576:.1f} Mo).")
    if declared not in allowed:
        raise DocumentError(f"Format non accepté ({declared}). Formats acceptés : PDF, TXT, RTF, JPEG, PNG, TIFF.")
    actual = sniff(body)
    xml_family = {"text/xml", "application/xml", "application/hl7-v3+xml"}
    if actual != declared and not (actual == "text/xml" and declared in xml_family):
        raise DocumentError(
            f"Le contenu du fichier ne correspond pas au format annoncé ({declared}) : le fichier est endommagé "
            "ou n'est pas du type indiqué."
        )
    return declared


def check_extension(filename: str, mime: str) -> None:
    lower = filename.lower()
    if not lower.endswith(UPLOAD_TYPES.get(mime, ())):
        raise DocumentError(f"L'extension du fichier « {filename[-40:]} » ne correspond pas à son format ({mime}).")


def preview_kind(mime: str) -> str | None:
    """How a document of this type is previewed in the portal: ``pdf`` (frame), ``image``, ``text`` (shown on the
    page itself), or None (download only)."""
    if mime not in PREVIEWABLE:
        return None
    return "pdf" if mime == "application/pdf" else "text" if mime == "text/plain" else "image"


def deletion_batch_error(document_ids: list[str]) -> str | None:
    """VLT-7: one to ``MAX_DELETE_BATCH`` documents at once (the French message otherwise)."""
    if not document_ids:
        return "Choisissez au moins un document à supprimer."
    if len(document_ids) > MAX_DELETE_BATCH:
        return (
            f"Vous pouvez supprimer au plus {MAX_DELETE_BATCH} documents à la fois : "
            f"vous en avez choisi {len(document_ids)}."
        )
    return None


def folder_name_error(name: str, existing: list[str]) -> str | None:
    """VLT-1: a folder needs a name, of at most ``FOLDER_NAME_MAX`` characters, not one the patient already has."""
    if not name:
        return "Donnez un nom au dossier."
    if len(name) > FOLDER_NAME_MAX:
        return f"Le nom du dossier ne doit pas dépasser {FOLDER_NAME_MAX} caractères ({len(name)} saisis)."
    if name.casefold() in {other.casefold() for other in existing}:
        return f"Vous avez déjà un dossier nommé « {name} »."
    return None


def check_confidentiality(codes: list[str]) -> list[str]:
    unknown = [c for c in codes if c not in FRENCH_LABELS | HL7_LABELS]
    if unknown:
        raise DocumentError(f"Code de confidentialité inconnu : {', '.join(unknown)}.")
    return sorted(set(codes) & FRENCH_LABELS) + sorted(set(codes) & HL7_LABELS)
