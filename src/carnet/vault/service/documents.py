"""The document vault (VLT-1..8): deposit, search, read, mask, delete, replace — all through the hall.

Bodies are sealed with the patient's data key (AAD = document id) before they reach the blob
store; the search index holds only keyed hashes of stemmed words. Blob writes happen before the
transaction commits: if it rolls back, ``deposit_many`` removes what it wrote; deletions of blobs
happen only after the commit.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Row, Select, String, and_, cast, delete, func, insert, or_, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session

from carnet.access.service import grants as access
from carnet.bootstrap import Services
from carnet.errors import CarnetError
from carnet.hall import audit
from carnet.hall.actors import Actor, ActorKind
from carnet.hall.guard import AccessDenied, facts_for, guard, refuse
from carnet.hall.policy import Action, Decision, Resource, Scope, author_keys, decide
from carnet.hall.vocabulary import DocumentStatus
from carnet.people.service import preferences
from carnet.storage import bulk, keyring
from carnet.storage.base import table_of
from carnet.storage.types import new_id, utcnow
from carnet.vault.model import documents as rules
from carnet.vault.model.mhd_search import DocumentSearch
from carnet.vault.model.search_terms import terms
from carnet.vault.service import content, criteria
from carnet.vault.tables import Document, DocumentTerm, DocumentTimer, Folder

NOT_FOUND = Decision(False, "Ce document n'existe pas ou ne vous est pas accessible.", "document_not_found")


class DocumentNotFound(AccessDenied, CarnetError):
    """No such document here — or one the actor may not read: both get this same answer (a 404)."""

    def __init__(self) -> None:
        super().__init__(NOT_FOUND)  # AccessDenied(decision), then CarnetError(its reason)

    def __reduce__(self) -> tuple[type[DocumentNotFound], tuple[()]]:
        return (type(self), ())


@dataclass(frozen=True)
class DocumentView:
    """One document's metadata as pages and FHIR answers show it (never its bytes)."""

    id: str
    patient_id: str
    status: str
    category: str
    type_system: str
    type_code: str
    type_display: str
    class_code: str | None
    format_code: str | None
    title: str
    mime_type: str
    size: int
    confidentiality: tuple[str, ...]
    masked: bool
    source: str
    author_id: str | None
    author_label: str
    folder_id: str | None
    replaces_id: str | None
    master_identifier: str | None
    service_date: datetime | None
    created_at: datetime
    document_date: datetime  # DocumentReference.date as sent (the deposit time when none was)
    class_system: str | None
    format_system: str | None
    author_rpps: str | None
    author_finess: str | None
    version: int  # FHIR meta.versionId: 1 at the deposit, one more at each change
    updated_at: datetime  # the deposit, or the last change


def view_of(document: Document | Row[Any]) -> DocumentView:
    """The view of a document: an ORM object, or a row of ``VIEW_COLUMNS`` (a search page reads plain rows)."""
    if isinstance(document, Row):
        values = list(document[: len(_VIEW_FIELDS)])
        values[_LABELS] = tuple(values[_LABELS] or ())
        return DocumentView(*values)
    return DocumentView(
        id=document.id,
        patient_id=document.patient_id,
        status=document.status,
        category=document.category,
        type_system=document.type_system,
        type_code=document.type_code,
        type_display=document.type_display,
        class_code=document.class_code,
        format_code=document.format_code,
        title=document.title,
        mime_type=document.mime_type,
        size=document.size,
        confidentiality=tuple(document.confidentiality or ()),
        masked=document.masked,
        source=document.source,
        author_id=document.author_id,
        author_label=document.author_label,
        folder_id=document.folder_id,
        replaces_id=document.replaces_id,
        master_identifier=document.master_identifier,
        service_date=document.service_date,
        created_at=document.created_at,
        document_date=document.document_date or document.created_at,
        class_system=document.class_system,
        format_system=document.format_system,
        author_rpps=document.author_rpps,
        author_finess=document.author_finess,
        version=document.version or 1,
        updated_at=document.updated_at or document.created_at,
    )


@dataclass(frozen=True)
class FolderView:
    id: str
    name: str


def folders_of(db: Session, patient_id: str) -> list[FolderView]:
    """The patient's folders, by name (for a caller the policy already let into the space)."""
    rows = db.scalars(select(Folder).where(Folder.patient_id == patient_id).order_by(Folder.name, Folder.id))
    return [FolderView(row.id, row.name) for row in rows]


def folder_of(db: Session, document: DocumentView) -> FolderView | None:
    folder = db.get(Folder, document.folder_id) if document.folder_id else None
    return FolderView(folder.id, folder.name) if folder is not None else None


@dataclass
class NewDocument:
    """What a deposit needs; validated by ``deposit``."""

    patient_id: str
    type_system: str
    type_code: str
    title: str
    mime_type: str
    body: bytes
    confidentiality: list[str] = field(default_factory=list)
    master_identifier: str | None = None
    class_code: str | None = None
    format_code: str | None = None
    service_date: datetime | None = None
    submission_set_id: str | None = None
    replaces_id: str | None = None
    folder_id: str | None = None
    filename: str | None = None
    id: str = field(default_factory=new_id)
    # What an MHD deposit also keeps (carnet.vault.model.mhd_metadata): in clear, the blind index forms, and the
    # DocumentReference as sent (sealed)
    document_date: datetime | None = None
    creation_date: datetime | None = None
    service_end: datetime | None = None
    class_system: str | None = None
    format_system: str | None = None
    index: tuple[str, ...] = ()
    sent: dict[str, Any] | None = None


@dataclass(frozen=True)
class SearchFilters:
    text: str = ""
    category: str | None = None
    class_or_category: str | None = None  # MHD ``category``: the XDS class code or Carnet's category
    type_code: str | None = None
    author: str | None = None
    author_id: str | None = None
    date_from: datetime | None = None
    date_to: datetime | None = None
    statuses: tuple[str, ...] = ("current",)
    folder_id: str | None = None
    limit: int = 50  # 0: the total only
    offset: int = 0
    fhir: DocumentSearch | None = None  # an ITI-67 search's parameters (carnet.vault.service.criteria)


# What ``view_of`` and ``sent_metadata`` read: a search page is selected as plain rows of these columns, in the order
# of DocumentView's fields, without building ORM objects (50 of them cost more than the query).
_VIEW_FIELDS = [f.name for f in fields(DocumentView)]
_LABELS = _VIEW_FIELDS.index("confidentiality")
_DEFAULTS: dict[str, ColumnElement[Any]] = {
    "document_date": func.coalesce(Document.document_date, Document.created_at),
    "version": func.coalesce(Document.version, 1),
    "updated_at": func.coalesce(Document.updated_at, Document.created_at),
}
VIEW_COLUMNS = (
    *(_DEFAULTS[name].label(name) if name in _DEFAULTS else Document.__table__.c[name] for name in _VIEW_FIELDS),
    Document.metadata_sealed,
)


@dataclass(frozen=True)
class Page:
    documents: list[Row[Any]]  # of VIEW_COLUMNS
    total: int


def resource_of(document: Document, now: datetime | None = None) -> Resource:
    return Resource(
        "document",
        document.id,
        author_id=document.author_id,
        source=document.source,
        labels=frozenset(document.confidentiality or ()),
        hidden_from_patient=is_hidden_from_patient(document, now or utcnow()),
        category=document.category,
    )


def is_hidden_from_patient(document: Document, now: datetime) -> bool:
    labels = document.confidentiality or []
    return "INVISIBLE_PATIENT" in labels and (document.reveal_at is None or document.reveal_at > now)


def _author_fields(actor: Actor) -> dict[str, object]:
    if actor.kind == ActorKind.PATIENT:
        return {"source": "patient", "author_kind": "patient", "author_id": actor.patient_id}
    author_id = actor.professional_id or actor.establishment_id
    return {
        "source": "professional" if actor.kind in {ActorKind.PROFESSIONAL, ActorKind.ESTABLISHMENT} else "service",
        "author_kind": str(actor.kind),
        "author_id": author_id,
        "author_rpps": actor.rpps,
        "author_finess": actor.finess,
    }


def blob_key_of(document_id: str, part: str = "b") -> str:
    return f"{document_id.replace('-', '')}{part}"


def metadata_aad(document_id: str) -> bytes:
    return b"metadata:" + document_id.encode()


def changed(document: Document) -> None:
    """A change of what the DocumentReference says (labels, status): a new version (FHIR ``meta.versionId``,
    ``ETag``) at this time (``meta.lastUpdated``)."""
    document.version = (document.version or 1) + 1
    document.updated_at = utcnow()


def sent_metadata(
    services: Services, db: Session, documents: Sequence[Document | Row[Any]]
) -> dict[str, dict[str, Any]]:
    """The DocumentReferences as sent over MHD of these documents (those deposited otherwise have none), opened
    with their patient's data key — one key look-up per patient."""
    keys: dict[str, bytes] = {}
    sent: dict[str, dict[str, Any]] = {}
    for document in documents:
        if document.metadata_sealed is None:
            continue
        if document.patient_id not in keys:
            keys[document.patient_id] = keyring.data_key(db, services.keyring, document.patient_id, create=False)
        clear = keyring.open_sealed(keys[document.patient_id], document.metadata_sealed, metadata_aad(document.id))
        sent[document.id] = orjson.loads(clear)
    return sent


def referenced_blobs(db: Session, keys: Sequence[str]) -> set[str]:
    """Which of these blob keys a document (its body or its preview) references."""
    bodies = db.scalars(select(Document.blob_key).where(Document.blob_key.in_(keys)))
    previews = db.scalars(select(Document.preview_blob_key).where(Document.preview_blob_key.in_(keys)))
    return {key for key in [*bodies, *previews] if key}


def index_terms(db: Session, data_key: bytes, document: Document, extra_text: str, forms: Sequence[str] = ()) -> None:
    """The blind index of a document: its words, and the coded metadata FHIR searches by token (``forms``)."""
    insert_terms(
        db,
        document,
        blind_terms(data_key, document.title, document.type_display, document.author_label, extra_text, forms),
    )


def blind_terms(
    data_key: bytes, title: str, type_display: str, author: str, text: str, forms: Sequence[str]
) -> set[str]:
    words = " ".join([title, type_display, author, text])
    return {keyring.blind_term(data_key, term) for term in [*terms(words), *forms]}


_TERMS = table_of(DocumentTerm)  # Core statements: no ORM bookkeeping on a deposit's hot path
_INSERT_DOCUMENT = insert(table_of(Document))
_INSERT_TIMERS = insert(table_of(DocumentTimer))
TELL, REVEAL = "tell", "reveal"  # DocumentTimer.kind
_DOCUMENT_COLUMNS = [(attribute.key, attribute.columns[0].key) for attribute in sa_inspect(Document).column_attrs]


def timers_of(document: Document) -> list[dict[str, Any]]:
    """What is still due for a document: its patient told (unless told already — or it is their own deposit), and its
    reveal while it is kept for a consultation."""
    due: list[tuple[str, datetime]] = []
    kept = "INVISIBLE_PATIENT" in (document.confidentiality or [])
    if document.notified_at is None:
        due.append((TELL, document.created_at + timedelta(days=rules.INVISIBLE_PATIENT_NOTICE_DAYS if kept else 0)))
    if kept and document.reveal_at is not None:
        due.append((REVEAL, document.reveal_at))
    return [
        {"document_id": document.id, "kind": kind, "patient_id": document.patient_id, "due_at": at} for kind, at in due
    ]


def reschedule(db: Session, document: Document) -> None:
    """The document's timers rewritten from what it now is (its labels changed)."""
    db.execute(delete(DocumentTimer).where(DocumentTimer.document_id == document.id))
    if rows := timers_of(document):
        db.execute(_INSERT_TIMERS, rows)


def insert_terms(db: Session, document: Document, blind: set[str]) -> None:
    common = {"document_id": document.id, "patient_id": document.patient_id}
    bulk.insert_spread(db.connection(), _TERMS, common, "term", sorted(blind))


def _replaced(db: Session, actor: Actor, new: NewDocument) -> Document | None:
    """The document this one replaces, if any: of the same patient, current, and the policy lets the actor update it.
    One the actor may not even read is answered like one that does not exist (issue #15-17: a 403 told a stranger
    that the id was there); one they read but may not replace gets the policy's refusal."""
    if not new.replaces_id:
        return None
    unknown = rules.DocumentError("Le document à remplacer n'existe pas pour ce patient.")
    replaced = db.get(Document, new.replaces_id)
    if replaced is None or replaced.patient_id != new.patient_id:
        raise unknown
    resource = resource_of(replaced)
    try:
        guard(db, actor, new.patient_id, Action.DOCUMENT_UPDATE, resource)
    except AccessDenied:
        if decide(actor, new.patient_id, Action.DOCUMENT_READ, resource, facts_for(db, actor, new.patient_id)):
            raise
        raise unknown from None
    if replaced.status != DocumentStatus.CURRENT:
        raise rules.DocumentError("Le document à remplacer n'est plus à jour (déjà remplacé ou annulé).")
    return replaced


def _check_folder(db: Session, actor: Actor, new: NewDocument) -> None:
    """A folder of this patient's, which the actor may file into (issue #15-16: the person's side only — a
    professional, refused a new folder, could file their deposit into one of hers)."""
    if new.folder_id:
        folder = db.get(Folder, new.folder_id)
        if folder is None or folder.patient_id != new.patient_id:
            raise rules.DocumentError("Ce dossier n'existe pas.")
        guard(db, actor, new.patient_id, Action.FOLDER_WRITE, Resource("folder", folder.id))


@dataclass(frozen=True)
class Prepared:
    """A document checked, sealed and written to the blob store, its rows built — the CPU and disk work of a deposit,
    done before the transaction (``deposit_many``) so that it holds the writer's turn for the statements only
    (issue #14: with 8 clients on SQLite, that turn is what deposits queue for)."""

    new: NewDocument
    doc_type: rules.DocumentType
    document: Document  # the row to insert, as a plain record (outside any session): callers only read it
    values: dict[str, Any]  # its columns' values
    blind: set[str]  # its index terms (keyed hashes)
    timers: list[dict[str, Any]]


def checked(actor: Actor, new: NewDocument) -> tuple[rules.DocumentType, str, list[str]]:
    """The document's type, its media type read from its bytes, its labels; ``DocumentError`` otherwise."""
    doc_type = rules.document_type(new.type_system, new.type_code)
    allowed = rules.MHD_TYPES if actor.kind != ActorKind.PATIENT else set(rules.UPLOAD_TYPES)
    mime = rules.check_body(new.body, new.mime_type, allowed)
    if new.filename is not None:
        rules.check_extension(new.filename, mime)
    return doc_type, mime, rules.check_confidentiality(new.confidentiality)


def write_bodies(
    services: Services,
    data_key: bytes,
    document_id: str,
    body: bytes,
    preview: content.Unwrapped | None,
    written: list[str],
) -> None:
    """Seal and write a document's body (and the preview of a CDA document); ``written`` collects the blob keys."""
    services.blobs.put(blob_key_of(document_id), keyring.seal(data_key, body, document_id.encode()))
    written.append(blob_key_of(document_id))
    if preview is not None:
        key = blob_key_of(document_id, "p")
        services.blobs.put(key, keyring.seal(data_key, preview.body, b"preview:" + document_id.encode()))
        written.append(key)


_BODY_WRITERS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="carnet-bodies")


def prepare(
    services: Services,
    data_key: bytes,
    actor: Actor,
    new: NewDocument,
    written: list[str],
    check: tuple[rules.DocumentType, str, list[str]],
    mask: bool,
) -> Prepared:
    """Check, seal and write the body (and the preview of a CDA document), compute the blind index and build the
    rows — ``mask``: the person's « masquer par défaut » (VLT-5); ``written`` collects the blob keys for clean-up."""
    doc_type, mime, labels = check  # ``checked``'s answer
    if mask:
        labels = rules.check_confidentiality([*labels, "MASQUE_PS"])
    preview = content.unwrap_cda(new.body) if mime in {"text/xml", "application/xml"} else None
    if preview is not None and preview.mime_type not in rules.PREVIEWABLE:
        preview = None
    # The bodies are written (and made durable: fsync, or the object store's answer) on a thread of their own while
    # this one extracts the text: the wait for the disk is hidden behind the CPU work (issue #14).
    writing = _BODY_WRITERS.submit(write_bodies, services, data_key, new.id, new.body, preview, written)
    try:
        title = " ".join(new.title.split())[:300] or doc_type.display
        text_source = preview or content.Unwrapped(new.body, mime)
        text = content.extract_text(text_source.body, text_source.mime_type)
    finally:
        writing.result()  # written (or its error raised) before anything else: no blob is left behind a failure
    document = _row(
        actor,
        new,
        doc_type,
        mime=mime,
        labels=labels,
        title=title,
        mac=hmac.new(data_key, new.body, hashlib.sha256).hexdigest(),
        metadata_sealed=keyring.seal(data_key, orjson.dumps(new.sent), metadata_aad(new.id))
        if new.sent is not None
        else None,
        preview_mime_type=preview.mime_type if preview is not None else None,
    )
    given = vars(document)  # the attributes set (a column left out gets its default, as with the ORM)
    return Prepared(
        new=new,
        doc_type=doc_type,
        document=document,
        values={column: given[attribute] for attribute, column in _DOCUMENT_COLUMNS if attribute in given},
        blind=blind_terms(data_key, title, doc_type.display, actor.label, text, new.index),
        timers=timers_of(document),
    )


def _row(
    actor: Actor,
    new: NewDocument,
    doc_type: rules.DocumentType,
    *,
    mime: str,
    labels: list[str],
    title: str,
    mac: str,
    metadata_sealed: bytes | None,
    preview_mime_type: str | None,
) -> Document:
    now = utcnow()
    return Document(
        id=new.id,
        patient_id=new.patient_id,
        master_identifier=new.master_identifier,
        status=DocumentStatus.CURRENT,
        category=doc_type.category,
        type_system=doc_type.system,
        type_code=doc_type.code,
        type_display=doc_type.display,
        class_system=new.class_system,
        class_code=new.class_code,
        format_system=new.format_system,
        format_code=new.format_code,
        title=title,
        mime_type=mime,
        size=len(new.body),
        body_mac=mac,
        blob_key=blob_key_of(new.id),
        preview_blob_key=blob_key_of(new.id, "p") if preview_mime_type else None,
        preview_mime_type=preview_mime_type,
        metadata_sealed=metadata_sealed,
        confidentiality=labels,
        masked="MASQUE_PS" in labels,
        author_label=actor.label,
        client_id=actor.id if actor.kind in {ActorKind.PROFESSIONAL, ActorKind.ESTABLISHMENT} else None,
        folder_id=new.folder_id,
        replaces_id=new.replaces_id,
        submission_set_id=new.submission_set_id,
        service_date=new.service_date,
        service_end=new.service_end,
        document_date=new.document_date or now,
        creation_date=new.creation_date,
        version=1,
        created_at=now,
        notified_at=now if actor.kind == ActorKind.PATIENT else None,
        reveal_at=now + timedelta(days=rules.INVISIBLE_PATIENT_REVEAL_DAYS) if "INVISIBLE_PATIENT" in labels else None,
        **_author_fields(actor),
    )


def write_rows(db: Session, actor: Actor, ready: Prepared) -> Document:
    """The rows of a prepared document, in the caller's transaction: the policy's decision, the version it replaces,
    its folder, the document, its index terms and its history line."""
    new, document = ready.new, ready.document
    guard(db, actor, new.patient_id, Action.DOCUMENT_DEPOSIT, _new(new))
    replaced = _replaced(db, actor, new)
    _check_folder(db, actor, new)
    # The row and its terms by Core statements (issue #14: the ORM's unit of work cost a deposit about 0.3 ms).
    db.execute(_INSERT_DOCUMENT, ready.values)
    insert_terms(db, document, ready.blind)
    if ready.timers:
        db.execute(_INSERT_TIMERS, ready.timers)
    if replaced is not None:
        replaced.status = DocumentStatus.SUPERSEDED
        changed(replaced)
    audit.record(
        db,
        actor,
        "document.replace" if replaced else "document.deposit",
        patient_id=new.patient_id,
        resource_type="document",
        resource_id=document.id,
        details={
            "type": ready.doc_type.code,
            "categorie": ready.doc_type.category,
            **({"remplace": replaced.id} if replaced else {}),
        },
    )
    return document


def deposit(services: Services, db: Session, actor: Actor, new: NewDocument, written: list[str]) -> Document:
    """Check, seal, store and index one document in the caller's transaction; ``written`` collects blob keys for
    clean-up."""
    check = checked(actor, new)
    guard(db, actor, new.patient_id, Action.DOCUMENT_DEPOSIT, _new(new))
    data_key = keyring.data_key(db, services.keyring, new.patient_id)
    mask = preferences.masks_new_documents(db, new.patient_id)
    return write_rows(db, actor, prepare(services, data_key, actor, new, written, check, mask))


def _new(new: NewDocument) -> Resource:
    return Resource("document", new.id, source="new")


@dataclass(frozen=True)
class FirstWord:
    """The policy's yes to a deposit, read before its transaction, with each patient's data key and « masquer par
    défaut »."""

    keys: dict[str, bytes]
    masks: dict[str, bool]


def first_word(services: Services, db: Session, actor: Actor, batch: Sequence[NewDocument]) -> FirstWord | None:
    """The policy's first word on a deposit and the patients' keys, read in ``db`` (a read: on SQLite it does not take
    the writer's turn); None when the policy refuses or a key is still to create — the deposit's own transactions
    then record the refusal or create the key."""
    patients = {new.patient_id for new in batch}
    facts = {pid: facts_for(db, actor, pid) for pid in patients}
    if not all(
        decide(actor, new.patient_id, Action.DOCUMENT_DEPOSIT, _new(new), facts[new.patient_id]).allowed
        for new in batch
    ):
        return None
    try:
        keys = {pid: keyring.data_key(db, services.keyring, pid, create=False) for pid in patients}
    except keyring.DataKeyMissing:
        return None
    return FirstWord(keys, {pid: preferences.masks_new_documents(db, pid) for pid in patients})


def _deposit_keys(services: Services, actor: Actor, batch: Sequence[NewDocument]) -> FirstWord:
    """Usually a read (``first_word``). Otherwise the write transaction: the refusal recorded in the history
    (``guard``), the missing keys created."""
    with services.db.reading() as db:
        known = first_word(services, db, actor, batch)
    if known is not None:
        return known
    patients = {new.patient_id for new in batch}
    with services.db.unit_of_work() as db:
        for new in batch:
            guard(db, actor, new.patient_id, Action.DOCUMENT_DEPOSIT, _new(new))
        keys = {pid: keyring.data_key(db, services.keyring, pid) for pid in patients}
        return FirstWord(keys, {pid: preferences.masks_new_documents(db, pid) for pid in patients})


def deposit_many(
    services: Services, actor: Actor, batch: Sequence[NewDocument], known: FirstWord | None = None
) -> list[Document]:
    """All or nothing; blobs of a failed batch are removed. Three steps, so that the transaction that writes the
    rows holds the database (SQLite has one writer) for the rows only: the checks and the policy's first word with
    the patients' keys (a short read, or ``known``, read by the caller in its own), then — outside any transaction,
    in parallel across server processes — sealing, writing the bodies and computing the blind index, then the rows,
    the policy asked again, in one transaction."""
    written: list[str] = []
    try:
        checks = [checked(actor, new) for new in batch]
        first = known or _deposit_keys(services, actor, batch)
        prepared = [
            prepare(services, first.keys[new.patient_id], actor, new, written, check, first.masks[new.patient_id])
            for new, check in zip(batch, checks, strict=True)
        ]
        with services.db.unit_of_work() as db:
            stored = [write_rows(db, actor, ready) for ready in prepared]
            db.flush()
        return stored
    except BaseException:
        for key in written:
            services.blobs.delete(key)
        raise


def _text_filter(data_key: bytes, patient_id: str, text: str) -> Select[Any] | None:
    wanted = {keyring.blind_term(data_key, t) for t in terms(text)}
    if not wanted:
        return None
    return (
        select(DocumentTerm.document_id)
        .where(DocumentTerm.patient_id == patient_id, DocumentTerm.term.in_(wanted))
        .group_by(DocumentTerm.document_id)
        .having(func.count() == len(wanted))
    )


def _key_or_none(services: Services, db: Session, patient_id: str) -> bytes | None:
    try:
        return keyring.data_key(db, services.keyring, patient_id, create=False)
    except keyring.DataKeyMissing:  # nothing was ever stored for this patient
        return None


def _scope(db: Session, actor: Actor, patient_id: str, decision: Decision) -> list[Any]:
    """The conditions the policy's decision puts on a search of this space (its scope, applied as is)."""
    where: list[Any] = []
    authored = Document.author_id.in_(author_keys(actor) or {"-"})
    if decision.scope == Scope.AUTHORED:
        where.append(authored)
    elif decision.scope == Scope.PROFESSIONAL:
        seen = []
        if decision.categories is not None:
            seen.append(Document.category.in_(decision.categories or {"-"}))
        if not decision.include_masked:
            seen.append(Document.masked.is_(False))
        if seen:
            where.append(or_(and_(*seen), authored))  # most rows pass the first test: the second is then skipped
    elif decision.scope in {Scope.PATIENT, Scope.REPRESENTATIVE}:
        now = utcnow()
        where.append((Document.reveal_at.is_(None)) | (Document.reveal_at <= now))
        if decision.scope == Scope.REPRESENTATIVE:
            labelled = cast(Document.confidentiality, String).like("%INVISIBLE_REPRESENTANTS_LEGAUX%")
            hidden = list(db.scalars(select(Document.id).where(Document.patient_id == patient_id, labelled)))
            if hidden:
                where.append(Document.id.not_in(hidden))
    elif decision.scope != Scope.ALL:
        raise AccessDenied(decision)
    return where


@dataclass(frozen=True)
class Counts:
    """How many current documents the actor sees, in all, per category and per folder (VLT-1)."""

    total: int
    categories: dict[str, int]
    folders: dict[str, int]


def counts(db: Session, actor: Actor, patient_id: str) -> Counts:
    """One grouped query over what the actor's search would list (same decision, same scope)."""
    decision = guard(db, actor, patient_id, Action.DOCUMENT_SEARCH, Resource("documents"))
    where = [
        Document.patient_id == patient_id,
        Document.status == DocumentStatus.CURRENT,
        *_scope(db, actor, patient_id, decision),
    ]
    rows = db.execute(
        select(Document.category, Document.folder_id, func.count())
        .where(*where)
        .group_by(Document.category, Document.folder_id)
    ).all()
    categories: dict[str, int] = {}
    folders: dict[str, int] = {}
    for category, folder_id, count in rows:
        categories[category] = categories.get(category, 0) + count
        if folder_id:
            folders[folder_id] = folders.get(folder_id, 0) + count
    return Counts(sum(categories.values()), categories, folders)


def search(services: Services, db: Session, actor: Actor, patient_id: str, filters: SearchFilters) -> Page:
    """Documents of a patient the actor may see, newest first (VLT-4); the policy sets the scope."""
    decision = guard(db, actor, patient_id, Action.DOCUMENT_SEARCH, Resource("documents"))
    where = [
        Document.patient_id == patient_id,
        Document.status.in_(filters.statuses),
        *_scope(db, actor, patient_id, decision),
    ]
    if filters.category:
        where.append(Document.category == filters.category)
    if filters.class_or_category:
        where.append(
            (Document.class_code == filters.class_or_category) | (Document.category == filters.class_or_category)
        )
    if filters.type_code:
        where.append(Document.type_code == filters.type_code)
    if filters.author:
        where.append(Document.author_label.ilike(f"%{filters.author}%"))
    if filters.author_id:
        where.append((Document.author_rpps == filters.author_id) | (Document.author_finess == filters.author_id))
    if filters.folder_id:
        where.append(Document.folder_id == filters.folder_id)
    if filters.date_from:
        where.append(Document.created_at >= filters.date_from)
    if filters.date_to:
        where.append(Document.created_at < filters.date_to)
    if filters.fhir is not None:
        where += criteria.conditions(lambda: _key_or_none(services, db, patient_id), patient_id, filters.fhir)
    if filters.text.strip():
        try:
            data_key = keyring.data_key(db, services.keyring, patient_id, create=False)
        except keyring.DataKeyMissing:  # nothing was ever stored for this patient
            return Page([], 0)
        matching = _text_filter(data_key, patient_id, filters.text)
        if matching is not None:
            where.append(Document.id.in_(matching))
    # Plain Core on the session's connection (no ORM rows to build), after the flush Session.execute would do; count(*),
    # not count(id): SQLite then counts the covering index's entries without testing each id.
    db.flush()
    connection = db.connection()
    total = connection.execute(select(func.count()).select_from(Document).where(*where)).scalar() or 0
    rows = (
        connection.execute(
            select(*VIEW_COLUMNS)
            .where(*where)
            .order_by(Document.created_at.desc(), Document.id.desc())
            .limit(filters.limit)
            .offset(filters.offset)
        ).all()
        if filters.limit and filters.offset < total
        else []
    )
    if not audit.seen_today(db, actor, "document.search", patient_id):
        audit.record(db, actor, "document.search", patient_id=patient_id, resource_type="documents")
    access.note_consultation(db, actor, patient_id, decision)
    return Page(list(rows), int(total))


@dataclass(frozen=True)
class Listing:
    """One page of a search, the page past the end brought back to the last one."""

    documents: list[DocumentView]
    total: int
    page: int  # 1-based
    pages: int


def search_page(services: Services, db: Session, actor: Actor, patient_id: str, filters: SearchFilters) -> Listing:
    """``search`` for a paged list (``filters.limit`` a page): past the end (documents were deleted), the last page."""
    found = search(services, db, actor, patient_id, filters)
    pages = max(1, math.ceil(found.total / filters.limit))
    page = filters.offset // filters.limit + 1
    if page > pages:
        page = pages
        found = search(services, db, actor, patient_id, replace(filters, offset=(pages - 1) * filters.limit))
    return Listing([view_of(d) for d in found.documents], found.total, page, pages)


def readable(db: Session, actor: Actor, rows: Sequence[Document]) -> list[Document]:
    """Those of ``rows`` (one patient's) the policy lets ``actor`` read, as each one's own read would decide; nothing
    is recorded."""
    if not rows:
        return []
    facts = facts_for(db, actor, rows[0].patient_id)
    now = utcnow()
    return [
        row for row in rows if decide(actor, row.patient_id, Action.DOCUMENT_READ, resource_of(row, now), facts).allowed
    ]


def not_found(db: Session, actor: Actor, action: Action, document_id: str) -> DocumentNotFound:
    refuse(db, actor, str(action), None, NOT_FOUND.reason, Resource("document"), {"demande": document_id[:64]})
    return DocumentNotFound()


def _load(
    db: Session, actor: Actor, document_id: str, action: Action, space: str | None = None
) -> tuple[Document, Decision]:
    """The document, if the policy allows ``action`` on it — in the space ``space`` when the address names one.

    A document that is not there and one the actor may not read get the same ``DocumentNotFound`` (the
    history keeps the real reason of a refusal); a document the actor reads but may not change this way
    gets the policy's refusal (``AccessDenied``, with its reason)."""
    document = db.get(Document, document_id)
    if document is None or (space is not None and document.patient_id != space):
        raise not_found(db, actor, action, document_id)
    resource = resource_of(document)
    try:
        decision = guard(db, actor, document.patient_id, action, resource)
    except AccessDenied:
        facts = facts_for(db, actor, document.patient_id)
        if action != Action.DOCUMENT_READ and decide(actor, document.patient_id, Action.DOCUMENT_READ, resource, facts):
            raise
        raise DocumentNotFound() from None
    return document, decision


def read(
    services: Services,
    db: Session,
    actor: Actor,
    document_id: str,
    preview: bool = False,
    action: str = "document.read",
    space: str | None = None,
    with_body: bool = True,
) -> tuple[Document, bytes, str]:
    """The document and its clear bytes (the embedded PDF when ``preview`` and there is one); without
    ``with_body``, only what it is (its metadata are read: ``action`` is recorded all the same)."""
    document, decision = _load(db, actor, document_id, Action.DOCUMENT_READ, space)
    shown = preview and bool(document.preview_blob_key)
    mime = (document.preview_mime_type or "application/octet-stream") if shown else document.mime_type
    body = b""
    if with_body:
        data_key = keyring.data_key(db, services.keyring, document.patient_id, create=False)
        if shown:
            sealed = services.blobs.get(document.preview_blob_key or "")
            body = keyring.open_sealed(data_key, sealed, b"preview:" + document.id.encode())
        else:
            body = keyring.open_sealed(data_key, services.blobs.get(document.blob_key), document.id.encode())
    audit.record(db, actor, action, patient_id=document.patient_id, resource_type="document", resource_id=document.id)
    access.note_consultation(db, actor, document.patient_id, decision)
    return document, body, mime


@dataclass(frozen=True)
class DocumentContent:
    """A document's bytes, as read (the embedded PDF of a CDA document for a preview)."""

    id: str
    title: str
    mime_type: str
    body: bytes


def read_content(
    services: Services,
    db: Session,
    actor: Actor,
    document_id: str,
    *,
    preview: bool,
    action: str,
    space: str | None = None,
) -> DocumentContent:
    """``read``, as plain data."""
    document, body, mime = read(services, db, actor, document_id, preview=preview, action=action, space=space)
    return DocumentContent(document.id, document.title, mime, body)


def set_masked(db: Session, actor: Actor, document_id: str, masked: bool, space: str | None = None) -> Document:
    """VLT-5: the patient masks a document from professionals (or shows it again)."""
    document, _ = _load(db, actor, document_id, Action.DOCUMENT_MASK, space)
    document.masked = masked
    labels = set(document.confidentiality or [])
    labels = labels | {"MASQUE_PS"} if masked else labels - {"MASQUE_PS"}
    document.confidentiality = rules.check_confidentiality(sorted(labels))
    changed(document)
    audit.record(
        db,
        actor,
        "document.mask" if masked else "document.unmask",
        patient_id=document.patient_id,
        resource_type="document",
        resource_id=document.id,
    )
    return document


def set_labels(db: Session, actor: Actor, document_id: str, labels: Iterable[str]) -> Document:
    """The author changes the confidentiality labels (FHIR PATCH securityLabel)."""
    document, _ = _load(db, actor, document_id, Action.DOCUMENT_UPDATE)
    checked = rules.check_confidentiality(list(labels))
    if "INVISIBLE_PATIENT" in checked and "INVISIBLE_PATIENT" not in (document.confidentiality or []):
        document.reveal_at = utcnow() + timedelta(days=rules.INVISIBLE_PATIENT_REVEAL_DAYS)
    document.confidentiality = checked
    document.masked = "MASQUE_PS" in checked
    changed(document)
    reschedule(db, document)
    audit.record(
        db,
        actor,
        "document.labels",
        patient_id=document.patient_id,
        resource_type="document",
        resource_id=document.id,
        details={"labels": checked},
    )
    return document


def mark_entered_in_error(db: Session, actor: Actor, document_id: str) -> Document:
    """VLT-7: an author withdraws their document (it stays, marked entered-in-error)."""
    document, _ = _load(db, actor, document_id, Action.DOCUMENT_UPDATE)
    document.status = DocumentStatus.ENTERED_IN_ERROR
    changed(document)
    audit.record(
        db,
        actor,
        "document.entered_in_error",
        patient_id=document.patient_id,
        resource_type="document",
        resource_id=document.id,
    )
    return document


def delete_documents(services: Services, actor: Actor, document_ids: Sequence[str], space: str | None = None) -> int:
    """VLT-7: the patient deletes their own uploads, at most 10 at once; blobs go after the commit."""
    if not document_ids:
        raise rules.DocumentError("Choisissez au moins un document à supprimer.")
    if len(document_ids) > rules.MAX_DELETE_BATCH:
        raise rules.DocumentError(f"Vous pouvez supprimer au plus {rules.MAX_DELETE_BATCH} documents à la fois.")
    keys: list[str] = []
    with services.db.unit_of_work() as db:
        # Every document is checked before any is deleted: one refusal deletes nothing.
        documents = [
            _load(db, actor, document_id, Action.DOCUMENT_DELETE, space)[0]
            for document_id in dict.fromkeys(document_ids)
        ]
        for document in documents:
            keys += [k for k in (document.blob_key, document.preview_blob_key) if k]
            db.execute(
                delete(DocumentTerm).where(
                    DocumentTerm.patient_id == document.patient_id, DocumentTerm.document_id == document.id
                )
            )
            audit.record(
                db,
                actor,
                "document.delete",
                patient_id=document.patient_id,
                resource_type="document",
                resource_id=document.id,
            )
            db.delete(document)
    for key in keys:
        services.blobs.delete(key)
    return len(keys)


def due_documents(db: Session, kind: str, now: datetime, limit: int) -> list[Document]:
    """The documents whose timer of this kind has fallen due, the longest due first; their timers taken out of the
    queue (a job that keeps one for later, ``reschedule``s it)."""
    due = list(
        db.scalars(
            select(Document)
            .join(
                DocumentTimer,
                and_(DocumentTimer.document_id == Document.id, DocumentTimer.patient_id == Document.patient_id),
            )
            .where(DocumentTimer.kind == kind, DocumentTimer.due_at <= now)
            .order_by(DocumentTimer.due_at)
            .limit(limit)
        )
    )
    if due:
        db.execute(
            delete(DocumentTimer).where(
                DocumentTimer.kind == kind, DocumentTimer.document_id.in_([document.id for document in due])
            )
        )
    return due


def reveal_due(db: Session, now: datetime | None = None, limit: int = 5000) -> int:
    """VLT-6 job: INVISIBLE_PATIENT documents become visible one month after deposit."""
    now = now or utcnow()
    count = 0
    for document in due_documents(db, REVEAL, now, limit):
        if "INVISIBLE_PATIENT" in (document.confidentiality or []):
            document.confidentiality = [c for c in document.confidentiality if c != "INVISIBLE_PATIENT"]
            changed(document)
            audit.record(
                db,
                Actor.system(),
                "document.revealed",
                patient_id=document.patient_id,
                resource_type="document",
                resource_id=document.id,
            )
            count += 1
        document.reveal_at = None
    return count
