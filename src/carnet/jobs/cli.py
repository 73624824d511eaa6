"""``carnet worker``: every background job, on any database (required on PostgreSQL; on the embedded default
``carnet serve`` runs the same worker in-process). Several workers may run at once: leases keep each job to
one of them at a time."""

from __future__ import annotations

import signal
from types import FrameType

import typer

from carnet.bootstrap import Services
from carnet.jobs.runner import housekeeping
from carnet.jobs.schedule import all_jobs
from carnet.jobs.worker import Worker


def run_worker(services: Services, once: bool, tick: float) -> None:
    if once:
        done = housekeeping(services)
        typer.echo("Tâches exécutées : " + (", ".join(f"{name} ({count})" for name, count in done.items()) or "aucune"))
        return
    worker = Worker(services, all_jobs(), tick_seconds=tick)

    def stop(signum: int, frame: FrameType | None) -> None:  # finish the job in hand, then leave
        worker.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    typer.echo(f"Carnet : tâches de fond en cours ({len(worker.jobs)} tâches, passage toutes les {tick:g} s).")
    worker.run_forever()
    typer.echo("Carnet : tâches de fond arrêtées.")
