"""The history records consultations and changes, not page views (issue #15-10): a professional coming back to a
space, and anyone listing its documents again and again, is one line per actor and day."""

from __future__ import annotations

from sqlalchemy import func, select

from carnet.bootstrap import Services
from carnet.hall.tables import AuditEntry
from tests.support.actors import Actors


def lines(services: Services, patient_id: str, action: str) -> int:
    with services.db.unit_of_work() as db:
        query = select(func.count()).where(AuditEntry.patient_id == patient_id, AuditEntry.action == action)
        return db.scalar(query) or 0


def test_pages_seen_again_are_one_line_a_day(actors: Actors, demo: Services) -> None:
    space = actors.patient_id
    finds_before = lines(demo, space, "space.find")
    lists_before = lines(demo, space, "document.search")
    for _ in range(5):
        assert actors.professional.get(f"/pro/patients/{space}/documents").status_code == 200
        assert actors.patient.get(f"/espace/{space}/documents").status_code == 200
    assert lines(demo, space, "space.find") == finds_before + 1  # the professional's look-up, once today
    assert lines(demo, space, "document.search") - lists_before == 2  # the patient's lists and the pro's, once each
