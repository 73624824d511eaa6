"""TRC-1, TRC-4: the audit log is written in the same transaction and tampering is detected."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import delete, func, select, text, update

from carnet.bootstrap import Services
from carnet.hall import audit
from carnet.hall.actors import Actor, ActorKind
from carnet.hall.tables import AuditEntry, AuditHead

PATIENT = "11111111-1111-4111-8111-111111111111"
ACTOR = Actor(ActorKind.PATIENT, "acc-1", "Marie-Ange SANTONI", patient_id=PATIENT)


def _write(services: Services, count: int, patient_id: str = PATIENT) -> None:
    for index in range(count):
        with services.db.unit_of_work() as db:
            audit.record(
                db,
                ACTOR,
                "space.view",
                patient_id=patient_id,
                resource_type="space",
                details={"n": index, "mot": "hémoglobine"},
            )


def test_a_clean_log_verifies(services: Services) -> None:
    _write(services, 5)
    _write(services, 2, patient_id=None)  # type: ignore[arg-type]
    with services.db.unit_of_work() as db:
        chains, breaks = audit.verify(db)
    assert chains == 2 and breaks == []


def test_an_altered_entry_is_detected(services: Services) -> None:
    _write(services, 5)
    with services.db.unit_of_work() as db:
        db.execute(update(AuditEntry).where(AuditEntry.seq == 3).values(actor_label="Quelqu'un d'autre"))
        _chains, breaks = audit.verify(db)
    assert [(b.seq, b.problem) for b in breaks] == [(3, "le contenu de l'entrée a été modifié")]


def test_a_deleted_entry_in_the_middle_is_detected(services: Services) -> None:
    _write(services, 5)
    with services.db.unit_of_work() as db:
        db.execute(delete(AuditEntry).where(AuditEntry.seq == 2))
        _, breaks = audit.verify(db)
    assert breaks and breaks[0].seq == 2


def test_a_deleted_newest_entry_is_detected_through_the_head(services: Services) -> None:
    _write(services, 3)
    with services.db.unit_of_work() as db:
        db.execute(delete(AuditEntry).where(AuditEntry.seq == 3))
        _, breaks = audit.verify(db)
    assert [b.problem for b in breaks] == ["la ou les dernières entrées ont été supprimées ou modifiées"]


def test_a_rewritten_chain_without_its_head_is_detected(services: Services) -> None:
    _write(services, 2)
    with services.db.unit_of_work() as db:
        db.execute(delete(AuditHead))
        _, breaks = audit.verify(db)
    assert breaks


def test_the_entry_is_rolled_back_with_the_change_it_records(services: Services) -> None:
    with pytest.raises(RuntimeError), services.db.unit_of_work() as db:
        audit.record(db, ACTOR, "space.view", patient_id=PATIENT)
        raise RuntimeError("the change failed")
    with services.db.unit_of_work() as db:
        assert db.scalar(select(func.count()).select_from(AuditEntry)) == 0
        _, breaks = audit.verify(db)
    assert breaks == []


def test_entries_are_numbered_per_patient(services: Services) -> None:
    other = "22222222-2222-4222-8222-222222222222"
    _write(services, 2)
    _write(services, 3, patient_id=other)
    with services.db.unit_of_work() as db:
        seqs = db.execute(select(AuditEntry.chain, AuditEntry.seq).order_by(AuditEntry.id)).all()
    assert [s for c, s in seqs if c == PATIENT] == [1, 2]
    assert [s for c, s in seqs if c == other] == [1, 2, 3]


class _Undo(Exception):
    pass


def test_a_line_of_today_seen_in_a_transaction_rolled_back_is_not_taken_as_seen(services: Services) -> None:
    """Issue #14, TRC-1: « already in today's history » is remembered by the process only once committed — a list
    looked at in a transaction that then fails is still recorded at the next look."""
    other = Actor(ActorKind.PATIENT, "acc-rollback", "Personne", patient_id=PATIENT)
    with pytest.raises(_Undo), services.db.unit_of_work() as db:
        assert not audit.seen_today(db, other, "document.search", PATIENT)
        audit.record(db, other, "document.search", patient_id=PATIENT, resource_type="documents")
        assert audit.seen_today(db, other, "document.search", PATIENT)  # its own line, not committed
        raise _Undo
    with services.db.unit_of_work() as db:
        assert not audit.seen_today(db, other, "document.search", PATIENT)
        audit.record(db, other, "document.search", patient_id=PATIENT, resource_type="documents")
    with services.db.unit_of_work() as db:
        assert audit.seen_today(db, other, "document.search", PATIENT)
        count = db.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.actor_id == other.id))
    assert count == 1


def test_two_first_writers_of_a_new_chain_queue_and_neither_forks_it(services: Services) -> None:
    """TRC-4: a chain's first entry writes its head in one statement; a second transaction that found no head either
    (PostgreSQL: it has not seen the first one's uncommitted head) waits for the first, then follows it."""
    new = "33333333-3333-4333-8333-333333333333"
    first_wrote, commit_first = threading.Event(), threading.Event()
    recorded: dict[str, audit.Recorded] = {}

    def first() -> None:
        with services.db.unit_of_work() as db:
            recorded["first"] = audit.record(db, ACTOR, "space.view", patient_id=new)
            first_wrote.set()
            commit_first.wait(10)

    def second() -> None:
        with services.db.unit_of_work() as db:
            recorded["second"] = audit.record(db, ACTOR, "space.view", patient_id=new)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    threads[0].start()
    assert first_wrote.wait(10)
    threads[1].start()
    if not services.db.is_sqlite:  # the second waits on the first's new head (SQLite: on the writer's turn)
        _wait_for_a_lock_wait(services)
    commit_first.set()
    for thread in threads:
        thread.join(10)
    assert (recorded["first"].seq, recorded["second"].seq) == (1, 2)
    with services.db.unit_of_work() as db:
        seqs = list(db.scalars(select(AuditEntry.seq).where(AuditEntry.chain == new).order_by(AuditEntry.seq)))
        head = db.get(AuditHead, new)
        _, breaks = audit.verify(db)
    assert seqs == [1, 2] and head is not None and head.seq == 2 and breaks == []


def _wait_for_a_lock_wait(services: Services) -> None:
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    for _ in range(1000):
        with services.db.engine.connect() as connection:
            if connection.execute(waiting).scalar():
                return
        time.sleep(0.01)
    raise AssertionError("the second writer never waited for the first")
