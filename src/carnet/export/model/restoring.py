"""What importing an archive gives each capability (ENR-7, item 5): the new space, its key, the archive's files.

``carnet spaces import ARCHIVE.zip`` checks the whole archive first (every file against the manifest's SHA-256, the
Bundle readable), then restores it in **one** unit of work: the person (``people``), then each capability's
``service/restore.py`` in the order of ``carnet.export.service.importing.RESTORERS`` — documents, profile, agenda,
messages, history — each given the resources of the types it reads. A capability writes its rows as they were
(authors' names, dates, masks, statuses), sealed with the new instance's key for the space; the blobs it writes
(before the rows, as everywhere) are noted in ``written`` so that a failure later in the import deletes them and
the database rolls back: an import either lands whole or changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from carnet.errors import CarnetError


class RestoreError(CarnetError):
    """A resource the import cannot restore (French reason naming it); nothing is kept."""


@dataclass
class Restoring:
    """The space being restored and what the capabilities share while they do it."""

    patient_id: str  # the new space's id on this instance
    key: bytes  # the space's data key on this instance (seal with it, the row's id as associated data)
    read_file: Callable[[str], bytes]  # a file of the archive by its relative path (``documents/…``), verified
    ids: dict[str, str] = field(default_factory=dict)  # "DocumentReference/<old id>" → the new id, for references
    written: list[str] = field(default_factory=list)  # blob keys written, deleted if the import fails


def resources_of(bundle: dict[str, Any], *types: str) -> list[dict[str, Any]]:
    """The Bundle's resources of the given types, in the Bundle's order."""
    found = []
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and resource.get("resourceType") in types:
            found.append(resource)
    return found


FACTS = "https://carnet.example/fhir/StructureDefinition/archive-facts"
Fact = str | bool | int | datetime | None


def facts_extension(facts: Mapping[str, Fact]) -> dict[str, Any]:
    """What Carnet itself kept of a resource and R4 has no place for (who deposited it and how, when, the
    conversation it belongs to…), as one extension of typed sub-extensions — so that another Carnet restores the
    row as it was. Absent values are left out."""
    parts = []
    for name, value in facts.items():
        if value is None or value == "":
            continue
        if isinstance(value, bool):
            parts.append({"url": name, "valueBoolean": value})
        elif isinstance(value, int):
            parts.append({"url": name, "valueInteger": value})
        elif isinstance(value, datetime):
            parts.append({"url": name, "valueDateTime": value.isoformat()})
        else:
            parts.append({"url": name, "valueString": value})
    return {"url": FACTS, "extension": parts}


def facts_of(resource: Mapping[str, Any]) -> dict[str, Fact]:
    """The facts ``facts_extension`` wrote into ``resource`` (empty when there are none); ``RestoreError`` when
    one cannot be read."""
    found: dict[str, Fact] = {}
    for extension in resource.get("extension") or []:
        if not isinstance(extension, dict) or extension.get("url") != FACTS:
            continue
        for part in extension.get("extension") or []:
            name = part.get("url") if isinstance(part, dict) else None
            if not isinstance(name, str):
                raise RestoreError(f"Extension {FACTS} illisible dans {resource.get('resourceType')}.")
            if "valueDateTime" in part:
                try:
                    found[name] = datetime.fromisoformat(str(part["valueDateTime"]))
                except ValueError as exc:
                    raise RestoreError(f"Date illisible « {name} » dans {resource.get('resourceType')}.") from exc
            else:
                found[name] = part.get("valueBoolean", part.get("valueInteger", part.get("valueString")))
    return found


def without_facts(resource: Mapping[str, Any]) -> dict[str, Any]:
    """``resource`` without the archive's facts (what was sent, as it was sent)."""
    kept = dict(resource)
    others = [e for e in resource.get("extension") or [] if not (isinstance(e, dict) and e.get("url") == FACTS)]
    if others:
        kept["extension"] = others
    else:
        kept.pop("extension", None)
    return kept
