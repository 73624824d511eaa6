"""The messaging's use cases for the pages (MSG-1, MSG-2): the conversations of a space and of a professional,
one conversation, writing, answering, writing again, closing, deleting, an attachment's bytes, and « Ajouter à mes
documents ».

Each use case opens its unit of work, asks the policy (through ``store.load_thread`` or ``guard``), acts and records
the history in the same transaction, and returns frozen views. What was typed that cannot be kept comes back as
``MessageError`` (French); nothing is written — attachment blobs written before a failed commit are deleted. An
answer of the space to a professional who has a secure-mail address also leaves by mail (``outbound``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete as sql_delete
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from carnet.bootstrap import Services
from carnet.hall import audit
from carnet.hall.actors import Actor, ActorKind
from carnet.hall.guard import facts_for, guard
from carnet.hall.policy import Action, Resource, author_keys, decide
from carnet.messaging.model import messages as rules
from carnet.messaging.service import outbound, store
from carnet.messaging.service.store import AttachmentView, MessageView, ThreadNotFound, ThreadView
from carnet.messaging.tables import Attachment, Message, Thread
from carnet.people.service.lookup import PatientView, patient_view
from carnet.people.tables import Establishment, Patient, Professional
from carnet.storage import keyring
from carnet.storage.types import utcnow
from carnet.vault.model import documents as vault_rules
from carnet.vault.service import documents as vault

PER_PAGE = 20


def quota_bytes(services: Services) -> int:
    return services.settings.messaging_quota_mb * 1024 * 1024


@contextmanager
def writing(services: Services) -> Iterator[tuple[Session, list[str]]]:
    """A unit of work that writes attachment blobs: removed again if the transaction does not commit."""
    written: list[str] = []
    try:
        with services.db.unit_of_work() as db:
            yield db, written
    except BaseException:
        for key in written:
            services.blobs.delete(key)
        raise


def _patient(db: Session, patient_id: str) -> PatientView:
    patient = db.get(Patient, patient_id)
    assert patient is not None  # the policy refused unknown spaces first
    return patient_view(patient)


def record_write(db: Session, actor: Actor, thread: Thread, op: str, done: str, pieces: int = 0) -> None:
    """The history of a message written: the operation and its words, how many attachments — nothing written."""
    details: dict[str, Any] = {"op": op, "fait": done}
    if pieces:
        details["pieces"] = pieces
    _record(db, actor, Action.MESSAGE_WRITE, thread, **details)


def _record(db: Session, actor: Actor, action: Action, thread: Thread, **details: Any) -> None:
    audit.record(
        db,
        actor,
        str(action),
        patient_id=thread.patient_id,
        resource_type="message_thread",
        resource_id=thread.id,
        details=details,
    )


def _record_read(db: Session, actor: Actor, patient_id: str) -> None:
    """Reading the messaging is one line a day per person (issue #15-10), whichever conversation was opened."""
    if not audit.seen_today(db, actor, str(Action.MESSAGE_READ), patient_id):
        audit.record(db, actor, str(Action.MESSAGE_READ), patient_id=patient_id, resource_type="messagerie")


# ------------------------------------------------------------------ the space's conversations


@dataclass(frozen=True)
class Inbox:
    patient: PatientView
    threads: list[ThreadView]
    total: int
    page: int
    unread: int
    query: str
    quota_used: int
    quota: int
    correspondents: list[store.Correspondent] = field(default_factory=list)  # who the space may write to again

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // PER_PAGE))

    @property
    def full(self) -> bool:
        return self.quota_used >= self.quota

    @property
    def nearly_full(self) -> bool:
        """Four fifths used: time to tell the person how to make room, before attachments are refused."""
        return self.quota_used >= 0.8 * self.quota

    @property
    def quota_text(self) -> str:
        return f"{rules.megabytes(self.quota_used)} utilisés sur {rules.megabytes(self.quota)}"


def inbox(services: Services, actor: Actor, patient_id: str, query: str = "", page: int = 1) -> Inbox:
    """MSG-1: the space's conversations, latest first; ``query`` searches subjects, texts and correspondents (the
    words are sealed: they are opened and searched here, one space at a time)."""
    query = " ".join(query.split())[:100]
    with services.db.unit_of_work() as db:
        guard(db, actor, patient_id, Action.MESSAGE_READ, Resource("messagerie"))
        patient = _patient(db, patient_id)
        rows = db.scalars(
            select(Thread).where(Thread.patient_id == patient_id).order_by(Thread.last_message_at.desc(), Thread.id)
        ).all()
        key = keyring.data_key(db, services.keyring, patient_id, create=False) if rows else b""
        views = [store.thread_view(key, row, actor) for row in rows]
        if query:
            views = _search(db, key, views, query)
        total = len(views)
        page = min(max(page, 1), max(1, -(-total // PER_PAGE)))
        shown = views[(page - 1) * PER_PAGE : page * PER_PAGE]
        shown = [_with_excerpt(db, key, view) for view in shown]
        seen: dict[str, store.Correspondent] = {}
        for view in views:
            seen.setdefault(view.counterpart.id, view.counterpart)
        _record_read(db, actor, patient_id)
        return Inbox(
            patient,
            shown,
            total,
            page,
            sum(v.unread for v in views),
            query,
            store.quota_used(db, patient_id),
            quota_bytes(services),
            sorted(seen.values(), key=lambda c: c.label),
        )


def _search(db: Session, key: bytes, views: list[ThreadView], query: str) -> list[ThreadView]:
    by_thread: dict[str, list[str]] = {}
    for message in db.scalars(select(Message).where(Message.thread_id.in_([v.id for v in views]))):
        by_thread.setdefault(message.thread_id, []).append(store.message_text(key, message))
    return [v for v in views if rules.matches(query, v.subject, v.counterpart.label, *by_thread.get(v.id, []))]


def _with_excerpt(db: Session, key: bytes, view: ThreadView) -> ThreadView:
    last = db.scalars(
        select(Message).where(Message.thread_id == view.id).order_by(Message.created_at.desc(), Message.id).limit(1)
    ).first()
    if last is None:
        return view
    text = store.message_text(key, last) or (f"{last.attachments} pièce(s) jointe(s)" if last.attachments else "")
    return ThreadView(**{**view.__dict__, "excerpt": rules.excerpt(text)})


def unread_count(services: Services, actor: Actor, patient_id: str) -> int | None:
    """Unread messages of the space for its home page; None when the actor may not read the messaging."""
    with services.db.unit_of_work() as db:
        facts = facts_for(db, actor, patient_id)
        if not decide(actor, patient_id, Action.MESSAGE_READ, Resource("messagerie"), facts).allowed:
            return None
        total = db.scalar(select(func.sum(Thread.space_unread)).where(Thread.patient_id == patient_id))
        return int(total or 0)


# ------------------------------------------------------------------ one conversation


@dataclass(frozen=True)
class Conversation:
    patient: PatientView
    thread: ThreadView
    messages: list[MessageView]
    may_answer: bool
    may_write_again: bool
    may_close: bool
    may_delete: bool
    quota_full: bool = False


def _may(db: Session, actor: Actor, thread: Thread, action: Action, resource: Resource | None = None) -> bool:
    facts = facts_for(db, actor, thread.patient_id)
    return decide(actor, thread.patient_id, action, resource or store.resource_of(thread), facts).allowed


def _space_act(kind: str, thread: Thread) -> Resource:
    """An act only the people of the space take on their messaging (``policy.SPACE_ONLY_MESSAGE_ACTS``)."""
    return Resource(kind, thread.id, author_id=thread.counterpart_id)


def _again(thread: Thread) -> Resource:
    return Resource("message_thread", None, author_id=thread.counterpart_id, source="correspondant")


def conversation(services: Services, actor: Actor, thread_id: str, space: str | None = None) -> Conversation:
    """One conversation; opening it marks it read for whoever opened it (the space, or the professional)."""
    with services.db.unit_of_work() as db:
        thread = store.load_thread(db, actor, Action.MESSAGE_READ, thread_id, space)
        key = keyring.data_key(db, services.keyring, thread.patient_id, create=False)
        counterpart = store.is_counterpart(actor, thread)
        if counterpart:
            thread.counterpart_unread = 0
        elif actor.kind == ActorKind.PATIENT:
            thread.space_unread = 0
        patient = _patient(db, thread.patient_id)
        view = store.thread_view(key, thread, actor, patient_name=patient.display_name)
        messages = store.message_views(db, key, thread)
        _record_read(db, actor, thread.patient_id)
        people = actor.kind == ActorKind.PATIENT
        return Conversation(
            patient,
            view,
            messages,
            may_answer=_may(db, actor, thread, Action.MESSAGE_WRITE),
            may_write_again=people
            and thread.status == rules.CLOSED
            and _may(db, actor, thread, Action.MESSAGE_WRITE, _again(thread)),
            may_close=counterpart and thread.status == rules.OPEN and _may(db, actor, thread, Action.MESSAGE_CLOSE),
            may_delete=_may(db, actor, thread, Action.MESSAGE_WRITE, _space_act("message_thread_deletion", thread)),
            quota_full=store.quota_used(db, thread.patient_id) >= quota_bytes(services),
        )


def answer(
    services: Services,
    actor: Actor,
    thread_id: str,
    text: str,
    files: list[rules.SentFile] | None = None,
    space: str | None = None,
) -> str:
    """MSG-1: an answer in an open conversation, by the people of the space or the professional; the id of the
    message. The space's answer also leaves by mail to a professional with a secure-mail address."""
    clean = rules.check_message("", text, files or [], reply=True)
    with writing(services) as (db, written):
        thread = store.load_thread(db, actor, Action.MESSAGE_WRITE, thread_id, space)
        key = keyring.data_key(db, services.keyring, thread.patient_id)
        message = store.add_message(
            services,
            db,
            key,
            thread,
            actor,
            clean,
            via="portail",
            mail_id="",
            written=written,
            quota=quota_bytes(services),
        )
        db.flush()
        record_write(db, actor, thread, "answer", "a répondu dans un échange", len(clean.files))
        if message.direction == rules.FROM_PATIENT and thread.counterpart_email:
            outbound.send_answer(services, db, key, thread, message, clean)
        return message.id


def start(
    services: Services,
    actor: Actor,
    patient_id: str,
    subject: str,
    text: str,
    files: list[rules.SentFile] | None = None,
) -> str:
    """MSG-1: a professional or an establishment starts a conversation with a space; the id of the conversation."""
    clean = rules.check_message(subject, text, files or [])
    with writing(services) as (db, written):
        guard(db, actor, patient_id, Action.MESSAGE_WRITE, Resource("message_thread"))
        key = keyring.data_key(db, services.keyring, patient_id)
        thread = new_conversation(
            services, db, key, actor, patient_id, clean, via="portail", mail_id="", written=written
        )
        return thread.id


def new_conversation(
    services: Services,
    db: Session,
    key: bytes,
    actor: Actor,
    patient_id: str,
    clean: rules.CleanMessage,
    *,
    via: str,
    mail_id: str,
    written: list[str],
    email: str | None = None,
    files: tuple[store.SealedFile, ...] | None = None,
) -> Thread:
    """A new conversation of ``actor`` (the caller asked the policy) with its first message, and its history line;
    ``email``: where the space's answers go (else the directory's address of the professional)."""
    if email is None and actor.kind == ActorKind.PROFESSIONAL and actor.professional_id:
        pro = db.get(Professional, actor.professional_id)
        email = pro.email if pro is not None else None
    elif email is None and actor.kind == ActorKind.ESTABLISHMENT and actor.establishment_id:
        establishment = db.get(Establishment, actor.establishment_id)
        email = establishment.email if establishment is not None else None
    thread = store.new_thread(db, key, patient_id, store.correspondent_of(actor, email), clean.subject)
    db.flush()
    store.add_message(
        services,
        db,
        key,
        thread,
        actor,
        clean,
        via=via,
        mail_id=mail_id,
        written=written,
        quota=quota_bytes(services),
        files=files,
    )
    record_write(db, actor, thread, "start", "a écrit un nouveau message", len(clean.files))
    return thread


def write_again(
    services: Services,
    actor: Actor,
    thread_id: str,
    subject: str,
    text: str,
    files: list[rules.SentFile] | None = None,
    space: str | None = None,
) -> str:
    """MSG-1: the people of the space write again to the professional of a conversation (a new conversation with
    them); the id of the new conversation."""
    clean = rules.check_message(subject, text, files or [])
    with writing(services) as (db, written):
        former = store.load_thread(db, actor, Action.MESSAGE_READ, thread_id, space)
        guard(db, actor, former.patient_id, Action.MESSAGE_WRITE, _again(former))
        key = keyring.data_key(db, services.keyring, former.patient_id)
        who = store.Correspondent(
            former.counterpart_kind, former.counterpart_id, former.counterpart_label, _current_email(db, former)
        )
        thread = store.new_thread(db, key, former.patient_id, who, clean.subject)
        db.flush()
        message = store.add_message(
            services,
            db,
            key,
            thread,
            actor,
            clean,
            via="portail",
            mail_id="",
            written=written,
            quota=quota_bytes(services),
        )
        db.flush()
        record_write(db, actor, thread, "again", "a écrit à nouveau à un professionnel", len(clean.files))
        if thread.counterpart_email:
            outbound.send_answer(services, db, key, thread, message, clean)
        return thread.id


def _current_email(db: Session, thread: Thread) -> str | None:
    if thread.counterpart_kind == "professional":
        pro = db.get(Professional, thread.counterpart_id)
        return pro.email if pro is not None else thread.counterpart_email
    return thread.counterpart_email


def close(services: Services, actor: Actor, thread_id: str) -> None:
    """MSG-1: the professional ends a conversation: the space reads it, no longer answers in it."""
    with services.db.unit_of_work() as db:
        thread = store.load_thread(db, actor, Action.MESSAGE_CLOSE, thread_id)
        if thread.status == rules.CLOSED:
            return
        thread.status = rules.CLOSED
        thread.closed_at = thread.last_message_at = utcnow()
        thread.closed_by_label = actor.label[:200]
        thread.space_unread += 1  # the space sees that it ended
        _record(db, actor, Action.MESSAGE_CLOSE, thread)


def delete(services: Services, actor: Actor, thread_id: str, space: str) -> None:
    """The people of the space delete a conversation (frees its attachments from the quota); blobs go after the
    commit. What was filed into the documents stays there."""
    keys: list[str] = []
    with services.db.unit_of_work() as db:
        thread = store.load_thread(db, actor, Action.MESSAGE_READ, thread_id, space)
        guard(db, actor, thread.patient_id, Action.MESSAGE_WRITE, _space_act("message_thread_deletion", thread))
        keys = list(db.scalars(select(Attachment.blob_key).join(Message).where(Message.thread_id == thread.id)))
        record_write(db, actor, thread, "delete", "a supprimé un échange de la messagerie")
        erase_threads(db, [thread.id])
    for key in keys:
        services.blobs.delete(key)


def erase_threads(db: Session, thread_ids: list[str]) -> None:
    message_ids = select(Message.id).where(Message.thread_id.in_(thread_ids))
    db.execute(sql_delete(Attachment).where(Attachment.message_id.in_(message_ids)))
    db.execute(sql_delete(Message).where(Message.thread_id.in_(thread_ids)))
    db.execute(sql_delete(Thread).where(Thread.id.in_(thread_ids)))


# ------------------------------------------------------------------ attachments


@dataclass(frozen=True)
class AttachmentContent:
    name: str
    mime_type: str
    body: bytes


def _attachment(db: Session, actor: Actor, attachment_id: str, space: str | None) -> tuple[Thread, Attachment]:
    attachment = db.get(Attachment, attachment_id) if store.well_formed(attachment_id) else None
    if attachment is None:
        raise ThreadNotFound()
    message = db.get(Message, attachment.message_id)
    assert message is not None
    return store.load_thread(db, actor, Action.MESSAGE_READ, message.thread_id, space), attachment


def attachment_content(
    services: Services, actor: Actor, attachment_id: str, space: str | None = None
) -> AttachmentContent:
    with services.db.unit_of_work() as db:
        thread, attachment = _attachment(db, actor, attachment_id, space)
        key = keyring.data_key(db, services.keyring, thread.patient_id, create=False)
        view = store.attachment_view(key, attachment)
        _record_read(db, actor, thread.patient_id)
        return AttachmentContent(view.name, view.mime_type, store.attachment_body(services, key, attachment))


@dataclass(frozen=True)
class Filing:
    """What « Ajouter à mes documents » offers for one attachment."""

    patient: PatientView
    thread: ThreadView
    attachment: AttachmentView
    types: list[vault_rules.DocumentType]  # the types a person files a document under


def filing(services: Services, actor: Actor, attachment_id: str, space: str) -> Filing:
    with services.db.unit_of_work() as db:
        thread, attachment = _attachment(db, actor, attachment_id, space)
        guard(db, actor, thread.patient_id, Action.MESSAGE_WRITE, _space_act("message_attachment_filing", thread))
        guard(db, actor, thread.patient_id, Action.DOCUMENT_DEPOSIT, Resource("document", source="new"))
        key = keyring.data_key(db, services.keyring, thread.patient_id, create=False)
        return Filing(
            _patient(db, thread.patient_id),
            store.thread_view(key, thread, actor),
            store.attachment_view(key, attachment),
            vault_rules.patient_types(),
        )


def file_attachment(
    services: Services, actor: Actor, attachment_id: str, space: str, type_code: str, title: str = ""
) -> str:
    """MSG-2: « Ajouter à mes documents »: the attachment becomes a document of the space in one action (the vault's
    checks, its history line, then seen by professionals like any document); the document's id."""
    written: list[str] = []
    try:
        with services.db.unit_of_work() as db:
            thread, attachment = _attachment(db, actor, attachment_id, space)
            guard(db, actor, thread.patient_id, Action.MESSAGE_WRITE, _space_act("message_attachment_filing", thread))
            if attachment.document_id is not None:
                return attachment.document_id
            key = keyring.data_key(db, services.keyring, thread.patient_id, create=False)
            view = store.attachment_view(key, attachment)
            new = vault.NewDocument(
                patient_id=thread.patient_id,
                type_system=vault_rules.PATIENT_TYPE_SYSTEM,
                type_code=type_code,
                title=" ".join(title.split())[:200] or view.name.rsplit(".", 1)[0] or "Pièce jointe",
                mime_type=view.mime_type,
                body=store.attachment_body(services, key, attachment),
                filename=view.name,
            )
            document = vault.deposit(services, db, actor, new, written)
            attachment.document_id = document.id
            record_write(db, actor, thread, "file", "a ajouté une pièce jointe aux documents")
            return document.id
    except BaseException:
        for key_written in written:
            services.blobs.delete(key_written)
        raise


# ------------------------------------------------------------------ the professional's side


@dataclass(frozen=True)
class ProInbox:
    threads: list[ThreadView]
    total: int
    page: int
    unread: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // PER_PAGE))


def pro_inbox(services: Services, actor: Actor, page: int = 1) -> ProInbox:
    """The professional's (or establishment's) own conversations, across spaces, latest first; those of spaces
    they may no longer read (closed, or the person blocked them) are left out by the policy."""
    keys = author_keys(actor)
    if not keys:
        return ProInbox([], 0, 1, 0)
    with services.db.unit_of_work() as db:
        mine = select(Thread).where(Thread.counterpart_id.in_(keys))
        rows = db.scalars(mine.order_by(Thread.last_message_at.desc(), Thread.id).limit(500)).all()
        allowed: dict[str, bool] = {}
        kept: list[Thread] = []
        for row in rows:
            if row.patient_id not in allowed:
                allowed[row.patient_id] = _may(db, actor, row, Action.MESSAGE_READ)
            if allowed[row.patient_id]:
                kept.append(row)
        total = len(kept)
        page = min(max(page, 1), max(1, -(-total // PER_PAGE)))
        views = []
        for row in kept[(page - 1) * PER_PAGE : page * PER_PAGE]:
            key = keyring.data_key(db, services.keyring, row.patient_id, create=False)
            views.append(store.thread_view(key, row, actor, patient_name=_patient(db, row.patient_id).display_name))
        return ProInbox(views, total, page, sum(r.counterpart_unread for r in kept))


def may_write(services: Services, actor: Actor, patient_id: str) -> PatientView:
    """The space a professional is about to write to (the policy's yes, or ``AccessDenied``)."""
    with services.db.unit_of_work() as db:
        guard(db, actor, patient_id, Action.MESSAGE_WRITE, Resource("message_thread"))
        return _patient(db, patient_id)
