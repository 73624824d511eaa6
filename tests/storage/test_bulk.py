"""storage.bulk.insert_new (#18): a campaign's invitations written in bulk — COPY on PostgreSQL, one executemany on
SQLite — keep every value as given, and skip the rows a unique key already holds instead of failing the page."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Table, select

from carnet.bootstrap import Services
from carnet.enrolment.tables import Campaign, Invitation
from carnet.storage.bulk import insert_new
from carnet.storage.types import TimeOrderedIds
from tests.support.enrolment import add_registered

EXPIRES = datetime(2027, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)


def _row(invitation_id: str, patient_id: str, campaign_id: str, code: str) -> dict[str, object]:
    return {
        "id": invitation_id,
        "patient_id": patient_id,
        "campaign_id": campaign_id,
        "channel": "email",
        "status": "pending",
        "code_hash": f"hash-{code}",
        "code_sealed": f"sealed-{code}",
        "code_expires_at": EXPIRES,
        "attempts": 0,
    }


def test_rows_are_written_as_given_and_a_conflict_is_skipped(services: Services) -> None:
    people = add_registered(services, 3, "2A")
    ids = TimeOrderedIds()
    with services.db.unit_of_work() as db:
        campaign = Campaign(departements=["2A"], started_at=EXPIRES, started_by="test")
        db.add(campaign)
        db.flush()
        campaign_id = campaign.id
    table = cast(Table, Invitation.__table__)
    first = [_row(ids(), people[0].id, campaign_id, "A"), _row(ids(), people[1].id, campaign_id, "B")]
    with services.db.unit_of_work() as db:
        insert_new(db.connection(), table, first)

    again = [_row(ids(), people[1].id, campaign_id, "C"), _row(ids(), people[2].id, campaign_id, "D")]
    with services.db.unit_of_work() as db:
        insert_new(db.connection(), table, again)  # people[1] is invited already: skipped, the page goes on
        insert_new(db.connection(), table, [])

    with services.db.unit_of_work() as db:
        rows = db.scalars(select(Invitation).order_by(Invitation.id)).all()
        written = [(r.id, r.patient_id, r.code_hash, r.code_sealed, r.code_expires_at, r.status) for r in rows]
    expected = sorted([first[0], first[1], again[1]], key=lambda row: str(row["id"]))
    assert written == [
        (r["id"], r["patient_id"], r["code_hash"], r["code_sealed"], EXPIRES, "pending") for r in expected
    ]
