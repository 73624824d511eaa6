"""IHE MHD on FHIR R4 as profiled by the ANS PDSm guide: ITI-65 (provide), ITI-67 (find), ITI-68 (retrieve),
plus the DocumentReference read and its JSON Patch.

Each route authenticates the system (``fhir_actor`` with the SMART v2 scope it needs), parses the request as
FHIR (the bundle's structure by the fhir.resources models, the search parameters), calls one use case of
``carnet.vault.service.mhd`` and serialises what it returns. Any problem means nothing is written, and the
answer is an OperationOutcome listing every issue. A document that does not exist and one the system may not
read get the same 404.
"""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from carnet.bootstrap import Services
from carnet.fhir.auth import fhir_actor
from carnet.fhir.base import FhirResponse
from carnet.fhir.body import load_json, load_object, read_bounded
from carnet.fhir.problems import Problem, structure_issues
from carnet.fhir.search import is_fhir_id
from carnet.hall.actors import Actor
from carnet.hall.guard import AccessDenied
from carnet.vault.model.fhir_map import document_reference
from carnet.vault.service import mhd
from carnet.vault.service.documents import NOT_FOUND, DocumentNotFound, SearchFilters
from carnet.vault.service.mhd import INS_SYSTEMS

router = APIRouter(prefix="/fhir")
MAX_BUNDLE_BYTES = 40 * 1024 * 1024
MAX_PATCH_BYTES = 64 * 1024
FHIR_JSON_TYPES = {"application/fhir+json", "application/json"}
SEARCH_PARAMS = {
    "patient.identifier",
    "patient",
    "status",
    "type",
    "category",
    "date",
    "author.identifier",
    "_count",
    "_offset",
    "_format",
}
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
    """An ITI-65 bundle as FHIR: a Bundle the R4B models accept, of type transaction (``Problem`` otherwise)."""
    if raw.get("resourceType") != "Bundle":
        raise Problem([("structure", "La ressource envoyée doit être un Bundle.", "Bundle")])
    try:
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
        body = await read_bounded(request, MAX_BUNDLE_BYTES, "Le Bundle dépasse 40 Mo.")
        raw = await run_in_threadpool(load_object, body, "Bundle")
        return await run_in_threadpool(_provide, services, actor, raw)
    except Problem as problem:
        return problem.response()


def _provide(services: Services, actor: Actor, raw: dict[str, Any]) -> Response:
    check_structure(raw)
    try:
        created = mhd.provide(services, actor, raw)
    except mhd.MhdError as error:
        raise _problem(error) from None
    except AccessDenied as denied:  # replacing a document one reads but did not write (one not read is « unknown »)
        reason = NOT_AUTHOR if denied.decision.rule == "no_rule" else denied.decision.reason
        raise Problem([("forbidden", reason, "Bundle.entry.resource.relatesTo")], 403) from None
    entries = [
        {"response": {"status": "201 Created", **({"location": f"DocumentReference/{id_}"} if id_ else {})}}
        for id_ in created
    ]
    return FhirResponse({"resourceType": "Bundle", "type": "transaction-response", "entry": entries}, status_code=200)


# ------------------------------------------------------------------ ITI-67: find


def _date_filters(values: list[str]) -> tuple[datetime | None, datetime | None]:
    start = end = None
    for value in values:
        invalid = Problem([("invalid", f"Date de recherche invalide : {value[:30]}", "date")])
        match = re.fullmatch(r"(eq|ge|gt|le|lt)?(\d{4}-\d{2}-\d{2})(T[\d:.]+(Z|[+-]\d{2}:\d{2})?)?", value)
        if not match:
            raise invalid
        prefix = match.group(1) or "eq"
        moment = mhd.parse_date(match.group(2) + (match.group(3) or "T00:00:00+00:00"))
        if moment is None:  # the right shape, not a date (2024-00-10, 2024-02-30): a 400, not a crash
            raise invalid
        try:  # the bounds as stored (UTC): gt9999-12-31 or 9999-12-31T23:59:59-12:00 are past the last date
            moment = moment.astimezone(UTC)
            day_end = moment + (timedelta(days=1) if not match.group(3) else timedelta(0))
        except OverflowError:
            raise invalid from None
        if prefix in {"ge", "gt", "eq"}:
            start = day_end if prefix == "gt" else moment
        if prefix in {"le", "lt", "eq"}:
            end = day_end if prefix in {"le", "eq"} else moment
    return start, end


def _designation(params: Any) -> tuple[dict[str, Any], str]:
    """Whose documents are searched: ``patient`` (a reference) or ``patient.identifier`` (the INS)."""
    if any(any(ord(c) < 32 for c in value) for _, value in params.multi_items()):  # NUL breaks PostgreSQL text
        raise Problem([("invalid", "Un paramètre de recherche contient un caractère de contrôle.", "")])
    unknown = set(params) - SEARCH_PARAMS
    if unknown:
        raise Problem([("not-supported", f"Paramètre de recherche non pris en charge : {sorted(unknown)[0]}", "")])
    system, _, value = params.get("patient.identifier", "").partition("|")
    if params.get("patient"):
        return {"reference": params["patient"]}, "patient"
    if system in INS_SYSTEMS and value:
        return {"identifier": {"system": system, "value": value}}, "patient.identifier"
    raise Problem(
        [
            (
                "required",
                "Le paramètre patient.identifier=urn:oid:1.2.250.1.213.1.4.8|<INS> est obligatoire.",
                "patient.identifier",
            )
        ]
    )


def _search_filters(params: Any) -> SearchFilters:
    try:
        count = min(max(int(params.get("_count", "50")), 1), 100)
        offset = max(int(params.get("_offset", "0")), 0)
    except ValueError as exc:
        raise Problem([("invalid", "_count et _offset doivent être des entiers.", "_count")]) from exc
    start, end = _date_filters(params.getlist("date"))
    return SearchFilters(
        statuses=tuple(s for s in params.get("status", "current").split(",") if s),
        type_code=params.get("type", "").split("|")[-1] or None,
        class_or_category=params.get("category", "").split("|")[-1] or None,
        date_from=start,
        date_to=end,
        author_id=params.get("author.identifier", "").split("|")[-1] or None,
        limit=count,
        offset=offset,
    )


def _links(url: str, offset: int, count: int, total: int) -> list[dict[str, str]]:
    def at(new_offset: int) -> str:
        base = re.sub(r"([?&])_offset=\d+&?", r"\1", url).rstrip("?&")
        return f"{base}{'&' if '?' in base else '?'}_offset={new_offset}"

    links = [{"relation": "self", "url": url}]
    if offset + count < total:
        links.append({"relation": "next", "url": at(offset + count)})
    if offset > 0:
        links.append({"relation": "previous", "url": at(max(offset - count, 0))})
    return links


@router.get("/DocumentReference")
def find_document_references(request: Request) -> Response:
    """ITI-67: DocumentReference search for one patient."""
    services: Services = request.app.state.services
    try:
        actor = fhir_actor(request, services, SEARCH)
        designation, path = _designation(request.query_params)
        filters = _search_filters(request.query_params)
        try:
            found = mhd.find(services, actor, designation, path, filters)
        except mhd.MhdError as error:
            raise _problem(error) from None
    except Problem as problem:
        return problem.response()
    base = services.settings.base_url
    return FhirResponse(
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": found.total,
            "link": _links(str(request.url), filters.offset, filters.limit, found.total),
            "entry": [
                {
                    "fullUrl": f"{base}/fhir/DocumentReference/{d.id}",
                    "resource": document_reference(d, found.subject, base),
                    "search": {"mode": "match"},
                }
                for d in found.documents
            ],
        }
    )


# ------------------------------------------------------------------ the read, ITI-68, PATCH


@router.get("/DocumentReference/{document_id}")
def read_document_reference(request: Request, document_id: str) -> Response:
    services: Services = request.app.state.services
    actor = fhir_actor(request, services, READ)
    if not is_fhir_id(document_id):  # not an id Carnet gives: the same 404, without a look-up
        return _not_found().response()
    try:
        reference = mhd.read_reference(services, actor, document_id)
    except DocumentNotFound:
        return _not_found().response()
    return FhirResponse(document_reference(reference.document, reference.subject, services.settings.base_url))


@router.get("/Binary/{document_id}")
def retrieve_document(request: Request, document_id: str) -> Response:
    """ITI-68: the document's bytes (or a Binary resource when FHIR JSON is asked for)."""
    services: Services = request.app.state.services
    actor = fhir_actor(request, services, RETRIEVE)
    if not is_fhir_id(document_id):
        return _not_found().response()
    try:
        content = mhd.retrieve(services, actor, document_id)
    except DocumentNotFound:
        return _not_found().response()
    if "application/fhir+json" in request.headers.get("accept", ""):
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
    return FhirResponse(document_reference(reference.document, reference.subject, services.settings.base_url))
