"""The messaging's store (MSG-1, MSG-2): sealing, reading back and finding the conversations of one space.

Used by the use cases of ``conversations`` (the pages) and ``gateway`` (mail); each of those opens the unit of work,
asks the policy and records the history. Here: what they share — words sealed with the patient's key (associated
data naming the row, so rows cannot be swapped), attachment bodies written as sealed blobs *before* the commit (the
caller deletes them if the transaction fails, and the orphan sweep catches a crash in between), the frozen views,
the ``Resource`` the policy judges, and the quota.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from carnet.bootstrap import Services
from carnet.errors import CarnetError
from carnet.hall.actors import Actor, ActorKind
from carnet.hall.guard import AccessDenied, facts_for, guard
from carnet.hall.policy import Action, Resource, decide
from carnet.messaging.model import messages as rules
from carnet.messaging.tables import Attachment, Message, Thread
from carnet.storage import keyring
from carnet.storage.types import new_id, utcnow

NOT_FOUND = "Échange introuvable."


class ThreadNotFound(CarnetError):
    """A conversation that does not exist and one the actor may not read get the same answer."""

    def __init__(self) -> None:
        super().__init__(NOT_FOUND)

    def __reduce__(self) -> tuple[type[ThreadNotFound], tuple[()]]:
        return (type(self), ())


@dataclass(frozen=True)
class Correspondent:
    """The professional or establishment of a conversation."""

    kind: str  # professional | establishment
    id: str
    label: str
    email: str | None = None


@dataclass(frozen=True)
class AttachmentView:
    id: str
    name: str
    mime_type: str
    size: int
    document_id: str | None

    @property
    def size_text(self) -> str:
        return rules.megabytes(self.size) if self.size >= 100_000 else f"{max(1, round(self.size / 1000))} ko"


@dataclass(frozen=True)
class MessageView:
    id: str
    direction: str
    author_label: str
    via: str
    created_at: datetime
    text: str
    attachments: tuple[AttachmentView, ...] = ()

    @property
    def from_space(self) -> bool:
        return self.direction == rules.FROM_PATIENT


@dataclass(frozen=True)
class ThreadView:
    id: str
    patient_id: str
    subject: str
    counterpart: Correspondent
    status: str
    closed_at: datetime | None
    closed_by_label: str | None
    unread: int  # for whoever looks: the space's or the professional's count
    messages: int
    created_at: datetime
    last_message_at: datetime
    patient_name: str = ""
    excerpt: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def closed(self) -> bool:
        return self.status == rules.CLOSED


def resource_of(thread: Thread) -> Resource:
    return Resource("message_thread", thread.id, author_id=thread.counterpart_id, source=thread.status)


def correspondent_of(actor: Actor, email: str | None = None) -> Correspondent:
    """The professional or establishment ``actor`` writes as."""
    if actor.kind == ActorKind.PROFESSIONAL and actor.professional_id:
        return Correspondent("professional", actor.professional_id, actor.label[:200], email)
    if actor.kind == ActorKind.ESTABLISHMENT and actor.establishment_id:
        return Correspondent("establishment", actor.establishment_id, actor.label[:200], email)
    raise ValueError("seul un professionnel ou un établissement correspond avec un patient")


def is_counterpart(actor: Actor, thread: Thread) -> bool:
    return thread.counterpart_id in {actor.professional_id, actor.establishment_id} - {None}


def _aad(kind: str, row_id: str) -> bytes:
    return f"{kind}:{row_id}".encode()


def _seal(key: bytes, kind: str, row_id: str, data: dict[str, Any]) -> bytes:
    return keyring.seal(key, orjson.dumps(data), _aad(kind, row_id))


def _open(key: bytes, kind: str, row_id: str, sealed: bytes) -> dict[str, Any]:
    data = orjson.loads(keyring.open_sealed(key, sealed, _aad(kind, row_id)))
    return data if isinstance(data, dict) else {}


def blob_key(attachment_id: str) -> str:
    return f"msg-{attachment_id}"


def quota_used(db: Session, patient_id: str) -> int:
    return int(
        db.scalar(select(func.coalesce(func.sum(Attachment.size), 0)).where(Attachment.patient_id == patient_id)) or 0
    )


def new_thread(db: Session, key: bytes, patient_id: str, who: Correspondent, subject: str) -> Thread:
    thread_id = new_id()
    now = utcnow()
    thread = Thread(
        id=thread_id,
        patient_id=patient_id,
        counterpart_kind=who.kind,
        counterpart_id=who.id,
        counterpart_label=who.label,
        counterpart_email=who.email,
        sealed=_seal(key, "thread", thread_id, {"subject": subject}),
        status=rules.OPEN,
        space_unread=0,
        counterpart_unread=0,
        messages=0,
        created_at=now,
        last_message_at=now,
    )
    db.add(thread)
    return thread


@dataclass(frozen=True)
class SealedFile:
    """An attachment whose sealed body is already written (its row not yet added)."""

    id: str
    blob: str
    size: int
    name: str
    mime_type: str


def write_files(
    services: Services,
    db: Session,
    key: bytes,
    patient_id: str,
    clean: rules.CleanMessage,
    written: list[str],
    quota: int,
) -> tuple[SealedFile, ...]:
    """The quota checked (``QuotaExceeded``), then the attachments' sealed bodies written — before any row of the
    transaction, so that no database write lock waits on the disk's sync (SQLite has one writer at a time)."""
    if not clean.files:
        return ()
    rules.check_quota(quota_used(db, patient_id), clean.size, quota)
    sealed = []
    for file in clean.files:
        attachment_id = new_id()
        blob = blob_key(attachment_id)
        services.blobs.put(blob, keyring.seal(key, file.body, _aad("attachment-body", attachment_id)))
        written.append(blob)
        sealed.append(SealedFile(attachment_id, blob, len(file.body), file.filename, file.mime_type))
    return tuple(sealed)


def add_message(
    services: Services,
    db: Session,
    key: bytes,
    thread: Thread,
    actor: Actor,
    clean: rules.CleanMessage,
    *,
    via: str,
    mail_id: str,
    written: list[str],
    quota: int,
    files: tuple[SealedFile, ...] | None = None,
) -> Message:
    """Seal and add one message and its attachments (``files`` already written by ``write_files``, else written
    now; ``written`` collects the blob keys so the caller removes them if the transaction fails)."""
    if files is None:
        files = write_files(services, db, key, thread.patient_id, clean, written, quota)
    from_space = actor.kind == ActorKind.PATIENT
    message_id = new_id()
    now = utcnow()
    message = Message(
        id=message_id,
        thread_id=thread.id,
        patient_id=thread.patient_id,
        direction=rules.FROM_PATIENT if from_space else rules.TO_PATIENT,
        author_id=actor.patient_id if from_space else thread.counterpart_id,
        author_label=actor.label[:200],
        via=via,
        mail_id=mail_id[:250] or f"<{message_id}@{services.settings.messaging_domain}>",
        sealed=_seal(key, "message", message_id, {"text": clean.text}),
        attachments=len(files),
        created_at=now,
        notified_at=now if from_space else None,
    )
    db.add(message)
    if files:
        db.flush()  # the attachments reference the message
    for file in files:
        db.add(
            Attachment(
                id=file.id,
                message_id=message_id,
                patient_id=thread.patient_id,
                blob_key=file.blob,
                size=file.size,
                sealed=_seal(key, "attachment", file.id, {"name": file.name, "type": file.mime_type}),
                created_at=now,
            )
        )
    thread.messages += 1
    thread.last_message_at = now
    if from_space:  # who answers has read what came before
        thread.counterpart_unread += 1
        thread.space_unread = 0
    else:
        thread.space_unread += 1
        thread.counterpart_unread = 0
    return message


def thread_view(key: bytes, thread: Thread, viewer: Actor, patient_name: str = "", excerpt: str = "") -> ThreadView:
    counterpart = Correspondent(
        thread.counterpart_kind, thread.counterpart_id, thread.counterpart_label, thread.counterpart_email
    )
    unread = thread.counterpart_unread if is_counterpart(viewer, thread) else thread.space_unread
    return ThreadView(
        id=thread.id,
        patient_id=thread.patient_id,
        subject=str(_open(key, "thread", thread.id, thread.sealed).get("subject") or ""),
        counterpart=counterpart,
        status=thread.status,
        closed_at=thread.closed_at,
        closed_by_label=thread.closed_by_label,
        unread=unread,
        messages=thread.messages,
        created_at=thread.created_at,
        last_message_at=thread.last_message_at,
        patient_name=patient_name,
        excerpt=excerpt,
    )


def message_text(key: bytes, message: Message) -> str:
    return str(_open(key, "message", message.id, message.sealed).get("text") or "")


def attachment_view(key: bytes, attachment: Attachment) -> AttachmentView:
    data = _open(key, "attachment", attachment.id, attachment.sealed)
    return AttachmentView(
        attachment.id, str(data.get("name") or ""), str(data.get("type") or ""), attachment.size, attachment.document_id
    )


def attachment_body(services: Services, key: bytes, attachment: Attachment) -> bytes:
    return keyring.open_sealed(key, services.blobs.get(attachment.blob_key), _aad("attachment-body", attachment.id))


def attachment_b64(services: Services, key: bytes, attachment: Attachment) -> tuple[str, str, str]:
    view = attachment_view(key, attachment)
    return view.name, view.mime_type, base64.b64encode(attachment_body(services, key, attachment)).decode("ascii")


def message_views(db: Session, key: bytes, thread: Thread) -> list[MessageView]:
    rows: Sequence[Message] = db.scalars(
        select(Message).where(Message.thread_id == thread.id).order_by(Message.created_at, Message.id)
    ).all()
    files: dict[str, list[AttachmentView]] = {}
    if any(row.attachments for row in rows):
        for attachment in db.scalars(
            select(Attachment)
            .where(Attachment.message_id.in_([r.id for r in rows if r.attachments]))
            .order_by(Attachment.created_at, Attachment.id)
        ):
            files.setdefault(attachment.message_id, []).append(attachment_view(key, attachment))
    return [
        MessageView(
            row.id,
            row.direction,
            row.author_label,
            row.via,
            row.created_at,
            message_text(key, row),
            tuple(files.get(row.id, ())),
        )
        for row in rows
    ]


def well_formed(row_id: str) -> bool:
    return 0 < len(row_id) <= 36 and row_id.isascii() and row_id.replace("-", "").isalnum()


def load_thread(db: Session, actor: Actor, action: Action, thread_id: str, space: str | None = None) -> Thread:
    """One conversation, with the policy's yes for ``action`` on it; unknown and unreadable are the same
    ``ThreadNotFound``; readable but this act refused: ``AccessDenied`` with the reason."""
    thread = db.get(Thread, thread_id) if well_formed(thread_id) else None
    if thread is None or (space is not None and thread.patient_id != space):
        raise ThreadNotFound()
    try:
        guard(db, actor, thread.patient_id, action, resource_of(thread))
    except AccessDenied:
        if action != Action.MESSAGE_READ and _may_read(db, actor, thread):
            raise
        raise ThreadNotFound() from None
    return thread


def _may_read(db: Session, actor: Actor, thread: Thread) -> bool:
    facts = facts_for(db, actor, thread.patient_id)
    return decide(actor, thread.patient_id, Action.MESSAGE_READ, resource_of(thread), facts).allowed
