"""The messaging's background job: telling spaces a message is waiting (MSG-4), run by ``carnet worker`` and, on
the embedded default, inside ``carnet serve`` (``carnet.jobs.schedule``)."""

from __future__ import annotations

from datetime import timedelta

from carnet.jobs.worker import Job
from carnet.messaging.service import notifications

JOBS = [Job("messaging.notifications", timedelta(seconds=15), notifications.send_pending)]
