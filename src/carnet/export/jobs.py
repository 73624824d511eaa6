"""The export's background jobs (ENR-7): preparing the archives asked for, and deleting them after 7 days; run by
``carnet worker`` and, on the embedded default, inside ``carnet serve`` (``carnet.jobs.schedule``)."""

from __future__ import annotations

from datetime import timedelta

from carnet.export.service import build, requests
from carnet.jobs.worker import Job

# A space of 400 MB takes about a minute: the lease covers it with room to spare.
JOBS = [
    Job("export.build", timedelta(seconds=10), build.run, lease=timedelta(minutes=30)),
    Job("export.expire", timedelta(hours=1), requests.expire),
]
