"""``carnet prevention``: the prevention engine (AGD-2) on the command line, for operators checking a calendar
edit — no database, no data of any patient: the person is described by the options.

    carnet prevention --naissance AAAA-MM-JJ --sexe F|M [--le AAAA-MM-JJ] [--fait CODE=AAAA-MM-JJ]…
        [--non-fait CODE=AAAA-MM-JJ]… [--a-risque] [--calendrier VERSION] [--json]

``--fait`` takes an item code (``DEP-SEIN``, ``VAC-ROR-1``) or a vaccine family (``ROR``, ``GRIPPE``: the dates go
to its doses in date order). Prints every item that applies with its code, status, due date and label, and the
calendar version; ``--json`` prints a JSON list of objects (``code``, ``libelle``, ``statut``, ``echeance``…).
A bad date, an unknown code or sex: a French message on stderr and exit code 2.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from carnet.agenda.model.prevention import Calendar, ItemStatus

_ISO = re.compile(r"\d{4}-\d{2}-\d{2}")
_SEXES = {"F": "F", "M": "M"}


class _BadInput(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _day(value: str, what: str) -> date:
    text = value.strip()
    try:
        if _ISO.fullmatch(text):
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise _BadInput(f"{what} : date invalide « {value} » (format attendu AAAA-MM-JJ, par exemple 2025-03-15).")


def _pairs(values: list[str], option: str, calendar: Calendar, birth: date, today: date) -> dict[str, list[date]]:
    pairs: dict[str, list[date]] = {}
    for value in values:
        code, sep, when = value.partition("=")
        code = code.strip().upper()
        if not sep or not code:
            raise _BadInput(f"{option} attend CODE=AAAA-MM-JJ (lu : « {value} »).")
        if code not in calendar.by_code and code not in calendar.families:
            raise _BadInput(
                f"{option} : code inconnu du calendrier de prévention {calendar.version} : « {code} » "
                "(un code d'élément comme VAC-ROR-1 ou DEP-SEIN, ou une famille de vaccins comme ROR ou GRIPPE)."
            )
        day = _day(when, f"{option} {code}")
        if day < birth or day > today:
            raise _BadInput(f"{option} {code} : le {day:%d/%m/%Y} n'est pas entre la naissance et le jour du calcul.")
        pairs.setdefault(code, []).append(day)
    return pairs


def _age(birth: date, today: date) -> str:
    months = (today.year - birth.year) * 12 + today.month - birth.month - (today.day < birth.day)
    if months < 1:
        days = (today - birth).days
        return f"{days} jour{'s' if days > 1 else ''}"
    if months < 24:
        return f"{months} mois"
    return f"{months // 12} ans"


def _french(day: date | None) -> str:
    return "—" if day is None else day.strftime("%d/%m/%Y")


def _status_text(status: ItemStatus) -> str:
    return status.status_label + (" (rattrapage)" if status.catch_up else "")


def _lines(calendar: Calendar, statuses: list[ItemStatus], birth: date, sex: str, today: date) -> list[str]:
    lines = [
        f"Calendrier de prévention {calendar.version} (en vigueur depuis le {_french(calendar.valid_from)})",
        f"Personne née le {_french(birth)}, sexe {sex}, au {_french(today)} : {_age(birth, today)}.",
        "",
    ]
    if not statuses:
        return [*lines, "Aucun examen ni vaccin recommandé à cet âge."]
    width = max(len(s.code) for s in statuses)
    lines.append(f"{'Code':<{width}}  {'Statut':<26}  {'Échéance':<10}  Libellé")
    for s in statuses:
        done = f" — fait le {_french(s.last_done)}" if s.last_done else ""
        lines.append(f"{s.code:<{width}}  {_status_text(s):<26}  {_french(s.due):<10}  {s.libelle}{done}")
    return lines


def _json(calendar: Calendar, statuses: list[ItemStatus]) -> str:
    rows: list[dict[str, Any]] = [
        {
            "code": s.code,
            "libelle": s.libelle,
            "type": s.kind,
            "statut": s.status,
            "statut_libelle": s.status_label,
            "echeance": s.due.isoformat() if s.due else None,
            "derniere_realisation": s.last_done.isoformat() if s.last_done else None,
            "dose": s.dose,
            "doses": s.doses,
            "rattrapage": s.catch_up,
            "famille": s.family,
            "calendrier": calendar.version,
        }
        for s in statuses
    ]
    return json.dumps(rows, ensure_ascii=False, indent=2)


def prevention(
    naissance: str | None = typer.Option(None, "--naissance", help="Date de naissance, AAAA-MM-JJ (obligatoire)"),
    sexe: str | None = typer.Option(None, "--sexe", help="F ou M (obligatoire)"),
    le: str | None = typer.Option(
        None, "--le", help="Jour du calcul, AAAA-MM-JJ (aujourd'hui, heure de Paris, si omis)"
    ),
    fait: list[str] = typer.Option(
        [], "--fait", help="CODE=AAAA-MM-JJ : fait ce jour-là (code d'élément, ou famille de vaccins : ROR, GRIPPE…)"
    ),
    non_fait: list[str] = typer.Option(
        [], "--non-fait", help="CODE=AAAA-MM-JJ : la personne a dit ce jour-là ne pas l'avoir fait, ou le refuser"
    ),
    a_risque: bool = typer.Option(False, "--a-risque", help="Maladie chronique (VRS dès 65 ans)"),
    calendrier: str | None = typer.Option(None, "--calendrier", help="Version du calendrier (la plus récente si omis)"),
    as_json: bool = typer.Option(False, "--json", help="Une liste JSON plutôt qu'un tableau"),
) -> None:
    """Examens recommandés (AGD-2) pour une personne décrite par les options : code, statut, échéance, libellé."""
    from carnet.agenda.model.prevention import PreventionError, evaluate, load_calendar
    from carnet.hall.vocabulary import PARIS

    try:
        if naissance is None or sexe is None:
            raise _BadInput("--naissance AAAA-MM-JJ et --sexe F|M sont obligatoires.")
        calendar = load_calendar(calendrier)
        birth = _day(naissance, "--naissance")
        today = _day(le, "--le") if le else datetime.now(PARIS).date()
        sex = _SEXES.get(sexe.strip().upper())
        if sex is None:
            raise _BadInput(f"--sexe : « {sexe} » n'est pas un sexe connu (F ou M).")
        if birth > today:
            raise _BadInput("--naissance : la date de naissance est postérieure au jour du calcul.")
        done = _pairs(fait, "--fait", calendar, birth, today)
        declined_pairs = _pairs(non_fait, "--non-fait", calendar, birth, today)
        if families := [code for code in declined_pairs if code in calendar.families]:
            raise _BadInput(f"--non-fait attend un code d'élément, pas une famille de vaccins : {', '.join(families)}.")
        declined = {code: max(days) for code, days in declined_pairs.items()}
        statuses = evaluate(calendar, birth, sex, today, done, declined, at_risk=a_risque)
    except (_BadInput, PreventionError) as exc:
        typer.echo(f"Erreur : {exc.message}", err=True)
        raise typer.Exit(2) from None
    typer.echo(_json(calendar, statuses) if as_json else "\n".join(_lines(calendar, statuses, birth, sex, today)))
