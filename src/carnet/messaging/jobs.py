"""The messaging's background jobs: telling spaces a message is waiting (MSG-4), and the sweep of attachment bodies a
crash left without their row; run by ``carnet worker`` and, on the embedded default, inside ``carnet serve``
(``carnet.jobs.schedule``)."""

from __future__ import annotations

from datetime import timedelta

from carnet.jobs.worker import Job
from carnet.messaging.service import housekeeping, notifications

JOBS = [
    Job("messaging.notifications", timedelta(seconds=15), notifications.send_pending),
    Job("messaging.orphans", timedelta(hours=6), housekeeping.sweep_orphan_blobs),
]
