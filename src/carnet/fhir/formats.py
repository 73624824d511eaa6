"""Which format a FHIR request asks for (R4 http.html §3.1.0.1.10 and search.html ``_format``): Carnet serves FHIR
JSON only. ``_format`` (``json``, ``application/fhir+json``…) wins over ``Accept``; a request that can take JSON —
no ``Accept``, ``*/*``, ``application/*``, ``application/json``, ``application/fhir+json`` — gets it, anything else
(``_format=xml``, ``Accept: application/fhir+xml``) a 406 with an OperationOutcome, never XML dressed as JSON.

``Binary`` is read either way (R4 binary.html §2.40.2): a FHIR format asked for (``_format``, or ``Accept`` naming
``application/fhir+json``) gives the ``Binary`` resource, anything else the document's own bytes.
"""

from __future__ import annotations

from starlette.requests import Request

from carnet.fhir.problems import Problem

JSON_FORMATS = frozenset({"json", "application/json", "application/fhir+json", "application/json+fhir"})
FHIR_JSON = frozenset({"application/fhir+json", "application/json+fhir"})
FHIR_XML = frozenset({"application/fhir+xml", "application/xml+fhir"})
TAKES_JSON = JSON_FORMATS | {"*/*", "application/*"}


def _ranges(accept: str) -> list[str]:
    """The media ranges ``Accept`` takes (q > 0), lower-case, without their parameters."""
    taken = []
    for item in accept.split(","):
        media, *parameters = (part.strip() for part in item.split(";"))
        refused = any(p.replace(" ", "").lower() in {"q=0", "q=0.0", "q=0.00", "q=0.000"} for p in parameters)
        if media and not refused:
            taken.append(media.lower())
    return taken


def _not_served(asked: str) -> Problem:
    return Problem(
        [
            (
                "not-supported",
                f"Format non servi : {asked[:60]}. Carnet répond en FHIR JSON (application/fhir+json, _format=json).",
                "_format",
            )
        ],
        406,
    )


def _format(request: Request) -> str | None:
    values = request.query_params.getlist("_format")
    return values[-1].strip().lower().replace(" ", "+") if values else None


def check_json(request: Request) -> None:
    """``Problem`` 406 unless the request takes FHIR JSON (its ``_format``, else its ``Accept``)."""
    asked = _format(request)
    if asked is not None:
        if asked.split(";")[0].strip() not in JSON_FORMATS:
            raise _not_served(asked)
        return
    accept = request.headers.get("accept", "").strip()
    if accept and not set(_ranges(accept)) & TAKES_JSON:
        raise _not_served(accept)


def wants_binary_resource(request: Request) -> bool:
    """Whether a ``Binary`` read asks for the resource (a FHIR format) rather than the document's bytes;
    ``Problem`` 406 when the FHIR format asked is not JSON."""
    asked = _format(request)
    if asked is not None:
        check_json(request)
        return True
    ranges = set(_ranges(request.headers.get("accept", "")))
    if ranges & FHIR_JSON:
        return True
    if ranges & FHIR_XML:
        raise _not_served(", ".join(sorted(ranges & FHIR_XML)))
    return False
