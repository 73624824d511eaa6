"""Telling the space that a message is waiting (MSG-4), without any health content: no subject, no sender, no
speciality, no attachment name — only that there is something to read in the portal.

The database is the queue: a message to the patient has ``notified_at`` empty until this job has told (or, per
the space's settings, decided not to tell) the person and, for a minor, their legal representatives. One e-mail
per space and run, whatever the number of messages; restarting loses nothing, and a relay outage queues the e-mail
durably (``carnet.mail.queue``).
"""

from __future__ import annotations

from sqlalchemy import select, update

from carnet.bootstrap import Services
from carnet.family import service as family
from carnet.mail.outbound import Mail
from carnet.mail.queue import send_or_queue
from carnet.messaging.model import messages as rules
from carnet.messaging.tables import Message
from carnet.people.service import preferences
from carnet.people.tables import Patient
from carnet.storage.types import utcnow

SUBJECT = "Nouveau message dans votre espace santé"
TEXT = (
    "Bonjour,\n\nUn nouveau message {whose} dans la messagerie de l'espace santé Carnet.\n\n"
    "Connectez-vous sur {url} pour le lire. Pour votre sécurité, cet e-mail ne dit rien de son contenu ni de "
    "son expéditeur.\n\nVous pouvez choisir les notifications que vous recevez dans Paramètres.\n\n"
    "Carnet — ne répondez pas à ce message."
)
BATCH = 5000


def send_pending(services: Services) -> int:
    """One e-mail per space (and per legal representative of a minor) for the messages received since the last
    run; returns the e-mails sent or queued."""
    now = utcnow()
    sent = 0
    with services.db.unit_of_work() as db:
        pending = db.execute(
            select(Message.id, Message.patient_id)
            .where(Message.notified_at.is_(None), Message.direction == rules.TO_PATIENT)
            .limit(BATCH)
        ).all()
        spaces = sorted({patient_id for _, patient_id in pending})
        for patient_id in spaces:
            patient = db.get(Patient, patient_id)
            if patient is None or not preferences.settings_of(db, patient_id).notify_messages:
                continue
            for whose, email in _recipients(db, patient):
                text = TEXT.format(whose=whose, url=services.settings.base_url)
                send_or_queue(db, services.keys, services.mailer, Mail(email, SUBJECT, text))
                sent += 1
        if pending:
            db.execute(update(Message).where(Message.id.in_([row_id for row_id, _ in pending])).values(notified_at=now))
    return sent


def _recipients(db: object, patient: Patient) -> list[tuple[str, str]]:
    """(words, address): the person, and the legal representatives of a minor (who read for them)."""
    out: list[tuple[str, str]] = []
    if patient.email:
        out.append(("vous attend", patient.email))
    for representative in family.representatives_of(db, patient):  # type: ignore[arg-type]
        if representative.email and representative.email != patient.email:
            first = patient.first_names.split(" ")[0]
            out.append((f"attend {first}", representative.email))
    return out
