"""``carnet backup create|restore``: the operator's consistent online backup and its restore (issue #18-4)."""

from __future__ import annotations

from pathlib import Path

import typer

from carnet.config import Settings

backup_app = typer.Typer(
    help="Sauvegarde et restauration de l'instance (base, fichiers chiffrés).", no_args_is_help=True
)


def _progress(message: str) -> None:
    typer.echo(message, err=True)


def _size(count: int) -> str:
    return f"{count / 1_000_000:.1f} Mo".replace(".", ",")


@backup_app.command("create")
def backup_create(
    dossier: Path = typer.Argument(..., metavar="DOSSIER", help="Dossier neuf (ou vide) où écrire la sauvegarde"),
) -> None:
    """Sauvegarde cohérente, sans arrêter le service : la base, les fichiers chiffrés qu'elle référence et un
    manifeste (empreintes SHA-256, identifiant de la clé maîtresse — jamais la clé elle-même)."""
    from carnet.backup.service import BackupError, create_backup

    try:
        report = create_backup(Settings(), dossier, progress=_progress)
    except BackupError as exc:
        typer.echo(f"Sauvegarde impossible : {exc.message}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"Sauvegarde écrite dans {report.folder} : base {report.database_kind} ({_size(report.database_bytes)}, "
        f"révision {report.revision}), {report.blobs} fichier(s) chiffré(s) ({_size(report.blob_bytes)}). "
        f"Clé maîtresse nécessaire à la restauration : {report.master_key_id}."
    )
    if report.deleted_meanwhile:
        typer.echo(
            f"{len(report.deleted_meanwhile)} ligne(s) supprimée(s) pendant la sauvegarde, absentes de celle-ci "
            f"(instantané repris {report.attempts - 1} fois) :"
        )
        for line in report.deleted_meanwhile:
            typer.echo(f"  {line}")
    typer.echo("Gardez les fichiers de clés (clé maîtresse, secret) à part : ils ne sont pas dans la sauvegarde.")


@backup_app.command("restore")
def backup_restore(
    dossier: Path = typer.Argument(
        ..., metavar="DOSSIER", help="Dossier d'une sauvegarde faite par « carnet backup create »"
    ),
) -> None:
    """Restaure une sauvegarde dans un dossier de données neuf ou une base vide, avec la même clé maîtresse ;
    chaque fichier est vérifié avant toute écriture, puis le journal d'audit."""
    from carnet.backup.service import BackupError, restore_backup

    try:
        report = restore_backup(Settings(), dossier, progress=_progress)
    except BackupError as exc:
        typer.echo(f"Restauration impossible : {exc.message}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"Sauvegarde restaurée : base {report.database_kind} (révision {report.revision}), "
        f"{report.blobs} fichier(s) chiffré(s) ({_size(report.blob_bytes)})."
    )
    if report.needs_migration:
        typer.echo("Le schéma de la sauvegarde est plus ancien que cette version : lancez « carnet migrate ».")
    if report.audit_breaks:
        typer.echo(
            f"Journal d'audit ALTÉRÉ : {len(report.audit_breaks)} anomalie(s) sur {report.audit_chains} chaîne(s).",
            err=True,
        )
        for line in report.audit_breaks:
            typer.echo(f"  {line}", err=True)
        raise typer.Exit(1)
    typer.echo(f"Journal d'audit intègre : {report.audit_chains} chaîne(s) vérifiée(s).")
