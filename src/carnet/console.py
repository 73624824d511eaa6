"""What the command groups of every capability print the same way (imported files' refused lines)."""

from __future__ import annotations

from pathlib import Path

import typer

SHOWN = 50  # lines printed; the full list goes to a file next to the imported one


def report_lines(path: Path, title: str, items: list[str], suffix: str) -> None:
    """Print the first lines of a list on stderr and write all of it next to the imported file."""
    listing = path.with_name(path.name + suffix)
    if not items:
        listing.unlink(missing_ok=True)  # a list left by a previous import would mislead
        return
    typer.echo(f"{title} :", err=True)
    for message in items[:SHOWN]:
        typer.echo(f"  {message}", err=True)
    if len(items) > SHOWN:
        typer.echo(f"  … et {len(items) - SHOWN} autres", err=True)
    try:
        listing.write_text("\n".join(items) + "\n", encoding="utf-8")
        typer.echo(f"  Liste complète : {listing}", err=True)
    except OSError as exc:
        typer.echo(f"  Liste complète non écrite ({listing}) : {exc.strerror}", err=True)
