"""A space's life after enrolment (ENR-4 activation, ENR-6 closure, reopening, deletion, purge).

Closing archives the space (kept 10 years, then purged by a job); reopening restores it; a deletion
request destroys it at once: the patient's data key is destroyed, so every copy of their blobs —
backups included — becomes unreadable, and the blobs and document rows are removed. The audit log
stays (it is the legal trace), and each step is confirmed by e-mail.

Only the person closes, reopens or deletes their space: the hall decides (``rule_owner_lifecycle``),
first; closing and deleting then ask for the password again, in the same transaction (a wrong password
counts against the account like a failed login).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from carnet.agenda.service import erasure as agenda_erasure
from carnet.bootstrap import Services
from carnet.export.service import requests as export_requests
from carnet.hall import audit
from carnet.hall.actors import Actor
from carnet.hall.guard import guard
from carnet.hall.policy import Action, Resource
from carnet.hall.vocabulary import PatientStatus
from carnet.identity.service import auth
from carnet.mail.outbound import Mail
from carnet.messaging.service import erasure as messaging_erasure
from carnet.people.service.lookup import PatientView, patient_view
from carnet.people.tables import Account, Patient
from carnet.profile.service import erasure as profile_erasure
from carnet.storage import keyring
from carnet.storage.types import utcnow
from carnet.vault.service import erasure

ARCHIVE_YEARS = 10
SIGNATURE = "\n\nCarnet — ne répondez pas à ce message."
CONFIRM_WORD = "SUPPRIMER"


@dataclass(frozen=True)
class LifecycleResult:
    """What a closing or deletion request did: ``error`` (French) when nothing was done."""

    patient: PatientView
    error: str | None = None


def _tell(services: Services, patient: Patient, subject: str, text: str) -> None:
    if patient.email:
        services.mailer.send(Mail(patient.email, subject, "Bonjour,\n\n" + text + SIGNATURE))


def _owned_space(db: Session, actor: Actor, patient_id: str, action: Action) -> Patient:
    """The hall's yes (or ``AccessDenied``) for this act on this space, and the space."""
    guard(db, actor, patient_id, action, Resource("space"))
    patient = db.get(Patient, patient_id)
    assert patient is not None  # the policy denies unknown spaces
    return patient


def _password_problem(services: Services, db: Session, login: str, password: str, client: str) -> str | None:
    """The password asked again; a failure is counted (and audited) in ``db``'s transaction."""
    try:
        auth.check_password(services, db, login, password, client)
    except auth.LoginError as exc:
        return "Mot de passe incorrect." if exc.message == auth.GENERIC_FAILURE else exc.message
    return None


def lifecycle_page(services: Services, actor: Actor, patient_id: str) -> PatientView:
    """The page offering to close or delete one's space: for the person only, whenever they may delete it."""
    with services.db.unit_of_work() as db:
        return patient_view(_owned_space(db, actor, patient_id, Action.SPACE_DELETE))


def close_space(db: Session, services: Services, actor: Actor, patient: Patient) -> None:
    """Archive the space and end its sessions (inside the caller's transaction, the hall having decided)."""
    patient.status = PatientStatus.CLOSED
    patient.closed_at = utcnow()
    accounts = list(db.scalars(select(Account.id).where(Account.patient_id == patient.id)))
    auth.end_sessions_of(db, accounts)
    audit.record(db, actor, "space.closed", patient_id=patient.id, resource_type="space")
    until = (patient.closed_at + timedelta(days=365 * ARCHIVE_YEARS)).strftime("%d/%m/%Y")
    _tell(
        services,
        patient,
        "Votre espace santé Carnet est fermé",
        f"Votre espace santé a été fermé à votre demande. Ses données sont archivées jusqu'au {until}, "
        "puis elles seront supprimées. Vous pouvez le rouvrir à tout moment d'ici là en vous connectant.",
    )


def close_own_space(
    services: Services, actor: Actor, login: str, password: str, client: str, patient_id: str
) -> LifecycleResult:
    """ENR-6: the person closes their space, password asked again."""
    with services.db.unit_of_work() as db:
        patient = _owned_space(db, actor, patient_id, Action.SPACE_CLOSE)
        error = _password_problem(services, db, login, password, client)
        if error is None:
            close_space(db, services, actor, patient)
        return LifecycleResult(patient_view(patient), error)


def reopen_space(services: Services, actor: Actor, patient_id: str) -> PatientView:
    """ENR-6: the person reopens their closed space."""
    with services.db.unit_of_work() as db:
        patient = _owned_space(db, actor, patient_id, Action.SPACE_REOPEN)
        patient.status = PatientStatus.ACTIVE
        patient.closed_at = None
        audit.record(db, actor, "space.reopened", patient_id=patient_id, resource_type="space")
        _tell(
            services,
            patient,
            "Votre espace santé Carnet est rouvert",
            "Votre espace santé a été rouvert : vos documents et informations sont de nouveau accessibles.",
        )
        return patient_view(patient)


def delete_own_space(
    services: Services, actor: Actor, login: str, password: str, client: str, patient_id: str, confirmation: str
) -> LifecycleResult:
    """ENR-6: the person deletes their space at once (keys first), password and confirmation word asked."""
    blob_keys: list[str] = []
    with services.db.unit_of_work() as db:
        patient = _owned_space(db, actor, patient_id, Action.SPACE_DELETE)
        error = _password_problem(services, db, login, password, client)
        if error is None and confirmation.strip().upper() != CONFIRM_WORD:
            error = f"Pour confirmer, saisissez le mot {CONFIRM_WORD} en majuscules."
        if error is None:
            _delete(db, services, actor, patient, blob_keys)
        result = LifecycleResult(patient_view(patient), error)
    for key in blob_keys:
        services.blobs.delete(key)
    return result


def _delete(db: Session, services: Services, actor: Actor, patient: Patient, blob_keys: list[str]) -> int:
    """Destroy the space now (keys first), inside the caller's transaction; the number of documents destroyed."""
    count = _destroy(db, services, patient, blob_keys)
    audit.record(db, actor, "space.deleted", patient_id=patient.id, resource_type="space", details={"documents": count})
    _tell(
        services,
        patient,
        "Votre espace santé Carnet est supprimé",
        "Votre espace santé et tous ses documents ont été supprimés définitivement, comme vous l'avez "
        "demandé. Cette opération ne peut pas être annulée.",
    )
    patient.email = None
    return count


def _destroy(db: Session, services: Services, patient: Patient, blob_keys: list[str]) -> int:
    keyring.destroy_data_key(db, patient.id)
    export_requests.erase_exports(services, db, patient.id)
    erased = erasure.erase_space(db, patient.id)
    profile_erasure.erase_profile(db, patient.id)
    agenda_erasure.erase_agenda(db, patient.id)
    blob_keys += erased.blob_keys
    blob_keys += messaging_erasure.erase_messages(db, patient.id)
    accounts = list(db.scalars(select(Account.id).where(Account.patient_id == patient.id)))
    auth.end_sessions_of(db, accounts)
    db.execute(delete(Account).where(Account.patient_id == patient.id))
    patient.status = PatientStatus.DELETED
    patient.closed_at = patient.closed_at or utcnow()
    return erased.documents


def purge_archives(services: Services, now: datetime | None = None) -> int:
    """Job: spaces closed more than 10 years ago are destroyed like a deletion request."""
    now = now or utcnow()
    limit = now - timedelta(days=365 * ARCHIVE_YEARS)
    blob_keys: list[str] = []
    purged = 0
    with services.db.unit_of_work() as db:
        for patient in db.scalars(
            select(Patient).where(Patient.status == PatientStatus.CLOSED, Patient.closed_at <= limit)
        ):
            _destroy(db, services, patient, blob_keys)
            audit.record(db, Actor.system(), "space.purged", patient_id=patient.id, resource_type="space")
            purged += 1
    for key in blob_keys:
        services.blobs.delete(key)
    return purged
