"""``Database.spooled_pages`` (#18): the rows of a long walk — a region's letters, rendered beside the sending for an
hour — given page by page as ``pages`` gives them, but with the read's snapshot released before the first page, so
that PostgreSQL can prune the row versions the sending leaves behind (its updates stay HOT)."""

from __future__ import annotations

from sqlalchemy import select, text

from carnet.bootstrap import Services
from carnet.people.tables import Patient
from tests.support.enrolment import add_registered


def _snapshots_held_by_others(services: Services) -> int:
    """Sessions of this database, other than the one asking, that hold a snapshot (PostgreSQL's ``backend_xmin``)."""
    with services.db.engine.connect() as connection:
        return int(
            connection.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND backend_xmin IS NOT NULL"
                )
            )
            or 0
        )


def test_the_pages_are_those_of_the_read_and_no_snapshot_is_held_while_they_are_walked(services: Services) -> None:
    add_registered(services, 7, "2A")
    query = select(Patient.id, Patient.birth_name).order_by(Patient.birth_name)
    with services.db.unit_of_work() as db:
        expected = [list(row) for row in db.execute(query)]

    streamed = services.db.pages(query, 3)
    first_streamed = next(streamed)
    held_by_a_stream = None if services.db.is_sqlite else _snapshots_held_by_others(services)
    streamed.close()
    spooled = services.db.spooled_pages(query, 3)
    pages = [next(spooled)]
    held_by_a_spool = None if services.db.is_sqlite else _snapshots_held_by_others(services)
    pages += list(spooled)

    assert [len(page) for page in pages] == [3, 3, 1]
    assert [row for page in pages for row in page] == expected
    assert [list(row) for row in first_streamed] == expected[:3]
    if not services.db.is_sqlite:
        assert held_by_a_stream == 1, "a stream keeps its snapshot (the check sees it)"
        assert held_by_a_spool == 0
