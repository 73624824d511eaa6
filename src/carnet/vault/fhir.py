"""IHE MHD on FHIR R4 as profiled by the ANS PDSm guide: ITI-65 (provide), ITI-67 (find), ITI-68 (retrieve).

The bundle is validated as FHIR structure (fhir.resources), then as MHD content; any problem
anywhere means nothing is written, and the answer is an OperationOutcome listing every issue.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.bootstrap import Services
from carnet.fhir.base import FhirResponse
from carnet.hall.actors import Actor
from carnet.identity.service import clients
from carnet.people.model.identifiers import INS_NIR_OID, INS_NIR_TEST_OID
from carnet.people.tables import Patient
from carnet.vault.model import documents as rules
from carnet.vault.service import documents as vault
from carnet.vault.tables import Document

router = APIRouter(prefix="/fhir")
INS_SYSTEMS = {f"urn:oid:{INS_NIR_OID}", f"urn:oid:{INS_NIR_TEST_OID}"}
MAX_BUNDLE_BYTES = 40 * 1024 * 1024
PYDANTIC_FR = {
    "missing": "champ obligatoire manquant",
    "string_type": "doit être une chaîne de caractères",
    "list_type": "doit être une liste",
    "dict_type": "doit être un objet",
    "extra_forbidden": "élément inconnu dans cette ressource",
    "int_type": "doit être un entier",
    "bool_type": "doit être un booléen",
}


class Problem(Exception):
    def __init__(self, issues: list[tuple[str, str, str]], status: int = 400) -> None:
        super().__init__(issues[0][1])
        self.issues = issues
        self.status = status

    def response(self) -> FhirResponse:
        body = {
            "resourceType": "OperationOutcome",
            "issue": [
                {"severity": "error", "code": code, "diagnostics": text, **({"expression": [path]} if path else {})}
                for code, text, path in self.issues
            ],
        }
        return FhirResponse(body, status_code=self.status)


def bearer_actor(request: Request, services: Services, db: Session) -> Actor:
    header = request.headers.get("authorization", "")
    actor = clients.actor_for_token(db, header[7:].strip()) if header.lower().startswith("bearer ") else None
    if actor is None:
        raise Problem([("login", "Jeton d'accès absent, invalide ou expiré (OAuth 2, /oauth/token).", "")], 401)
    return actor


def _coding(concept: dict[str, Any] | None) -> list[dict[str, Any]]:
    return list((concept or {}).get("coding") or [])


def _patient_for(db: Session, subject: dict[str, Any] | None, path: str) -> Patient:
    subject = subject or {}
    reference = subject.get("reference") or ""
    identifier = subject.get("identifier") or {}
    system, value = identifier.get("system"), identifier.get("value")
    match = re.fullmatch(r"Patient\?identifier=([^|]+)\|(.+)", reference)
    if match:
        system, value = match.groups()
    patient = None
    if system in INS_SYSTEMS and value:
        patient = db.scalar(select(Patient).where(Patient.ins == value))
    elif reference.startswith("Patient/"):
        patient = db.get(Patient, reference.split("/", 1)[1])
    else:
        raise Problem([("required", "Le patient doit être désigné par son INS (subject.identifier).", path)])
    if patient is None or patient.status != "active":
        raise Problem([("not-found", "Aucun espace santé ouvert pour ce patient.", path)], 404)
    return patient


@dataclass
class Parsed:
    documents: list[vault.NewDocument] = field(default_factory=list)
    order: list[tuple[str, str]] = field(default_factory=list)  # (resourceType, id) per request entry


def _decode(data: str, path: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Problem([("invalid", "Contenu base64 invalide.", path)]) from exc


def _without_payloads(raw: dict[str, Any]) -> dict[str, Any]:
    """The bundle with each base64 payload replaced by a stand-in: the structure is validated by the FHIR
    models, the (large) payloads by ``_decode`` — validating megabytes of base64 twice costs milliseconds."""
    entries = []
    for entry in raw.get("entry") or []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and isinstance(resource.get("data"), str):
            entry = {**entry, "resource": {**resource, "data": "AA=="}}
        entries.append(entry)
    return {**raw, "entry": entries} if "entry" in raw else raw


def parse_provide_bundle(db: Session, raw: dict[str, Any]) -> Parsed:
    """ITI-65 bundle → documents to deposit; raises ``Problem`` listing every issue found."""
    if raw.get("resourceType") != "Bundle":
        raise Problem([("structure", "La ressource envoyée doit être un Bundle.", "Bundle")])
    try:
        Bundle.model_validate(_without_payloads(raw))
    except ValidationError as exc:
        raise Problem(
            [
                (
                    "structure",
                    PYDANTIC_FR.get(err["type"], "valeur invalide"),
                    "Bundle." + ".".join(map(str, err["loc"])),
                )
                for err in exc.errors()[:20]
            ]
        ) from exc
    if raw.get("type") != "transaction":
        raise Problem([("value", "Le Bundle ITI-65 doit être de type « transaction ».", "Bundle.type")])
    entries = raw.get("entry") or []
    by_url = {e.get("fullUrl"): (i, e.get("resource") or {}) for i, e in enumerate(entries) if e.get("fullUrl")}
    issues: list[tuple[str, str, str]] = []
    lists = [
        (i, e["resource"]) for i, e in enumerate(entries) if (e.get("resource") or {}).get("resourceType") == "List"
    ]
    submission = next(
        ((i, r) for i, r in lists if any(c.get("code") == "submissionset" for c in _coding(r.get("code")))), None
    )
    if submission is None:
        issues.append(
            (
                "required",
                "Le Bundle doit contenir un lot de soumission (List de code « submissionset »).",
                "Bundle.entry",
            )
        )
    submission_id = None
    if submission is not None:
        identifiers = submission[1].get("identifier") or []
        submission_id = next((i.get("value") for i in identifiers if i.get("value")), None)
    parsed = Parsed()
    patients: set[str] = set()
    for index, entry in enumerate(entries):
        resource = entry.get("resource") or {}
        kind = resource.get("resourceType")
        path = f"Bundle.entry[{index}].resource"
        if kind not in {"DocumentReference", "Binary", "List"}:
            issues.append(("not-supported", f"Ressource {kind} non prise en charge dans un Bundle ITI-65.", path))
            continue
        if kind != "DocumentReference":
            parsed.order.append((kind, ""))
            continue
        try:
            new = _document(db, resource, path, by_url)
        except Problem as problem:
            issues += problem.issues
            continue
        except rules.DocumentError as exc:
            issues.append(("invalid", exc.message, path))
            continue
        new.submission_set_id = submission_id
        patients.add(new.patient_id)
        parsed.documents.append(new)
        parsed.order.append((kind, new.id))
    if not parsed.documents and not issues:
        issues.append(("required", "Le Bundle ne contient aucun DocumentReference.", "Bundle.entry"))
    if len(patients) > 1:
        issues.append(("business-rule", "Tous les documents d'un lot doivent concerner le même patient.", "Bundle"))
    if issues:
        raise Problem(issues, 404 if all(c == "not-found" for c, _, _ in issues) else 400)
    return parsed


def _document(
    db: Session, resource: dict[str, Any], path: str, by_url: dict[str, tuple[int, dict[str, Any]]]
) -> vault.NewDocument:
    if resource.get("status") != "current":
        raise Problem([("value", "Un document déposé doit avoir le statut « current ».", f"{path}.status")])
    patient = _patient_for(db, resource.get("subject"), f"{path}.subject")
    type_code = next(
        ((c.get("system"), c.get("code")) for c in _coding(resource.get("type")) if c.get("system") == rules.LOINC),
        None,
    )
    if type_code is None:
        raise Problem(
            [("code-invalid", "Le type de document (type) doit être un code LOINC du JDV_J07.", f"{path}.type")]
        )
    content = (resource.get("content") or [{}])[0]
    attachment = content.get("attachment") or {}
    mime = attachment.get("contentType")
    if not mime:
        raise Problem(
            [
                (
                    "required",
                    "Le type MIME du document (attachment.contentType) est obligatoire.",
                    f"{path}.content[0].attachment.contentType",
                )
            ]
        )
    if attachment.get("data"):
        body = _decode(attachment["data"], f"{path}.content[0].attachment.data")
    else:
        target = by_url.get(attachment.get("url") or "")
        if target is None or target[1].get("resourceType") != "Binary":
            raise Problem(
                [
                    (
                        "required",
                        "attachment.url doit désigner un Binary du même Bundle.",
                        f"{path}.content[0].attachment.url",
                    )
                ]
            )
        binary = target[1]
        body = _decode(binary.get("data") or "", f"Bundle.entry[{target[0]}].resource.data")
        if binary.get("contentType") and binary["contentType"] != mime:
            raise Problem(
                [
                    (
                        "invalid",
                        "Le type MIME du Binary diffère de celui du DocumentReference.",
                        f"Bundle.entry[{target[0]}].resource.contentType",
                    )
                ]
            )
    if attachment.get("size") is not None and attachment["size"] != len(body):
        raise Problem(
            [
                (
                    "invalid",
                    f"Taille annoncée ({attachment['size']} octets) différente du contenu ({len(body)} octets).",
                    f"{path}.content[0].attachment.size",
                )
            ]
        )
    expected_hash = attachment.get("hash")
    if expected_hash and _b64(expected_hash) != hashlib.sha1(body).digest():  # noqa: S324 — FHIR R4 defines SHA-1
        raise Problem(
            [
                (
                    "invalid",
                    "L'empreinte SHA-1 (attachment.hash) ne correspond pas au contenu.",
                    f"{path}.content[0].attachment.hash",
                )
            ]
        )
    labels = [
        c.get("code")
        for label in resource.get("securityLabel") or []
        for c in _coding(label)
        if c.get("system") in {rules.CONFIDENTIALITY_SYSTEM_FR, rules.CONFIDENTIALITY_SYSTEM_HL7}
    ]
    replaces = None
    for relation in resource.get("relatesTo") or []:
        if relation.get("code") == "replaces":
            reference = (relation.get("target") or {}).get("reference") or ""
            replaces = reference.split("/")[-1] if reference.startswith("DocumentReference/") else None
            if replaces is None:
                raise Problem(
                    [("invalid", "relatesTo.target doit référencer DocumentReference/<id>.", f"{path}.relatesTo")]
                )
    rules.document_type(type_code[0] or "", type_code[1] or "")
    rules.check_body(body, mime, rules.MHD_TYPES)
    rules.check_confidentiality([c for c in labels if c])
    master = (resource.get("masterIdentifier") or {}).get("value")
    if master and db.scalar(
        select(Document.id).where(Document.patient_id == patient.id, Document.master_identifier == master)
    ):
        raise Problem(
            [("duplicate", "Un document avec ce masterIdentifier a déjà été déposé.", f"{path}.masterIdentifier")]
        )
    period = ((resource.get("context") or {}).get("period") or {}).get("start") or resource.get("date")
    return vault.NewDocument(
        patient_id=patient.id,
        type_system=type_code[0] or "",
        type_code=type_code[1] or "",
        title=resource.get("description") or attachment.get("title") or "",
        mime_type=mime,
        body=body,
        confidentiality=[c for c in labels if c],
        master_identifier=master,
        class_code=next((c.get("code") for cat in resource.get("category") or [] for c in _coding(cat)), None),
        format_code=(content.get("format") or {}).get("code"),
        service_date=_parse_date(period) if period else None,
        replaces_id=replaces,
    )


def _b64(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return b""


def _parse_date(value: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def document_reference(document: Document, patient: Patient, base_url: str) -> dict[str, Any]:
    labels = [
        {
            "coding": [
                {
                    "system": rules.CONFIDENTIALITY_SYSTEM_FR
                    if c in rules.FRENCH_LABELS
                    else rules.CONFIDENTIALITY_SYSTEM_HL7,
                    "code": c,
                }
            ]
        }
        for c in (document.confidentiality or [])
    ]
    resource: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "id": document.id,
        "meta": {"lastUpdated": document.created_at.isoformat()},
        "status": document.status,
        "type": {
            "coding": [{"system": document.type_system, "code": document.type_code, "display": document.type_display}]
        },
        "category": [{"coding": [{"code": document.class_code or document.category}]}],
        "subject": {"identifier": {"system": f"urn:oid:{patient.ins_oid}", "value": patient.ins}},
        "date": document.created_at.isoformat(),
        "author": [{"display": document.author_label}],
        "description": document.title,
        "content": [
            {
                "attachment": {
                    "contentType": document.mime_type,
                    "url": f"{base_url}/fhir/Binary/{document.id}",
                    "size": document.size,
                    "title": document.title,
                },
                **({"format": {"code": document.format_code}} if document.format_code else {}),
            }
        ],
    }
    if document.master_identifier:
        resource["masterIdentifier"] = {"value": document.master_identifier}
    if labels:
        resource["securityLabel"] = labels
    if document.replaces_id:
        resource["relatesTo"] = [
            {"code": "replaces", "target": {"reference": f"DocumentReference/{document.replaces_id}"}}
        ]
    if document.service_date:
        resource["context"] = {"period": {"start": document.service_date.isoformat()}}
    return resource


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_BUNDLE_BYTES:
        raise Problem([("too-costly", "Le Bundle dépasse 40 Mo.", "Bundle")], 413)
    try:
        parsed = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Problem([("structure", "Le corps de la requête n'est pas un JSON valide.", "")]) from exc
    if not isinstance(parsed, dict):
        raise Problem([("structure", "Le corps de la requête doit être une ressource FHIR (objet JSON).", "")])
    return parsed


@router.post("")
@router.post("/")
async def provide_document_bundle(request: Request) -> Response:
    """ITI-65: a transaction Bundle (SubmissionSet List + DocumentReference + Binary)."""
    services: Services = request.app.state.services
    try:
        raw = await _json_body(request)
        from starlette.concurrency import run_in_threadpool

        return await run_in_threadpool(_provide, services, request, raw)
    except Problem as problem:
        return problem.response()


def _provide(services: Services, request: Request, raw: dict[str, Any]) -> Response:
    with services.db.unit_of_work() as db:
        actor = bearer_actor(request, services, db)
        parsed = parse_provide_bundle(db, raw)
    try:
        stored = vault.deposit_many(services, actor, parsed.documents)
    except rules.DocumentError as exc:
        raise Problem([("invalid", exc.message, "Bundle")]) from exc
    ids = iter(d.id for d in stored)
    entries = []
    for kind, _ in parsed.order:
        if kind == "DocumentReference":
            entries.append({"response": {"status": "201 Created", "location": f"DocumentReference/{next(ids)}"}})
        else:
            entries.append({"response": {"status": "201 Created"}})
    return FhirResponse({"resourceType": "Bundle", "type": "transaction-response", "entry": entries}, status_code=200)


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


def _date_filters(values: list[str]) -> tuple[datetime | None, datetime | None]:
    start = end = None
    for value in values:
        match = re.fullmatch(r"(eq|ge|gt|le|lt)?(\d{4}-\d{2}-\d{2})(T[\d:.]+(Z|[+-]\d{2}:\d{2})?)?", value)
        if not match:
            raise Problem([("invalid", f"Date de recherche invalide : {value[:30]}", "date")])
        prefix = match.group(1) or "eq"
        moment = _parse_date(match.group(2) + (match.group(3) or "T00:00:00+00:00"))
        assert moment is not None
        day_end = moment + (timedelta(days=1) if not match.group(3) else timedelta(0))
        if prefix in {"ge", "gt", "eq"}:
            start = day_end if prefix == "gt" else moment
        if prefix in {"le", "lt", "eq"}:
            end = day_end if prefix in {"le", "eq"} else moment
    return start, end


@router.get("/DocumentReference")
def find_document_references(request: Request) -> Response:
    """ITI-67: DocumentReference search for one patient."""
    services: Services = request.app.state.services
    params = request.query_params
    try:
        with services.db.unit_of_work() as db:
            actor = bearer_actor(request, services, db)
            unknown = set(params) - SEARCH_PARAMS
            if unknown:
                raise Problem(
                    [("not-supported", f"Paramètre de recherche non pris en charge : {sorted(unknown)[0]}", "")]
                )
            identifier = params.get("patient.identifier", "")
            system, _, value = identifier.partition("|")
            if params.get("patient"):
                patient = _patient_for(db, {"reference": params["patient"]}, "patient")
            elif system in INS_SYSTEMS and value:
                patient = _patient_for(db, {"identifier": {"system": system, "value": value}}, "patient.identifier")
            else:
                raise Problem(
                    [
                        (
                            "required",
                            "Le paramètre patient.identifier=urn:oid:1.2.250.1.213.1.4.8|<INS> est obligatoire.",
                            "patient.identifier",
                        )
                    ]
                )
            try:
                count = min(max(int(params.get("_count", "50")), 1), 100)
                offset = max(int(params.get("_offset", "0")), 0)
            except ValueError as exc:
                raise Problem([("invalid", "_count et _offset doivent être des entiers.", "_count")]) from exc
            statuses = tuple(s for s in params.get("status", "current").split(",") if s)
            type_code = params.get("type", "").split("|")[-1] or None
            category = params.get("category", "").split("|")[-1] or None
            start, end = _date_filters(params.getlist("date"))
            author = params.get("author.identifier", "").split("|")[-1] or None
            filters = vault.SearchFilters(
                statuses=statuses,
                type_code=type_code,
                class_or_category=category,
                date_from=start,
                date_to=end,
                author_id=author,
                limit=count,
                offset=offset,
            )
            page = vault.search(services, db, actor, patient.id, filters)
            base = services.settings.base_url
            bundle = {
                "resourceType": "Bundle",
                "type": "searchset",
                "total": page.total,
                "link": _links(str(request.url), offset, count, page.total),
                "entry": [
                    {
                        "fullUrl": f"{base}/fhir/DocumentReference/{d.id}",
                        "resource": document_reference(d, patient, base),
                        "search": {"mode": "match"},
                    }
                    for d in page.documents
                ],
            }
    except Problem as problem:
        return problem.response()
    return FhirResponse(bundle)


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


@router.get("/DocumentReference/{document_id}")
def read_document_reference(request: Request, document_id: str) -> Response:
    services: Services = request.app.state.services
    try:
        with services.db.unit_of_work() as db:
            actor = bearer_actor(request, services, db)
            document, _, _ = vault.read(services, db, actor, document_id, action="document.metadata")
            patient = db.get(Patient, document.patient_id)
            assert patient is not None
            body = document_reference(document, patient, services.settings.base_url)
    except Problem as problem:
        return problem.response()
    return FhirResponse(body)


@router.get("/Binary/{document_id}")
def retrieve_document(request: Request, document_id: str) -> Response:
    """ITI-68: the document's bytes (or a Binary resource when FHIR JSON is asked for)."""
    services: Services = request.app.state.services
    try:
        with services.db.unit_of_work() as db:
            actor = bearer_actor(request, services, db)
            document, body, mime = vault.read(services, db, actor, document_id, action="document.download")
    except Problem as problem:
        return problem.response()
    if "application/fhir+json" in request.headers.get("accept", ""):
        return FhirResponse(
            {"resourceType": "Binary", "id": document.id, "contentType": mime, "data": base64.b64encode(body).decode()}
        )
    return Response(body, media_type=mime, headers={"Content-Disposition": f'attachment; filename="{document.id}"'})


@router.patch("/DocumentReference/{document_id}")
async def patch_document_reference(request: Request, document_id: str) -> Response:
    """JSON Patch limited to ``/securityLabel`` (labels) and ``/status`` → entered-in-error, by the author."""
    services: Services = request.app.state.services
    try:
        raw = await request.body()
        try:
            operations = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise Problem([("structure", "Le corps doit être un JSON Patch valide.", "")]) from exc
        if not isinstance(operations, list) or not operations:
            raise Problem([("structure", "Le corps doit être une liste d'opérations JSON Patch.", "")])
        from starlette.concurrency import run_in_threadpool

        return await run_in_threadpool(_patch, services, request, document_id, operations)
    except Problem as problem:
        return problem.response()


def _patch(services: Services, request: Request, document_id: str, operations: list[Any]) -> Response:
    with services.db.unit_of_work() as db:
        actor = bearer_actor(request, services, db)
        for op in operations:
            if not isinstance(op, dict) or op.get("op") not in {"replace", "add"}:
                raise Problem([("not-supported", "Seules les opérations replace/add sont acceptées.", "")])
            path, value = op.get("path"), op.get("value")
            if path == "/securityLabel" and isinstance(value, list):
                codes = [c.get("code") for label in value if isinstance(label, dict) for c in _coding(label)]
                try:
                    vault.set_labels(db, actor, document_id, [c for c in codes if c])
                except rules.DocumentError as exc:
                    raise Problem([("code-invalid", exc.message, "securityLabel")]) from exc
            elif path == "/status" and value == "entered-in-error":
                vault.mark_entered_in_error(db, actor, document_id)
            else:
                raise Problem([("not-supported", f"Modification non prise en charge : {str(path)[:40]}", "")])
        document = db.get(Document, document_id)
        patient = db.get(Patient, document.patient_id) if document else None
        assert document is not None and patient is not None
        body = document_reference(document, patient, services.settings.base_url)
    return FhirResponse(body)
