"""``carnet clients create``: the operator registers a client of the FHIR API (an establishment's system, or
a professional's software), shown its secret once."""

from __future__ import annotations

import json

import typer

from carnet.config import Settings

clients_app = typer.Typer(
    help="Clients de l'API FHIR (établissements, logiciels de professionnels).", no_args_is_help=True
)


@clients_app.command("create")
def clients_create(
    name: str = typer.Option(..., "--name", help="Nom affiché (établissement ou logiciel)"),
    finess: str | None = typer.Option(None, "--finess", help="FINESS de l'établissement"),
    rpps: str | None = typer.Option(None, "--rpps", help="RPPS du professionnel (annuaire)"),
) -> None:
    """Crée un client OAuth 2 (client credentials) et affiche client_id et client_secret en JSON."""
    from carnet.bootstrap import operator_actor, operator_services
    from carnet.identity.service.clients import ClientError, register_client
    from carnet.people.model.identifiers import IdentifierError

    try:
        with operator_services(Settings(), migrate_schema=False) as services:
            created = register_client(services, operator_actor(), name, finess=finess, rpps=rpps)
    except (ClientError, IdentifierError) as exc:
        typer.echo(f"Erreur : {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(
        json.dumps(
            {"client_id": created.client_id, "client_secret": created.client_secret, "name": created.name},
            ensure_ascii=False,
        )
    )
