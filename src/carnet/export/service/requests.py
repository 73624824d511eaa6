"""Asking for the archive, following it, downloading it (ENR-7) — the use cases of the pages.

The person (or a legal representative, for a minor — never a caregiver: FAM-3; the policy's ``SPACE_EXPORT``) asks;
asking again while one is being prepared returns that one. The job (``build``) prepares it and e-mails the asker
without any health content. Downloading asks the second factor afresh (TOTP, or a code e-mailed for it) and streams
the sealed file, opened chunk by chunk; the archive expires after ``VALID_DAYS`` days and is then deleted.
Every act is in the history: asked, ready (by the service), downloaded.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.bootstrap import Services
from carnet.errors import CarnetError
from carnet.export.model import archive
from carnet.export.tables import Export
from carnet.hall import audit
from carnet.hall.actors import Actor
from carnet.hall.guard import guard
from carnet.hall.policy import Action, Resource
from carnet.identity.service import auth
from carnet.people.service.lookup import PatientView, patient_view
from carnet.people.tables import Patient
from carnet.storage import keyring
from carnet.storage.sealed_stream import read_sealed
from carnet.storage.types import utcnow

WAITING = ("demandee", "en_cours")
RESOURCE = Resource("export")


class DownloadRefused(CarnetError):
    """The archive cannot be downloaded now (French reason)."""


@dataclass(frozen=True)
class ExportView:
    id: str
    status: str  # demandee | en_cours | prete | expiree | echec
    requested_at: datetime
    requested_by: str
    ready_at: datetime | None
    expires_at: datetime | None
    size: int
    files: int
    resources: int
    downloads: int

    @property
    def waiting(self) -> bool:
        return self.status in WAITING

    @property
    def ready(self) -> bool:
        return self.status == "prete"


@dataclass(frozen=True)
class ExportPage:
    patient: PatientView
    latest: ExportView | None


def exports_folder(services: Services) -> Path:
    return services.settings.resolved_data_dir / "exports"


def sealed_path(services: Services, export_id: str) -> Path:
    return exports_folder(services) / f"{export_id}.zip.sealed"


def purpose(export_id: str) -> str:
    return f"export:{export_id}"


def view_of(row: Export) -> ExportView:
    return ExportView(
        row.id,
        row.status,
        row.requested_at,
        row.requester_label,
        row.ready_at,
        row.expires_at,
        row.size,
        row.files,
        row.resources,
        row.downloads,
    )


def _latest(db: Session, patient_id: str) -> Export | None:
    return db.scalars(
        select(Export).where(Export.patient_id == patient_id).order_by(Export.requested_at.desc()).limit(1)
    ).first()


def note_step(db: Session, actor: Actor, patient_id: str, export_id: str, op: str, done: str) -> None:
    audit.record(
        db,
        actor,
        str(Action.SPACE_EXPORT),
        patient_id=patient_id,
        resource_type="export",
        resource_id=export_id,
        details={"op": op, "fait": done},
    )


def page(services: Services, actor: Actor, patient_id: str) -> ExportPage:
    with services.db.unit_of_work() as db:
        guard(db, actor, patient_id, Action.SPACE_EXPORT, RESOURCE)
        patient = db.get(Patient, patient_id)
        assert patient is not None
        latest = _latest(db, patient_id)
        return ExportPage(patient_view(patient), view_of(latest) if latest else None)


def request(services: Services, actor: Actor, patient_id: str) -> tuple[ExportView, bool]:
    """Ask for the archive; (the export, whether it is a new one): one being prepared is not started twice."""
    with services.db.unit_of_work() as db:
        guard(db, actor, patient_id, Action.SPACE_EXPORT, RESOURCE)
        waiting = db.scalars(
            select(Export).where(Export.patient_id == patient_id, Export.status.in_(WAITING)).limit(1)
        ).first()
        if waiting is not None:
            return view_of(waiting), False
        row = Export(
            patient_id=patient_id,
            requester_account_id=actor.id or "",
            requester_patient_id=actor.patient_id or patient_id,
            requester_label=actor.label[:200],
            status="demandee",
            requested_at=utcnow(),
        )
        db.add(row)
        db.flush()
        note_step(db, actor, patient_id, row.id, "demande", "a demandé l'archive de toutes les données de l'espace")
        return view_of(row), True


def send_code(services: Services, actor: Actor, patient_id: str) -> bool | None:
    """E-mail a code to confirm the download (None: too many codes sent, wait; False: queued, may be late)."""
    with services.db.unit_of_work() as db:
        guard(db, actor, patient_id, Action.SPACE_EXPORT, RESOURCE)
        return auth.send_confirmation_code(services, db, actor)


@dataclass(frozen=True)
class Download:
    filename: str
    size: int
    chunks: Iterator[bytes]


def download(services: Services, actor: Actor, patient_id: str, export_id: str, code: str) -> Download:
    """The archive's bytes, once the second factor is confirmed; ``DownloadRefused`` otherwise."""
    with services.db.unit_of_work() as db:
        guard(db, actor, patient_id, Action.SPACE_EXPORT, RESOURCE)
        row = db.get(Export, export_id) if len(export_id) <= 36 else None
        now = utcnow()
        if row is None or row.patient_id != patient_id:
            raise DownloadRefused("Archive introuvable.")
        if row.status != "prete" or (row.expires_at is not None and row.expires_at <= now):
            raise DownloadRefused("Cette archive n'est plus disponible : demandez-en une nouvelle.")
        if not auth.confirm_second_factor(services, db, actor, code):
            raise DownloadRefused("Code incorrect ou expiré : demandez un nouveau code et recommencez.")
        row.downloads += 1
        note_step(db, actor, patient_id, row.id, "telechargement", "a téléchargé l'archive de l'espace")
        key = keyring.data_key(db, services.keyring, patient_id, create=False)
        patient = db.get(Patient, patient_id)
        assert patient is not None
        day = now.strftime("%Y-%m-%d")
        name = archive.safe_name(f"carnet-{patient.first_names.split(' ')[0]}-{patient.birth_name}-{day}.zip")
        size = row.size
    path = sealed_path(services, export_id)
    return Download(name, size, read_sealed(path, key, purpose(export_id)))


def expire(services: Services, now: datetime | None = None) -> int:
    """Job: archives past their 7 days deleted; one stuck in preparation for a day marked failed."""
    now = now or utcnow()
    done = 0
    with services.db.unit_of_work() as db:
        for row in db.scalars(select(Export).where(Export.status == "prete", Export.expires_at <= now)):
            sealed_path(services, row.id).unlink(missing_ok=True)
            row.status = "expiree"
            done += 1
        stuck = now - timedelta(days=1)
        for row in db.scalars(select(Export).where(Export.status == "en_cours", Export.started_at <= stuck)):
            sealed_path(services, row.id).unlink(missing_ok=True)
            row.status, row.error = "echec", "préparation interrompue"
    return done


def erase_exports(services: Services, db: Session, patient_id: str) -> None:
    """With the space (ENR-6): its archives' rows and files."""
    for row in db.scalars(select(Export).where(Export.patient_id == patient_id)):
        sealed_path(services, row.id).unlink(missing_ok=True)
        db.delete(row)
