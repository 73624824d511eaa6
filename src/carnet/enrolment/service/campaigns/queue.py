"""The ``invitations`` table as a durable queue, shared by the sending of e-mails and the letters.

Every step is a short transaction, so the work survives a restart and several workers (the server's
job runner, ``carnet campaign send``) can share the queue: a worker *claims* rows (``claim``), works on
them outside any transaction, then marks them done. A claim older than ``LEASE`` was abandoned by a
crashed worker and is taken again.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import and_, text, update
from sqlalchemy.orm import Session

from carnet.enrolment.tables import Invitation
from carnet.errors import CarnetError
from carnet.hall import audit
from carnet.hall.vocabulary import InvitationStatus

CHUNK = 50  # e-mails per claim: the at-least-once bound, per SMTP connection
LEASE = timedelta(minutes=10)  # a claim older than this was abandoned by a crashed worker
MAX_ATTEMPTS = 5  # temporary failures before the person gets a letter instead
LETTER_BATCH = 1000  # letters per PDF for the printer
INSERT_PAGE = 5000  # invitations created per transaction
BOUNCE = "rebond"  # prefix of ``last_error`` for a permanent refusal
SERVICE_SPACE = audit.NO_PATIENT_CHAIN  # campaign-wide decisions concern no one's space


class CampaignError(CarnetError):
    """A refusal to show as is (French)."""


def is_sqlite(db: Session) -> bool:
    return db.get_bind().dialect.name == "sqlite"


LETTER_QUEUE = (InvitationStatus.TO_PRINT, InvitationStatus.BOUNCED, InvitationStatus.PENDING)
WAITING_LETTER = and_(Invitation.channel == "letter", Invitation.status.in_(LETTER_QUEUE))


def claim(db: Session, pick: Any, still: Any, values: dict[str, Any]) -> tuple[list[Any], set[str]]:
    """Lock the rows ``pick`` selects (first column: the invitation id; rows locked by another worker are
    skipped on PostgreSQL), then move them on with ``values``; returns (rows, ids actually claimed).

    Two statements, not ``UPDATE … WHERE id IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED)``: PostgreSQL
    may run such a subquery more than once and so claim more than ``n`` rows. ``still`` re-checks the
    state at write time, so a row another process claimed in between is not taken twice.
    """
    if is_sqlite(db):  # a write first takes SQLite's write lock: another process cannot pick the same rows
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
