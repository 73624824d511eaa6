"""A message of the secure messaging (MSG-1, MSG-2) as a FHIR R4 ``Communication`` — pure.

One Communication per message, ``status`` « completed » (it was sent), ``subject`` the patient, ``sent`` when Carnet
received it, ``medium`` how it was written (in the portal: ONLINEWRIT; by secure mail: EMAILWRIT), ``topic`` the
conversation's subject. Who wrote and who reads, as display references: the professional (``Practitioner``) or
the establishment (``Organization``) of the conversation, and on the space's side the patient (the Bundle's
Patient) — or, when someone acting for them wrote (a legal representative), that person (``RelatedPerson``).

A conversation is grouped two ways: every message carries the conversation's id as a secondary ``identifier``
(system ``CONVERSATION``), and every message but the first answers the one before it (``inResponseTo``).
The payload is the text (``contentString``), then one ``contentAttachment`` per attached file, pointing at the
file beside the Bundle (``attachment_path``: ``messages/<attachment id>-<name>``) with its type, size and name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from carnet.fhir.search import instant
from carnet.messaging.model.messages import FROM_PATIENT
from carnet.vault.model.fhir_map import file_name

CONVERSATION = "https://carnet.example/fhir/sid/conversation"
PARTICIPATION_MODE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode"
MEDIUMS = {"smtp": ("EMAILWRIT", "email"), "portail": ("ONLINEWRIT", "online written")}
COUNTERPART_TYPES = {"professional": "Practitioner", "establishment": "Organization"}
FOLDER = "messages"


class MessageFields(Protocol):
    """A message (the store's ``MessageView`` has all of it)."""

    @property
    def id(self) -> str: ...
    @property
    def direction(self) -> str: ...
    @property
    def author_label(self) -> str: ...
    @property
    def via(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def text(self) -> str: ...


class AttachmentFields(Protocol):
    """An attached file (the store's ``AttachmentView``)."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def mime_type(self) -> str: ...
    @property
    def size(self) -> int: ...


class ConversationFields(Protocol):
    """The conversation a message is part of, and its correspondent."""

    @property
    def id(self) -> str: ...
    @property
    def subject(self) -> str: ...
    @property
    def counterpart_kind(self) -> str: ...
    @property
    def counterpart_label(self) -> str: ...


def attachment_path(attachment: AttachmentFields) -> str:
    """Where an attached file lies in an archive, relative to its root."""
    return f"{FOLDER}/{attachment.id}-{file_name(attachment.name, attachment.mime_type, 'piece-jointe')}"


def attachment_element(attachment: AttachmentFields, sent: datetime) -> dict[str, Any]:
    return {
        "contentType": attachment.mime_type,
        "url": attachment_path(attachment),
        "size": attachment.size,
        "title": attachment.name,
        "creation": instant(sent),
    }


def communication(
    message: MessageFields,
    conversation: ConversationFields,
    patient: Mapping[str, Any],
    attachments: Sequence[AttachmentFields] = (),
    previous_id: str | None = None,
    by_the_person: bool = True,
) -> dict[str, Any]:
    """The message as a Communication (see the module's docstring); ``by_the_person``: a message of the space
    written by the person themselves (not by someone acting for them)."""
    counterpart = {
        "type": COUNTERPART_TYPES.get(conversation.counterpart_kind, "Practitioner"),
        "display": conversation.counterpart_label,
    }
    if message.direction == FROM_PATIENT:
        person = {**dict(patient), "display": message.author_label}
        sender = person if by_the_person else {"type": "RelatedPerson", "display": message.author_label}
        recipient = counterpart
    else:
        sender, recipient = (
            {**counterpart, "display": message.author_label or conversation.counterpart_label},
            dict(patient),
        )
    payload: list[dict[str, Any]] = [{"contentString": message.text}] if message.text else []
    payload += [{"contentAttachment": attachment_element(a, message.created_at)} for a in attachments]
    resource: dict[str, Any] = {
        "resourceType": "Communication",
        "id": message.id,
        "identifier": [{"use": "secondary", "system": CONVERSATION, "value": conversation.id}],
        "status": "completed",
        "subject": dict(patient),
        "topic": {"text": conversation.subject},
        "sent": instant(message.created_at),
        "recipient": [recipient],
        "sender": sender,
    }
    mode = MEDIUMS.get(message.via)
    if mode is not None:
        resource["medium"] = [{"coding": [{"system": PARTICIPATION_MODE, "code": mode[0], "display": mode[1]}]}]
    if previous_id:
        resource["inResponseTo"] = [{"reference": f"Communication/{previous_id}"}]
    if payload:
        resource["payload"] = payload
    return resource
