"""The audit log (TRC-1, TRC-4): written in the caller's transaction, verified on demand."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from carnet.family.tables import Caregiver, LegalRepresentative
from carnet.hall.actors import Actor, ActorKind
from carnet.hall.chain import GENESIS, HASHED_FIELDS, ChainBreak, entry_hash, verify_chain
from carnet.hall.tables import AuditEntry, AuditHead
from carnet.hall.vocabulary import PARIS
from carnet.people.tables import Patient
from carnet.storage.db import CommittedFacts
from carnet.storage.types import utcnow

NO_PATIENT_CHAIN = "-"

# Every write of every capability appends here: the statements are built once (their compiled form is cached by
# SQLAlchemy on them), a call only binds its values (issues #13, #14).
_HEADS = cast(Table, AuditHead.__table__)
_ENTRIES = cast(Table, AuditEntry.__table__)
# The chain's head, locked (PostgreSQL: the row; SQLite: the writer's lock the transaction began with), then moved
# on by one UPDATE: one new row version per entry (two before: bump, then hash — dead rows until a vacuum).
_HEAD = select(_HEADS.c.seq, _HEADS.c.hash).where(_HEADS.c.chain == bindparam("of_chain")).with_for_update()
_ADVANCE = (
    update(_HEADS)
    .where(_HEADS.c.chain == bindparam("of_chain"))
    .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
)
_APPEND = insert(_ENTRIES)
# A chain's first entry (a space opened, a stranger's first refused attempt): its head written already pointing at it,
# unless a concurrent first writer made it first.
_FIRST = {
    name: dialect_insert(_HEADS)
    .values(chain=bindparam("of_chain"), seq=1, hash=bindparam("new_hash"))
    .on_conflict_do_nothing()
    .returning(_HEADS.c.chain)
    for name, dialect_insert in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}
_SEEN = (
    select(_ENTRIES.c.seq)
    .where(
        _ENTRIES.c.patient_id == bindparam("patient"),
        _ENTRIES.c.at >= bindparam("since"),
        _ENTRIES.c.actor_id == bindparam("actor"),
        _ENTRIES.c.action == bindparam("act"),
        _ENTRIES.c.outcome == "allow",
    )
    .limit(1)
)
# (database, actor, action, patient) → the Paris midnight after which it was seen
_seen = CommittedFacts(50_000)  # (actor, action, patient) → the Paris midnight of the day it was seen


@dataclass(frozen=True)
class Recorded:
    chain: str
    seq: int
    hash: str


def _acting_kind(db: Session, actor: Actor, patient_id: str | None) -> str:
    """TRC-1: a person acting in someone else's space is recorded as what they are there — caregiver or
    legal representative — not as a patient (a stranger's refused attempt stays "patient")."""
    if actor.kind != ActorKind.PATIENT or not actor.patient_id or not patient_id or actor.patient_id == patient_id:
        return str(actor.kind)
    if db.get(Caregiver, (patient_id, actor.patient_id)) is not None:
        return str(ActorKind.CAREGIVER)
    patient = db.get(Patient, patient_id)
    if patient is not None and (
        patient.attached_to_id == actor.patient_id
        or db.get(LegalRepresentative, (patient_id, actor.patient_id)) is not None
    ):
        return str(ActorKind.REPRESENTATIVE)
    return str(actor.kind)


def seen_today(db: Session, actor: Actor, action: str, patient_id: str) -> bool:
    """Whether this actor's ``action`` is already in the patient's history today (Paris time): looking at a
    list again and again is one line a day, not one per page view (issue #15-10). Uses the (patient, at) index.

    A yes found in the database stays true all day, so this process remembers it once committed and asks no more: an
    ITI-67 client paging through a space pays the look-up once a day (issue #14). A no is never remembered."""
    midnight = datetime.now(PARIS).replace(hour=0, minute=0, second=0, microsecond=0)
    key = (actor.id or "", action, patient_id)
    if _seen.get(db, key) == midnight:
        return True
    params = {"patient": patient_id, "since": midnight, "actor": actor.id, "act": action}
    if db.execute(_SEEN, params).first() is None:
        return False
    _seen.remember(db, key, midnight)
    return True


def record(
    db: Session,
    actor: Actor,
    action: str,
    *,
    patient_id: str | None = None,
    outcome: str = "allow",
    reason: str = "",
    resource_type: str | None = None,
    resource_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> Recorded:
    """Append one entry to the patient's chain, inside ``db``'s current transaction.

    The head row is read locked first (the row lock on PostgreSQL; on SQLite the write lock every write transaction
    begins with), so concurrent writers of one chain queue instead of forking it. A new chain's head is inserted
    already pointing at its first entry; a concurrent first writer's insert waits for it, finds it, and follows.
    """
    chain = patient_id or NO_PATIENT_CHAIN
    connection = db.connection()
    row = connection.execute(_HEAD, {"of_chain": chain}).first()
    fields: dict[str, Any] = {
        "chain": chain,
        "seq": 1 if row is None else row[0] + 1,
        "at": utcnow(),
        "actor_kind": _acting_kind(db, actor, patient_id),
        "actor_id": actor.id,
        "actor_label": actor.label,
        "action": action,
        "patient_id": patient_id,
        "resource_type": resource_type,
        "resource_id": resource_id,
        "outcome": outcome,
        "reason": reason,
        "details": details or {},
    }
    if row is None:
        digest = entry_hash(GENESIS, fields)
        if connection.execute(_FIRST[connection.dialect.name], {"of_chain": chain, "new_hash": digest}).first():
            connection.execute(_APPEND, {**fields, "prev_hash": GENESIS, "hash": digest})
            return Recorded(chain, 1, digest)
        row = connection.execute(_HEAD, {"of_chain": chain}).one()  # a concurrent first writer committed before us
        fields["seq"] = row[0] + 1
    prev_hash = row[1]
    digest = entry_hash(prev_hash, fields)
    connection.execute(_APPEND, {**fields, "prev_hash": prev_hash, "hash": digest})
    connection.execute(_ADVANCE, {"of_chain": chain, "new_seq": fields["seq"], "new_hash": digest})
    return Recorded(chain, fields["seq"], digest)


def _chain_rows(db: Session, chain: str) -> Iterator[dict[str, Any]]:
    query = select(AuditEntry).where(AuditEntry.chain == chain).order_by(AuditEntry.seq)
    for entry in db.scalars(query).yield_per(1000):
        yield {column: getattr(entry, column) for column in (*HASHED_FIELDS, "prev_hash", "hash")}


def verify(db: Session) -> tuple[int, list[ChainBreak]]:
    """Check every chain; returns (number of chains, breaks found)."""
    heads = {head.chain: head for head in db.scalars(select(AuditHead))}
    chains = set(heads) | set(db.scalars(select(AuditEntry.chain).distinct()))
    breaks: list[ChainBreak] = []
    for chain in sorted(chains):
        head = heads.get(chain)
        breaks += verify_chain(chain, _chain_rows(db, chain), head.seq if head else 0, head.hash if head else GENESIS)
    return len(chains), breaks
