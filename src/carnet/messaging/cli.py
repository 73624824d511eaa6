"""``carnet gateway``: the inbound SMTP gateway of the messaging (MSG-3) as a process of its own; and the helper
``carnet serve --smtp-port`` uses to run it beside the portal on the embedded default."""

from __future__ import annotations

import signal
import threading

import typer

from carnet.bootstrap import Services
from carnet.config import Settings


def start_gateway(services: Services, host: str, port: int, shared_port: bool = False) -> object:
    """Start the gateway in a thread of this process; the returned object's ``stop()`` ends it."""
    from carnet.messaging.smtp import GatewayController

    controller = GatewayController(services, host, port, shared_port=shared_port)
    controller.start()
    return controller


def _until_stopped() -> None:
    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    stopped.wait()


def _serve(host: str, port: int, shared_port: bool) -> None:
    """One gateway process: its own services (database connections are never shared across processes)."""
    from carnet.bootstrap import build_services

    services = build_services(Settings())
    controller = start_gateway(services, host, port, shared_port)
    try:
        _until_stopped()
    finally:
        controller.stop()  # type: ignore[attr-defined]
        services.db.dispose()


def gateway(
    host: str = typer.Option("127.0.0.1", "--host", help="Adresse d'écoute"),
    port: int = typer.Option(2525, "--port", min=1, max=65535, help="Port d'écoute SMTP"),
    processus: int = typer.Option(
        1, "--processus", min=1, max=64, help="Processus de la passerelle sur le même port (un par cœur)"
    ),
) -> None:
    """Passerelle SMTP entrante de la messagerie : reçoit les messages des professionnels pour
    <INS>@CARNET_MESSAGING_DOMAIN et les range, chiffrés, dans l'espace du patient."""
    import multiprocessing

    from carnet.bootstrap import migrate as migrate_schema

    settings = Settings()
    if settings.is_embedded:
        migrate_schema(settings)
    context = multiprocessing.get_context("spawn")
    others = [context.Process(target=_serve, args=(host, port, True), daemon=True) for _ in range(processus - 1)]
    for process in others:
        process.start()
    typer.echo(
        f"Passerelle SMTP de la messagerie sur {host}:{port} (domaine {settings.messaging_domain}, "
        f"{processus} processus)"
    )
    try:
        _serve(host, port, processus > 1)
    finally:
        for process in others:
            process.terminate()
        for process in others:
            process.join(timeout=30)
