"""``carnet audit verify``: the operator checks that the audit log (the tamper-evident history) is intact."""

from __future__ import annotations

import typer

from carnet.config import Settings

audit_app = typer.Typer(help="Journal d'audit (historique infalsifiable).", no_args_is_help=True)


@audit_app.command("verify")
def audit_verify() -> None:
    """Vérifie l'intégrité de toutes les chaînes du journal d'audit (code de sortie 1 si altéré)."""
    from carnet.maintenance import verify_audit_log

    check = verify_audit_log(Settings())
    if check.breaks:
        typer.echo(f"Journal d'audit ALTÉRÉ : {len(check.breaks)} anomalie(s) sur {check.chains} chaîne(s).", err=True)
        for problem in check.breaks:
            typer.echo(f"  chaîne {problem.chain}, entrée n° {problem.seq} : {problem.problem}", err=True)
        raise typer.Exit(1)
    typer.echo(f"Journal d'audit intègre : {check.chains} chaîne(s) vérifiée(s).")
