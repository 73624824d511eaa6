"""E-mails that must not be lost when the relay is down (issue #15-3): tried at once, else queued durably — in the
caller's transaction — and sent by the job worker with back-off when the relay is back.

Interactive senders (login and activation codes) call ``send_or_queue`` and tell the person when it was
queued; the worker's job calls ``retry_pending``.
"""

from __future__ import annotations

import logging
import smtplib
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.mail.outbound import Mail, OutboxMailer, SmtpMailer
from carnet.mail.tables import QueuedMail
from carnet.storage.keys import InstanceKeys
from carnet.storage.types import utcnow

if TYPE_CHECKING:
    from carnet.bootstrap import Services

logger = logging.getLogger("carnet")
PURPOSE = "mail-queue"
BACKOFF = (timedelta(seconds=30), timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=15))
GIVE_UP_AFTER = timedelta(days=2)


def send_or_queue(
    db: Session,
    keys: InstanceKeys,
    mailer: OutboxMailer | SmtpMailer,
    mail: Mail,
    discard_after: datetime | None = None,
) -> bool:
    """Send now; if the relay cannot take it, keep it in the queue (same transaction) and return False."""
    try:
        mailer.send(mail)
        return True
    except (OSError, smtplib.SMTPException) as exc:
        logger.warning("relais de messagerie indisponible, e-mail mis en file d'attente : %s", type(exc).__name__)
        now = utcnow()
        db.add(
            QueuedMail(
                sealed=keys.seal(orjson.dumps(asdict(mail)).decode(), PURPOSE),
                next_attempt_at=now + BACKOFF[0],
                discard_after=discard_after or now + GIVE_UP_AFTER,
                last_error=type(exc).__name__,
                created_at=now,
            )
        )
        return False


def retry_pending(db: Session, keys: InstanceKeys, mailer: OutboxMailer | SmtpMailer, limit: int = 200) -> int:
    """Send what is due in the queue; returns how many went. Expired messages are dropped unsent."""
    now = utcnow()
    sent = 0
    due = db.scalars(
        select(QueuedMail).where(QueuedMail.next_attempt_at <= now).order_by(QueuedMail.next_attempt_at).limit(limit)
    ).all()
    for row in due:
        if row.discard_after is not None and row.discard_after <= now:
            db.delete(row)
            continue
        mail = Mail(**orjson.loads(keys.unseal(row.sealed, PURPOSE)))
        try:
            mailer.send(mail)
        except (OSError, smtplib.SMTPException) as exc:
            row.attempts += 1
            row.last_error = f"{type(exc).__name__}"[:250]
            row.next_attempt_at = now + BACKOFF[min(row.attempts, len(BACKOFF) - 1)]
            break  # the relay is still down: the rest waits for the next run
        db.delete(row)
        sent += 1
    return sent


def retry_job(services: Services) -> int:
    """The worker's job: one pass over the queue, in its own transaction."""
    with services.db.unit_of_work() as db:
        return retry_pending(db, services.keys, services.mailer)
