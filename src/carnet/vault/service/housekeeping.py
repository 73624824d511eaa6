"""Housekeeping of the vault run by the job worker: documents hidden from the patient revealed when due (VLT-6)."""

from __future__ import annotations

from datetime import datetime

from carnet.bootstrap import Services
from carnet.vault.service import documents


def reveal_due_documents(services: Services, now: datetime | None = None) -> int:
    with services.db.unit_of_work() as db:
        return documents.reveal_due(db, now)
