"""Telling patients that something happened (TRC-3, VLT-6), without any health data in the e-mail.

The database is the queue: a new document has a ``tell`` timer (``DocumentTimer``, written with it) until the job has
told (or, per the patient's settings, decided not to tell) its patient, and ``notified_at`` empty. The job reads only
the timers due — never the documents table at large — so it costs the same with ten or ten million documents
(issue #18). Restarting loses nothing.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from carnet.bootstrap import Services
from carnet.family import service as family
from carnet.mail.outbound import Mail
from carnet.people.service import preferences
from carnet.people.tables import Patient
from carnet.storage.types import utcnow
from carnet.vault.model import documents as rules
from carnet.vault.service import documents as vault
from carnet.vault.tables import Document

NEW_DOCUMENTS = (
    "Bonjour,\n\n{what} dans votre espace santé Carnet.\n\n"
    "Connectez-vous sur {url} pour le consulter. Pour votre sécurité, ce message ne contient aucune "
    "information médicale.\n\nVous pouvez choisir les notifications que vous recevez dans Paramètres.\n\n"
    "Carnet — ne répondez pas à ce message."
)
RECORD_UPDATED = (
    "Bonjour,\n\nVotre espace santé Carnet a été mis à jour par un professionnel de santé. Un document vous "
    "sera présenté lors d'une consultation ; il deviendra visible dans votre espace au plus tard un mois après "
    "son dépôt.\n\nConnectez-vous sur {url}. Ce message ne contient aucune information médicale.\n\n"
    "Carnet — ne répondez pas à ce message."
)


def _pending(db: Session, now: datetime, limit: int) -> dict[str, list[Document]]:
    by_patient: dict[str, list[Document]] = defaultdict(list)
    for document in vault.due_documents(db, vault.TELL, now, limit):
        by_patient[document.patient_id].append(document)
    return by_patient


def send_pending(services: Services, now: datetime | None = None, limit: int = 5000) -> int:
    """One e-mail per patient for the documents deposited since the last run (at most ``limit`` documents, the longest
    due first); returns e-mails sent."""
    now = now or utcnow()
    sent = 0
    with services.db.unit_of_work() as db:
        for patient_id, docs in _pending(db, now, limit).items():
            patient = db.get(Patient, patient_id)
            wants = preferences.settings_of(db, patient_id).notify_documents
            visible = [d for d in docs if "INVISIBLE_PATIENT" not in (d.confidentiality or [])]
            notice_due = [
                d
                for d in docs
                if d not in visible and d.created_at + timedelta(days=rules.INVISIBLE_PATIENT_NOTICE_DAYS) <= now
            ]
            for document in visible + notice_due:
                document.notified_at = now
            for document in docs:
                if document.notified_at is None:  # kept for a consultation since its deposit: told at two weeks
                    vault.reschedule(db, document)
            from_pros = [d for d in visible if d.source != "patient"]
            sent += family.notify_caregivers(services, db, patient_id, from_pros)  # FAM-3: caregivers are told too
            if patient is None or not patient.email or not wants:
                continue
            if from_pros:
                what = (
                    "Un nouveau document a été déposé"
                    if len(from_pros) == 1
                    else f"{len(from_pros)} nouveaux documents ont été déposés"
                )
                services.mailer.send(
                    Mail(
                        patient.email,
                        "Nouveau document dans votre espace santé",
                        NEW_DOCUMENTS.format(what=what, url=services.settings.base_url),
                    )
                )
                sent += 1
            if notice_due:
                services.mailer.send(
                    Mail(
                        patient.email,
                        "Votre espace santé a été mis à jour",
                        RECORD_UPDATED.format(url=services.settings.base_url),
                    )
                )
                sent += 1
    return sent
