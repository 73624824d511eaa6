"""The ``carnet`` command: serve, migrate, demo data, master key rotation — and the commands of each
capability, gathered here (``carnet registry|campaign|spaces`` from enrolment, ``carnet professionals|teams``
from access, ``carnet clients`` from identity, ``carnet audit`` from the hall)."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from carnet.bootstrap import Services

from carnet.access.cli import establishments_app, professionals_app, teams_app
from carnet.agenda.cli import prevention
from carnet.backup.cli import backup_app
from carnet.blobs_cli import blobs_app
from carnet.catalogue.cli import apps_app
from carnet.config import Settings
from carnet.console import FrenchGroup
from carnet.enrolment.cli import campaign_app, registry_app, spaces_app
from carnet.hall.cli import audit_app
from carnet.identity.cli import clients_app
from carnet.messaging.cli import gateway, start_gateway

app = typer.Typer(
    cls=FrenchGroup,  # help, usage and usage errors in French, for every command below (carnet.console)
    help="Carnet — espace numérique de santé. Toutes les commandes lisent les variables CARNET_* "
    "(CARNET_DATA_DIR, CARNET_DATABASE_URL, CARNET_SMTP_URL, CARNET_BASE_URL, CARNET_MASTER_KEY_FILE…).",
    no_args_is_help=True,
    add_completion=False,
)
keys_app = typer.Typer(help="Clés de chiffrement (clé maîtresse, clés des patients).", no_args_is_help=True)

# The order of the help's list of commands.
app.add_typer(audit_app, name="audit")
app.add_typer(keys_app, name="keys")
app.add_typer(blobs_app, name="blobs")
app.add_typer(backup_app, name="backup")
app.add_typer(clients_app, name="clients")
app.add_typer(registry_app, name="registry")
app.add_typer(campaign_app, name="campaign")
app.add_typer(spaces_app, name="spaces")
app.add_typer(professionals_app, name="professionals")
app.add_typer(establishments_app, name="establishments")
app.add_typer(teams_app, name="teams")
app.add_typer(apps_app, name="apps")
app.command("prevention")(prevention)
app.command("gateway")(gateway)


def _settings() -> Settings:
    return Settings()


def _logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")


@app.command()
def migrate() -> None:
    """Crée ou met à jour le schéma de la base (migrations Alembic)."""
    from carnet import bootstrap

    bootstrap.migrate(_settings())  # creates the data folder and, on first start, the keys
    typer.echo("Base de données à jour.")


@app.command()
def demo() -> None:
    """Charge les données de démonstration (Corse) — sans effet si elles existent déjà."""
    from carnet.bootstrap import operator_services
    from carnet.demo import DEMO_PASSWORD
    from carnet.maintenance import load_demo

    settings = _settings()
    with operator_services(settings, migrate_schema=True) as services:
        logins = load_demo(services)
    typer.echo("Données de démonstration prêtes. Identifiants (mot de passe commun : " + DEMO_PASSWORD + ") :")
    for login in logins:
        typer.echo(f"  {login.login:<22} {login.who}")
    if settings.show_dev_pages:
        typer.echo(f"Codes de connexion envoyés par e-mail : {settings.base_url}/dev/boite-mail")


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Adresse d'écoute"),
    port: int = typer.Option(8000, help="Port d'écoute"),
    workers: int = typer.Option(1, min=1, max=64, help="Processus serveurs (un par cœur)"),
    smtp_port: int = typer.Option(
        0,
        "--smtp-port",
        min=0,
        max=65535,
        help="Port de la passerelle SMTP de la messagerie dans ce processus (0 : aucune)",
    ),
) -> None:
    """Lance le portail, l'API et FHIR (et les tâches de fond sur l'installation embarquée)."""
    import uvicorn

    from carnet.bootstrap import build_services
    from carnet.bootstrap import migrate as migrate_schema
    from carnet.jobs.runner import JobRunner

    settings = _settings()
    _logging(settings)
    services = build_services(settings)
    if settings.is_embedded:
        migrate_schema(settings)
    _refuse_a_wrong_master_key(services)
    # Background jobs run once, in this process, whatever the number of server processes.
    runner = JobRunner(services) if settings.is_embedded else None
    if runner:
        runner.start()
    smtp = start_gateway(services, host, smtp_port) if smtp_port else None
    typer.echo(f"Carnet écoute sur http://{host}:{port} (données : {settings.resolved_data_dir})")
    if smtp:
        typer.echo(f"Passerelle SMTP de la messagerie sur {host}:{smtp_port} (domaine {settings.messaging_domain})")
    # One process: the app shares the runner's services, hence one SQLite lock for both — with two,
    # a request reading then writing could meet "database is locked" after a job's commit.
    if workers == 1:
        from carnet.web.app import create_app

        target: object = create_app(services=services)
    else:
        target = "carnet.web.app:create_app"
    try:
        uvicorn.run(
            target,  # type: ignore[arg-type]
            factory=workers > 1,
            host=host,
            port=port,
            workers=workers,
            access_log=False,
            log_level=settings.log_level.lower(),
            proxy_headers=bool(settings.trusted_proxies.strip()),
            forwarded_allow_ips=settings.trusted_proxies.strip() or None,
            server_header=False,
        )
    finally:
        if smtp:
            smtp.stop()  # type: ignore[attr-defined]
        if runner:
            runner.stop()


@app.command()
def worker(
    une_fois: bool = typer.Option(False, "--une-fois", help="Exécute une fois chaque tâche due, puis s'arrête"),
    intervalle: float = typer.Option(5.0, min=0.5, help="Secondes entre deux passages"),
) -> None:
    """Lance les tâches de fond (envois, créations d'espaces, purges…) ; obligatoire avec PostgreSQL."""
    from carnet.bootstrap import build_services
    from carnet.jobs.cli import run_worker

    settings = _settings()
    _logging(settings)
    services = build_services(settings)
    try:
        _refuse_a_wrong_master_key(services)
        run_worker(services, une_fois, intervalle)
    finally:
        services.db.dispose()


def _refuse_a_wrong_master_key(services: Services) -> None:
    from carnet.bootstrap import WrongMasterKey, check_master_key

    try:
        check_master_key(services)
    except WrongMasterKey as exc:
        typer.echo(f"Démarrage refusé : {exc.message}", err=True)
        services.db.dispose()
        raise typer.Exit(1) from None


@keys_app.command("rotate")
def keys_rotate(batch_size: int = typer.Option(500, min=1, help="Clés re-chiffrées par transaction")) -> None:
    """Renouvelle la clé maîtresse sans interruption de service (relancer la commande reprend une rotation)."""
    from carnet.maintenance import KeyRotationError, rotate_master_key

    try:
        rotation = rotate_master_key(_settings(), batch_size=batch_size)
    except KeyRotationError as exc:
        typer.echo(f"Rotation impossible : {exc.message}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"Clé maîtresse renouvelée : {rotation.rewrapped} clé(s) de patient re-chiffrée(s). "
        f"Nouvelle clé : {rotation.key_id}."
    )


def main() -> None:  # pragma: no cover
    app(sys.argv[1:])
