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


keys_app = typer.Typer(help="Clés de chiffrement (clé maîtresse, clés des patients).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("rotate")
def keys_rotate(batch_size: int = typer.Option(500, min=1, help="Clés re-chiffrées par transaction")) -> None:
    """Renouvelle la clé maîtresse sans interruption de service (relancer la commande reprend une rotation)."""
    from carnet.services.keyring import Keyring, rotate_master_key
    from carnet.storage.db import Database

    settings = _settings()
    db = Database(settings.resolved_database_url)
    try:
        count = rotate_master_key(db, settings.resolved_master_key_file, batch_size=batch_size)
    except (RuntimeError, KeyError, FileNotFoundError) as exc:
        typer.echo(f"Rotation impossible : {exc.args[0] if exc.args else exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        db.dispose()
    new_id = Keyring(settings.resolved_master_key_file).current_id
    typer.echo(f"Clé maîtresse renouvelée : {count} clé(s) de patient re-chiffrée(s). Nouvelle clé : {new_id}.")


clients_app = typer.Typer(
    help="Clients de l'API FHIR (établissements, logiciels de professionnels).", no_args_is_help=True
)
app.add_typer(clients_app, name="clients")


@clients_app.command("create")
def clients_create(
    name: str = typer.Option(..., "--name", help="Nom affiché (établissement ou logiciel)"),
    finess: str | None = typer.Option(None, "--finess", help="FINESS de l'établissement"),
    rpps: str | None = typer.Option(None, "--rpps", help="RPPS du professionnel (annuaire)"),
) -> None:
    """Crée un client OAuth 2 (client credentials) et affiche client_id et client_secret en JSON."""
    import json

    from carnet.domain.identifiers import IdentifierError
    from carnet.services.clients import ClientError, create_client
    from carnet.storage.db import Database

    settings = _settings()
    db = Database(settings.resolved_database_url)
    try:
        with db.unit_of_work() as session:
            created = create_client(session, name, finess=finess, rpps=rpps)
    except (ClientError, IdentifierError) as exc:
        typer.echo(f"Erreur : {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(
        json.dumps(
            {"client_id": created.client_id, "client_secret": created.client_secret, "name": created.name},
            ensure_ascii=False,
        )
    )


def main() -> None:  # pragma: no cover
    app(sys.argv[1:])
