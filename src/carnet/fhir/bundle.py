"""What the FHIR interfaces answer the same way: the patient element of a resource Carnet returns (reference and
INS), the ``searchset`` Bundle of one page of a search with its ``self`` / ``next`` / ``previous`` links, and the
headers of one resource (``ETag``, ``Last-Modified``, ``Location`` on creation).

Used by the medical profile's FHIR (``carnet.profile.fhir``) and the agenda's (``carnet.agenda.fhir``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlencode


class Designated(Protocol):
    """The patient as FHIR names them (``carnet.vault.service.mhd.Subject`` has it)."""

    @property
    def id(self) -> str: ...
    @property
    def ins(self) -> str: ...
    @property
    def ins_oid(self) -> str: ...


def patient_element(subject: Designated) -> dict[str, Any]:
    return {
        "reference": f"Patient/{subject.id}",
        "identifier": {"system": f"urn:oid:{subject.ins_oid}", "value": subject.ins},
    }


def page_url(base: str, resource_type: str, params: list[tuple[str, str]], count: int, offset: int) -> str:
    kept = [(k, v) for k, v in params if k not in {"_count", "_offset"}]
    return f"{base}/fhir/{resource_type}?{urlencode([*kept, ('_count', str(count)), ('_offset', str(offset))])}"


def links(
    base: str, resource_type: str, params: list[tuple[str, str]], count: int, offset: int, total: int
) -> list[dict[str, str]]:
    """``self``, and ``next`` / ``previous`` when there is such a page."""
    found = [{"relation": "self", "url": page_url(base, resource_type, params, count, offset)}]
    if count and offset + count < total:
        found.append({"relation": "next", "url": page_url(base, resource_type, params, count, offset + count)})
    if count and offset > 0:
        previous = max(offset - count, 0)
        found.append({"relation": "previous", "url": page_url(base, resource_type, params, count, previous)})
    return found


def searchset(
    base: str,
    resource_type: str,
    params: list[tuple[str, str]],
    page: tuple[int, int, int],
    resources: Iterable[dict[str, Any]],
) -> dict[str, Any]:
    """One page of a search: ``page`` is ``(count, offset, total)``; each resource carries its ``id``."""
    count, offset, total = page
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": links(base, resource_type, params, count, offset, total),
    }
    entries = [
        {"fullUrl": f"{base}/fhir/{resource_type}/{resource['id']}", "resource": resource, "search": {"mode": "match"}}
        for resource in resources
    ]
    if entries:
        bundle["entry"] = entries
    return bundle


def resource_headers(
    base: str, resource_type: str, resource_id: str, version: int, updated_at: datetime, created: bool = False
) -> dict[str, str]:
    """``ETag`` and ``Last-Modified`` of one resource, and its versioned ``Location`` when it was just created."""
    modified = updated_at.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
    headers = {"ETag": f'W/"{version}"', "Last-Modified": modified}
    if created:
        headers["Location"] = f"{base}/fhir/{resource_type}/{resource_id}/_history/{version}"
    return headers
