"""``carnet gateway``: the inbound SMTP gateway of the messaging (MSG-3) as a process of its own; and the helper
``carnet serve --smtp-port`` uses to run it beside the portal on the embedded default."""

from __future__ import annotations

import signal
import threading

import typer

from carnet.bootstrap import Services
from carnet.config import Settings


def start_gateway(services: Services, host: str, port: int) -> object:
    """Start the gateway in a thread of this process; the returned object's ``stop()`` ends it."""
    from carnet.messaging.smtp import GatewayController

    controller = GatewayController(services, host, port)
    controller.start()
    return controller


def gateway(
    host: str = typer.Option("127.0.0.1", "--host", help="Adresse d'écoute"),
    port: int = typer.Option(2525, "--port", min=1, max=65535, help="Port d'écoute SMTP"),
) -> None:
    """Passerelle SMTP entrante de la messagerie : reçoit les messages des professionnels pour
    <INS>@CARNET_MESSAGING_DOMAIN et les range, chiffrés, dans l'espace du patient."""
    from carnet.bootstrap import build_services
    from carnet.bootstrap import migrate as migrate_schema

    settings = Settings()
    services = build_services(settings)
    if settings.is_embedded:
        migrate_schema(settings)
    controller = start_gateway(services, host, port)
    typer.echo(f"Passerelle SMTP de la messagerie sur {host}:{port} (domaine {settings.messaging_domain})")
    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    try:
        stopped.wait()
    finally:
        controller.stop()  # type: ignore[attr-defined]
        services.db.dispose()
