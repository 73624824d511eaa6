"""The messages of an imported archive (ENR-7, item 5): each conversation back with its correspondent, subject and
state, each message with its author, direction and date, its text and attached files re-sealed with this
instance's key, byte-exact — as ``carnet.messaging.service.export`` wrote them (one ``Communication`` per message,
the conversation's row in its archive facts). Nothing is unread and nothing is announced: the person had read
them, or will find them as they were; the quota is not applied (they are the person's own, already kept).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from carnet.bootstrap import Services
from carnet.export.model.restoring import Fact, RestoreError, Restoring, facts_of, resources_of
from carnet.messaging.model import messages as rules
from carnet.messaging.service.store import _aad, _seal, blob_key
from carnet.messaging.tables import Attachment, Message, Thread
from carnet.storage import keyring
from carnet.storage.types import new_id, utcnow


def _text(facts: dict[str, Fact], name: str, limit: int, required: bool = True) -> str | None:
    value = facts.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise RestoreError(f"Message de l'archive : « {name} » manquant ou invalide.")
    return value


def _moment(facts: dict[str, Fact], name: str) -> datetime | None:
    value = facts.get(name)
    return value if isinstance(value, datetime) else None


def _thread(db: Session, restoring: Restoring, facts: dict[str, Fact]) -> Thread:
    thread_id = new_id()
    created = _moment(facts, "thread_created_at") or utcnow()
    status = _text(facts, "status", 8)
    thread = Thread(
        id=thread_id,
        patient_id=restoring.patient_id,
        counterpart_kind=_text(facts, "counterpart_kind", 16),
        counterpart_id=_text(facts, "counterpart_id", 36),
        counterpart_label=_text(facts, "counterpart_label", 200),
        counterpart_email=_text(facts, "counterpart_email", 254, required=False),
        sealed=_seal(restoring.key, "thread", thread_id, {"subject": _text(facts, "subject", 500)}),
        status=status if status in {rules.OPEN, rules.CLOSED} else rules.OPEN,
        closed_at=_moment(facts, "closed_at"),
        closed_by_label=_text(facts, "closed_by_label", 200, required=False),
        space_unread=0,
        counterpart_unread=0,
        messages=0,
        created_at=created,
        last_message_at=created,
    )
    db.add(thread)
    return thread


def _files(services: Services, restoring: Restoring, resource: dict[str, Any]) -> list[tuple[str, str, str, int]]:
    """The message's attached files re-sealed and written: (attachment id, name, type, size)."""
    files = []
    for part in resource.get("payload") or []:
        element = part.get("contentAttachment") if isinstance(part, dict) else None
        if not isinstance(element, dict):
            continue
        path = element.get("url")
        if not isinstance(path, str) or not path.startswith("messages/"):
            raise RestoreError(f"Communication/{resource.get('id')} : pièce jointe introuvable dans l'archive.")
        body = restoring.read_file(path)
        attachment_id = new_id()
        blob = blob_key(attachment_id)
        services.blobs.put(blob, keyring.seal(restoring.key, body, _aad("attachment-body", attachment_id)))
        restoring.written.append(blob)
        name = str(element.get("title") or path.rsplit("/", 1)[-1])[:200]
        files.append((attachment_id, name, str(element.get("contentType") or "application/octet-stream"), len(body)))
    return files


def restore(db: Session, services: Services, restoring: Restoring, bundle: dict[str, Any]) -> int:
    """The archive's conversations and messages into ``restoring``'s space; how many messages."""
    threads: dict[str, Thread] = {}
    count = 0
    for resource in resources_of(bundle, "Communication"):
        facts = facts_of(resource)
        old_thread = _text(facts, "thread", 36)
        assert old_thread is not None
        thread = threads.get(old_thread)
        if thread is None:
            thread = threads[old_thread] = _thread(db, restoring, facts)
            db.flush()
        files = _files(services, restoring, resource)
        text = "".join(str(p.get("contentString") or "") for p in resource.get("payload") or [] if isinstance(p, dict))
        message_id = new_id()
        created = _moment(facts, "created_at") or utcnow()
        author = _text(facts, "author_id", 64, required=False)
        direction = _text(facts, "direction", 20)
        db.add(
            Message(
                id=message_id,
                thread_id=thread.id,
                patient_id=restoring.patient_id,
                direction=direction,
                author_id=restoring.ids.get(f"Patient/{author}", author),
                author_label=_text(facts, "author_label", 200),
                via=_text(facts, "via", 8),
                mail_id=_text(facts, "mail_id", 250),
                sealed=_seal(restoring.key, "message", message_id, {"text": text}),
                attachments=len(files),
                created_at=created,
                notified_at=utcnow(),
            )
        )
        if files:
            db.flush()
        for attachment_id, name, mime_type, size in files:
            db.add(
                Attachment(
                    id=attachment_id,
                    message_id=message_id,
                    patient_id=restoring.patient_id,
                    blob_key=blob_key(attachment_id),
                    size=size,
                    sealed=_seal(restoring.key, "attachment", attachment_id, {"name": name, "type": mime_type}),
                    created_at=created,
                )
            )
        thread.messages += 1
        thread.last_message_at = max(thread.last_message_at, created)
        count += 1
    return count
