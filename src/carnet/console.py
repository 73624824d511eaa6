"""What the command groups of every capability print the same way: imported files' refused lines, and the
French words of the help and of the usage errors (``FrenchGroup``, the root group of ``carnet``)."""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import typer
from typer.core import TyperGroup

# click's exceptions, or the copy Typer carries since it vendored click: found through a public name
UsageError: type[Exception] = importlib.import_module(typer.BadParameter.__module__).UsageError

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


# --- the French words of the command line ------------------------------------------------------------------
# Typer writes its help and its usage errors in English, some words through ``gettext`` (the panel titles,
# « [required] », « Error »: public constants of ``typer.rich_utils``), others as plain literals (« Usage: »,
# « Show this message and exit. », the type labels, the parser's errors). The root group of ``carnet`` is a
# ``FrenchGroup`` (``typer.Typer(cls=FrenchGroup)``): when Typer builds the command tree, it gives every
# command, group and parameter below it the French subclass of its own class — so a command added anywhere,
# by any capability, speaks French without asking — and it sets Typer's words before running.

HELP_OPTION_HELP: Final = "Affiche cette aide et quitte."
USAGE_PREFIX: Final = "Utilisation : "
SUBCOMMAND_METAVAR: Final = "COMMANDE [ARGUMENTS]..."
RICH_WORDS: Final = {
    "ARGUMENTS_PANEL_TITLE": "Arguments",
    "OPTIONS_PANEL_TITLE": "Options",
    "COMMANDS_PANEL_TITLE": "Commandes",
    "REQUIRED_LONG_STRING": "[obligatoire]",
    "DEFAULT_STRING": "[par défaut : {}]",
    "ENVVAR_STRING": "[variable d'environnement : {}]",
    "DEPRECATED_STRING": "(obsolète) ",
    "ERRORS_PANEL_TITLE": "Erreur",
    "ABORTED_TEXT": "Interrompu.",
    "RICH_HELP": "Aide : [blue]{command_path} {help_option}[/]",
}
TYPE_WORDS: Final = {
    "<str>": "<texte>",
    "<int>": "<entier>",
    "<int range>": "<entier>",
    "<float>": "<nombre>",
    "<float range>": "<nombre>",
    "<path>": "<chemin>",
    "<file>": "<fichier>",
    "<directory>": "<dossier>",
    "<datetime>": "<date>",
    "<bool>": "<oui|non>",
}
_VALUE_WORDS: Final = (
    (re.compile(r"Input should be greater than or equal to (\S+)"), r"la valeur doit être au moins \1"),
    (re.compile(r"Input should be less than or equal to (\S+)"), r"la valeur doit être au plus \1"),
    (re.compile(r"Input should be greater than (\S+)"), r"la valeur doit dépasser \1"),
    (re.compile(r"Input should be less than (\S+)"), r"la valeur doit être inférieure à \1"),
    (re.compile(r"Input should be a valid integer.*"), "un nombre entier est attendu"),
    (re.compile(r"Input should be a valid number.*"), "un nombre est attendu"),
    (re.compile(r"Input should be a valid boolean.*"), "oui ou non est attendu"),
    (re.compile(r"Choose from:"), "Valeurs possibles :"),
)
_ERROR_WORDS: Final = (
    (re.compile(r"Missing option (.+?)\.(?: (.*))?$", re.S), "Option obligatoire manquante : {0}. {1}"),
    (re.compile(r"Missing argument (.+?)\.(?: (.*))?$", re.S), "Argument obligatoire manquant : {0}. {1}"),
    (re.compile(r"Missing parameter:? (.+?)\.?$"), "Paramètre obligatoire manquant : {0}."),
    (re.compile(r"No such option: (\S+)(?: \(Possible options: (.+)\))?$"), "Option inconnue : {0}. {1}"),
    (re.compile(r"No such command (.+?)\.(?: Did you mean (.+)\?)?$"), "Commande inconnue : {0}. {1}"),
    (re.compile(r"Missing command\.$"), "Commande manquante."),
    (re.compile(r"Got unexpected extra argument(?:s|\(s\))? \((.+)\)$"), "Argument(s) en trop : {0}."),
    (re.compile(r"Option (.+?) requires (?:an argument|\d+ arguments)\.?$"), "L'option {0} attend une valeur."),
    (re.compile(r"Option (.+?) does not take a value\.$"), "L'option {0} ne prend pas de valeur."),
    (re.compile(r"Invalid value for (.+?): (.+)$", re.S), "Valeur invalide pour {0} : {1}"),
    (re.compile(r"Invalid value: (.+)$", re.S), "Valeur invalide : {0}"),
)
_SUGGESTION: Final = "Vouliez-vous dire : {0} ?"  # Typer's « Did you mean … » and « Possible options: … »


def _value_in_french(text: str) -> str:
    for pattern, words in _VALUE_WORDS:
        text = pattern.sub(words, text)
    return text


def french_error(message: str) -> str:
    """A usage error of Typer's parser, in French (a message it does not know stays as it is)."""
    for pattern, words in _ERROR_WORDS:
        found = pattern.match(message)
        if not found:
            continue
        parts = [part or "" for part in found.groups()] + ["", ""]
        if message.startswith("No such") and parts[1]:
            parts[1] = _SUGGESTION.format(parts[1])
        parts = [_value_in_french(part) for part in parts]
        return words.format(*parts).strip()
    return message


def _set_rich_words() -> None:
    """Typer's help and error panels in French (``typer.rich_utils`` is imported lazily, as Typer does)."""
    from typer import rich_utils

    for name, words in RICH_WORDS.items():
        setattr(rich_utils, name, words)


@functools.cache
def _french_parameter(base: type) -> type:
    """The French subclass of a parameter class: its type shows in French (« <entier> »); a flag shows none."""

    class FrenchParameter(base):
        def display_type_rich(self, ctx: Any) -> str | None:
            shown: str | None = super().display_type_rich(ctx)
            if shown == "<bool>" and getattr(self, "is_flag", False):
                return None
            return TYPE_WORDS.get(shown, shown) if shown is not None else None

    FrenchParameter.__name__ = FrenchParameter.__qualname__ = f"{base.__name__}EnFrançais"
    return FrenchParameter


@functools.cache
def _french_command(base: type) -> type:
    """The French subclass of a command or group class: help option, usage line and usage errors in French."""

    class FrenchCommand(base):
        def get_help_option(self, ctx: Any) -> Any:
            option = super().get_help_option(ctx)
            if option is not None and option.help != HELP_OPTION_HELP:
                option.help = HELP_OPTION_HELP
                _speak_french(option, _french_parameter)
            return option

        def format_usage(self, ctx: Any, formatter: Any) -> None:
            pieces = self.collect_usage_pieces(ctx)
            formatter.write_usage(ctx.command_path, " ".join(pieces), prefix=USAGE_PREFIX)

        def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
            try:
                return super().make_context(info_name, args, parent, **extra)
            except UsageError as error:
                raise _in_french(error) from None

        def resolve_command(self, ctx: Any, args: list[str]) -> Any:
            try:
                return super().resolve_command(ctx, args)
            except UsageError as error:
                raise _in_french(error) from None

    FrenchCommand.__name__ = FrenchCommand.__qualname__ = f"{base.__name__}EnFrançais"
    return FrenchCommand


def _in_french(error: Any) -> Any:
    if type(error).__name__ == "NoArgsIsHelpError":  # the help itself, printed in place of an error
        return error
    message = error.format_message()
    french = french_error(message)
    return error if french == message else UsageError(french, error.ctx)


def _speak_french(item: Any, french: Callable[[type], type]) -> None:
    """Give this command, group or parameter the French subclass of its class (the same layout: only methods
    are added, so the object keeps its state)."""
    if not getattr(type(item), "__name__", "").endswith("EnFrançais"):
        item.__class__ = french(type(item))


def _speak_french_below(command: Any) -> None:
    for param in command.params:
        _speak_french(param, _french_parameter)
    for sub in getattr(command, "commands", {}).values():
        _speak_french(sub, _french_command)
        if getattr(sub, "subcommand_metavar", None) is not None:
            sub.subcommand_metavar = SUBCOMMAND_METAVAR
        _speak_french_below(sub)


class FrenchGroup(_french_command(TyperGroup)):  # type: ignore[misc]
    """The root group of ``carnet``: its commands, groups and parameters, to any depth, speak French."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["subcommand_metavar"] = kwargs.get("subcommand_metavar") or SUBCOMMAND_METAVAR
        super().__init__(*args, **kwargs)
        _speak_french_below(self)

    def main(self, *args: Any, **kwargs: Any) -> Any:
        _set_rich_words()
        return super().main(*args, **kwargs)
