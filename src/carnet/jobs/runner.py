"""In-process background work for the embedded default: periodic housekeeping jobs.

A scale-out deployment runs the same jobs from a separate worker (``carnet jobs run``);
campaigns and notifications will queue durable tasks through the same seam.
"""

from __future__ import annotations

import logging
import threading

from carnet.access.service import grants as access
from carnet.bootstrap import Services
from carnet.enrolment.service import campaigns, lifecycle
from carnet.family import service as family
from carnet.identity.service import auth
from carnet.vault.service import documents as vault
from carnet.vault.service import notifications

log = logging.getLogger("carnet.jobs")
CAMPAIGN_SECONDS_PER_TICK = 10.0


def housekeeping(services: Services) -> None:
    with services.db.unit_of_work() as db:
        removed = auth.purge_expired(db)
        revealed = vault.reveal_due(db)
    if removed or revealed:
        log.info("sessions expirées supprimées: %d, documents révélés: %d", removed, revealed)
    lifecycle.purge_archives(services)
    sent = notifications.send_pending(services) + access.send_notices(services)
    if sent:
        log.info("notifications envoyées: %d", sent)
    # ENR-2/ENR-3: invitation e-mails (a bounded slice per tick, so the other jobs keep their pace),
    # then the spaces whose 6-week objection period is over.
    report = campaigns.send_pending(services, connections=2, max_seconds=CAMPAIGN_SECONDS_PER_TICK)
    if report.handled:
        log.info("invitations: %d envoyées, %d rebonds, %d à réessayer", report.sent, report.bounced, report.retried)
    campaigns.auto_create_spaces(services)
    family.majority(services)  # FAM-2: at 18 the person takes over their own space


class JobRunner:
    def __init__(self, services: Services, interval_seconds: float = 15.0) -> None:
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
