"""The secure messaging in the archive of a space (ENR-7, MSG-1, MSG-2): every message of every conversation the
asker may read, as a FHIR R4 ``Communication`` (``carnet.messaging.model.fhir_map``: who wrote, who reads, when,
the text, the attachments; a conversation grouped by its id in ``identifier`` and by ``inResponseTo``), and the
attached files beside the Bundle (``messages/<attachment id>-<name>``), byte-exact.

What may be read is decided as in the messaging's pages: ``MESSAGE_READ`` on the space's messaging (the person, or
a legal representative of a minor; a caregiver never reads it), then each conversation put to the policy as its
page would. Conversations and their messages are read 500 at a time, oldest first; an attachment's bytes are
opened only when the archive writes its file (``store.attachment_body``), and its ``hash`` (base64 SHA-1, as FHIR
R4 says) written into the message's payload then — the archive writes an item's files before its resource.
Nothing is marked read, nothing is recorded per message.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from carnet.bootstrap import Services
from carnet.export.model.exported import Exported, ExportedFile
from carnet.export.model.restoring import Fact, facts_extension
from carnet.hall.actors import Actor
from carnet.hall.guard import facts_for
from carnet.hall.policy import Action, Resource, decide
from carnet.hall.vocabulary import PARIS
from carnet.messaging.model import fhir_map
from carnet.messaging.service import store
from carnet.messaging.service.store import AttachmentView, MessageView
from carnet.messaging.tables import Attachment, Message, Thread
from carnet.people.model.fhir_map import patient_element
from carnet.people.service.export import enter_export
from carnet.people.tables import Patient
from carnet.storage import keyring

SECTION = "Messagerie"
BATCH = 500


@dataclass(frozen=True)
class Conversation:
    """What each message of a conversation says of it (``fhir_map.ConversationFields``)."""

    id: str
    subject: str
    counterpart_kind: str
    counterpart_label: str
    facts: dict[str, Fact]  # what the thread's row keeps, for another Carnet to restore it


def _reader(
    services: Services, key: bytes, attachment_id: str, blob_key: str, element: dict[str, Any]
) -> Callable[[], bytes]:
    """The attached file's bytes, opened when the archive asks for them; their hash then goes into the payload."""

    def read() -> bytes:
        body = store.attachment_body(services, key, Attachment(id=attachment_id, blob_key=blob_key))
        element["hash"] = base64.b64encode(hashlib.sha1(body, usedforsecurity=False).digest()).decode("ascii")
        return body

    return read


def summary(conversation: Conversation, message: MessageView) -> str:
    """« Échange « Résultats » avec Dr X — message de Dr X le 12/03/2026 à 09:30 (1 pièce jointe) »."""
    when = message.created_at.astimezone(PARIS)
    line = (
        f"Échange « {conversation.subject} » avec {conversation.counterpart_label} — message de "
        f"{message.author_label} le {when:%d/%m/%Y} à {when:%H:%M}"
    )
    count = len(message.attachments)
    return line + (f" ({count} pièce{'s' if count > 1 else ''} jointe{'s' if count > 1 else ''})" if count else "")


def _exported(
    services: Services,
    key: bytes,
    conversation: Conversation,
    message: MessageView,
    blobs: dict[str, str],
    patient: dict[str, Any],
    previous_id: str | None,
    by_the_person: bool,
    facts: dict[str, Fact],
) -> Exported:
    resource = fhir_map.communication(
        message, conversation, patient, message.attachments, previous_id, by_the_person=by_the_person
    )
    resource.setdefault("extension", []).append(facts_extension({**conversation.facts, **facts}))
    elements = {
        p["contentAttachment"]["url"]: p["contentAttachment"]
        for p in resource.get("payload", [])
        if "contentAttachment" in p
    }
    files = []
    for attachment in message.attachments:
        path = fhir_map.attachment_path(attachment)
        read = _reader(services, key, attachment.id, blobs[attachment.id], elements[path])
        files.append(ExportedFile(path, attachment.mime_type, read, attachment.name))
    return Exported(resource, tuple(files), summary(conversation, message), SECTION)


def _attachments(
    db: Session, key: bytes, rows: list[Message]
) -> tuple[dict[str, list[AttachmentView]], dict[str, str]]:
    """The attachments of these messages (opened: name and type), and each one's blob."""
    files: dict[str, list[AttachmentView]] = {}
    blobs: dict[str, str] = {}
    with_files = [row.id for row in rows if row.attachments]
    if with_files:
        query = (
            select(Attachment)
            .where(Attachment.message_id.in_(with_files))
            .order_by(Attachment.created_at, Attachment.id)
        )
        for attachment in db.scalars(query):
            files.setdefault(attachment.message_id, []).append(store.attachment_view(key, attachment))
            blobs[attachment.id] = attachment.blob_key
    return files, blobs


def _messages(
    services: Services, key: bytes, conversation: Conversation, patient: dict[str, Any], patient_id: str
) -> Iterator[Exported]:
    """The conversation's messages, 500 at a time, each answering the one before."""
    previous: str | None = None
    after: tuple[datetime, str] | None = None
    while True:
        with services.db.unit_of_work() as db:
            query = select(Message).where(Message.thread_id == conversation.id)
            if after is not None:
                at, last = after
                query = query.where(or_(Message.created_at > at, and_(Message.created_at == at, Message.id > last)))
            rows = list(db.scalars(query.order_by(Message.created_at, Message.id).limit(BATCH)))
            files, blobs = _attachments(db, key, rows)
            items = []
            for row in rows:
                text = store.message_text(key, row)
                view = MessageView(
                    row.id, row.direction, row.author_label, row.via, row.created_at, text, tuple(files.get(row.id, ()))
                )
                by_the_person = row.author_id == patient_id
                facts: dict[str, Fact] = {
                    "direction": row.direction,
                    "author_id": row.author_id,
                    "author_label": row.author_label,
                    "via": row.via,
                    "mail_id": row.mail_id,
                    "created_at": row.created_at,
                }
                items.append(
                    _exported(services, key, conversation, view, blobs, patient, previous, by_the_person, facts)
                )
                previous = row.id
        yield from items
        if len(rows) < BATCH:
            return
        after = (rows[-1].created_at, rows[-1].id)


def _conversation(row: Thread, subject: str) -> Conversation:
    facts: dict[str, Fact] = {
        "thread": row.id,
        "subject": subject,
        "counterpart_kind": row.counterpart_kind,
        "counterpart_id": row.counterpart_id,
        "counterpart_label": row.counterpart_label,
        "counterpart_email": row.counterpart_email,
        "status": row.status,
        "closed_at": row.closed_at,
        "closed_by_label": row.closed_by_label,
        "thread_created_at": row.created_at,
    }
    return Conversation(row.id, subject, row.counterpart_kind, row.counterpart_label, facts)


def _conversations(
    services: Services, actor: Actor, patient_id: str, key: bytes, after: tuple[datetime, str] | None
) -> tuple[list[Conversation], tuple[datetime, str] | None]:
    """The next conversations the actor may read (oldest first), and where the following batch starts."""
    with services.db.unit_of_work() as db:
        facts = facts_for(db, actor, patient_id)
        query = select(Thread).where(Thread.patient_id == patient_id)
        if after is not None:
            at, last = after
            query = query.where(or_(Thread.created_at > at, and_(Thread.created_at == at, Thread.id > last)))
        rows = list(db.scalars(query.order_by(Thread.created_at, Thread.id).limit(BATCH)))
        found = [
            _conversation(row, store.thread_view(key, row, actor).subject)
            for row in rows
            if decide(actor, patient_id, Action.MESSAGE_READ, store.resource_of(row), facts).allowed
        ]
    return found, ((rows[-1].created_at, rows[-1].id) if len(rows) == BATCH else None)


def export_resources(services: Services, actor: Actor, patient_id: str) -> Iterator[Exported]:
    """Every message of every conversation ``actor`` may read, conversation by conversation, oldest first."""
    with services.db.unit_of_work() as db:
        enter_export(db, actor, patient_id, Action.MESSAGE_READ, Resource("messagerie"))
        row = db.get(Patient, patient_id)
        assert row is not None  # the policy refuses unknown spaces
        patient = patient_element(row.id, row.ins, row.ins_oid)
        try:
            key = keyring.data_key(db, services.keyring, patient_id, create=False)
        except keyring.DataKeyMissing:  # nothing was ever sealed for this space: no conversation
            return
    after: tuple[datetime, str] | None = None
    while True:
        conversations, after = _conversations(services, actor, patient_id, key, after)
        for conversation in conversations:
            yield from _messages(services, key, conversation, patient, patient_id)
        if after is None:
            return
