"""Reading a FHIR request's JSON body without trusting it (issue #15-2): bounded in size while it is read (413),
parsed by orjson (invalid UTF-8, bad JSON and nesting beyond orjson's own limit are a 400), then bounded in depth
before any model or recursive code sees it. Every FHIR route that reads a body checks the bearer first, then
calls these."""

from __future__ import annotations

import re
from typing import Any

import orjson
from starlette.requests import Request

from carnet.fhir.problems import Problem

MAX_DEPTH = 64  # deeper than any resource Carnet takes (a Bundle of DocumentReferences nests ~12 levels)
# A control character can only be in a JSON text escaped (\u0000…\u001f): looked for in the bytes first (no
# backslash at all, the usual case, is one memchr over 40 Mo), then in the parsed strings. FHIR strings may hold
# none but tab, CR and LF, and PostgreSQL refuses NUL in text: such a body is a 400, never a 500 (issue #15-2).
_ESCAPED_CONTROL = re.compile(rb"\\u00[01][0-9a-fA-F]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


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


def has_control_characters(value: Any) -> bool:
    """Whether a string (or an object key) of a parsed JSON value holds a control character but tab, CR, LF."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _CONTROL.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def load_json(raw: bytes, where: str = "", limit: int = MAX_DEPTH) -> Any:
    """The parsed body, or ``Problem`` 400 in French: not JSON, nested deeper than ``limit``, or with a control
    character in a string."""
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Problem([("structure", "Le corps de la requête n'est pas un JSON valide.", where)]) from exc
    if depth(parsed, limit) > limit:
        raise Problem([("structure", "Le corps de la requête est imbriqué trop profondément.", where)])
    if raw.find(b"\\") >= 0 and _ESCAPED_CONTROL.search(raw) and has_control_characters(parsed):
        raise Problem(
            [("invalid", "Le corps de la requête contient un caractère de contrôle (U+0000 à U+001F).", where)]
        )
    return parsed


def load_object(raw: bytes, where: str = "", limit: int = MAX_DEPTH) -> dict[str, Any]:
    """``load_json`` of a FHIR resource: a JSON object."""
    parsed = load_json(raw, where, limit)
    if not isinstance(parsed, dict):
        raise Problem([("structure", "Le corps de la requête doit être une ressource FHIR (objet JSON).", where)])
    return parsed
