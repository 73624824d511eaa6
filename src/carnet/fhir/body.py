"""Reading a FHIR request's JSON body without trusting it (issue #15-2): bounded in size while it is read (413),
parsed by orjson (invalid UTF-8, bad JSON and nesting beyond orjson's own limit are a 400), then bounded in depth
before any model or recursive code sees it. Every FHIR route that reads a body checks the bearer first, then
calls these."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from carnet.fhir.problems import Problem

MAX_DEPTH = 64  # deeper than any resource Carnet takes (a Bundle of DocumentReferences nests ~12 levels)


async def read_bounded(request: Request, max_bytes: int, too_large: str) -> bytes:
    """The body, read only up to ``max_bytes`` (``Problem`` 413 with ``too_large`` beyond, announced or not)."""
    problem = Problem([("too-costly", too_large, "")], 413)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise problem
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise problem
        chunks.append(chunk)
    return b"".join(chunks)


def depth(value: Any, limit: int = MAX_DEPTH) -> int:
    """How deep a parsed JSON value nests, iteratively (no recursion on what a client sent); stops past ``limit``."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if level > limit:
                return level
            stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def load_json(raw: bytes, where: str = "", limit: int = MAX_DEPTH) -> Any:
    """The parsed body, or ``Problem`` 400 in French: not JSON, or nested deeper than ``limit``."""
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Problem([("structure", "Le corps de la requête n'est pas un JSON valide.", where)]) from exc
    if depth(parsed, limit) > limit:
        raise Problem([("structure", "Le corps de la requête est imbriqué trop profondément.", where)])
    return parsed


def load_object(raw: bytes, where: str = "", limit: int = MAX_DEPTH) -> dict[str, Any]:
    """``load_json`` of a FHIR resource: a JSON object."""
    parsed = load_json(raw, where, limit)
    if not isinstance(parsed, dict):
        raise Problem([("structure", "Le corps de la requête doit être une ressource FHIR (objet JSON).", where)])
    return parsed
