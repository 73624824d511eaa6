"""``carnet apps``: an editor's application for referencing (``register``, printing the client id — and the secret
of a confidential client, shown once — as JSON) and the operator's decisions (``publish``, ``offline``,
``suspend``, ``dereference``, ``renew``, ``scopes``), each decided by the policy and written to the service's
history."""

from __future__ import annotations

import json

import typer

from carnet.config import Settings

apps_app = typer.Typer(help="Catalogue d'applications (référencement, décisions).", no_args_is_help=True)


@apps_app.command("register")
def register(
    name: str = typer.Option(..., "--nom", help="Nom de l'application"),
    redirect_uris: list[str] = typer.Option(..., "--redirect-uri", help="Adresse de retour OAuth (répétable)"),
    scope: str = typer.Option(..., "--scope", help='Portées SMART, par exemple "patient/Observation.cru"'),
    editor: str = typer.Option("", "--editeur", help="Éditeur (par défaut : le nom)"),
    description: str = typer.Option("", "--description", help="Description pour le catalogue"),
    purpose: str = typer.Option("", "--finalite", help="Données lues et écrites, et pourquoi"),
    retention: str = typer.Option("", "--conservation", help="Durée et lieu de conservation des données"),
    consent_wording: str = typer.Option("", "--texte-consentement", help="Texte montré avec la demande d'accord"),
    security: str = typer.Option("", "--securite", help="Réponses au questionnaire de sécurité"),
    category: str = typer.Option("", "--categorie", help="Catégorie (objet connecté, portail patient…)"),
    logo: str | None = typer.Option(None, "--logo", help="Adresse du logo"),
    confidential: bool = typer.Option(False, "--confidentiel", help="Client confidentiel (avec un secret)"),
) -> None:
    """Enregistre une demande de référencement (statut PRESERIE) et affiche client_id (et secret) en JSON."""
    from carnet.bootstrap import operator_actor, operator_services
    from carnet.catalogue.service import apps
    from carnet.catalogue.service.common import CatalogueError

    application = apps.Application(
        name=name, editor=editor or name, redirect_uris=tuple(redirect_uris), scope=scope, description=description,
        purpose=purpose, retention=retention, consent_wording=consent_wording, security=security, category=category,
        logo_url=logo, confidential=confidential,
    )  # fmt: skip
    try:
        with operator_services(Settings(), migrate_schema=False) as services:
            made = apps.register(services, operator_actor(), application)
    except CatalogueError as exc:
        typer.echo(f"Erreur : {exc}", err=True)
        raise typer.Exit(2) from exc
    out = {"id": made.app.id, "client_id": made.app.client_id, "nom": made.app.name, "statut": made.app.status}
    if made.client_secret:
        out["client_secret"] = made.client_secret
    out["scope"] = made.app.scope
    typer.echo(json.dumps(out, ensure_ascii=False))


def _decide(app_id: str, decision: str) -> None:
    from carnet.bootstrap import operator_actor, operator_services
    from carnet.catalogue.service import apps
    from carnet.catalogue.service.common import CatalogueError

    try:
        with operator_services(Settings(), migrate_schema=False) as services:
            app = apps.decide(services, operator_actor(), app_id, decision)
    except CatalogueError as exc:
        typer.echo(f"Erreur : {exc}", err=True)
        raise typer.Exit(2) from exc
    until = app.referenced_until.date().isoformat() if app.referenced_until else None
    typer.echo(json.dumps({"id": app.id, "nom": app.name, "statut": app.status, "reference_jusqu_au": until}))


@apps_app.command("publish")
def publish(app_id: str = typer.Argument(..., help="Identifiant ou client_id de l'application")) -> None:
    """Met l'application en ligne (référencée pour un an)."""
    _decide(app_id, "publish")


@apps_app.command("offline")
def offline(app_id: str = typer.Argument(..., help="Identifiant ou client_id de l'application")) -> None:
    """Met l'application hors ligne."""
    _decide(app_id, "offline")


@apps_app.command("suspend")
def suspend(app_id: str = typer.Argument(..., help="Identifiant ou client_id de l'application")) -> None:
    """Suspend l'application : tous ses jetons cessent de fonctionner immédiatement."""
    _decide(app_id, "suspend")


@apps_app.command("dereference")
def dereference(app_id: str = typer.Argument(..., help="Identifiant ou client_id de l'application")) -> None:
    """Déréférence l'application (définitif) : tous ses jetons cessent de fonctionner immédiatement."""
    _decide(app_id, "dereference")


@apps_app.command("renew")
def renew(app_id: str = typer.Argument(..., help="Identifiant ou client_id de l'application")) -> None:
    """Renouvelle le référencement pour un an."""
    _decide(app_id, "renew")


@apps_app.command("scopes")
def scopes(
    app_id: str = typer.Argument(..., help="Identifiant ou client_id de l'application"),
    scope: str = typer.Option(..., "--scope", help="Nouvelles portées SMART"),
) -> None:
    """Change les portées référencées : chaque personne devra donner à nouveau son accord."""
    from carnet.bootstrap import operator_actor, operator_services
    from carnet.catalogue.service import apps
    from carnet.catalogue.service.common import CatalogueError

    try:
        with operator_services(Settings(), migrate_schema=False) as services:
            app = apps.change_scopes(services, operator_actor(), app_id, scope)
    except CatalogueError as exc:
        typer.echo(f"Erreur : {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(json.dumps({"id": app.id, "nom": app.name, "scope": app.scope}, ensure_ascii=False))
