"""The ``carnet`` command: serve, migrate, demo data, audit verification."""

from __future__ import annotations

import logging
import sys

import typer

from carnet.config import Settings

app = typer.Typer(
    help="Carnet — espace numérique de santé. Toutes les commandes lisent les variables CARNET_* "
    "(CARNET_DATA_DIR, CARNET_DATABASE_URL, CARNET_SMTP_URL, CARNET_BASE_URL, CARNET_MASTER_KEY_FILE…).",
    no_args_is_help=True,
    add_completion=False,
)
audit_app = typer.Typer(help="Journal d'audit (historique infalsifiable).", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


def _settings() -> Settings:
    return Settings()


def _logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")


@app.command()
def migrate() -> None:
    """Crée ou met à jour le schéma de la base (migrations Alembic)."""
    from carnet.services.context import build_services
    from carnet.storage.migrate import upgrade

    settings = _settings()
    build_services(settings)  # creates the data folder and, on first start, the keys
    upgrade(settings.resolved_database_url)
    typer.echo("Base de données à jour.")


@app.command()
def demo() -> None:
    """Charge les données de démonstration (Corse) — sans effet si elles existent déjà."""
    from carnet.services.context import build_services
    from carnet.services.demo import DEMO_PASSWORD, load_demo
    from carnet.storage.migrate import upgrade

    settings = _settings()
    services = build_services(settings)
    upgrade(settings.resolved_database_url)
    with services.db.unit_of_work() as db:
        logins = load_demo(services, db)
    typer.echo("Données de démonstration prêtes. Identifiants (mot de passe commun : " + DEMO_PASSWORD + ") :")
    for login in logins:
        typer.echo(f"  {login.login:<22} {login.who}")
    if settings.show_dev_pages:
        typer.echo(f"Codes de connexion envoyés par e-mail : {settings.base_url}/dev/boite-mail")


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Adresse d'écoute"),
    port: int = typer.Option(8000, help="Port d'écoute"),
) -> None:
    """Lance le portail, l'API et FHIR (et les tâches de fond sur l'installation embarquée)."""
    import uvicorn

    from carnet.services.context import build_services
    from carnet.storage.migrate import upgrade
    from carnet.web.app import create_app

    settings = _settings()
    _logging(settings)
    services = build_services(settings)
    if settings.is_embedded:
        upgrade(settings.resolved_database_url)
    application = create_app(services=services, run_jobs=settings.is_embedded)
    typer.echo(f"Carnet écoute sur http://{host}:{port} (données : {settings.resolved_data_dir})")
    uvicorn.run(
        application,
        host=host,
        port=port,
        access_log=False,
        log_level=settings.log_level.lower(),
        proxy_headers=True,
        server_header=False,
    )


@audit_app.command("verify")
def audit_verify() -> None:
    """Vérifie l'intégrité de toutes les chaînes du journal d'audit (code de sortie 1 si altéré)."""
    from carnet.services import audit
    from carnet.storage.db import Database

    settings = _settings()
    db = Database(settings.resolved_database_url)
    with db.unit_of_work() as session:
        chains, breaks = audit.verify(session)
    if breaks:
        typer.echo(f"Journal d'audit ALTÉRÉ : {len(breaks)} anomalie(s) sur {chains} chaîne(s).", err=True)
        for problem in breaks:
            typer.echo(f"  chaîne {problem.chain}, entrée n° {problem.seq} : {problem.problem}", err=True)
        raise typer.Exit(1)
    typer.echo(f"Journal d'audit intègre : {chains} chaîne(s) vérifiée(s).")


def main() -> None:  # pragma: no cover
    app(sys.argv[1:])
