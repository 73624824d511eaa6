"""``carnet blobs move-to-s3``: the operator moves the documents' sealed bodies from the local folder to S3-compatible
object storage (issue #18-1). Parses, calls ``carnet.maintenance``, prints."""

from __future__ import annotations

import sys

import typer

from carnet.config import Settings
from carnet.errors import CarnetError

blobs_app = typer.Typer(
    help="Fichiers chiffrés des documents (dossier local, stockage objet S3).", no_args_is_help=True
)


@blobs_app.command("move-to-s3")
def move_to_s3(
    vers: str = typer.Option(
        "",
        "--vers",
        help="Stockage objet de destination, s3://compartiment?endpoint=https://…&region=… , un préfixe pouvant "
        "suivre le compartiment (par défaut CARNET_BLOB_URL). Identifiants : AWS_ACCESS_KEY_ID et "
        "AWS_SECRET_ACCESS_KEY.",
    ),
    supprimer_local: bool = typer.Option(
        False, "--supprimer-local", help="Supprime chaque copie locale une fois sa copie S3 relue et vérifiée."
    ),
) -> None:
    """Copie tous les fichiers chiffrés du dossier local vers le stockage objet S3, vérifiés par empreinte SHA-256.
    Relancer la commande reprend là où elle s'était arrêtée."""
    from carnet.maintenance import prepare_blob_move

    try:
        move = prepare_blob_move(Settings(), vers or None)
        typer.echo(f"{len(move.keys)} fichier(s) chiffré(s) à déplacer vers {move.target.describe()}.")
        with typer.progressbar(length=max(len(move.keys), 1), label="Copie vers S3", file=sys.stderr) as bar:
            summary = move.run(remove_local=supprimer_local, advance=bar.update)
    except CarnetError as exc:
        typer.echo(f"Déplacement interrompu : {exc.message}", err=True)
        typer.echo("Relancez la même commande pour reprendre : ce qui a été vérifié n'est pas recopié.", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"Déplacement terminé : {summary.copied} fichier(s) copié(s) et vérifié(s) "
        f"({_size(summary.bytes_copied)}), {summary.present} déjà présent(s) et identique(s), "
        f"{summary.removed} copie(s) locale(s) supprimée(s)."
    )
    typer.echo(
        f"Étape suivante : réglez CARNET_BLOB_URL={vers or Settings().blob_url} pour tous les serveurs et workers, "
        "puis redémarrez-les."
    )
    if not supprimer_local and summary.total:
        typer.echo("Les copies locales sont conservées : relancez avec --supprimer-local une fois la bascule faite.")


def _size(count: int) -> str:
    if count < 1024:
        return f"{count} octets"
    value = float(count)
    for unit in ("Ko", "Mo", "Go"):
        value /= 1024
        if value < 1024:
            return f"{value:.1f} {unit}".replace(".", ",")
    return f"{value / 1024:.1f} To".replace(".", ",")
