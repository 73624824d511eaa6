"""The archive's layout (ENR-7), pure: where each part goes, the manifest of hashes, and the rules a reader (the
import, or a person's own tools) checks it with.

    carnet-export/
      bundle.json            one FHIR R4 Bundle (type collection): Patient, DocumentReference, the profile's
                             resources, Appointment, Communication, Consent, AuditEvent
      documents/…            the original files, byte-exact, named by the DocumentReferences (attachment.url)
      messages/…             the messages' attachments, named by the Communications
      manifest.json          format, when, for whom, and every file's SHA-256 and size (bundle and guide included)
      LISEZMOI.html          the French reading guide, readable offline in any browser
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from carnet.errors import CarnetError

ROOT = "carnet-export"
FORMAT = "carnet-export/1"
BUNDLE = "bundle.json"
MANIFEST = "manifest.json"
GUIDE = "LISEZMOI.html"
VALID_DAYS = 7


class ArchiveError(CarnetError):
    """An archive that is not a Carnet export, or not intact (French reason naming the file)."""


def safe_name(name: str, limit: int = 80) -> str:
    """A file name any system accepts: ASCII letters, digits, dots, dashes; the extension kept."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    stem, dot, extension = plain.rpartition(".")
    if not dot:
        stem, extension = plain, ""
    stem = re.sub(r"[^A-Za-z0-9]+", "-", stem).strip("-")[:limit] or "fichier"
    extension = re.sub(r"[^A-Za-z0-9]", "", extension)[:8]
    return f"{stem}.{extension}" if extension else stem


@dataclass
class Manifest:
    """What the archive holds, with each file's SHA-256 (hex) and size in bytes."""

    generated_at: str
    ins: str
    name: str
    requested_by: str
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, path: str, sha256: str, size: int, content_type: str) -> None:
        self.files[path] = {"sha256": sha256, "size": size, "type": content_type}

    def as_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "generated_at": self.generated_at,
            "patient": {"ins": self.ins, "name": self.name},
            "requested_by": self.requested_by,
            "counts": self.counts,
            "files": self.files,
        }


def check_manifest(data: Any) -> dict[str, dict[str, Any]]:
    """The files a manifest lists; ``ArchiveError`` if it is not one of ours."""
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("files"), dict):
        raise ArchiveError(f"Ce fichier n'est pas une archive Carnet ({MANIFEST} absent ou d'un autre format).")
    files: dict[str, dict[str, Any]] = data["files"]
    for path, facts in files.items():
        if not isinstance(facts, dict) or not re.fullmatch(r"[0-9a-f]{64}", str(facts.get("sha256", ""))):
            raise ArchiveError(f"Le manifeste de l'archive est invalide pour « {path} ».")
        if path.startswith("/") or ".." in path.split("/"):
            raise ArchiveError(f"Chemin refusé dans l'archive : « {path} ».")
    return files
