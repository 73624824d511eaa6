"""The vault's background jobs: deposit notifications (TRC-3) and the reveal of INVISIBLE_PATIENT documents (VLT-6)."""

from __future__ import annotations

from datetime import timedelta

from carnet.jobs.worker import Job
from carnet.vault.service import housekeeping, notifications

JOBS = [
    Job("vault.notifications", timedelta(seconds=15), notifications.send_pending),
    Job("vault.reveal", timedelta(minutes=5), housekeeping.reveal_due_documents),
]
