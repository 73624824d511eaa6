"""Invitation campaigns by territory (ENR-2) and the automatic creation of spaces (ENR-3).

The ``invitations`` table is the queue; every step is a short transaction, so the work survives a
restart and several workers (the server's job runner, ``carnet campaign send``) can share it.

States of an invitation::

    e-mail:  pending ──claim──▶ sending ──delivered──▶ sent
                ▲                  │ 5xx for this recipient ──▶ bounced (channel becomes letter)
                └── temporary failure (4xx, server down), or a claim older than LEASE (crash)
    letter:  to_print | bounced | pending ──claim──▶ printing ──PDF written──▶ letter

A person without e-mail waits as ``to_print``, not ``pending``: the e-mail queue is read through the
(status, campaign) index, and 69,000 letters waiting among the pending rows would be walked over again
at every claim. (``pending`` letters still exist: a new code asked for by post, see activation.)

At-least-once e-mail, with a bound. A worker claims ``CHUNK`` e-mails (status ``sending``, claim time
in ``sent_at``) and commits; sends them over one SMTP connection; then marks them in one more
transaction. SMTP has no two-phase commit, so a crash between the first delivery of a chunk and its
marking leaves up to ``CHUNK`` messages delivered but still ``sending``: once the claim is older than
``LEASE`` they are sent again. Hence: **a crash loses no e-mail and re-sends at most CHUNK = 50 e-mails
per SMTP connection in flight** (the job runner uses 2, ``carnet campaign send`` 4 by default: at most 100
or 200 duplicates); each of those persons receives the same e-mail, with the same code, a second time.
50 is the smallest chunk that keeps the two transactions and the SMTP connection of each chunk at a
few per cent of its sending time (≈ 3 ms against 50 e-mails of 1–3 ms each). A worker stops claiming
when its time budget is spent, and never keeps a chunk longer than a few SMTP time-outs, far below
``LEASE``.

Letters are exactly-once per batch: a batch is claimed (``printing``, batch id stored), its PDF written
to a temporary file then renamed, then the batch is marked ``letter``; a crash in between renders the
same batch (same id, same dates, same file) again.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, case, exists, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from carnet.bootstrap import Services
from carnet.config import Settings
from carnet.enrolment.model import activation_codes as codes
from carnet.enrolment.model.opposition import is_minor, last_day, objection_deadline, paris_day
from carnet.enrolment.service import letters as pdf
from carnet.enrolment.service.messages import InvitationTemplates
from carnet.enrolment.tables import Campaign, Invitation, Objection
from carnet.hall import audit
from carnet.hall.actors import Actor
from carnet.hall.guard import guard
from carnet.hall.policy import Action, Resource
from carnet.mail.outbound import Delivery, Mail
from carnet.people.model.identifiers import IdentifierError, parse_nir
from carnet.people.tables import Patient
from carnet.storage.types import new_id, utcnow

log = logging.getLogger("carnet.campaigns")

CHUNK = 50  # e-mails per claim: the at-least-once bound, per SMTP connection
LEASE = timedelta(minutes=10)  # a claim older than this was abandoned by a crashed worker
MAX_ATTEMPTS = 5  # temporary failures before the person gets a letter instead
LETTER_BATCH = 1000  # letters per PDF for the printer
INSERT_PAGE = 5000  # invitations created per transaction
OPEN_CHUNK = 500  # spaces opened per transaction by the scheduled job
BOUNCE = "rebond"  # prefix of ``last_error`` for a permanent refusal
SERVICE_SPACE = audit.NO_PATIENT_CHAIN  # campaign-wide decisions concern no one's space

DEPARTEMENTS = frozenset(
    {f"{n:02d}" for n in range(1, 96) if n != 20} | {"2A", "2B"} | {str(n) for n in range(971, 977)}
)


class CampaignError(Exception):
    """A refusal to show as is (French)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def parse_departements(value: str | Iterable[str]) -> list[str]:
    """« 2a, 2B » → ["2A", "2B"]; unknown codes are refused by name."""
    items = value.replace(";", ",").split(",") if isinstance(value, str) else list(value)
    result: list[str] = []
    for item in items:
        code = item.strip().upper()
        if not code:
            continue
        if code.isdigit() and len(code) == 1:
            code = "0" + code
        if code not in DEPARTEMENTS:
            raise CampaignError(f"Département inconnu : « {item.strip()[:5]} » (exemples : 2A, 2B, 06, 971).")
        if code not in result:
            result.append(code)
    if not result:
        raise CampaignError("Indiquez au moins un département (par exemple 2A,2B).")
    return result


def display_name(first_names: str, birth_name: str, used_name: str | None) -> str:
    return f"{first_names} {used_name or birth_name}".strip()


# --- starting a campaign --------------------------------------------------------------------------------


def start_campaign(
    services: Services, departements: str | Iterable[str], actor: Actor, now: datetime | None = None
) -> Campaign:
    """Invite every registered person of these départements who has no invitation yet.

    Set-based: the people are read in one query, then their invitations inserted in bulk, ``INSERT_PAGE``
    per transaction (a crash keeps the pages done; starting again invites the others into a new campaign;
    an invitation made meanwhile by someone else is skipped, not duplicated). The e-mail channel is
    chosen when the person has an address.
    """
    deps = parse_departements(departements)
    now = now or utcnow()
    with services.db.unit_of_work() as db:
        guard(db, actor, SERVICE_SPACE, Action.ENROLMENT_MANAGE, Resource("campaign"))
        campaign = Campaign(departements=deps, started_at=now, started_by=actor.label)
        db.add(campaign)
        db.flush()
        audit.record(
            db,
            actor,
            "campaign.started",
            resource_type="campaign",
            resource_id=campaign.id,
            details={"departements": deps},
        )
    expires = now + codes.VALIDITY
    keys = services.keys
    has_email = Patient.email.is_not(None) & Patient.email.like("%@%")
    with services.db.unit_of_work() as db:  # one read (≈ 50 MB for 345,000 people), no sort
        eligible = db.execute(
            select(Patient.id, has_email).where(
                Patient.status == "registered",
                Patient.departement.in_(deps),
                ~exists().where(Invitation.patient_id == Patient.id),
            )
        ).all()
    for start in range(0, len(eligible), INSERT_PAGE):
        rows = []
        for patient_id, emailed in eligible[start : start + INSERT_PAGE]:
            code = codes.new_code()
            channel = "email" if emailed else "letter"
            rows.append(
                {
                    "id": new_id(),
                    "patient_id": patient_id,
                    "campaign_id": campaign.id,
                    "channel": channel,
                    "status": "pending" if channel == "email" else "to_print",
                    "code_hash": keys.mac(codes.MAC_PURPOSE, code),
                    "code_sealed": keys.seal(code, codes.SEAL_PURPOSE),
                    "code_expires_at": expires,
                    "attempts": 0,
                }
            )
        with services.db.unit_of_work() as db:
            insert_fn = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
            db.connection().execute(insert_fn(Invitation).on_conflict_do_nothing(), rows)
    invited = len(eligible)
    log.info("campagne %s (%s) : %d personnes invitées", campaign.id, ",".join(deps), invited)
    return campaign


# --- sending e-mails ------------------------------------------------------------------------------------


@dataclass
class SendReport:
    sent: int = 0
    bounced: int = 0
    retried: int = 0  # temporary failures, tried again later
    to_letter: int = 0  # given up after MAX_ATTEMPTS temporary failures: a letter instead

    @property
    def handled(self) -> int:
        return self.sent + self.bounced + self.retried + self.to_letter

    def add(self, other: SendReport) -> None:
        self.sent += other.sent
        self.bounced += other.bounced
        self.retried += other.retried
        self.to_letter += other.to_letter


@dataclass(frozen=True)
class _Claimed:
    id: str
    code_sealed: str
    attempts: int
    email: str
    name: str
    minor: bool


def _is_sqlite(db: Session) -> bool:
    return db.get_bind().dialect.name == "sqlite"


def _state() -> Any:
    """``status`` behind an expression: in "WHERE id IN (…) AND status = …" SQLite would otherwise walk the
    status index — every queued row, at each claim — instead of looking the listed ids up."""
    return func.coalesce(Invitation.status, "")


def _claim(db: Session, pick: Any, still: Any, values: dict[str, Any]) -> tuple[list[Any], set[str]]:
    """Lock the rows ``pick`` selects (first column: the invitation id; rows locked by another worker are
    skipped on PostgreSQL), then move them on with ``values``; returns (rows, ids actually claimed).

    Two statements, not ``UPDATE … WHERE id IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED)``: PostgreSQL
    may run such a subquery more than once and so claim more than ``n`` rows. ``still`` re-checks the
    state at write time, so a row another process claimed in between is not taken twice.
    """
    if _is_sqlite(db):  # a write first takes SQLite's write lock: another process cannot pick the same rows
        db.execute(text("UPDATE invitations SET attempts = attempts WHERE 0"))
    else:
        pick = pick.with_for_update(skip_locked=True, of=Invitation)
    rows = list(db.execute(pick))
    if not rows:
        return [], set()
    claimed = db.scalars(
        update(Invitation)
        .where(Invitation.id.in_([row[0] for row in rows]), still)
        .values(**values)
        .returning(Invitation.id),
        execution_options={"synchronize_session": False},
    )
    return rows, set(claimed)


def recover_abandoned(services: Services, now: datetime) -> int:
    """Claims older than ``LEASE`` belong to a crashed worker: queue them again."""
    with services.db.unit_of_work() as db:
        result = db.execute(
            update(Invitation)
            .where(Invitation.status == "sending", Invitation.sent_at < now - LEASE)
            .values(status="pending", sent_at=None),
            execution_options={"synchronize_session": False},
        )
    count = int(getattr(result, "rowcount", 0) or 0)
    if count:
        log.warning("%d envoi(s) abandonné(s) par un processus interrompu remis en file", count)
    return count


def _claim_emails(services: Services, size: int, now: datetime) -> list[_Claimed]:
    with services.db.unit_of_work() as db:
        pick = (
            select(
                Invitation.id,
                Invitation.code_sealed,
                Invitation.attempts,
                Patient.email,
                Patient.first_names,
                Patient.birth_name,
                Patient.used_name,
                Patient.birth_date,
            )
            .join(Patient, Patient.id == Invitation.patient_id)
            .where(Invitation.status == "pending", Invitation.channel == "email")
            .limit(size)
        )
        rows, claimed = _claim(db, pick, _state() == "pending", {"status": "sending", "sent_at": now})
    today = paris_day(now)
    return [
        _Claimed(
            row.id,
            row.code_sealed,
            row.attempts,
            row.email,
            display_name(row.first_names, row.birth_name, row.used_name),
            is_minor(row.birth_date, today),
        )
        for row in rows
        if row.id in claimed
    ]


def _settle(services: Services, claimed: Sequence[_Claimed], results: Sequence[Delivery], now: datetime) -> SendReport:
    report = SendReport()
    deadline = objection_deadline(now, "email")
    delivered = [item.id for item, result in zip(claimed, results, strict=True) if result.delivered]
    with services.db.unit_of_work() as db:
        if delivered:
            db.execute(
                update(Invitation)
                .where(Invitation.id.in_(delivered), Invitation.status == "sending")
                .values(
                    status="sent",
                    sent_at=now,
                    objection_deadline=deadline,
                    code_expires_at=now + codes.VALIDITY,
                    last_error=None,
                ),
                execution_options={"synchronize_session": False},
            )
            report.sent = len(delivered)
        for item, result in zip(claimed, results, strict=True):
            if result.delivered:
                continue
            values: dict[str, Any] = {"sent_at": None, "last_error": result.error[:280]}
            if result.permanent:
                values.update(status="bounced", channel="letter", last_error=f"{BOUNCE} : {result.error}"[:280])
                report.bounced += 1
            elif item.attempts + 1 >= MAX_ATTEMPTS:
                values.update(status="to_print", channel="letter", attempts=item.attempts + 1)
                values["last_error"] = f"abandon après {MAX_ATTEMPTS} essais : {result.error}"[:280]
                report.to_letter += 1
            else:
                values.update(status="pending", attempts=item.attempts + 1)
                report.retried += 1
            db.execute(
                update(Invitation).where(Invitation.id == item.id, Invitation.status == "sending").values(**values),
                execution_options={"synchronize_session": False},
            )
    return report


def _mails(services: Services, claimed: Sequence[_Claimed], now: datetime) -> list[Mail]:
    deadline = objection_deadline(now, "email")
    settings = services.settings
    templates = InvitationTemplates(
        creation_day=paris_day(deadline),
        objection_last_day=last_day(deadline),
        code_valid_until=paris_day(now + codes.VALIDITY),
        base_url=settings.base_url,
        phone=settings.support_phone,
    )
    return [
        templates.mail(
            item.email,
            item.name,
            codes.format_code(services.keys.unseal(item.code_sealed, codes.SEAL_PURPOSE)),
            item.minor,
        )
        for item in claimed
    ]


def send_pending(
    services: Services,
    now: datetime | None = None,
    limit: int | None = None,
    connections: int = 1,
    max_seconds: float | None = None,
    on_progress: Callable[[SendReport], None] | None = None,
) -> SendReport:
    """The durable worker step: send queued invitation e-mails, ``CHUNK`` per claim, until the queue is empty.

    ``connections`` workers run side by side, each with its own SMTP connection per chunk; ``limit``
    caps the e-mails handled, ``max_seconds`` the time spent (the job runner keeps its other jobs going).
    ``now`` is injectable for tests; real runs read the clock for every chunk.
    """
    clock: Callable[[], datetime] = (lambda: now) if now is not None else utcnow
    recover_abandoned(services, clock())
    total = SendReport()
    lock = threading.Lock()
    started = time.monotonic()
    budget = {"claims": limit if limit is not None else -1}
    stop = threading.Event()

    def take(size: int) -> int:
        with lock:
            if budget["claims"] < 0:
                return size
            size = min(size, budget["claims"])
            budget["claims"] -= size
            return size

    def worker() -> None:
        while not stop.is_set():
            if max_seconds is not None and time.monotonic() - started > max_seconds:
                return
            size = take(CHUNK)
            if size <= 0:
                return
            moment = clock()
            claimed = _claim_emails(services, size, moment)
            if not claimed:
                return
            mails = _mails(services, claimed, moment)
            results = services.mailer.send_many(mails)
            report = _settle(services, claimed, results, moment)
            with lock:
                total.add(report)
                if on_progress:
                    on_progress(total)
            if report.sent == 0 and report.bounced == 0:  # the server is down or refuses us: later
                stop.set()

    if connections <= 1:
        worker()
        return total
    errors: list[BaseException] = []

    def guarded() -> None:
        try:
            worker()
        except BaseException as exc:  # re-raised in the caller below
            errors.append(exc)
            stop.set()

    threads = [threading.Thread(target=guarded, name=f"carnet-envoi-{n}") for n in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return total


def _send_process(settings: Settings, connections: int) -> tuple[int, int, int, int]:
    """One sending process (spawned): its own database connections and SMTP connections."""
    from carnet.bootstrap import build_services

    services = build_services(settings)
    try:
        report = send_pending(services, connections=connections)
    finally:
        services.db.dispose()
    return report.sent, report.bounced, report.retried, report.to_letter


def email_backlog(services: Services) -> int:
    with services.db.unit_of_work() as db:
        return int(
            db.scalar(
                select(func.count()).where(Invitation.status.in_(("pending", "sending")), Invitation.channel == "email")
            )
            or 0
        )


def send_with_processes(
    services: Services,
    processes: int,
    connections: int,
    on_progress: Callable[[SendReport], None] | None = None,
    poll_seconds: float = 1.0,
) -> SendReport:
    """``carnet campaign send --processus N``: N sending processes side by side (one Python process keeps one
    core busy at most); the claims keep them apart, on SQLite as on PostgreSQL. Progress is read from the queue."""
    if processes <= 1:
        return send_pending(services, connections=connections, on_progress=on_progress)
    start = email_backlog(services)
    total = SendReport()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=context) as pool:
        futures = [pool.submit(_send_process, services.settings, connections) for _ in range(processes)]
        pending: set[Future[tuple[int, int, int, int]]] = set(futures)
        while pending:
            _, pending = wait(pending, timeout=poll_seconds)
            if on_progress:
                on_progress(SendReport(sent=max(start - email_backlog(services), 0)))
        for future in futures:
            sent, bounced, retried, to_letter = future.result()
            total.add(SendReport(sent, bounced, retried, to_letter))
    return total


# --- letters --------------------------------------------------------------------------------------------


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
        creation_day=paris_day(deadline),
        code_valid_until=paris_day(expires),
    )


LETTER_QUEUE = ("to_print", "bounced", "pending")
WAITING_LETTER = and_(Invitation.channel == "letter", Invitation.status.in_(LETTER_QUEUE))
STILL_WAITING = and_(Invitation.channel == "letter", _state().in_(LETTER_QUEUE))


def _waiting_letters(services: Services, campaign_id: str) -> list[str]:
    """The letters a campaign still owes, in postal-code order (the printer's bundles follow the postal sorting)."""
    with services.db.unit_of_work() as db:
        return list(
            db.scalars(
                select(Invitation.id)
                .join(Patient, Patient.id == Invitation.patient_id)
                .where(WAITING_LETTER, Invitation.campaign_id == campaign_id)
                .order_by(Patient.postal_code, Invitation.id)
            )
        )


def _claim_letters(services: Services, ids: Sequence[str], now: datetime) -> str | None:
    """Claim these letters (those still waiting) as one new batch; returns its id."""
    batch = new_id()
    with services.db.unit_of_work() as db:
        _, claimed = _claim(
            db,
            select(Invitation.id).where(Invitation.id.in_(ids), STILL_WAITING),
            STILL_WAITING,
            {
                "status": "printing",
                "letter_batch": batch,
                "sent_at": now,
                # a letter sent again (a new code was asked for) keeps the period of the first sending
                "objection_deadline": func.coalesce(Invitation.objection_deadline, objection_deadline(now, "letter")),
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
            .where(Invitation.status == "printing", Invitation.letter_batch == batch)  # by the status index
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
            .where(Invitation.letter_batch == batch, Invitation.status == "printing")
            .values(status="letter"),
            execution_options={"synchronize_session": False},
        )
    return LetterBatch(first.campaign_id, batch, len(rows), path)


def render_pending_letters(
    services: Services,
    campaign_id: str | None = None,
    now: datetime | None = None,
    batch_size: int = LETTER_BATCH,
    max_batches: int | None = None,
) -> list[LetterBatch]:
    """Produce the letters waiting (no e-mail, bounced, or given up), ``batch_size`` per PDF.

    Batches a crashed run left in ``printing`` for longer than ``LEASE`` are rendered again first.
    """
    now = now or utcnow()
    done: list[LetterBatch] = []
    with services.db.unit_of_work() as db:
        query = select(Invitation.letter_batch).where(
            Invitation.status == "printing", Invitation.sent_at < now - LEASE, Invitation.letter_batch.is_not(None)
        )
        if campaign_id:
            query = query.where(Invitation.campaign_id == campaign_id)
        stale = [batch for batch in db.scalars(query.distinct()) if batch]
    for stale_batch in stale:
        done.append(render_letters(services, stale_batch))
    if campaign_id:
        owing = [campaign_id]
    else:
        with services.db.unit_of_work() as db:
            owing = list(db.scalars(select(Invitation.campaign_id).where(WAITING_LETTER).distinct()))
    for campaign in owing:
        ordered = _waiting_letters(services, campaign)  # sorted once, then claimed slice by slice
        for start in range(0, len(ordered), batch_size):
            if max_batches is not None and len(done) >= max_batches:
                return done
            claimed = _claim_letters(services, ordered[start : start + batch_size], now)
            if claimed is not None:
                done.append(render_letters(services, claimed))
    return done


def letter_for_patient(services: Services, actor: Actor, patient_id: str, now: datetime | None = None) -> bytes:
    """One person's letter again, from the sealed code (same code, same deadlines), audited."""
    now = now or utcnow()
    with services.db.unit_of_work() as db:
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


# --- opening spaces -------------------------------------------------------------------------------------


def active_objection(db: Session, patient_id: str) -> Objection | None:
    return db.scalar(
        select(Objection)
        .where(Objection.patient_id == patient_id, Objection.withdrawn_at.is_(None))
        .order_by(Objection.recorded_at.desc())
        .limit(1)
    )


def auto_create_spaces(services: Services, now: datetime | None = None, chunk: int = OPEN_CHUNK) -> int:
    """ENR-3: the 6 weeks have passed without objection → the space is created (system actor, audited)."""
    now = now or utcnow()
    system = Actor.system()
    opened = 0
    no_objection = ~exists().where(Objection.patient_id == Patient.id, Objection.withdrawn_at.is_(None))
    while True:
        with services.db.unit_of_work() as db:
            due = list(
                db.scalars(
                    select(Patient.id)
                    .join(Invitation, Invitation.patient_id == Patient.id)
                    .where(
                        Invitation.status.in_(("sent", "letter")),
                        Invitation.objection_deadline <= now,
                        Patient.status == "registered",
                        no_objection,
                    )
                    .limit(chunk)
                )
            )
            if not due:
                break
            for patient_id in due:
                guard(db, system, patient_id, Action.SPACE_OPEN, Resource("space"))
            db.execute(
                update(Patient)
                .where(Patient.id.in_(due), Patient.status == "registered")
                .values(status="active", opened_at=now),
                execution_options={"synchronize_session": False},
            )
            for patient_id in due:
                audit.record(
                    db,
                    system,
                    "space.created",
                    patient_id=patient_id,
                    resource_type="space",
                    details={"motif": "délai d'opposition écoulé"},
                )
        opened += len(due)
    if opened:
        log.info("espaces créés à l'issue du délai d'opposition : %d", opened)
    return opened


@dataclass(frozen=True)
class Opened:
    patient_id: str
    already: bool


def open_space(services: Services, actor: Actor, ins: str, now: datetime | None = None) -> Opened:
    """``carnet spaces open INS``: open one registered person's space at once, audited.

    Refused while the person objects: their objection must be withdrawn first (by them, online or
    by phone), never overridden.
    """
    now = now or utcnow()
    try:
        nir = parse_nir(ins)
    except IdentifierError as exc:
        raise CampaignError(exc.message) from None
    with services.db.unit_of_work() as db:
        patient = db.scalar(select(Patient).where(Patient.ins == nir.value))
        if patient is None:
            raise CampaignError("Aucune personne n'est enregistrée avec ce NIR.")
        guard(db, actor, patient.id, Action.SPACE_OPEN, Resource("space"))
        objection = active_objection(db, patient.id)
        if patient.status == "opposed" or objection is not None:
            number = f" (récépissé n° {objection.receipt_number})" if objection else ""
            raise CampaignError(
                f"Cette personne s'est opposée à la création de son espace{number}. L'espace ne peut pas être "
                "ouvert : la personne doit d'abord retirer son opposition (en ligne sur /opposition/annuler, "
                "ou par téléphone auprès d'un conseiller)."
            )
        if patient.status == "active":
            return Opened(patient.id, already=True)
        if patient.status != "registered":
            raise CampaignError(
                "Cet espace a été fermé ou supprimé : seule la personne peut le rouvrir, depuis son espace."
            )
        patient.status = "active"
        patient.opened_at = now
        audit.record(
            db,
            actor,
            "space.created",
            patient_id=patient.id,
            resource_type="space",
            details={"motif": "ouverture immédiate par un opérateur"},
        )
    return Opened(patient.id, already=False)


# --- progress (operator console, CLI) -------------------------------------------------------------------


@dataclass
class CampaignProgress:
    campaign: Campaign
    invited: int = 0
    pending: int = 0
    sent: int = 0
    bounced: int = 0
    letters: int = 0
    letters_waiting: int = 0
    objections: int = 0
    activations: int = 0
    opened: int = 0
    batches: list[tuple[str, int, datetime | None]] = field(default_factory=list)


def campaign_progress(services: Services, actor: Actor, campaign_id: str | None = None) -> list[CampaignProgress]:
    """Counters per campaign, newest first (operators only)."""
    with services.db.unit_of_work() as db:
        guard(db, actor, SERVICE_SPACE, Action.ENROLMENT_MANAGE, Resource("campaign"))
        query = select(Campaign).order_by(Campaign.started_at.desc())
        if campaign_id:
            query = query.where(Campaign.id == campaign_id)
        progress = {c.id: CampaignProgress(c) for c in db.scalars(query)}
        if not progress:
            return []

        def counted(condition: Any) -> Any:
            return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

        in_campaigns = Invitation.campaign_id.in_(list(progress))
        for row in db.execute(
            select(
                Invitation.campaign_id,
                func.count(),
                counted(Invitation.status.in_(("pending", "sending")) & (Invitation.channel == "email")),
                counted(Invitation.status == "sent"),
                counted(Invitation.last_error.like(f"{BOUNCE}%")),
                counted(Invitation.status == "letter"),
                counted((Invitation.channel == "letter") & Invitation.status.in_((*LETTER_QUEUE, "printing"))),
                counted(Invitation.code_used_at.is_not(None)),
            )
            .where(in_campaigns)
            .group_by(Invitation.campaign_id)
        ):
            item = progress[row[0]]
            (item.invited, item.pending, item.sent, item.bounced, item.letters, item.letters_waiting) = row[1:7]
            item.activations = row[7]
        for campaign, count in db.execute(
            select(Invitation.campaign_id, func.count(func.distinct(Objection.patient_id)))
            .join(Objection, Objection.patient_id == Invitation.patient_id)
            .where(in_campaigns, Objection.withdrawn_at.is_(None))
            .group_by(Invitation.campaign_id)
        ):
            progress[campaign].objections = count
        for campaign, count in db.execute(
            select(Invitation.campaign_id, func.count())
            .join(Patient, Patient.id == Invitation.patient_id)
            .where(in_campaigns, Patient.status == "active")
            .group_by(Invitation.campaign_id)
        ):
            progress[campaign].opened = count
        if campaign_id:
            for campaign, batch, count, produced in db.execute(
                select(Invitation.campaign_id, Invitation.letter_batch, func.count(), func.min(Invitation.sent_at))
                .where(in_campaigns, Invitation.status == "letter", Invitation.letter_batch.is_not(None))
                .group_by(Invitation.campaign_id, Invitation.letter_batch)
                .order_by(func.min(Invitation.sent_at))
            ):
                progress[campaign].batches.append((batch or "", count, produced))
    return list(progress.values())


def letter_batch_file(services: Services, actor: Actor, campaign_id: str, batch: str) -> Path:
    """The PDF of a finished batch, for the printer (operators only; the download is audited)."""
    with services.db.unit_of_work() as db:
        guard(db, actor, SERVICE_SPACE, Action.ENROLMENT_MANAGE, Resource("letters", batch))
        count = db.scalar(
            select(func.count()).where(
                Invitation.campaign_id == campaign_id, Invitation.letter_batch == batch, Invitation.status == "letter"
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


def count_invitations(services: Services, campaign_id: str) -> dict[str, int]:
    """Channel counts of a campaign (for the CLI)."""
    with services.db.unit_of_work() as db:
        rows = db.execute(
            select(Invitation.channel, func.count()).where(Invitation.campaign_id == campaign_id).group_by("channel")
        ).all()
    return {channel: count for channel, count in rows}
