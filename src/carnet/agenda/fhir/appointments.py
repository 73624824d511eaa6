"""The agenda over FHIR R4 (AGD-1): ``Appointment`` — create (``POST /fhir/Appointment``), read
(``GET /fhir/Appointment/<id>``) and search (``GET /fhir/Appointment?patient.identifier=…&date=…``).

Each route authenticates the system first (``fhir_actor``, SMART v2 scope ``system/Appointment.c``, ``.r`` or
``.s``), before reading any body; then parses: the body bounded (1 Mo) and depth-checked (``carnet.fhir.body``),
as the R4B ``Appointment`` model (fhir.resources), then as what the agenda keeps (``carnet.agenda.model.fhir_map``,
pure); calls one use case of ``carnet.agenda.service.exchange`` and serialises what it returns. Every problem is an
OperationOutcome (French, with the element's FHIRPath). An appointment that does not exist, a reminder, and one the
system may not read get the same 404; a professional's software reads back only the appointments it gave.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from fhir.resources.R4B.appointment import Appointment
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from carnet.agenda.model import fhir_map
from carnet.agenda.model.fhir_map import InputError
from carnet.agenda.service import exchange
from carnet.agenda.service.events import NOT_FOUND, EventNotFound
from carnet.bootstrap import Services
from carnet.fhir import bundle
from carnet.fhir.auth import fhir_actor
from carnet.fhir.base import FhirResponse
from carnet.fhir.body import load_object, read_bounded
from carnet.fhir.problems import Issue, Problem, structure_issues
from carnet.hall.actors import Actor
from carnet.hall.guard import AccessDenied
from carnet.vault.service.mhd import MhdError

router = APIRouter(prefix="/fhir")

TYPE = "Appointment"
MAX_BODY = 1024 * 1024
MAX_DEPTH = 32  # deeper than an Appointment goes; deeper JSON is refused before validation
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
PARTICIPANT = "Appointment.participant.actor"


def _problem(error: InputError | MhdError, path: str | None = None) -> Problem:
    issues = [(code, text, path if path is not None else where) for code, text, where in error.issues]
    return Problem(issues, error.status)


def _refused(denied: AccessDenied, path: str) -> Problem:
    """The policy's refusal: an unknown or closed space is the 404 of a patient not found, anything else 403."""
    if denied.decision.rule == "unknown_space":
        return Problem([("not-found", "Aucun espace santé ouvert pour ce patient.", path)], 404)
    return Problem([("forbidden", denied.decision.reason, path)], 403)


def parse_appointment(raw: bytes) -> dict[str, Any]:
    """The body as an Appointment the R4B model accepts (``Problem`` 400 listing what is wrong)."""
    parsed = load_object(raw, "", MAX_DEPTH)
    if parsed.get("resourceType") != TYPE:
        raise Problem([("invalid", "La ressource envoyée doit être un Appointment (resourceType).", "resourceType")])
    try:
        Appointment.model_validate(parsed)
    except ValidationError as exc:
        raise Problem(structure_issues(exc, TYPE) or [("structure", "Ressource invalide.", "")]) from exc
    except (ValueError, TypeError, LookupError, RecursionError) as exc:  # e.g. a contained resource of no type
        raise Problem([("structure", "Ce n'est pas une ressource Appointment R4 valide.", "")]) from exc
    return parsed


def _answer(services: Services, stored: exchange.Stored, status: int = 200) -> Response:
    event = stored.event
    base = services.settings.base_url
    headers = bundle.resource_headers(base, TYPE, event.id, event.version, event.updated_at, status == 201)
    body = fhir_map.outgoing(event, bundle.patient_element(stored.subject))
    return FhirResponse(body, status_code=status, headers=headers)


def _create(services: Services, actor: Actor, raw: bytes) -> Response:
    resource = parse_appointment(raw)
    try:
        kept = fhir_map.incoming(resource)
    except InputError as error:
        raise _problem(error) from None
    try:
        stored = exchange.create(services, actor, kept)
    except MhdError as error:  # the patient: not designated by INS (400), no open space (404)
        raise _problem(error, PARTICIPANT) from None
    except AccessDenied as denied:
        raise _refused(denied, PARTICIPANT) from None
    return _answer(services, stored, 201)


@router.post("/Appointment", name="agenda_create_appointment")
async def create(request: Request) -> Response:
    """AGD-1: store one Appointment for the patient among its participants (201, Location, ETag)."""
    services: Services = request.app.state.services
    # the token first: no body is read for a caller without the scope (401/403 by the app's handler)
    actor = await run_in_threadpool(fhir_actor, request, services, "system/Appointment.c")
    try:
        raw = await read_bounded(request, MAX_BODY, "La ressource dépasse 1 Mo.")
        return await run_in_threadpool(_create, services, actor, raw)
    except Problem as problem:
        return problem.response()


@router.get("/Appointment/{event_id}", name="agenda_read_appointment")
def read(request: Request, event_id: str) -> Response:
    """AGD-1: one Appointment (404 alike for unknown, a reminder, or not readable)."""
    services: Services = request.app.state.services
    actor = fhir_actor(request, services, "system/Appointment.r")
    not_found = Problem([("not-found", NOT_FOUND, "")], 404)
    if not FHIR_ID.fullmatch(event_id):  # not an id Carnet gives: the same 404, without a look-up
        return not_found.response()
    try:
        stored = exchange.read(services, actor, event_id)
    except EventNotFound:
        return not_found.response()
    return _answer(services, stored)


def _search(services: Services, actor: Actor, request: Request) -> dict[str, Any]:
    params = request.query_params.multi_items()
    try:
        asked = fhir_map.search_request(params)
    except InputError as error:
        raise _problem(error) from None
    filters = exchange.Filters(asked.date_from, asked.date_to, asked.statuses, asked.count, asked.offset)
    try:
        found = exchange.search(services, actor, asked.designation, filters)
    except MhdError as error:
        issues: list[Issue] = [(code, text, asked.designated_by) for code, text, _ in error.issues]
        raise Problem(issues, error.status) from None
    except AccessDenied as denied:
        raise _refused(denied, asked.designated_by) from None
    patient = bundle.patient_element(found.subject)
    resources = [fhir_map.outgoing(event, patient) for event in found.events]
    page = (asked.count, asked.offset, found.total)
    return bundle.searchset(services.settings.base_url, TYPE, params, page, resources)


@router.get("/Appointment", name="agenda_search_appointments")
def search(request: Request) -> Response:
    """AGD-1: one patient's appointments the system may read (date on the start, status, _count, _offset)."""
    services: Services = request.app.state.services
    actor = fhir_actor(request, services, "system/Appointment.s")
    try:
        return FhirResponse(_search(services, actor, request))
    except Problem as problem:
        return problem.response()
