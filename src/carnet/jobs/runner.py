"""The worker inside ``carnet serve`` on the embedded default, and ``carnet worker`` on any database.

Both run the same ``Worker`` over every capability's jobs (``carnet.jobs.schedule``); leases make sure
that several of them never run one job at the same moment.
"""

from __future__ import annotations

import threading

from carnet.bootstrap import Services
from carnet.jobs.schedule import all_jobs
from carnet.jobs.worker import Worker


def housekeeping(services: Services) -> dict[str, int]:
    """One pass over every due job (tests, ``carnet worker --une-fois``)."""
    return Worker(services, all_jobs()).run_once()


class JobRunner:
    """The worker in a background thread of the serving process (embedded default)."""

    def __init__(self, services: Services, interval_seconds: float = 5.0) -> None:
        self.worker = Worker(services, all_jobs(), tick_seconds=interval_seconds)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = self.worker.start_thread()

    def stop(self) -> None:
        self.worker.stop.set()
        if self._thread:
            self._thread.join(timeout=5)
