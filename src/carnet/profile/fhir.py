"""The medical profile over FHIR R4 (PRF-3): ``Observation`` (vital signs and the other measures of the
catalogue), ``AllergyIntolerance``, ``Condition``, ``FamilyMemberHistory``, ``MedicationStatement``,
``Immunization`` — create (``POST /fhir/<type>``), read (``GET /fhir/<type>/<id>``) and search
(``GET /fhir/<type>?patient.identifier=…``).

Each route authenticates the system first (``fhir_actor``, SMART v2 scope ``system/<type>.c``, ``.r`` or ``.s``),
before reading any body; then parses: the body bounded (1 Mo), as JSON (orjson: depth and numbers checked), no
deeper than FHIR resources go, as the R4B model of the type (fhir.resources), then as what the profile keeps
(``carnet.profile.model.fhir_map``, pure); calls one use case of ``carnet.profile.service.exchange`` and
serialises what it returns. Every problem is an OperationOutcome (French, with the element's FHIRPath).
An entry that does not exist, is of another type, or that the system may not read gets the same 404. Which
entries a system sees is the policy's answer, through the service: a professional without a standing, or whose
profession does not read the section, finds what they entered themselves only (often nothing: total 0).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from fhir.resources.R4B.allergyintolerance import AllergyIntolerance
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.familymemberhistory import FamilyMemberHistory
from fhir.resources.R4B.immunization import Immunization
from fhir.resources.R4B.medicationstatement import MedicationStatement
from fhir.resources.R4B.observation import Observation
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from carnet.bootstrap import Services
from carnet.fhir import bundle
from carnet.fhir.auth import fhir_actor
from carnet.fhir.base import FhirResponse
from carnet.fhir.body import load_object, read_bounded
from carnet.fhir.bundle import patient_element
from carnet.fhir.problems import Issue, Problem, structure_issues
from carnet.hall.actors import Actor
from carnet.hall.guard import AccessDenied
from carnet.profile.model import fhir_map
from carnet.profile.model.fhir_map import MappingError
from carnet.profile.service import exchange
from carnet.profile.service.entries import NOT_FOUND, EntryNotFound, NewEntry
from carnet.vault.service.mhd import MhdError

router = APIRouter(prefix="/fhir")

MAX_BODY = 1024 * 1024
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
MAX_DEPTH = 32  # deeper than any resource of these types goes; deeper JSON is refused before validation
MODELS: dict[str, Any] = {
    "Observation": Observation,
    "AllergyIntolerance": AllergyIntolerance,
    "Condition": Condition,
    "FamilyMemberHistory": FamilyMemberHistory,
    "MedicationStatement": MedicationStatement,
    "Immunization": Immunization,
}


def scope(resource_type: str, permission: str) -> str:
    """The SMART v2 scope an interaction needs: ``c`` create, ``r`` read, ``s`` search."""
    return f"system/{resource_type}.{permission}"


def _problem(error: MappingError | MhdError) -> Problem:
    return Problem(list(error.issues), error.status)


def _not_found() -> Problem:
    return Problem([("not-found", NOT_FOUND, "")], 404)


def _refused(denied: AccessDenied, path: str) -> Problem:
    """The policy's refusal: an unknown or closed space is the 404 of a patient not found, anything else 403."""
    if denied.decision.rule == "unknown_space":
        return Problem([("not-found", "Aucun espace santé ouvert pour ce patient.", path)], 404)
    return Problem([("forbidden", denied.decision.reason, path)], 403)


# ------------------------------------------------------------------ reading the body


def parse_resource(raw: bytes, resource_type: str) -> dict[str, Any]:
    """The body as a ``resource_type`` the R4B models accept (``Problem`` 400 listing what is wrong)."""
    parsed = load_object(raw, resource_type, MAX_DEPTH)  # not JSON, not an object, too deep: 400
    if parsed.get("resourceType") != resource_type:
        raise Problem(
            [("invalid", f"La ressource envoyée doit être un(e) {resource_type} (resourceType).", "resourceType")]
        )
    try:
        MODELS[resource_type].model_validate(parsed)
    except ValidationError as exc:
        raise Problem(structure_issues(exc, resource_type) or [("structure", "Ressource invalide.", "")]) from exc
    except (ValueError, TypeError, LookupError, RecursionError) as exc:  # e.g. a contained resource of no type
        raise Problem([("structure", f"Ce n'est pas une ressource {resource_type} R4 valide.", "")]) from exc
    return parsed


# ------------------------------------------------------------------ serialising


def _resource(resource_type: str, stored: exchange.Stored) -> dict[str, Any]:
    return fhir_map.outgoing(resource_type, stored.entry, patient_element(stored.subject))


def _answer(services: Services, resource_type: str, stored: exchange.Stored, status: int = 200) -> Response:
    entry = stored.entry
    base = services.settings.base_url
    headers = bundle.resource_headers(base, resource_type, entry.id, entry.version, entry.updated_at, status == 201)
    return FhirResponse(_resource(resource_type, stored), status_code=status, headers=headers)


# ------------------------------------------------------------------ create


def _create(services: Services, actor: Actor, resource_type: str, raw: bytes) -> Response:
    resource = parse_resource(raw, resource_type)
    try:
        kept = fhir_map.incoming(resource_type, resource, datetime.now(UTC))
    except MappingError as error:
        raise _problem(error) from None
    new = NewEntry(
        section=kept.section,
        effective_at=kept.effective_at,
        fields=kept.fields,
        code=kept.code,
        measure=kept.measure,
        value=kept.value,
        components=kept.components,
        unit_entered=kept.unit_entered,
        fhir=kept.fhir,
    )
    element = f"{resource_type}.{fhir_map.PATIENT_ELEMENT[resource_type]}"
    try:
        stored = exchange.create(services, actor, resource_type, kept.subject, new)
    except MhdError as error:  # the patient: not designated by INS (400), no open space (404)
        raise Problem([(code, text, element) for code, text, _ in error.issues], error.status) from None
    except AccessDenied as denied:
        raise _refused(denied, element) from None
    return _answer(services, resource_type, stored, 201)


def _create_route(resource_type: str) -> Callable[[Request], Awaitable[Response]]:
    async def create(request: Request) -> Response:
        services: Services = request.app.state.services
        # the token first: no body is read for a caller without the scope (401/403 by the app's handler)
        actor = await run_in_threadpool(fhir_actor, request, services, scope(resource_type, "c"))
        try:
            raw = await read_bounded(request, MAX_BODY, "La ressource dépasse 1 Mo.")
            return await run_in_threadpool(_create, services, actor, resource_type, raw)
        except Problem as problem:
            return problem.response()

    create.__doc__ = f"PRF-3: store one {resource_type} for the patient it designates (201, Location, ETag)."
    return create


# ------------------------------------------------------------------ read


def _read_route(resource_type: str) -> Callable[[Request, str], Response]:
    def read(request: Request, entry_id: str) -> Response:
        services: Services = request.app.state.services
        actor = fhir_actor(request, services, scope(resource_type, "r"))
        if not FHIR_ID.fullmatch(entry_id):  # not an id Carnet gives: the same 404, without a look-up
            return _not_found().response()
        try:
            stored = exchange.read(services, actor, resource_type, entry_id)
        except EntryNotFound:
            return _not_found().response()
        return _answer(services, resource_type, stored)

    read.__doc__ = f"PRF-3: one {resource_type} (404 alike for unknown, of another type, or not readable)."
    return read


# ------------------------------------------------------------------ search


def _search(services: Services, actor: Actor, request: Request, resource_type: str) -> dict[str, Any]:
    params = request.query_params.multi_items()
    try:
        asked = fhir_map.search_request(params)
    except MappingError as error:
        raise _problem(error) from None
    filters = exchange.EntryFilters(asked.codes, asked.date_from, asked.date_to, asked.count, asked.offset)
    try:
        found = exchange.search(services, actor, resource_type, asked.designation, filters)
    except MhdError as error:
        issues: list[Issue] = [(code, text, asked.designated_by) for code, text, _ in error.issues]
        raise Problem(issues, error.status) from None
    except AccessDenied as denied:
        raise _refused(denied, asked.designated_by) from None
    patient = patient_element(found.subject)
    resources = [fhir_map.outgoing(resource_type, entry, patient) for entry in found.entries]
    page = (asked.count, asked.offset, found.total)
    return bundle.searchset(services.settings.base_url, resource_type, params, page, resources)


def _search_route(resource_type: str) -> Callable[[Request], Response]:
    def search(request: Request) -> Response:
        services: Services = request.app.state.services
        actor = fhir_actor(request, services, scope(resource_type, "s"))
        try:
            return FhirResponse(_search(services, actor, request, resource_type))
        except Problem as problem:
            return problem.response()

    search.__doc__ = f"PRF-3: one patient's {resource_type} entries (code, date, _count, _offset), newest first."
    return search


for _type in fhir_map.RESOURCE_TYPES:
    router.add_api_route(f"/{_type}", _create_route(_type), methods=["POST"], name=f"profile_create_{_type}")
    router.add_api_route(f"/{_type}", _search_route(_type), methods=["GET"], name=f"profile_search_{_type}")
    router.add_api_route(f"/{_type}/{{entry_id}}", _read_route(_type), methods=["GET"], name=f"profile_read_{_type}")
