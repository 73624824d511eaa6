"""IHE MHD as the vault serves it (VLT-2): what an ITI-65 bundle means as documents, ITI-67 search, ITI-68
retrieve, the DocumentReference read and its JSON Patch — one use case each, in its own unit of work.

The FHIR interface checks the bundle's structure (FHIR models) and the search parameters; here the content
is read as MHD (the ANS PDSm profile): patient by INS, LOINC type of JDV_J07, MIME type and bytes, size and
hash, labels, replacement, unique ``masterIdentifier``. Every problem found is listed in ``MhdError``
(French, with the FHIRPath of the element); then the vault deposits all or nothing, through the hall.
Whether a patient's space can be used is the policy's answer; which documents a system sees too.
"""

from __future__ import annotations

import binascii
import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from carnet.bootstrap import Services
from carnet.errors import CarnetError
from carnet.fhir.search import InputError
from carnet.hall.actors import Actor
from carnet.hall.policy import Action, space_is_open
from carnet.people.model.identifiers import INS_NIR_OID, INS_NIR_TEST_OID
from carnet.people.tables import Patient
from carnet.storage.base import columns
from carnet.storage.types import new_id
from carnet.vault.model import documents as rules
from carnet.vault.model import mhd_metadata
from carnet.vault.service import documents as vault
from carnet.vault.service.documents import DocumentContent, DocumentView, SearchFilters
from carnet.vault.tables import Document

INS_SYSTEMS = {f"urn:oid:{INS_NIR_OID}", f"urn:oid:{INS_NIR_TEST_OID}"}
NO_SPACE = "Aucun espace santé ouvert pour ce patient."

Issue = tuple[str, str, str]  # (FHIR issue code, French diagnostics, FHIRPath or "")


class MhdError(CarnetError):
    """What cannot be done, as OperationOutcome issues (the first one's text is the ``message``), and the
    HTTP status to answer with."""

    def __init__(self, issues: list[Issue], status: int = 400) -> None:
        super().__init__(issues[0][1])
        self.issues = issues
        self.status = status

    def __reduce__(self) -> tuple[type[MhdError], tuple[list[Issue], int]]:
        return (type(self), (self.issues, self.status))


def _issue(code: str, text: str, path: str, status: int = 400) -> MhdError:
    return MhdError([(code, text, path)], status)


@dataclass(frozen=True)
class Subject:
    """The patient as FHIR names them (their INS)."""

    id: str
    ins: str
    ins_oid: str


def subject_of(patient: Patient) -> Subject:
    return Subject(patient.id, patient.ins, patient.ins_oid)


def _coding(concept: dict[str, Any] | None) -> list[dict[str, Any]]:
    return list((concept or {}).get("coding") or [])


_PATIENTS = columns(Patient)
_SUBJECT = select(_PATIENTS.id, _PATIENTS.ins, _PATIENTS.ins_oid, _PATIENTS.status)
_BY_INS = _SUBJECT.where(_PATIENTS.ins == bindparam("ins"))
_BY_ID = _SUBJECT.where(_PATIENTS.id == bindparam("id"))  # the FHIR statements are built once (issue #14)
_DOCUMENTS = columns(Document)
_MASTER_TAKEN = select(_DOCUMENTS.id).where(
    _DOCUMENTS.patient_id == bindparam("patient"), _DOCUMENTS.master_identifier == bindparam("master")
)


def patient_for(db: Session, subject: dict[str, Any] | None, path: str) -> Subject:
    """The patient designated by INS (or ``Patient/<id>``): an unknown patient and a space that is not open
    are the same « not found » (nothing recorded yet: the service then asks the policy for the act itself,
    records it, or records the refusal)."""
    subject = subject or {}
    reference = subject.get("reference") or ""
    identifier = subject.get("identifier") or {}
    system, value = identifier.get("system"), identifier.get("value")
    match = re.fullmatch(r"Patient\?identifier=([^|]+)\|(.+)", reference)
    if match:
        system, value = match.groups()
    if system in INS_SYSTEMS and value:
        row = db.execute(_BY_INS, {"ins": value}).first()
    elif reference.startswith("Patient/"):
        row = db.execute(_BY_ID, {"id": reference.split("/", 1)[1]}).first()
    else:
        raise _issue("required", "Le patient doit être désigné par son INS (subject.identifier).", path)
    if row is None or not space_is_open(row.status):  # the policy's unknown_space, told as FHIR wants
        raise _issue("not-found", NO_SPACE, path, 404)
    return Subject(row.id, row.ins, row.ins_oid)


# ------------------------------------------------------------------ ITI-65: provide


@dataclass
class _Parsed:
    documents: list[vault.NewDocument] = field(default_factory=list)
    # per request entry: what it creates — ("List", the SubmissionSet's id), ("Binary", the fullUrl of the Binary,
    # then the id of the document it holds), ("DocumentReference", its id)
    order: list[tuple[str, str]] = field(default_factory=list)
    binaries: dict[str, str] = field(default_factory=dict)  # a Binary's fullUrl → the document it holds


def _strict_b64(data: str) -> bytes:
    """Strict base64 (``base64.b64decode(validate=True)``), decoded from the string as it is: no ASCII copy of a
    body first (issue #14: a 140 KB Binary, 0.5 → 0.3 ms)."""
    return binascii.a2b_base64(data, strict_mode=True)


def _decode(data: str, path: str) -> bytes:
    try:
        return _strict_b64(data)
    except (binascii.Error, ValueError) as exc:
        raise _issue("invalid", "Contenu base64 invalide.", path) from exc


def _b64(value: str) -> bytes:
    try:
        return _strict_b64(value)
    except (binascii.Error, ValueError):
        return b""


def _submission_set(entries: list[dict[str, Any]], issues: list[Issue]) -> None:
    """The bundle's one SubmissionSet (a List coded ``submissionset``): an issue when there is none; any other List
    (a Folder) is not taken — refused, not silently dropped."""
    lists = [(i, e.get("resource") or {}) for i, e in enumerate(entries)]
    lists = [(i, r) for i, r in lists if r.get("resourceType") == "List"]
    submissions = [(i, r) for i, r in lists if any(c.get("code") == "submissionset" for c in _coding(r.get("code")))]
    if not submissions:
        issues.append(
            (
                "required",
                "Le Bundle doit contenir un lot de soumission (List de code « submissionset »).",
                "Bundle.entry",
            )
        )
    for index, _ in [*submissions[1:], *(item for item in lists if item not in submissions)]:
        issues.append(
            (
                "not-supported",
                "Un Bundle ITI-65 contient un seul List : le lot de soumission (les classeurs ne sont pas pris en "
                "charge).",
                f"Bundle.entry[{index}].resource",
            )
        )


def _binary_url(resource: dict[str, Any]) -> str | None:
    attachment = ((resource.get("content") or [{}])[0] or {}).get("attachment") or {}
    return None if attachment.get("data") else attachment.get("url")


def _unheld(parsed: _Parsed, issues: list[Issue]) -> None:
    """Every Binary of the bundle is the content of one of its DocumentReferences (else it would be created for
    nothing, and have no location)."""
    for index, (kind, url) in enumerate(parsed.order):
        if kind == "Binary" and url not in parsed.binaries:
            issues.append(
                (
                    "business-rule",
                    "Ce Binary n'est le contenu d'aucun DocumentReference du lot (attachment.url).",
                    f"Bundle.entry[{index}].resource",
                )
            )


def _read_entries(db: Session, actor: Actor, raw: dict[str, Any]) -> _Parsed:
    """ITI-65 bundle (its FHIR structure already checked) → documents to deposit; ``MhdError`` lists every issue."""
    entries = raw.get("entry") or []
    by_url = {e.get("fullUrl"): (i, e.get("resource") or {}) for i, e in enumerate(entries) if e.get("fullUrl")}
    issues: list[Issue] = []
    _submission_set(entries, issues)
    submission_id = new_id()
    parsed = _Parsed()
    patients: set[str] = set()
    masters: set[str] = set()
    for index, entry in enumerate(entries):
        resource = entry.get("resource") or {}
        kind = resource.get("resourceType")
        path = f"Bundle.entry[{index}].resource"
        if kind not in {"DocumentReference", "Binary", "List"}:
            issues.append(("not-supported", f"Ressource {kind} non prise en charge dans un Bundle ITI-65.", path))
            continue
        if kind != "DocumentReference":
            parsed.order.append((kind, submission_id if kind == "List" else str(entry.get("fullUrl") or "")))
            continue
        try:
            new = _document(db, actor, resource, path, by_url)
        except (MhdError, InputError) as problem:
            issues += problem.issues
            continue
        except rules.DocumentError as exc:
            issues.append(("invalid", exc.message, path))
            continue
        new.submission_set_id = submission_id
        if new.master_identifier and new.master_identifier in masters:  # issue #15-4: twice in one bundle
            issues.append(
                ("duplicate", "Deux documents du lot ont le même masterIdentifier.", f"{path}.masterIdentifier")
            )
        masters.add(new.master_identifier or "")
        patients.add(new.patient_id)
        parsed.documents.append(new)
        parsed.order.append(("DocumentReference", new.id))
        url = _binary_url(resource)
        if url:
            parsed.binaries.setdefault(url, new.id)
    if not issues:
        _unheld(parsed, issues)
    if not parsed.documents and not issues:
        issues.append(("required", "Le Bundle ne contient aucun DocumentReference.", "Bundle.entry"))
    if len(patients) > 1:
        issues.append(("business-rule", "Tous les documents d'un lot doivent concerner le même patient.", "Bundle"))
    if issues:
        raise MhdError(issues, 404 if all(c == "not-found" for c, _, _ in issues) else 400)
    return parsed


def _body(attachment: dict[str, Any], mime: str, path: str, by_url: dict[str, tuple[int, dict[str, Any]]]) -> bytes:
    """The document's bytes: inline, or in the Binary of the bundle its ``attachment.url`` names."""
    if attachment.get("data"):
        return _decode(attachment["data"], f"{path}.content[0].attachment.data")
    target = by_url.get(attachment.get("url") or "")
    if target is None or target[1].get("resourceType") != "Binary":
        raise _issue(
            "required", "attachment.url doit désigner un Binary du même Bundle.", f"{path}.content[0].attachment.url"
        )
    binary = target[1]
    body = _decode(binary.get("data") or "", f"Bundle.entry[{target[0]}].resource.data")
    if binary.get("contentType") and rules.media_type(binary["contentType"]) != rules.media_type(mime):
        raise _issue(
            "invalid",
            "Le type MIME du Binary diffère de celui du DocumentReference.",
            f"Bundle.entry[{target[0]}].resource.contentType",
        )
    return body


def _check_attachment(attachment: dict[str, Any], body: bytes, path: str) -> None:
    """The announced size and SHA-1 hash, when given, are the content's."""
    if attachment.get("size") is not None and attachment["size"] != len(body):
        raise _issue(
            "invalid",
            f"Taille annoncée ({attachment['size']} octets) différente du contenu ({len(body)} octets).",
            f"{path}.content[0].attachment.size",
        )
    expected_hash = attachment.get("hash")
    if expected_hash and _b64(expected_hash) != hashlib.sha1(body).digest():  # noqa: S324 — FHIR R4 defines SHA-1
        raise _issue(
            "invalid",
            "L'empreinte SHA-1 (attachment.hash) ne correspond pas au contenu.",
            f"{path}.content[0].attachment.hash",
        )


def _replaces(resource: dict[str, Any], path: str) -> str | None:
    replaces = None
    for relation in resource.get("relatesTo") or []:
        if relation.get("code") == "replaces":
            reference = (relation.get("target") or {}).get("reference") or ""
            replaces = reference.split("/")[-1] if reference.startswith("DocumentReference/") else None
            if replaces is None:
                raise _issue("invalid", "relatesTo.target doit référencer DocumentReference/<id>.", f"{path}.relatesTo")
    return replaces


def _type_code(resource: dict[str, Any], path: str) -> tuple[str, str]:
    found = next(
        ((c.get("system"), c.get("code")) for c in _coding(resource.get("type")) if c.get("system") == rules.LOINC),
        None,
    )
    if found is None:
        raise _issue("code-invalid", "Le type de document (type) doit être un code LOINC du JDV_J07.", f"{path}.type")
    return found[0] or "", found[1] or ""


def _labels(resource: dict[str, Any], path: str) -> list[str]:
    """The confidentiality codes of ``securityLabel``: a coding of another system, or without a code, is refused
    (issue #15-4: labels are checked, as docs/api.md says), never ignored."""
    systems = {rules.CONFIDENTIALITY_SYSTEM_FR, rules.CONFIDENTIALITY_SYSTEM_HL7}
    codes = []
    for label in resource.get("securityLabel") or []:
        for c in _coding(label):
            if c.get("system") not in systems or not c.get("code"):
                raise _issue(
                    "code-invalid",
                    "securityLabel : seuls les codes de confidentialité français et HL7, avec leur système, "
                    "sont admis.",
                    f"{path}.securityLabel",
                )
            codes.append(c["code"])
    return codes


def _document(
    db: Session, actor: Actor, resource: dict[str, Any], path: str, by_url: dict[str, tuple[int, dict[str, Any]]]
) -> vault.NewDocument:
    if resource.get("status") != "current":
        raise _issue("value", "Un document déposé doit avoir le statut « current ».", f"{path}.status")
    patient = patient_for(db, resource.get("subject"), f"{path}.subject")
    type_system, type_code = _type_code(resource, path)
    content = (resource.get("content") or [{}])[0]
    attachment = content.get("attachment") or {}
    mime = attachment.get("contentType")
    if not mime:
        raise _issue(
            "required",
            "Le type MIME du document (attachment.contentType) est obligatoire.",
            f"{path}.content[0].attachment.contentType",
        )
    body = _body(attachment, mime, path, by_url)
    _check_attachment(attachment, body, path)
    labels = _labels(resource, path)
    replaces = _replaces(resource, path)
    rules.document_type(type_system, type_code)
    rules.check_body(body, mime, rules.MHD_TYPES)
    rules.check_confidentiality(labels)
    master = (resource.get("masterIdentifier") or {}).get("value")
    if master and db.execute(_MASTER_TAKEN, {"patient": patient.id, "master": master}).first():
        raise _issue("duplicate", "Un document avec ce masterIdentifier a déjà été déposé.", f"{path}.masterIdentifier")
    kept = mhd_metadata.keep(resource, body, path)
    return vault.NewDocument(
        patient_id=patient.id,
        type_system=type_system,
        type_code=type_code,
        title=resource.get("description") or attachment.get("title") or "",
        mime_type=mime,
        body=body,
        confidentiality=labels,
        master_identifier=master,
        class_system=kept.class_system,
        class_code=kept.class_code,
        format_system=kept.format_system,
        format_code=kept.format_code,
        service_date=kept.service_start,
        service_end=kept.service_end,
        document_date=kept.document_date,
        creation_date=kept.creation,
        index=kept.index,
        sent=kept.sent,
        replaces_id=replaces,
    )


@dataclass(frozen=True)
class Created:
    """What one entry of an ITI-65 bundle created: ``kind`` (List, Binary, DocumentReference), its id, version and
    time."""

    kind: str
    id: str
    version: int
    at: datetime


def provide(services: Services, actor: Actor, bundle: dict[str, Any]) -> list[Created]:
    """ITI-65: the bundle's documents deposited, all or nothing; per request entry, what it created (the
    SubmissionSet List, each Binary — the document's bytes, read at ``Binary/<document id>`` —, each
    DocumentReference). ``MhdError`` lists what is wrong."""
    with services.db.reading() as db:  # look-ups only: the bodies are decoded and checked without the writer's turn
        parsed = _read_entries(db, actor, bundle)
        known = vault.first_word(services, db, actor, parsed.documents)
    try:
        stored = {d.id: d for d in vault.deposit_many(services, actor, parsed.documents, known)}
    except rules.DocumentError as exc:
        raise _issue("invalid", exc.message, "Bundle") from exc
    at = min((d.created_at for d in stored.values()), default=datetime.now(UTC))
    created = []
    for kind, key in parsed.order:
        document_id = parsed.binaries.get(key, "") if kind == "Binary" else key
        document = stored.get(document_id)
        created.append(
            Created(kind, document_id, document.version if document else 1, document.created_at if document else at)
        )
    return created


# ------------------------------------------------------------------ ITI-67, the read, ITI-68, PATCH


@dataclass(frozen=True)
class Found:
    """One page of an ITI-67 search: the patient, the documents the policy lets the system see (with the
    DocumentReferences as they were sent, by document id), and the total."""

    subject: Subject
    documents: list[DocumentView]
    total: int
    sent: dict[str, dict[str, Any]] = field(default_factory=dict)


def find(services: Services, actor: Actor, designation: dict[str, Any], path: str, filters: SearchFilters) -> Found:
    """ITI-67: the documents of the patient designated (``{"reference": …}`` or ``{"identifier": …}``)."""
    with services.db.unit_of_work() as db:
        patient = patient_for(db, designation, path)
        page = vault.search(services, db, actor, patient.id, filters)
        sent = vault.sent_metadata(services, db, page.documents)
        return Found(patient, [vault.view_of(d) for d in page.documents], page.total, sent)


@dataclass(frozen=True)
class Reference:
    """A DocumentReference: the document's metadata, whose it is, and the resource as sent (None when the document
    did not come over MHD)."""

    document: DocumentView
    subject: Subject
    sent: dict[str, Any] | None = None


def _reference(services: Services, db: Session, document: Document) -> Reference:
    patient = db.get(Patient, document.patient_id)
    assert patient is not None  # documents belong to a patient
    sent = vault.sent_metadata(services, db, [document]).get(document.id)
    return Reference(vault.view_of(document), subject_of(patient), sent)


def read_reference(services: Services, actor: Actor, document_id: str) -> Reference:
    """``GET DocumentReference/<id>``: ``DocumentNotFound`` when missing or not to be read."""
    with services.db.unit_of_work() as db:
        document, _, _ = vault.read(services, db, actor, document_id, action="document.metadata", with_body=False)
        return _reference(services, db, document)


@dataclass(frozen=True)
class SubmissionSet:
    """The SubmissionSet of one ITI-65 deposit (``List/<id>``, the location its response gave): whose, when, by
    whom, and the documents of it the actor may read."""

    id: str
    subject: Subject
    created_at: datetime
    author_label: str
    document_ids: list[str]


def read_submission_set(services: Services, actor: Actor, list_id: str) -> SubmissionSet:
    """``GET List/<id>``: the SubmissionSet, listing only the documents the policy lets ``actor`` read (each asked as
    its own read would be); ``DocumentNotFound`` when it does not exist or none of it may be read — the same answer,
    the refusal kept in the history."""
    with services.db.unit_of_work() as db:
        rows = list(
            db.scalars(
                select(Document)
                .where(Document.submission_set_id == list_id, Document.status != "entered-in-error")
                .order_by(Document.created_at, Document.id)
            )
        )
        readable = vault.readable(db, actor, rows)
        if not readable:
            raise vault.not_found(db, actor, Action.DOCUMENT_READ, list_id)
        patient = db.get(Patient, readable[0].patient_id)
        assert patient is not None  # documents belong to a patient
        first = rows[0]
        return SubmissionSet(
            list_id, subject_of(patient), first.created_at, first.author_label, [d.id for d in readable]
        )


def retrieve(services: Services, actor: Actor, document_id: str) -> DocumentContent:
    """ITI-68: the document's bytes; ``DocumentNotFound`` when missing or not to be read."""
    with services.db.unit_of_work() as db:
        return vault.read_content(services, db, actor, document_id, preview=False, action="document.download")


@dataclass(frozen=True)
class Change:
    """One operation of a JSON Patch: new confidentiality labels, or the status ``entered-in-error``."""

    labels: tuple[str, ...] | None = None
    entered_in_error: bool = False


def change(services: Services, actor: Actor, document_id: str, changes: list[Change]) -> Reference:
    """``PATCH DocumentReference/<id>`` by its author, all changes or none: ``MhdError`` for unknown labels,
    ``DocumentNotFound`` / ``AccessDenied`` from the policy."""
    with services.db.unit_of_work() as db:
        document = None
        for wanted in changes:
            if wanted.labels is not None:
                try:
                    document = vault.set_labels(db, actor, document_id, wanted.labels)
                except rules.DocumentError as exc:
                    raise _issue("code-invalid", exc.message, "securityLabel") from exc
            if wanted.entered_in_error:
                document = vault.mark_entered_in_error(db, actor, document_id)
        if document is None:
            raise vault.DocumentNotFound()
        return _reference(services, db, document)
