"""The vault's background jobs: deposit notifications (TRC-3), the reveal of INVISIBLE_PATIENT documents (VLT-6),
the sweep of bodies a crash left without their document."""

from __future__ import annotations

from datetime import timedelta

from carnet.jobs.worker import Job
from carnet.vault.service import housekeeping, notifications

JOBS = [
    Job("vault.notifications", timedelta(seconds=15), notifications.send_pending),
    Job("vault.reveal", timedelta(minutes=5), housekeeping.reveal_due_documents),
    Job("vault.orphans", timedelta(hours=6), housekeeping.sweep_orphan_blobs),
]
