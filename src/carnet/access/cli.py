"""``carnet professionals …`` and ``carnet teams …``: the operator keeps the professional directory and the
care teams (ACC-1).

Each command parses its arguments, calls one use case of :mod:`carnet.access.service.admin` as the operator
at the command line, and prints what it returns (French; exit code 1 or 2 on a refusal).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from carnet.config import Settings
from carnet.console import report_lines

if TYPE_CHECKING:
    from carnet.access.service.admin import MembershipChange
    from carnet.access.service.care_teams import TeamView

professionals_app = typer.Typer(
    help="Annuaire des professionnels de santé (ACC-1) : ajout par RPPS, import de l'Annuaire Santé (ANS).",
    no_args_is_help=True,
)
teams_app = typer.Typer(
    help="Équipes de soins (ACC-1) : groupes nommés de professionnels d'un établissement, qu'un patient peut "
    "autoriser en bloc.",
    no_args_is_help=True,
)


@professionals_app.command("add")
def professionals_add(
    rpps: str = typer.Option(..., "--rpps", help="Numéro RPPS (11 chiffres)"),
    nom: str = typer.Option(..., "--nom", help="Nom d'exercice"),
    prenom: str = typer.Option(..., "--prenom", help="Prénom d'exercice"),
    profession: str = typer.Option(
        ...,
        "--profession",
        help="Code profession TRE_G15 : 10 médecin, 21 pharmacien, 40 chirurgien-dentiste, "
        "50 sage-femme, 60 infirmier, 70 masseur-kinésithérapeute…",
    ),
    specialite: str | None = typer.Option(None, "--specialite", help="Spécialité (savoir-faire), facultative"),
    samu: bool | None = typer.Option(
        None, "--samu/--non-samu", help="Médecin régulateur du SAMU (inchangé si omis ; non pour un nouveau)"
    ),
    email: str | None = typer.Option(
        None,
        "--email",
        help="Adresse de messagerie sécurisée (MSSanté) : ses e-mails parviennent aux patients (inchangée si omise)",
    ),
) -> None:
    """Ajoute un professionnel à l'annuaire, ou le met à jour si son RPPS y est déjà (journalisé)."""
    from carnet.access.model.directory import DirectoryError
    from carnet.access.service.admin import add_to_directory
    from carnet.bootstrap import operator_actor, operator_services
    from carnet.people.model.professions import profession_label

    try:
        with operator_services(Settings()) as services:
            added = add_to_directory(
                services,
                operator_actor(),
                rpps=rpps,
                last_name=nom,
                first_name=prenom,
                profession_code=profession,
                specialty=specialite,
                samu_regulator=samu,
                email=email,
            )
    except DirectoryError as exc:
        typer.echo(f"Erreur : {exc.message}", err=True)
        raise typer.Exit(1) from None
    what = "ajouté à l'annuaire" if added.created else "mis à jour dans l'annuaire"
    samu_note = ", régulateur du SAMU" if added.samu_regulator else ""
    who = f"{added.first_name} {added.last_name}, {profession_label(added.profession_code).lower()}{samu_note}"
    mail_note = f" ; messagerie : {added.email}" if added.email else ""
    typer.echo(f"Professionnel {what} : RPPS {added.rpps} ({who}){mail_note}.")


establishments_app = typer.Typer(
    help="Établissements (MSG-3) : nom et adresse de messagerie sécurisée, par FINESS.", no_args_is_help=True
)


@establishments_app.command("add")
def establishments_add(
    finess: str = typer.Option(..., "--finess", help="Numéro FINESS (9 caractères)"),
    nom: str = typer.Option(..., "--nom", help="Nom de l'établissement"),
    email: str | None = typer.Option(None, "--email", help="Adresse de messagerie sécurisée (MSSanté)"),
) -> None:
    """Ajoute un établissement, ou le met à jour si son FINESS y est déjà (journalisé)."""
    from carnet.access.model.directory import DirectoryError
    from carnet.access.service.admin import add_establishment_to_directory
    from carnet.bootstrap import operator_actor, operator_services

    try:
        with operator_services(Settings()) as services:
            added = add_establishment_to_directory(services, operator_actor(), finess=finess, name=nom, email=email)
    except DirectoryError as exc:
        typer.echo(f"Erreur : {exc.message}", err=True)
        raise typer.Exit(1) from None
    what = "ajouté à l'annuaire" if added.created else "mis à jour dans l'annuaire"
    mail_note = f" ; messagerie : {added.email}" if added.email else ""
    typer.echo(f"Établissement {what} : FINESS {added.finess} ({added.name}){mail_note}.")


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


@professionals_app.command("import")
def professionals_import(
    file: str = typer.Argument(
        ..., metavar="FICHIER", help="Extraction PS_LibreAcces_Personne_activite_<date>.txt (séparateur « | »)"
    ),
) -> None:
    """Importe ou met à jour l'annuaire depuis l'extraction de l'Annuaire Santé (sortie 1 : lignes rejetées)."""
    from carnet.access.service.admin import import_directory_file
    from carnet.access.service.directory import DirectoryFileError
    from carnet.bootstrap import operator_actor, operator_services

    path = Path(file)
    try:
        with (
            operator_services(Settings()) as services,
            typer.progressbar(length=max(_file_size(path), 1), label="Import de l'annuaire", file=sys.stderr) as bar,
        ):
            report = import_directory_file(services, operator_actor(), path, progress=bar.update)
    except DirectoryFileError as exc:
        typer.echo(f"Erreur : {exc.message}", err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"{report.total} lignes lues, {report.inserted} professionnels ajoutés, {report.updated} mis à jour, "
        f"{report.other_activities} lignes d'activités supplémentaires, {report.without_rpps} lignes sans RPPS "
        f"ignorées, {len(report.rejected)} rejetées."
    )
    report_lines(path, "Lignes rejetées", [error.message for error in report.rejected], ".rejets.txt")
    if report.rejected:
        raise typer.Exit(1)


# --- care teams -------------------------------------------------------------------------------------------


def _who(change: MembershipChange) -> str:
    return f"{change.first_name} {change.last_name} (RPPS {change.rpps})"


def _team_lines(teams: list[TeamView]) -> list[str]:
    if not teams:
        return ["Aucune équipe de soins."]
    lines = []
    for team in teams:
        place = f"{team.establishment} (FINESS {team.finess})" if team.finess else "sans établissement"
        lines.append(f"{team.id}  {team.name} — {place} — {len(team.members)} membre(s)")
        lines += [f"    RPPS {m.rpps}  {m.name}, {m.profession.lower()}" for m in team.members]
    return lines


def _refused(message: str) -> typer.Exit:
    """A change the service refused: the French reason on stderr, exit code 1."""
    typer.echo(f"Erreur : {message}", err=True)
    return typer.Exit(1)


@teams_app.command("create")
def teams_create(
    nom: str = typer.Option(..., "--nom", help="Nom de l'équipe (ex. « Équipe mobile de soins palliatifs »)"),
    finess: str = typer.Option(..., "--finess", help="FINESS de l'établissement (déjà connu de Carnet)"),
) -> None:
    """Crée une équipe de soins et affiche son identifiant seul (journalisé)."""
    from carnet.access.service.admin import create_team
    from carnet.access.service.care_teams import CareTeamError
    from carnet.bootstrap import operator_actor, operator_services

    try:
        with operator_services(Settings()) as services:
            team = create_team(services, operator_actor(), nom, finess)
    except CareTeamError as exc:
        raise _refused(exc.message) from None
    typer.echo(f"Équipe de soins « {team.name} » créée.", err=True)
    typer.echo(team.id)


@teams_app.command("add-member")
def teams_add_member(
    team_id: str = typer.Argument(..., metavar="EQUIPE", help="Identifiant de l'équipe (carnet teams list)"),
    rpps: str = typer.Option(..., "--rpps", help="RPPS du professionnel (annuaire)"),
) -> None:
    """Ajoute un professionnel de l'annuaire à l'équipe : il lit aussitôt les espaces qui ont autorisé
    l'équipe (journalisé)."""
    from carnet.access.service.admin import add_team_member
    from carnet.access.service.care_teams import CareTeamError
    from carnet.bootstrap import operator_actor, operator_services

    try:
        with operator_services(Settings()) as services:
            change = add_team_member(services, operator_actor(), team_id, rpps)
    except CareTeamError as exc:
        raise _refused(exc.message) from None
    typer.echo(
        f"{_who(change)} ajouté(e) à l'équipe." if change.changed else f"{_who(change)} fait déjà partie de l'équipe."
    )


@teams_app.command("remove-member")
def teams_remove_member(
    team_id: str = typer.Argument(..., metavar="EQUIPE", help="Identifiant de l'équipe (carnet teams list)"),
    rpps: str = typer.Option(..., "--rpps", help="RPPS du professionnel"),
) -> None:
    """Retire un professionnel de l'équipe : son accès par l'équipe cesse aussitôt (journalisé)."""
    from carnet.access.service.admin import remove_team_member
    from carnet.access.service.care_teams import CareTeamError
    from carnet.bootstrap import operator_actor, operator_services

    try:
        with operator_services(Settings()) as services:
            change = remove_team_member(services, operator_actor(), team_id, rpps)
    except CareTeamError as exc:
        raise _refused(exc.message) from None
    typer.echo(f"{_who(change)} retiré(e) de l'équipe.")


@teams_app.command("list")
def teams_list(
    finess: str | None = typer.Option(None, "--finess", help="Seulement les équipes de cet établissement"),
) -> None:
    """Liste les équipes de soins et leurs membres."""
    from carnet.access.service.admin import list_care_teams
    from carnet.access.service.care_teams import CareTeamError
    from carnet.bootstrap import operator_actor, operator_services

    try:
        with operator_services(Settings()) as services:
            teams = list_care_teams(services, operator_actor(), finess)
    except CareTeamError as exc:
        raise _refused(exc.message) from None
    typer.echo("\n".join(_team_lines(teams)))
