"""The letters (ENR-2): the queue of people without a usable e-mail, print-ready batches, one letter again.

Letters are exactly-once per batch: a batch is claimed (``printing``, batch id stored), its PDF written
to a temporary file then renamed, then the batch is marked ``letter``; a crash in between renders the
same batch (same id, same dates, same file) again. A person without e-mail waits as ``to_print``; a
bounced or given-up e-mail becomes a letter (``bounced``, ``to_print``); a new code asked for by post
waits as ``pending`` on the letter channel (see activation).

The operator's actions on letters go through the hall (``ENROLMENT_MANAGE`` for a campaign's batches,
``ENROLMENT_LETTER`` for one person's letter, which carries their code) and are audited.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session

from carnet.bootstrap import Services
from carnet.config import Settings
from carnet.enrolment.model import activation_codes as codes
from carnet.enrolment.model.opposition import creation_day, last_day, objection_deadline, paris_day
from carnet.enrolment.service import letters as pdf
from carnet.enrolment.service.campaigns.queue import (
    LEASE,
    LETTER_BATCH,
    SERVICE_SPACE,
    WAITING_LETTER,
    CampaignError,
    claim,
)
from carnet.enrolment.service.identify import parse_birth_date, parse_nir_field, patient_by_identity
from carnet.enrolment.tables import Campaign, Invitation
from carnet.hall import audit
from carnet.hall.actors import Actor
from carnet.hall.guard import guard
from carnet.hall.policy import Action, Resource
from carnet.hall.vocabulary import InvitationStatus
from carnet.people.model.identifiers import display_name, is_minor
from carnet.people.tables import Patient
from carnet.storage.types import new_id, utcnow


@dataclass(frozen=True)
class LetterBatch:
    campaign_id: str
    batch: str
    count: int
    path: Path


def letters_dir(services: Services) -> Path:
    return services.settings.resolved_data_dir / "letters"


def batch_path(services: Services, campaign_id: str, batch: str) -> Path:
    return letters_dir(services) / campaign_id / f"{batch}.pdf"


def contact(services: Services) -> pdf.Contact:
    return pdf.Contact(services.settings.base_url, services.settings.support_phone)


def _address(patient: Any) -> tuple[str, ...]:
    lines = [line.strip() for line in (patient.address or "").replace("\r", "").split("\n") if line.strip()]
    town = " ".join(part for part in (patient.postal_code or "", (patient.city or "").upper()) if part)
    return (*lines, town) if town else tuple(lines)


def _addressee(patient: Any, minor: bool) -> str:
    name = display_name(patient.first_names, patient.birth_name, patient.used_name)
    if minor:
        return name
    civility = {"F": "Madame", "M": "Monsieur"}.get(patient.sex, "")
    return f"{civility} {name}".strip()


def _letter_dates(produced: datetime, deadline: datetime, expires: datetime) -> pdf.LetterDates:
    return pdf.LetterDates(
        produced=paris_day(produced),
        objection_last_day=last_day(deadline),
        creation_day=creation_day(deadline),
        code_valid_until=paris_day(expires),
    )


# --- the queue of letters -------------------------------------------------------------------------------


def _waiting_letters(campaign_id: str) -> Select[Any]:
    """The letters a campaign still owes, in postal-code order (the printer's bundles follow the postal sorting)."""
    return (
        select(Invitation.id)
        .join(Patient, Patient.id == Invitation.patient_id)
        .where(WAITING_LETTER, Invitation.campaign_id == campaign_id)
        .order_by(Patient.postal_code, Invitation.id)
    )


def _claim_letters(services: Services, ids: Sequence[str], now: datetime) -> str | None:
    """Claim these letters (those still waiting) as one new batch; returns its id."""
    batch = new_id()
    with services.db.unit_of_work() as db:
        _, claimed = claim(
            db,
            select(Invitation.id).where(Invitation.id.in_(ids), WAITING_LETTER),
            WAITING_LETTER,
            {
                "status": "printing",
                "letter_batch": batch,
                "sent_at": now,
                # a letter sent again (a new code was asked for) keeps the period of the first sending
                "objection_deadline": func.coalesce(Invitation.objection_deadline, objection_deadline(now)),
                "code_expires_at": now + codes.VALIDITY,
            },
        )
    return batch if claimed else None


def _write_private(path: Path, data: bytes) -> None:
    """Atomically, readable by the owner only: the letters carry activation codes."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def render_letters(services: Services, batch: str) -> LetterBatch:
    """Render one claimed batch into ONE print-ready PDF (``letters/<campaign>/<batch>.pdf``, 0600)."""
    with services.db.unit_of_work() as db:
        rows = db.execute(
            select(Invitation, Patient)
            .join(Patient, Patient.id == Invitation.patient_id)
            .where(
                Invitation.status == InvitationStatus.PRINTING, Invitation.letter_batch == batch
            )  # by the batch index
            .order_by(Patient.postal_code, Invitation.id)
        ).all()
    if not rows:
        raise CampaignError("Lot de courriers inconnu ou déjà produit.")
    first: Invitation = rows[0][0]
    book = pdf.LetterBook(contact(services), f"Courriers Carnet — lot {batch[:8]}")
    for index, (invitation, patient) in enumerate(rows, start=1):
        assert invitation.sent_at is not None and invitation.objection_deadline is not None
        dates = _letter_dates(invitation.sent_at, invitation.objection_deadline, invitation.code_expires_at)
        minor = is_minor(patient.birth_date, dates.produced)
        code = services.keys.unseal(invitation.code_sealed, codes.SEAL_PURPOSE)
        book.add(
            pdf.Letter(
                addressee=_addressee(patient, minor),
                address_lines=_address(patient),
                code=codes.format_code(code),
                minor=minor,
                reference=f"{batch[:8].upper()}-{index:04d}",
            ),
            dates,
        )
    path = batch_path(services, first.campaign_id, batch)
    _write_private(path, book.finish())
    with services.db.unit_of_work() as db:
        db.execute(
            update(Invitation)
            .where(Invitation.letter_batch == batch, Invitation.status == InvitationStatus.PRINTING)
            .values(status=InvitationStatus.LETTER),
            execution_options={"synchronize_session": False},
        )
    return LetterBatch(first.campaign_id, batch, len(rows), path)


def _stale_batches(services: Services, campaign_id: str | None, now: datetime) -> list[str]:
    """Batches a crashed run left in ``printing`` for longer than ``LEASE``."""
    with services.db.unit_of_work() as db:
        query = select(Invitation.letter_batch).where(
            Invitation.status == InvitationStatus.PRINTING,
            Invitation.sent_at < now - LEASE,
            Invitation.letter_batch.is_not(None),
        )
        if campaign_id:
            query = query.where(Invitation.campaign_id == campaign_id)
        return [batch for batch in db.scalars(query.distinct()) if batch]


def render_pending_letters(
    services: Services,
    campaign_id: str | None = None,
    now: datetime | None = None,
    batch_size: int = LETTER_BATCH,
    max_batches: int | None = None,
    stale: bool = True,
) -> list[LetterBatch]:
    """Produce the letters waiting (no e-mail, bounced, or given up), ``batch_size`` per PDF.

    Batches a crashed run left in ``printing`` for longer than ``LEASE`` are rendered again first (unless ``stale``
    is false: another process did). The service's own work (job, CLI after its check): operators go through
    ``produce_letters``. Each batch is stamped with the time it is claimed (or ``now``, when given): a run longer than
    ``LEASE`` must not leave its batch in progress looking abandoned to a run started after it.
    """
    fixed = now
    now = now or utcnow()
    done = [render_letters(services, batch) for batch in _stale_batches(services, campaign_id, now)] if stale else []
    if campaign_id:
        owing = [campaign_id]
    else:
        with services.db.unit_of_work() as db:
            owing = list(db.scalars(select(Invitation.campaign_id).where(WAITING_LETTER).distinct()))
    for campaign in owing:
        # Sorted once and spooled, then claimed a batch at a time: memory stays flat whatever the campaign's size, and
        # no snapshot is held while they are rendered (the sending beside them stays HOT).
        with contextlib.closing(services.db.spooled_pages(_waiting_letters(campaign), batch_size)) as pages:
            for page in pages:
                if max_batches is not None and len(done) >= max_batches:
                    return done
                claimed = _claim_letters(services, [row[0] for row in page], fixed or utcnow())
                if claimed is not None:
                    done.append(render_letters(services, claimed))
    return done


def _render_process(settings: Settings, campaign_id: str | None, batch_size: int) -> list[LetterBatch]:
    """One letter-rendering process (spawned): its own database connections."""
    from carnet.bootstrap import build_services

    services = build_services(settings)
    try:
        return render_pending_letters(services, campaign_id, batch_size=batch_size, stale=False)
    finally:
        services.db.dispose()


def render_with_processes(
    services: Services, campaign_id: str | None, batch_size: int = LETTER_BATCH, processes: int = 1
) -> list[LetterBatch]:
    """``carnet campaign letters --processus N``: N processes render side by side (one Python process keeps one core
    busy at most). Each walks the same queue; a batch is claimed before it is rendered, so a batch another process
    claimed is passed by and every letter is rendered once. The batches a crashed run left are rendered here first,
    once: each process would otherwise find them too."""
    if processes <= 1:
        return render_pending_letters(services, campaign_id, batch_size=batch_size)
    done = [render_letters(services, batch) for batch in _stale_batches(services, campaign_id, utcnow())]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=context) as pool:
        futures = [pool.submit(_render_process, services.settings, campaign_id, batch_size) for _ in range(processes)]
        return done + [batch for future in futures for batch in future.result()]


def produce_letters(
    services: Services, actor: Actor, campaign_id: str, max_batches: int | None = None
) -> list[LetterBatch]:
    """An operator produces the letters a campaign still owes (the hall decides first; audited).

    An unknown campaign produces nothing."""
    with services.db.unit_of_work() as db:
        guard(db, actor, SERVICE_SPACE, Action.ENROLMENT_MANAGE, Resource("letters", campaign_id))
        if db.get(Campaign, campaign_id) is None:
            return []
    batches = render_pending_letters(services, campaign_id, max_batches=max_batches)
    with services.db.unit_of_work() as db:
        audit.record(
            db,
            actor,
            "letters.produced",
            resource_type="campaign",
            resource_id=campaign_id,
            details={"batches": len(batches), "letters": sum(batch.count for batch in batches)},
        )
    return batches


def letter_batch_file(services: Services, actor: Actor, campaign_id: str, batch: str) -> Path:
    """The PDF of a finished batch, for the printer (operators only; the download is audited)."""
    with services.db.unit_of_work() as db:
        guard(db, actor, SERVICE_SPACE, Action.ENROLMENT_MANAGE, Resource("letters", batch))
        count = db.scalar(
            select(func.count()).where(
                Invitation.campaign_id == campaign_id,
                Invitation.letter_batch == batch,
                Invitation.status == InvitationStatus.LETTER,
            )
        )
        path = batch_path(services, campaign_id, batch)
        if not count or not path.is_file():
            raise CampaignError("Ce lot de courriers n'existe pas.")
        audit.record(
            db,
            actor,
            "letters.downloaded",
            resource_type="letters",
            resource_id=batch,
            details={"campaign": campaign_id, "letters": count},
        )
    return path


# --- one person's letter again ----------------------------------------------------------------------------


def _reprint(db: Session, services: Services, actor: Actor, patient_id: str, now: datetime) -> bytes:
    """One person's letter again, from the sealed code (same code, same deadlines), audited."""
    guard(db, actor, patient_id, Action.ENROLMENT_LETTER, Resource("invitation"))
    invitation = db.scalar(select(Invitation).where(Invitation.patient_id == patient_id))
    patient = db.get(Patient, patient_id)
    if (
        invitation is None
        or patient is None
        or invitation.status not in {"sent", "letter", "printing"}
        or invitation.sent_at is None
        or invitation.objection_deadline is None
    ):
        raise CampaignError("Aucune invitation n'a encore été envoyée à cette personne.")
    audit.record(
        db,
        actor,
        "enrolment.letter_reprinted",
        patient_id=patient_id,
        resource_type="invitation",
        resource_id=invitation.id,
    )
    dates = _letter_dates(now, invitation.objection_deadline, invitation.code_expires_at)
    minor = is_minor(patient.birth_date, paris_day(now))
    letter = pdf.Letter(
        addressee=_addressee(patient, minor),
        address_lines=_address(patient),
        code=codes.format_code(services.keys.unseal(invitation.code_sealed, codes.SEAL_PURPOSE)),
        minor=minor,
        reference=f"DUPLICATA-{paris_day(now):%Y%m%d}",
    )
    return pdf.render_letters([(letter, dates)], contact(services), "Courrier Carnet (duplicata)")


def letter_for_patient(services: Services, actor: Actor, patient_id: str, now: datetime | None = None) -> bytes:
    """One person's letter again (the PDF), for the person known by their id."""
    with services.db.unit_of_work() as db:
        return _reprint(db, services, actor, patient_id, now or utcnow())


def reprint_letter(services: Services, actor: Actor, nir: str, birth: str, now: datetime | None = None) -> bytes:
    """An operator prints a person's letter again, the person found by NIR + date of birth (operators only,
    checked before any look-up). Raises ``FormError``, ``NotIdentified`` or ``CampaignError``."""
    nir_value, born = parse_nir_field(nir), parse_birth_date(birth)
    with services.db.unit_of_work() as db:
        guard(db, actor, SERVICE_SPACE, Action.ENROLMENT_MANAGE, Resource("person"))
        patient = patient_by_identity(db, nir_value, born)
        return _reprint(db, services, actor, patient.id, now or utcnow())
