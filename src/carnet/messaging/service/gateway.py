"""The inbound gateway's use cases (MSG-3): who may send, to whom, and storing what arrived.

The SMTP interface (``carnet.messaging.smtp``) asks ``sender`` at ``MAIL FROM``, ``recipient`` at each ``RCPT TO``
and hands the whole message to ``deliver`` at the end of ``DATA``; its answer is the SMTP reply. ``deliver`` stores
every recipient's copy in one transaction — the message, its attachments sealed with each patient's key, the
conversation it belongs to, the history line — and only then is ``250`` sent: a message is stored before the reply,
or not at all (a failure deletes the blobs already written and answers ``451``).

A message continues a conversation when its ``In-Reply-To``/``References`` name a message of that space's open
conversation with the same sender; otherwise it starts one. The sender is the professional (or establishment)
whose secure-mail address the directory holds: they act under the same policy as on ``/pro`` (a person who blocked
them receives nothing from them: ``550``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.bootstrap import Services
from carnet.errors import CarnetError
from carnet.hall.actors import Actor, ActorKind
from carnet.hall.guard import AccessDenied, guard
from carnet.hall.policy import Action, Resource
from carnet.hall.vocabulary import PatientStatus
from carnet.messaging.model import address
from carnet.messaging.model import messages as rules
from carnet.messaging.model.inbound import InboundMail
from carnet.messaging.service import conversations, store
from carnet.messaging.tables import Message, Thread
from carnet.people.tables import Establishment, Patient, Professional
from carnet.storage import keyring


class Refused(CarnetError):
    """The gateway refuses: ``code`` and ``status`` (RFC 3463) for the SMTP reply, ``message`` in French."""

    def __init__(self, code: int, status: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.status = status

    def __reduce__(self) -> tuple[type[Refused], tuple[int, str, str]]:
        return (type(self), (self.code, self.status, self.message))

    @property
    def reply(self) -> str:
        text = self.message.encode("ascii", "replace").decode("ascii") if not self.message.isascii() else self.message
        return f"{self.code} {self.status} {text}"


@dataclass(frozen=True)
class Sender:
    """Who a mail comes from, as the directory knows them."""

    actor: Actor
    email: str


def sender(services: Services, mail_from: str) -> Sender:
    """The professional or establishment whose address this is; ``Refused`` (550) otherwise."""
    email = address.bare_address(mail_from)
    with services.db.unit_of_work() as db:
        found = _sender(db, email) if email else None
    if found is None:
        raise Refused(
            550,
            "5.7.1",
            "Expediteur inconnu de l'annuaire : seuls les professionnels et etablissements "
            "references peuvent ecrire aux patients.",
        )
    return found


def _sender(db: Session, email: str) -> Sender | None:
    pro = db.scalars(select(Professional).where(Professional.email == email).limit(1)).first()
    if pro is not None:
        title = "Dr " if pro.profession_code in {"10", "40"} else ""
        actor = Actor(
            ActorKind.PROFESSIONAL,
            pro.id,  # acting through the gateway, as themselves
            f"{title}{pro.first_name} {pro.last_name}",
            professional_id=pro.id,
            rpps=pro.rpps,
            profession_code=pro.profession_code,
        )
        return Sender(actor, email)
    est = db.scalars(select(Establishment).where(Establishment.email == email).limit(1)).first()
    if est is not None:
        actor = Actor(ActorKind.ESTABLISHMENT, est.id, est.name, finess=est.finess, establishment_id=est.id)
        return Sender(actor, email)
    return None


def recipient(services: Services, rcpt: str) -> str:
    """The space an address names, if it is open; ``Refused`` (550) for an unknown or closed one."""
    ins = address.ins_of(rcpt, services.settings.messaging_domain)
    if ins is not None:
        with services.db.unit_of_work() as db:
            patient_id = db.scalar(select(Patient.id).where(Patient.ins == ins, Patient.status == PatientStatus.ACTIVE))
        if patient_id is not None:
            return str(patient_id)
    raise Refused(550, "5.1.1", "Destinataire inconnu : aucun espace sante ouvert a cette adresse.")


def deliver(services: Services, who: Sender, patient_ids: list[str], mail: InboundMail) -> list[str]:
    """Store the message for each recipient, in one transaction; the ids of the conversations it went into.
    ``Refused``: 550 when a recipient refuses this sender, 552 when a space's messaging is full."""
    with conversations.writing(services) as (db, written):
        threads: list[str] = []
        for patient_id in dict.fromkeys(patient_ids):
            try:
                guard(db, who.actor, patient_id, Action.MESSAGE_WRITE, Resource("message_thread"))
            except AccessDenied:
                raise Refused(550, "5.7.1", "Ce destinataire ne recoit pas de messages de cet expediteur.") from None
            key = keyring.data_key(db, services.keyring, patient_id)
            try:
                threads.append(_deliver_one(services, db, key, who, patient_id, mail, written))
            except rules.QuotaExceeded:
                raise Refused(552, "5.2.2", "Messagerie du destinataire pleine.") from None
        return threads


def _deliver_one(
    services: Services, db: Session, key: bytes, who: Sender, patient_id: str, mail: InboundMail, written: list[str]
) -> str:
    quota = conversations.quota_bytes(services)
    files = store.write_files(services, db, key, patient_id, mail.message, written, quota)  # before any row
    thread = _continued(db, who, patient_id, mail)
    if thread is None:
        return conversations.new_conversation(
            services,
            db,
            key,
            who.actor,
            patient_id,
            mail.message,
            via="smtp",
            mail_id=mail.message_id,
            written=written,
            email=who.email,
            files=files,
        ).id
    if thread.counterpart_email != who.email:
        thread.counterpart_email = who.email
    store.add_message(
        services,
        db,
        key,
        thread,
        who.actor,
        mail.message,
        via="smtp",
        mail_id=mail.message_id,
        written=written,
        quota=quota,
        files=files,
    )
    conversations.record_write(db, who.actor, thread, "answer", "a répondu dans un échange", len(mail.message.files))
    return thread.id


def _continued(db: Session, who: Sender, patient_id: str, mail: InboundMail) -> Thread | None:
    """The open conversation of this space with this sender that the mail answers, if any."""
    if not mail.in_reply_to:
        return None
    return db.scalars(
        select(Thread)
        .join(Message, Message.thread_id == Thread.id)
        .where(
            Message.patient_id == patient_id,
            Message.mail_id.in_(mail.in_reply_to),
            Thread.counterpart_id == (who.actor.professional_id or who.actor.establishment_id),
            Thread.status == rules.OPEN,
        )
        .limit(1)
    ).first()
