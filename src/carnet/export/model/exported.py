"""What a capability contributes to a person's export (ENR-7): FHIR resources, each with the files it points at.

Each capability's service has an ``export`` module whose ``export_resources(services, actor, patient_id)`` yields
``Exported`` values for what ``actor`` — the person, or a legal representative — may read of the space, decided by
the policy like any reading. Files are read lazily (``ExportedFile.read``) so that the archive is written as a
stream: a space of 400 MB is never held in memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ExportedFile:
    """A file of the archive: ``path`` relative to its root (``documents/…``), its type, its bytes when asked."""

    path: str
    content_type: str
    read: Callable[[], bytes]
    title: str = ""  # what the reading guide calls it (« Compte rendu de biologie du 12/03/2026 »)


@dataclass(frozen=True)
class Exported:
    """One FHIR R4 resource (a ``dict`` as JSON would hold it) and the files it points at by relative path."""

    resource: dict[str, Any]
    files: tuple[ExportedFile, ...] = ()
    summary: str = ""  # one line of the reading guide (French), empty: the resource is listed by type only
    section: str = ""  # the guide's section (« Documents », « Profil médical », « Agenda », « Messagerie »…)
    extra: dict[str, Any] = field(default_factory=dict)


def relative_reference(resource_type: str, resource_id: str) -> dict[str, str]:
    """A reference inside the Bundle (``fullUrl`` ``urn:uuid:`` entries are not used: ids are Carnet's own)."""
    return {"reference": f"{resource_type}/{resource_id}"}
