"""IHE MHD on FHIR R4 as profiled by the ANS PDSm guide: ITI-65 (provide), ITI-67 (find, by GET or by POST
``_search``), ITI-68 (retrieve), plus the DocumentReference read and its JSON Patch.

Each route authenticates the system (``fhir_actor`` with the SMART v2 scope it needs), checks the format asked for
(FHIR JSON, or 406: ``carnet.fhir.formats``), parses the request as FHIR (the bundle's structure by the
fhir.resources models unless ``carnet.vault.model.mhd_shape`` recognises its usual shape, the search parameters by
``carnet.vault.model.mhd_search``), calls one use case of ``carnet.vault.service.mhd`` and serialises what it
returns — a deposited DocumentReference as it was sent, every address from the configured base URL, ``ETag`` and
``meta.versionId`` from the document's version. Any problem means nothing is written, and the answer is an
OperationOutcome listing every issue. A document that does not exist and one the system may not read get the same
404.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import Response
from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from carnet.bootstrap import Services
from carnet.fhir import bundle, formats
from carnet.fhir.auth import fhir_actor
from carnet.fhir.base import FhirResponse
from carnet.fhir.body import load_json, load_object, read_bounded
from carnet.fhir.problems import Problem, structure_issues
from carnet.fhir.search import InputError, instant, is_fhir_id
from carnet.hall.actors import Actor
from carnet.hall.guard import AccessDenied
from carnet.vault.model import mhd_search, mhd_shape
from carnet.vault.model.fhir_map import document_reference, submission_set
from carnet.vault.service import mhd
from carnet.vault.service.documents import NOT_FOUND, DocumentNotFound, SearchFilters

router = APIRouter(prefix="/fhir")
MAX_BUNDLE_BYTES = 40 * 1024 * 1024
MAX_PATCH_BYTES = 64 * 1024
MAX_SEARCH_FORM_BYTES = 16 * 1024
FHIR_JSON_TYPES = {"application/fhir+json", "application/json"}
FORM = "application/x-www-form-urlencoded"
# The SMART v2 scope each interaction needs.
PROVIDE = "system/DocumentReference.c"
SEARCH = "system/DocumentReference.s"
READ = "system/DocumentReference.r"
UPDATE = "system/DocumentReference.u"
RETRIEVE = "system/Binary.r"
NOT_AUTHOR = "Seul l'auteur d'un document peut le remplacer."
NOT_AUTHOR_PATCH = "Seul l'auteur d'un document peut modifier ses étiquettes ou l'annuler."


def _not_found() -> Problem:
    return Problem([("not-found", NOT_FOUND.reason, "")], 404)


def _problem(error: mhd.MhdError) -> Problem:
    return Problem(error.issues, error.status)


# ------------------------------------------------------------------ ITI-65: provide


def _without_payloads(raw: dict[str, Any]) -> dict[str, Any]:
    """The bundle with each base64 payload replaced by a stand-in: the structure is validated by the FHIR
    models, the (large) payloads by the vault — validating megabytes of base64 twice costs milliseconds."""
    entries = []
    for entry in raw.get("entry") or []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and isinstance(resource.get("data"), str):
            entry = {**entry, "resource": {**resource, "data": "AA=="}}
        entries.append(entry)
    return {**raw, "entry": entries} if "entry" in raw else raw


def check_structure(raw: dict[str, Any]) -> None:
    """An ITI-65 bundle as FHIR: a Bundle the R4B models accept, of type transaction (``Problem`` otherwise). One of
    the usual shape is recognised without building the models (``mhd_shape``, issue #14); the models decide the
    rest and name every fault."""
    if raw.get("resourceType") != "Bundle":
        raise Problem([("structure", "La ressource envoyée doit être un Bundle.", "Bundle")])
    try:
        if not mhd_shape.plainly_valid(raw):
            Bundle.model_validate(_without_payloads(raw))
    except ValidationError as exc:
        raise Problem(structure_issues(exc, "Bundle")) from exc
    except (ValueError, TypeError, LookupError, RecursionError) as exc:  # an entry's resourceType of no FHIR type
        raise Problem(
            [("structure", "Ce n'est pas un Bundle FHIR R4 valide (type de ressource inconnu).", "Bundle")]
        ) from exc
    if raw.get("type") != "transaction":
        raise Problem([("value", "Le Bundle ITI-65 doit être de type « transaction ».", "Bundle.type")])


@router.post("")
@router.post("/")
async def provide_document_bundle(request: Request) -> Response:
    """ITI-65: a transaction Bundle (SubmissionSet List + DocumentReference + Binary). The token is checked
    before the body is read; the body is bounded in size and depth before it is validated (issue #15-2)."""
    services: Services = request.app.state.services
    actor = await run_in_threadpool(fhir_actor, request, services, PROVIDE)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in FHIR_JSON_TYPES:  # issue #15-4
        return Problem(
            [("not-supported", "Le Bundle doit être envoyé en FHIR JSON (application/fhir+json).", "")], 415
        ).response()
    try:
        formats.check_json(request)
        body = await read_bounded(request, MAX_BUNDLE_BYTES, "Le Bundle dépasse 40 Mo.")
        return await run_in_threadpool(_provide, services, actor, body)
    except Problem as problem:
        return problem.response()


def _provide(services: Services, actor: Actor, body: bytes) -> Response:
    """The bundle read (bounded depth), checked and deposited: one trip to a worker thread."""
    raw = load_object(body, "Bundle")
    check_structure(raw)
    try:
        created = mhd.provide(services, actor, raw)
    except mhd.MhdError as error:
        raise _problem(error) from None
    except AccessDenied as denied:  # replacing a document one reads but did not write (one not read is « unknown »)
        reason = NOT_AUTHOR if denied.decision.rule == "no_rule" else denied.decision.reason
        raise Problem([("forbidden", reason, "Bundle.entry.resource.relatesTo")], 403) from None
    entries = [
        {
            "response": {
                "status": "201 Created",
                "location": f"{item.kind}/{item.id}",
                "etag": f'W/"{item.version}"',
                "lastModified": instant(item.at),
            }
        }
        for item in created
    ]
    return FhirResponse({"resourceType": "Bundle", "type": "transaction-response", "entry": entries}, status_code=200)


# ------------------------------------------------------------------ ITI-67: find


def _without_control_characters(params: list[tuple[str, str]]) -> None:
    if any(any(ord(c) < 32 for c in name + value) for name, value in params):  # NUL breaks PostgreSQL text
        raise Problem([("invalid", "Un paramètre de recherche contient un caractère de contrôle.", "")])


def _search(services: Services, actor: Actor, params: list[tuple[str, str]]) -> dict[str, Any]:
    """ITI-67 for GET and POST alike: the parameters read (``mhd_search``), the documents found, one page of them
    (or only their total, ``_summary=count`` or ``_count=0``), every link from the configured base URL."""
    _without_control_characters(params)
    try:
        asked = mhd_search.search_request(params, datetime.now(UTC))
    except InputError as error:
        raise Problem(error.issues, error.status) from None
    limit = 0 if asked.total_only else asked.count
    filters = SearchFilters(statuses=asked.statuses, limit=limit, offset=asked.offset, fhir=asked)
    try:
        found = mhd.find(services, actor, asked.designation, asked.designated_by, filters)
    except mhd.MhdError as error:
        raise Problem([(code, text, asked.designated_by) for code, text, _ in error.issues], error.status) from None
    base = services.settings.base_url
    resources = [document_reference(d, found.subject, base, found.sent.get(d.id)) for d in found.documents]
    return bundle.searchset(base, "DocumentReference", params, (limit, asked.offset, found.total), resources)


@router.get("/DocumentReference")
def find_document_references(request: Request) -> Response:
    """ITI-67: DocumentReference search for one patient."""
    services: Services = request.app.state.services
    actor = fhir_actor(request, services, SEARCH)
    try:
        formats.check_json(request)
        return FhirResponse(_search(services, actor, request.query_params.multi_items()))
    except Problem as problem:
        return problem.response()


async def _form(request: Request) -> list[tuple[str, str]]:
    """The parameters of a POST ``_search``: the form (``application/x-www-form-urlencoded``, bounded) after the
    query string's (R4 http.html §3.1.0.8: both are the search's)."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await read_bounded(request, MAX_SEARCH_FORM_BYTES, "Le formulaire de recherche dépasse 16 Ko.")
    if body and media != FORM:
        raise Problem([("not-supported", f"Une recherche POST _search s'envoie en {FORM}.", "")], 415)
    try:
        form = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body), max_num_fields=100)
    except (UnicodeDecodeError, ValueError):
        raise Problem([("invalid", "Le formulaire de recherche est illisible.", "")]) from None
    return [*request.query_params.multi_items(), *form]


@router.post("/DocumentReference/_search")
async def search_document_references(request: Request) -> Response:
    """ITI-67 by POST (MHD: the Document Responder supports both): answered like the GET."""
    services: Services = request.app.state.services
    actor = await run_in_threadpool(fhir_actor, request, services, SEARCH)
    try:
        formats.check_json(request)
        params = await _form(request)
        return FhirResponse(await run_in_threadpool(_search, services, actor, params))
    except Problem as problem:
        return problem.response()


# ------------------------------------------------------------------ the read, ITI-68, PATCH


@router.get("/DocumentReference/{document_id}")
def read_document_reference(request: Request, document_id: str) -> Response:
    services: Services = request.app.state.services
    actor = fhir_actor(request, services, READ)
    try:
        formats.check_json(request)
    except Problem as problem:
        return problem.response()
    if not is_fhir_id(document_id):  # not an id Carnet gives: the same 404, without a look-up
        return _not_found().response()
    try:
        reference = mhd.read_reference(services, actor, document_id)
    except DocumentNotFound:
        return _not_found().response()
    return _reference_answer(services, reference)


@router.get("/List/{list_id}")
def read_submission_set(request: Request, list_id: str) -> Response:
    """The SubmissionSet of an ITI-65 deposit, at the location its response gave (``List/<id>``): read with the
    scope that reads DocumentReferences, listing only those the caller may read."""
    services: Services = request.app.state.services
    actor = fhir_actor(request, services, READ)
    try:
        formats.check_json(request)
    except Problem as problem:
        return problem.response()
    if not is_fhir_id(list_id):
        return _not_found().response()
    try:
        found = mhd.read_submission_set(services, actor, list_id)
    except DocumentNotFound:
        return _not_found().response()
    resource = submission_set(found.id, found.subject, found.created_at, found.author_label, found.document_ids)
    headers = bundle.resource_headers(services.settings.base_url, "List", found.id, 1, found.created_at)
    return FhirResponse(resource, headers=headers)


def _reference_answer(services: Services, reference: mhd.Reference) -> Response:
    """One DocumentReference with its ``ETag`` (its version) and ``Last-Modified``."""
    document = reference.document
    resource = document_reference(document, reference.subject, services.settings.base_url, reference.sent)
    headers = bundle.resource_headers(
        services.settings.base_url, "DocumentReference", document.id, document.version, document.updated_at
    )
    return FhirResponse(resource, headers=headers)


@router.get("/Binary/{document_id}")
def retrieve_document(request: Request, document_id: str) -> Response:
    """ITI-68: the document's bytes (or a Binary resource when FHIR JSON is asked for)."""
    services: Services = request.app.state.services
    actor = fhir_actor(request, services, RETRIEVE)
    try:
        as_resource = formats.wants_binary_resource(request)
    except Problem as problem:
        return problem.response()
    if not is_fhir_id(document_id):
        return _not_found().response()
    try:
        content = mhd.retrieve(services, actor, document_id)
    except DocumentNotFound:
        return _not_found().response()
    if as_resource:
        return FhirResponse(
            {
                "resourceType": "Binary",
                "id": content.id,
                "contentType": content.mime_type,
                "data": base64.b64encode(content.body).decode(),
            }
        )
    return Response(
        content.body,
        media_type=content.mime_type,
        headers={"Content-Disposition": f'attachment; filename="{content.id}"'},
    )


def _label_codes(value: Any) -> tuple[str, ...]:
    """The codes of a ``securityLabel`` value: a list of CodeableConcepts, each with a ``coding`` list of
    Codings whose ``code`` is a string — anything else is a 400, never a crash (issue #15-2)."""
    wrong = Problem([("structure", "securityLabel doit être une liste de CodeableConcept.", "securityLabel")])
    if not isinstance(value, list):
        raise wrong
    codes = []
    for label in value:
        coding = label.get("coding") if isinstance(label, dict) else None
        if not isinstance(coding, list) or not all(isinstance(c, dict) for c in coding):
            raise wrong
        for c in coding:
            if not isinstance(c.get("code"), str):
                raise wrong
            codes.append(c["code"])
    return tuple(codes)


def _changes(operations: list[Any]) -> list[mhd.Change]:
    """JSON Patch limited to ``/securityLabel`` (labels) and ``/status`` → entered-in-error."""
    changes = []
    for op in operations:
        if not isinstance(op, dict) or not isinstance(op.get("op"), str) or op["op"] not in {"replace", "add"}:
            raise Problem([("not-supported", "Seules les opérations replace/add sont acceptées.", "")])
        path, value = op.get("path"), op.get("value")
        if path == "/securityLabel":
            changes.append(mhd.Change(labels=_label_codes(value)))
        elif path == "/status" and value == "entered-in-error":
            changes.append(mhd.Change(entered_in_error=True))
        else:
            raise Problem([("not-supported", f"Modification non prise en charge : {str(path)[:40]}", "")])
    return changes


@router.patch("/DocumentReference/{document_id}")
async def patch_document_reference(request: Request, document_id: str) -> Response:
    """JSON Patch limited to ``/securityLabel`` (labels) and ``/status`` → entered-in-error, by the author."""
    services: Services = request.app.state.services
    actor = await run_in_threadpool(fhir_actor, request, services, UPDATE)
    if not is_fhir_id(document_id):
        return _not_found().response()
    try:
        formats.check_json(request)
        operations = load_json(await read_bounded(request, MAX_PATCH_BYTES, "Le JSON Patch dépasse 64 Ko."))
        if not isinstance(operations, list) or not operations:
            raise Problem([("structure", "Le corps doit être une liste d'opérations JSON Patch.", "")])
        return await run_in_threadpool(_patch, services, actor, document_id, operations)
    except Problem as problem:
        return problem.response()


def _patch(services: Services, actor: Actor, document_id: str, operations: list[Any]) -> Response:
    changes = _changes(operations)
    try:
        reference = mhd.change(services, actor, document_id, changes)
    except mhd.MhdError as error:
        raise _problem(error) from None
    except DocumentNotFound:
        raise _not_found() from None
    except AccessDenied as denied:  # the médecin traitant reads the document but did not write it
        reason = NOT_AUTHOR_PATCH if denied.decision.rule == "no_rule" else denied.decision.reason
        raise Problem([("forbidden", reason, "")], 403) from None
    return _reference_answer(services, reference)
