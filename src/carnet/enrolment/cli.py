"""``carnet registry …``, ``carnet campaign …``, ``carnet spaces …``: the operator's enrolment commands
(ENR-1 registry import, ENR-2 invitation campaigns, ENR-3 spaces).

Each command parses its arguments, calls one use case of :mod:`carnet.enrolment.service` as the operator
at the command line, and prints what it returns (French; exit code 1 or 2 on a refusal).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from carnet.config import Settings
from carnet.console import report_lines

if TYPE_CHECKING:
    from carnet.bootstrap import Services

registry_app = typer.Typer(
    help="Registre des assurés (ENR-1) : import du fichier de l'assurance maladie.", no_args_is_help=True
)
campaign_app = typer.Typer(
    help="Campagnes d'invitation par territoire (ENR-2) : e-mails et courriers.", no_args_is_help=True
)
spaces_app = typer.Typer(help="Espaces santé des personnes (ENR-3).", no_args_is_help=True)


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


@registry_app.command("import")
def registry_import(
    file: str = typer.Argument(..., metavar="FICHIER", help="Fichier CSV en UTF-8, séparateur « ; » ou « , »"),
) -> None:
    """Importe ou met à jour les assurés d'un fichier CSV (code de sortie 1 si des lignes sont rejetées).

    Première ligne : les 14 colonnes, dans n'importe quel ordre (* obligatoire) :
    ins*, nom_naissance*, prenoms*, date_naissance* (AAAA-MM-JJ), sexe* (M ou F),
    lieu_naissance* (code INSEE), email, telephone, adresse, code_postal, commune,
    departement*, numero_serie_vitale, ins_ouvrant_droit (INS du parent d'un enfant).

    Format complet et exemple : docs/registry.md, docs/examples/registre-exemple.csv.
    """
    from carnet.bootstrap import operator_actor, operator_services
    from carnet.enrolment.service.admin import import_registry_file
    from carnet.enrolment.service.registry import RegistryFileError

    path = Path(file)
    actor = operator_actor()
    try:
        with (
            operator_services(Settings()) as services,
            typer.progressbar(length=max(_file_size(path), 1), label="Import du registre", file=sys.stderr) as bar,
        ):
            report = import_registry_file(services, actor, path, progress=bar.update)
    except RegistryFileError as exc:
        typer.echo(f"Erreur : {exc.message}", err=True)
        raise typer.Exit(2) from None
    typer.echo(report.summary)
    if report.vitale_note:
        typer.echo(report.vitale_note)
    report_lines(path, "Avertissements (lignes chargées)", [w.message for w in report.warnings], ".avertissements.txt")
    report_lines(path, "Lignes rejetées", [e.message for e in report.rejected], ".rejets.txt")
    if report.rejected:
        raise typer.Exit(1)


class _SendingBar(ExitStack):
    """The progress bar of the e-mails on stderr, drawn once the service tells how many are waiting."""

    def __init__(self) -> None:
        super().__init__()
        self._update: Callable[[int], None] | None = None
        self._done = 0

    def __call__(self, handled: int, total: int) -> None:
        if self._update is None:
            bar = typer.progressbar(length=max(total, 1), label="Envoi des e-mails", file=sys.stderr)
            self._update = self.enter_context(bar).update
        self._update(handled - self._done)
        self._done = handled


def _send_all(services: Services, connections: int, processes: int) -> None:
    """``carnet campaign send``, also run by ``carnet campaign start --send``."""
    from carnet.enrolment.service.admin import send_invitations

    with _SendingBar() as bar:
        report = send_invitations(services, connections, processes, progress=bar)
    typer.echo(
        f"E-mails envoyés : {report.sent}, refusés (courrier à la place) : {report.refused}, "
        f"à réessayer : {report.retried}."
    )
    if report.retried:
        typer.echo("Le serveur SMTP a refusé ou interrompu des envois : relancez « carnet campaign send ».", err=True)


@campaign_app.command("start")
def campaign_start(
    departements: str = typer.Option(..., "--departements", help="Départements, séparés par des virgules (2A,2B)"),
    send: bool = typer.Option(False, "--send", help="Envoyer aussitôt tous les e-mails (barre de progression)"),
    connections: int = typer.Option(4, "--connexions", min=1, max=16, help="Connexions SMTP par processus"),
    processes: int = typer.Option(1, "--processus", min=1, max=16, help="Processus d'envoi (un par cœur)"),
) -> None:
    """Lance une campagne : invite chaque personne enregistrée et pas encore invitée de ces départements."""
    from carnet.bootstrap import operator_actor, operator_services
    from carnet.enrolment.service.admin import launch_campaign
    from carnet.enrolment.service.campaigns import CampaignError

    with operator_services(Settings()) as services:
        try:
            campaign = launch_campaign(services, operator_actor(), departements)
        except CampaignError as exc:
            typer.echo(f"Erreur : {exc.message}", err=True)
            raise typer.Exit(2) from None
        typer.echo(
            f"Campagne {campaign.id} ({', '.join(campaign.departements)}) : {campaign.invited} personne(s) "
            f"invitée(s), {campaign.by_email} par e-mail, {campaign.by_letter} par courrier."
        )
        if send:
            _send_all(services, connections, processes)
    typer.echo(f"Courriers à produire : carnet campaign letters {campaign.id}")


@campaign_app.command("send")
def campaign_send(
    connections: int = typer.Option(4, "--connexions", min=1, max=16, help="Connexions SMTP par processus"),
    processes: int = typer.Option(1, "--processus", min=1, max=16, help="Processus d'envoi (un par cœur)"),
) -> None:
    """Envoie tous les e-mails d'invitation en attente (reprend sans perte après une interruption)."""
    from carnet.bootstrap import operator_services

    with operator_services(Settings()) as services:
        _send_all(services, connections, processes)


@campaign_app.command("letters")
def campaign_letters(
    campaign_id: str = typer.Argument(..., metavar="CAMPAGNE", help="Identifiant de la campagne"),
    batch_size: int = typer.Option(1000, "--par-lot", min=1, max=10000, help="Courriers par fichier PDF"),
    processes: int = typer.Option(1, "--processus", min=1, max=16, help="Processus de rendu (un par cœur)"),
) -> None:
    """Produit les courriers en attente de la campagne : un PDF par lot, à remettre à l'imprimeur."""
    from carnet.bootstrap import operator_actor, operator_services
    from carnet.enrolment.service.admin import print_campaign_letters
    from carnet.enrolment.service.campaigns import CampaignError

    try:
        with operator_services(Settings()) as services:
            batches = print_campaign_letters(services, operator_actor(), campaign_id, batch_size, processes)
    except CampaignError as exc:
        typer.echo(f"Erreur : {exc.message}", err=True)
        raise typer.Exit(2) from None
    for batch in batches:
        typer.echo(f"  {batch.path} ({batch.count} courrier(s))")
    typer.echo(f"{sum(b.count for b in batches)} courrier(s) produit(s) en {len(batches)} lot(s).")


@spaces_app.command("open")
def spaces_open(ins: str = typer.Argument(..., metavar="INS", help="Matricule INS (NIR, 15 caractères)")) -> None:
    """Ouvre aussitôt l'espace d'une personne enregistrée, sans attendre la fin du délai d'opposition (journalisé)."""
    from carnet.bootstrap import operator_actor, operator_services
    from carnet.enrolment.service.campaigns import CampaignError, open_space

    try:
        with operator_services(Settings()) as services:
            opened = open_space(services, operator_actor(), ins)
    except CampaignError as exc:
        typer.echo(f"Refusé : {exc.message}", err=True)
        raise typer.Exit(1) from None
    typer.echo("L'espace était déjà ouvert." if opened.already else "Espace ouvert.")


@spaces_app.command("import")
def spaces_import(
    archive: Path = typer.Argument(..., metavar="ARCHIVE.zip", help="L'archive téléchargée sur l'autre service"),
) -> None:
    """Recrée l'espace d'une personne qui arrive d'un autre service Carnet, à partir de son archive (ENR-7) :
    l'archive est vérifiée en entier d'abord (empreintes du manifeste), puis tout est restauré ou rien."""
    from carnet.bootstrap import operator_actor, operator_services
    from carnet.errors import CarnetError
    from carnet.export.service.importing import import_archive

    try:
        with operator_services(Settings()) as services:
            imported = import_archive(services, operator_actor(), archive)
    except CarnetError as exc:
        typer.echo(f"Refusé : {exc.message} Rien n'a été importé.", err=True)
        raise typer.Exit(1) from None
    counts = ", ".join(f"{name} : {count}" for name, count in imported.counts.items())
    typer.echo(f"Espace recréé pour l'INS {imported.ins} ({counts}).")
    sent = "par e-mail" if imported.code_sent_by == "email" else "par courrier (prochain lot de courriers)"
    typer.echo(f"Un code d'activation est envoyé à la personne {sent}.")
