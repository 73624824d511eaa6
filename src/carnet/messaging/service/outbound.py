"""An answer of the space leaves by mail (MSG-1, MSG-3): to the professional's secure-mail address, from the
patient's own address (``<INS>@<domain>``, so the professional's answer comes back through the gateway), threaded
with the conversation (``In-Reply-To`` the latest message received, ``References`` the conversation's last ones)
so their mail client shows one conversation.

It is sent through the configured relay inside the caller's transaction, or queued durably there when the relay is
down (``carnet.mail.queue``). This is the one e-mail of Carnet that carries health content — the patient's own words
to their professional, as MSSanté does; it goes only to the address the directory holds for that professional.
"""

from __future__ import annotations

import base64

from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.bootstrap import Services
from carnet.hall.actors import Actor
from carnet.mail.outbound import Mail
from carnet.mail.queue import send_or_queue
from carnet.messaging.model import address
from carnet.messaging.model import messages as rules
from carnet.messaging.service.store import thread_view
from carnet.messaging.tables import Message, Thread
from carnet.people.tables import Patient

REFERENCES_KEPT = 20


def send_answer(
    services: Services, db: Session, key: bytes, thread: Thread, message: Message, clean: rules.CleanMessage
) -> bool:
    """Mail ``message`` (just stored) to the thread's professional; False when it was queued for later."""
    patient = db.get(Patient, thread.patient_id)
    assert patient is not None and thread.counterpart_email
    earlier = db.execute(
        select(Message.mail_id, Message.direction)
        .where(Message.thread_id == thread.id, Message.id != message.id)
        .order_by(Message.created_at.desc(), Message.id)
        .limit(REFERENCES_KEPT)
    ).all()
    received = [mail_id for mail_id, direction in earlier if direction == rules.TO_PATIENT]
    subject = thread_view(key, thread, Actor.system()).subject
    name = " ".join(filter(None, [patient.first_names.split(" ")[0], patient.used_name or patient.birth_name]))
    mail = Mail(
        to=thread.counterpart_email,
        subject=subject if subject.lower().startswith("re:") else f"Re: {subject}",
        text=clean.text or "(pièce jointe)",
        sender=f"{name} <{address.patient_address(patient.ins, services.settings.messaging_domain)}>",
        message_id=message.mail_id,
        in_reply_to=received[0] if received else (earlier[0][0] if earlier else None),
        references=" ".join(reversed([mail_id for mail_id, _ in earlier])) or None,
        attachments=tuple(
            (file.filename, file.mime_type, base64.b64encode(file.body).decode("ascii")) for file in clean.files
        ),
    )
    return send_or_queue(db, services.keys, services.mailer, mail)
