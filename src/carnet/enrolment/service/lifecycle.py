"""A space's life after enrolment (ENR-4 activation, ENR-6 closure, reopening, deletion, purge).

Closing archives the space (kept 10 years, then purged by a job); reopening restores it; a deletion
request destroys it at once: the patient's data key is destroyed, so every copy of their blobs —
backups included — becomes unreadable, and the blobs and document rows are removed. The audit log
stays (it is the legal trace), and each step is confirmed by e-mail.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from carnet.bootstrap import Services
from carnet.hall import audit
from carnet.hall.actors import Actor
from carnet.hall.guard import guard
from carnet.hall.policy import Action, Resource
from carnet.identity.tables import WebSession
from carnet.mail.outbound import Mail
from carnet.people.tables import Account, Patient
from carnet.storage import keyring
from carnet.storage.types import utcnow
from carnet.vault.tables import Document, DocumentTerm, Folder

ARCHIVE_YEARS = 10
SIGNATURE = "\n\nCarnet — ne répondez pas à ce message."


def _tell(services: Services, patient: Patient, subject: str, text: str) -> None:
    if patient.email:
        services.mailer.send(Mail(patient.email, subject, "Bonjour,\n\n" + text + SIGNATURE))


def close_space(services: Services, db: Session, actor: Actor, patient_id: str) -> Patient:
    guard(db, actor, patient_id, Action.SPACE_CLOSE, Resource("space"))
    patient = db.get(Patient, patient_id)
    assert patient is not None
    patient.status = "closed"
    patient.closed_at = utcnow()
    db.execute(
        delete(WebSession).where(WebSession.account_id.in_(select(Account.id).where(Account.patient_id == patient_id)))
    )
    audit.record(db, actor, "space.closed", patient_id=patient_id, resource_type="space")
    until = (patient.closed_at + timedelta(days=365 * ARCHIVE_YEARS)).strftime("%d/%m/%Y")
    _tell(
        services,
        patient,
        "Votre espace santé Carnet est fermé",
        f"Votre espace santé a été fermé à votre demande. Ses données sont archivées jusqu'au {until}, "
        "puis elles seront supprimées. Vous pouvez le rouvrir à tout moment d'ici là en vous connectant.",
    )
    return patient


def reopen_space(services: Services, db: Session, actor: Actor, patient_id: str) -> Patient:
    guard(db, actor, patient_id, Action.SPACE_REOPEN, Resource("space"))
    patient = db.get(Patient, patient_id)
    assert patient is not None
    patient.status = "active"
    patient.closed_at = None
    audit.record(db, actor, "space.reopened", patient_id=patient_id, resource_type="space")
    _tell(
        services,
        patient,
        "Votre espace santé Carnet est rouvert",
        "Votre espace santé a été rouvert : vos documents et informations sont de nouveau accessibles.",
    )
    return patient


def delete_space(services: Services, actor: Actor, patient_id: str) -> int:
    """Destroy the space now (keys first); returns the number of documents destroyed."""
    blob_keys: list[str] = []
    with services.db.unit_of_work() as db:
        guard(db, actor, patient_id, Action.SPACE_DELETE, Resource("space"))
        patient = db.get(Patient, patient_id)
        assert patient is not None
        count = _destroy(db, patient, blob_keys)
        audit.record(
            db, actor, "space.deleted", patient_id=patient_id, resource_type="space", details={"documents": count}
        )
        _tell(
            services,
            patient,
            "Votre espace santé Carnet est supprimé",
            "Votre espace santé et tous ses documents ont été supprimés définitivement, comme vous l'avez "
            "demandé. Cette opération ne peut pas être annulée.",
        )
        patient.email = None
    for key in blob_keys:
        services.blobs.delete(key)
    return count


def _destroy(db: Session, patient: Patient, blob_keys: list[str]) -> int:
    keyring.destroy_data_key(db, patient.id)
    documents = list(db.scalars(select(Document).where(Document.patient_id == patient.id)))
    blob_keys += [k for d in documents for k in (d.blob_key, d.preview_blob_key) if k]
    db.execute(delete(DocumentTerm).where(DocumentTerm.patient_id == patient.id))
    db.execute(delete(Document).where(Document.patient_id == patient.id))
    db.execute(delete(Folder).where(Folder.patient_id == patient.id))
    db.execute(delete(Account).where(Account.patient_id == patient.id))
    patient.status = "deleted"
    patient.closed_at = patient.closed_at or utcnow()
    return len(documents)


def purge_archives(services: Services, now: datetime | None = None) -> int:
    """Job: spaces closed more than 10 years ago are destroyed like a deletion request."""
    now = now or utcnow()
    limit = now - timedelta(days=365 * ARCHIVE_YEARS)
    blob_keys: list[str] = []
    purged = 0
    with services.db.unit_of_work() as db:
        for patient in db.scalars(select(Patient).where(Patient.status == "closed", Patient.closed_at <= limit)):
            _destroy(db, patient, blob_keys)
            audit.record(db, Actor.system(), "space.purged", patient_id=patient.id, resource_type="space")
            purged += 1
    for key in blob_keys:
        services.blobs.delete(key)
    return purged
