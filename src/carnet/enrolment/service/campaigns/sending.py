"""Sending the invitation e-mails (ENR-2): at-least-once, with a bound.

A worker takes ``CHUNK`` e-mails, sends them over one SMTP connection, then marks them. SMTP has no two-phase
commit, so a crash between the first delivery of a chunk and its marking leaves up to ``CHUNK`` messages delivered
but not marked, and they are sent again:
- on PostgreSQL the chunk is locked (``FOR UPDATE SKIP LOCKED``), sent and marked in one transaction: a crash rolls
  it back, and the chunk is queued again at once;
- on SQLite the chunk is claimed (status ``sending``, claim time in ``sent_at``) in a transaction of its own, so
  that the database's one writer is not held while it is sent: once the claim is older than ``LEASE``, it is sent
  again.
Hence: **a crash loses no e-mail and re-sends at most CHUNK = 50 e-mails per SMTP connection in flight** (the job
runner uses 2, ``carnet campaign send`` 4 by default: at most 100 or 200 duplicates); each of those persons
receives the same e-mail, with the same code, a second time. 50 is the smallest chunk that keeps the transactions
and the SMTP connection of each chunk at a few per cent of its sending time (≈ 3 ms against 50 e-mails of 1–3 ms
each). A worker stops taking chunks when its time budget is spent, and never keeps a chunk longer than a few SMTP
time-outs, far below ``LEASE``.

A temporary failure (4xx, server down) puts the e-mail back in the queue, ``MAX_ATTEMPTS`` times at most,
then the person gets a letter; a permanent refusal for this recipient (5xx) is a bounce: a letter at once.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from carnet.bootstrap import Services
from carnet.config import Settings
from carnet.enrolment.model import activation_codes as codes
from carnet.enrolment.model.opposition import creation_day, last_day, objection_deadline, paris_day
from carnet.enrolment.service.campaigns.queue import BOUNCE, CHUNK, LEASE, MAX_ATTEMPTS, claim, is_sqlite
from carnet.enrolment.service.messages import InvitationTemplates
from carnet.enrolment.tables import Invitation, QueuedEmail
from carnet.hall.vocabulary import InvitationStatus
from carnet.mail.outbound import Delivery, Mail
from carnet.people.model.identifiers import display_name, is_minor
from carnet.people.tables import Patient
from carnet.storage.bulk import among
from carnet.storage.types import utcnow

log = logging.getLogger("carnet.campaigns")


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


def recover_abandoned(services: Services, now: datetime) -> int:
    """SQLite: claims older than ``LEASE`` belong to a crashed worker: queue them again. (PostgreSQL claims by
    locking the queue's rows, which a crash releases.)"""
    if not services.db.is_sqlite:
        return 0
    with services.db.unit_of_work() as db:
        result = db.execute(
            update(Invitation)
            .where(
                Invitation.id.in_(select(QueuedEmail.invitation_id)),
                Invitation.status == InvitationStatus.SENDING,
                Invitation.sent_at < now - LEASE,
            )
            .values(status=InvitationStatus.PENDING, sent_at=None),
            execution_options={"synchronize_session": False},
        )
    count = int(getattr(result, "rowcount", 0) or 0)
    if count:
        log.warning("%d envoi(s) abandonné(s) par un processus interrompu remis en file", count)
    return count


_DETAILS = (
    Invitation.id,
    Invitation.code_sealed,
    Invitation.attempts,
    Patient.email,
    Patient.first_names,
    Patient.birth_name,
    Patient.used_name,
    Patient.birth_date,
)
_QUEUED = (Invitation.status == InvitationStatus.PENDING, Invitation.channel == "email")


def _queued(size: int) -> Any:
    """SQLite: the first ``size`` e-mails of the queue still to claim, in id order, with what their message needs.
    (An e-mail claimed and not yet marked is still listed, as ``sending``: passed by.)"""
    return (
        select(*_DETAILS)
        .join(Patient, Patient.id == Invitation.patient_id)
        .join(QueuedEmail, QueuedEmail.invitation_id == Invitation.id)
        .where(*_QUEUED)
        .order_by(QueuedEmail.invitation_id)
        .limit(size)
    )


def _lock_next(db: Session, size: int, after: str) -> list[str]:
    """PostgreSQL: the next ``size`` e-mails of the queue after the id ``after``, in id order, locked (``FOR UPDATE
    SKIP LOCKED``: other workers pass them by). The walk goes forward from where the previous claim stopped: the
    entries of the e-mails already sent stay in the queue's index until vacuum, and are not read again at every
    claim. The queue alone: joined to the invitations, the planner would merge both in id order and walk the sent
    ones too."""
    return list(
        db.scalars(
            select(QueuedEmail.invitation_id)
            .where(QueuedEmail.invitation_id > after)
            .order_by(QueuedEmail.invitation_id)
            .limit(size)
            .with_for_update(skip_locked=True)
        )
    )


def _claimed(rows: Sequence[Any], now: datetime) -> list[_Claimed]:
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
    ]


def _claim_emails(services: Services, size: int, now: datetime) -> list[_Claimed]:
    """SQLite: ``size`` queued e-mails moved to ``sending`` (claim time in ``sent_at``) in a transaction of their
    own, so that the database's one writer is not held while they are sent."""
    with services.db.unit_of_work() as db:
        rows, claimed = claim(
            db, _queued(size), Invitation.status == InvitationStatus.PENDING, {"status": "sending", "sent_at": now}
        )
    return _claimed([row for row in rows if row.id in claimed], now)


def _send_locked(services: Services, budget: _Budget, size: int, now: datetime) -> SendReport | None:
    """PostgreSQL: ``size`` queued e-mails after the budget's place in the queue, locked (``FOR UPDATE SKIP
    LOCKED``: other workers pass them by), sent and marked in one transaction; None when none is left there. A
    crash before the commit releases them, still queued: one UPDATE a row instead of two, no lease to wait for."""
    with services.db.unit_of_work() as db:
        ids = _lock_next(db, size, budget.after)
        if not ids:
            return None
        budget.move_past(ids[-1])  # the other workers' next claims start after these
        rows = list(
            db.execute(
                select(*_DETAILS)
                .join(Patient, Patient.id == Invitation.patient_id)
                .where(among(Invitation.id, ids, postgresql=True), *_QUEUED)
            )
        )
        if len(rows) < len(ids):  # no longer to send by e-mail (a new code asked for by post meanwhile): out
            listed = {row.id for row in rows}
            _dequeue(db, [item for item in ids if item not in listed], postgresql=True)
        if not rows:
            return SendReport()
        claimed = _claimed(rows, now)
        results = services.mailer.send_many(_mails(services, claimed, now))
        return _mark(db, claimed, results, now, InvitationStatus.PENDING)


def _settle(services: Services, claimed: Sequence[_Claimed], results: Sequence[Delivery], now: datetime) -> SendReport:
    """SQLite: mark a chunk sent after its claim's transaction."""
    with services.db.unit_of_work() as db:
        return _mark(db, claimed, results, now, InvitationStatus.SENDING)


def _mark(
    db: Session, claimed: Sequence[_Claimed], results: Sequence[Delivery], now: datetime, claimed_as: str
) -> SendReport:
    """Delivered ones ``sent`` (their objection period starts), the others by their failure; each only if still
    as it was claimed (``claimed_as``). Those done with (all but the temporary failures) leave the queue."""
    report = SendReport()
    postgresql = not is_sqlite(db)
    delivered = [item.id for item, result in zip(claimed, results, strict=True) if result.delivered]
    if delivered:
        db.execute(
            update(Invitation)
            .where(among(Invitation.id, delivered, postgresql=postgresql), Invitation.status == claimed_as)
            .values(
                status=InvitationStatus.SENT,
                sent_at=now,
                objection_deadline=objection_deadline(now),
                code_expires_at=now + codes.VALIDITY,
                last_error=None,
            ),
            execution_options={"synchronize_session": False},
        )
        report.sent = len(delivered)
    done = list(delivered)
    for item, result in zip(claimed, results, strict=True):
        if not result.delivered and _settle_failure(db, item, result, report, claimed_as):
            done.append(item.id)
    _dequeue(db, done, postgresql)
    return report


def _dequeue(db: Session, ids: Sequence[str], postgresql: bool) -> None:
    if ids:
        db.execute(
            delete(QueuedEmail).where(among(QueuedEmail.invitation_id, ids, postgresql=postgresql)),
            execution_options={"synchronize_session": False},
        )


def _settle_failure(db: Session, item: _Claimed, result: Delivery, report: SendReport, claimed_as: str) -> bool:
    """Record a failed delivery; whether the e-mail is given up (a letter instead) rather than tried again."""
    values: dict[str, Any] = {"sent_at": None, "last_error": result.error[:280]}
    if result.permanent:
        values.update(status=InvitationStatus.BOUNCED, channel="letter", last_error=f"{BOUNCE} : {result.error}"[:280])
        report.bounced += 1
    elif item.attempts + 1 >= MAX_ATTEMPTS:
        values.update(status=InvitationStatus.TO_PRINT, channel="letter", attempts=item.attempts + 1)
        values["last_error"] = f"abandon après {MAX_ATTEMPTS} essais : {result.error}"[:280]
        report.to_letter += 1
    else:
        values.update(status=InvitationStatus.PENDING, attempts=item.attempts + 1)
        report.retried += 1
    db.execute(
        update(Invitation).where(Invitation.id == item.id, Invitation.status == claimed_as).values(**values),
        execution_options={"synchronize_session": False},
    )
    return values["status"] != InvitationStatus.PENDING


def _mails(services: Services, claimed: Sequence[_Claimed], now: datetime) -> list[Mail]:
    deadline = objection_deadline(now)
    settings = services.settings
    templates = InvitationTemplates(
        creation_day=creation_day(deadline),
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


class _Budget:
    """What the workers of one ``send_pending`` share: the e-mails left to claim, the clock, the total."""

    def __init__(self, limit: int | None, max_seconds: float | None, on_progress: Callable[[SendReport], None] | None):
        self.lock = threading.Lock()
        self.claims = limit if limit is not None else -1
        self.started = time.monotonic()
        self.max_seconds = max_seconds
        self.on_progress = on_progress
        self.stop = threading.Event()
        self.total = SendReport()
        self.after = ""  # where the next claim starts in the queue (the workers of a process share it)

    def take(self, size: int) -> int:
        with self.lock:
            if self.claims < 0:
                return size
            size = min(size, self.claims)
            self.claims -= size
            return size

    def move_past(self, claimed: str) -> None:
        with self.lock:
            self.after = max(self.after, claimed)

    def back_to_start(self, seen: str) -> None:
        with self.lock:
            if self.after == seen:  # unless another worker moved on meanwhile
                self.after = ""

    def out_of_time(self) -> bool:
        return self.max_seconds is not None and time.monotonic() - self.started > self.max_seconds

    def add(self, report: SendReport) -> None:
        with self.lock:
            self.total.add(report)
            if self.on_progress:
                self.on_progress(self.total)


def _worker(services: Services, budget: _Budget, clock: Callable[[], datetime]) -> None:
    """Claim, send, settle, chunk after chunk, until the queue or the budget is empty."""
    while not budget.stop.is_set():
        if budget.out_of_time():
            return
        size = budget.take(CHUNK)
        if size <= 0:
            return
        moment = clock()
        if services.db.is_sqlite:
            claimed = _claim_emails(services, size, moment)
            if not claimed:
                return
            report = _settle(services, claimed, services.mailer.send_many(_mails(services, claimed, moment)), moment)
        else:
            after = budget.after
            found = _send_locked(services, budget, size, moment)
            if found is None:
                if not after:
                    return
                budget.back_to_start(after)  # the end: once more from the start, for the e-mails put back meanwhile
                continue
            report = found
        budget.add(report)
        if report.handled and report.sent == 0 and report.bounced == 0:  # the server is down or refuses us: later
            budget.stop.set()


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
    budget = _Budget(limit, max_seconds, on_progress)
    if connections <= 1:
        _worker(services, budget, clock)
        return budget.total
    errors: list[BaseException] = []

    def guarded() -> None:
        try:
            _worker(services, budget, clock)
        except BaseException as exc:  # re-raised in the caller below
            errors.append(exc)
            budget.stop.set()

    threads = [threading.Thread(target=guarded, name=f"carnet-envoi-{n}") for n in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return budget.total


_SHARED: dict[str, Any] = {}  # in a sending process: the count of e-mails handled by them all, read by the parent


def _share(handled: Any) -> None:
    _SHARED["handled"] = handled


def _send_process(settings: Settings, connections: int) -> tuple[int, int, int, int]:
    """One sending process (spawned): its own database connections and SMTP connections."""
    from carnet.bootstrap import build_services

    handled, counted = _SHARED["handled"], [0]

    def add(total: SendReport) -> None:
        with handled.get_lock():
            handled.value += total.handled - counted[0]
        counted[0] = total.handled

    services = build_services(settings)
    try:
        report = send_pending(services, connections=connections, on_progress=add)
    finally:
        services.db.dispose()
    return report.sent, report.bounced, report.retried, report.to_letter


def email_backlog(services: Services) -> int:
    """E-mails still to send (queued or being sent)."""
    with services.db.unit_of_work() as db:
        return int(db.scalar(select(func.count()).select_from(QueuedEmail)) or 0)


def send_with_processes(
    services: Services,
    processes: int,
    connections: int,
    on_progress: Callable[[SendReport], None] | None = None,
    poll_seconds: float = 1.0,
) -> SendReport:
    """``carnet campaign send --processus N``: N sending processes side by side (one Python process keeps one
    core busy at most); the claims keep them apart, on SQLite as on PostgreSQL. Progress (the e-mails handled, as
    ``sent``) is counted by the processes in shared memory: no count of a queue of millions every second."""
    if processes <= 1:
        return send_pending(services, connections=connections, on_progress=on_progress)
    total = SendReport()
    context = multiprocessing.get_context("spawn")
    handled = context.Value("q", 0)
    with ProcessPoolExecutor(processes, mp_context=context, initializer=_share, initargs=(handled,)) as pool:
        futures = [pool.submit(_send_process, services.settings, connections) for _ in range(processes)]
        pending: set[Future[tuple[int, int, int, int]]] = set(futures)
        while pending:
            _, pending = wait(pending, timeout=poll_seconds)
            if on_progress:
                on_progress(SendReport(sent=handled.value))
        for future in futures:
            sent, bounced, retried, to_letter = future.result()
            total.add(SendReport(sent, bounced, retried, to_letter))
    return total
