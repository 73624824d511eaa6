"""In-process background work for the embedded default: periodic housekeeping jobs.

A scale-out deployment runs the same jobs from a separate worker (``carnet jobs run``);
campaigns and notifications will queue durable tasks through the same seam.
"""

from __future__ import annotations

import logging
import threading

from carnet.services import auth
from carnet.services.context import Services

log = logging.getLogger("carnet.jobs")


def housekeeping(services: Services) -> None:
    with services.db.unit_of_work() as db:
        removed = auth.purge_expired(db)
    if removed:
        log.info("sessions expirées supprimées: %d", removed)


class JobRunner:
    def __init__(self, services: Services, interval_seconds: float = 60.0) -> None:
        self.services = services
        self.interval = interval_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> None:
        try:
            housekeeping(self.services)
        except Exception:
            log.exception("tâche de fond en échec")

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.run_once()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="carnet-jobs", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
