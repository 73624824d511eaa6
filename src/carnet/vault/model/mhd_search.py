"""ITI-67 Find Document References: the parameters of a search as the vault applies them — pure.

The parameters are MHD's (IHE ITI TF-2 3.67.4.1.2.1) read as FHIR R4 reads them (search.html): every token
parameter takes ``code``, ``system|code``, ``|code`` and ``system|``, comma-separated alternatives (OR) and
repeated parameters (AND); every date parameter takes partial dates and every prefix (``eq ne gt lt ge le sa eb
ap``). Anything not understood is a 400 (``InputError``), never silently ignored and never a crash.

``date`` is the document's ``date`` as sent (the deposit time when none was sent), ``period`` its period of
service, ``creation`` the attachment's, ``_lastUpdated`` the deposit time or the last change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from carnet.fhir import search
from carnet.fhir.search import DateCriterion, Token
from carnet.vault.model import documents as rules
from carnet.vault.model.mhd_metadata import (
    FINESS,
    IDNPS_SYSTEM,
    IDNST_SYSTEM,
    RPPS,
    RPPS_SYSTEM,
    author_key,
    query_form,
)

TOKENS = ("type", "category", "format", "event", "facility", "setting", "security-label", "identifier")
DATES = ("date", "period", "creation", "_lastUpdated")
SEARCH_PARAMETERS = frozenset(
    {
        "patient",
        "patient.identifier",
        "status",
        "author.identifier",
        *TOKENS,
        *DATES,
        "_count",
        "_offset",
        "_format",
        "_summary",
        "_total",
    }
)
STATUSES = ("current", "superseded", "entered-in-error")
DEFAULT_COUNT = 50
MAX_COUNT = 100  # a larger _count is served as 100 (R4: the server may return fewer)
MAX_OFFSET = 1_000_000
SUMMARIES = ("true", "false", "text", "data", "count")
TOTALS = ("none", "estimate", "accurate")


@dataclass(frozen=True)
class AuthorMatch:
    """One alternative set of ``author.identifier``: the depositing professionals' RPPS and establishments' FINESS
    (or any of them), and the blind tokens of the authors as sent."""

    rpps: frozenset[str] = frozenset()
    finess: frozenset[str] = frozenset()
    any_rpps: bool = False
    any_finess: bool = False
    forms: tuple[str, ...] = ()


@dataclass(frozen=True)
class DocumentSearch:
    """An ITI-67 search: whose documents and by which parameter, the statuses kept, the token parameters (each with
    its alternatives), ``author.identifier``, the date parameters, the page, and whether only the total is asked
    (``_summary=count``)."""

    designation: dict[str, Any]
    designated_by: str
    statuses: tuple[str, ...] = ("current",)
    codes: tuple[tuple[str, tuple[Token, ...]], ...] = ()
    authors: tuple[AuthorMatch, ...] = ()
    dates: tuple[tuple[str, tuple[DateCriterion, ...]], ...] = ()
    count: int = DEFAULT_COUNT
    offset: int = 0
    total_only: bool = False


def _statuses(groups: tuple[tuple[Token, ...], ...]) -> tuple[str, ...]:
    """``status`` (MHD: codes without a system), ``current`` when absent; repeated, the statuses all ask for."""
    kept = set(STATUSES) if groups else {"current"}
    for alternatives in groups:
        asked = set()
        for token in alternatives:
            if token.system or token.code not in STATUSES:
                raise search.invalid(f"Statut inconnu : {str(token.code)[:30]} ({', '.join(STATUSES)}).", "status")
            asked.add(token.code)
        kept &= asked
    return tuple(s for s in STATUSES if s in kept)


def label_codes(alternatives: Iterable[Token]) -> frozenset[str]:
    """The confidentiality codes a ``security-label`` value names: a code in its own system (French codes in the ANS
    system, the others in HL7's), or every code of a system; an unknown code or a wrong system names none."""
    systems = {code: rules.CONFIDENTIALITY_SYSTEM_FR for code in rules.FRENCH_LABELS} | {
        code: rules.CONFIDENTIALITY_SYSTEM_HL7 for code in rules.HL7_LABELS
    }
    named = set()
    for token in alternatives:
        for code, system in systems.items():
            if (token.code is None or token.code == code) and token.system in {None, system}:
                named.add(code)
    return frozenset(named)


def _bare_author(code: str) -> AuthorMatch:
    """A bare ``author.identifier``: an RPPS, an IdNatPs (« 8 » + RPPS), a FINESS, an IdNatStruct (« 1 » + FINESS),
    or an identifier of any system."""
    rpps = {c for c in (code, code[1:] if code[:1] == "8" else "") if RPPS.fullmatch(c)}
    finess = {c for c in (code, code[1:] if code[:1] == "1" else "") if FINESS.fullmatch(c)}
    forms = [query_form("author", Token(None, code))]
    forms += [f"author|rpps|{c}" for c in rpps] + [f"author|finess|{c}" for c in finess]
    return AuthorMatch(frozenset(rpps), frozenset(finess), forms=tuple(forms))


def author_match(alternatives: Iterable[Token]) -> AuthorMatch:
    """``author.identifier``'s alternatives: the professional by IdNatPs ``urn:oid:1.2.250.1.71.4.2.1|8<RPPS>`` (as
    Consent takes it) or ``https://rpps.esante.gouv.fr|<RPPS>``, the establishment by IdNatStruct
    ``urn:oid:1.2.250.1.71.4.2.2|1<FINESS>``, a bare value, or any identifier as the authors were sent."""
    rpps: set[str] = set()
    finess: set[str] = set()
    forms: list[str] = []
    any_rpps = any_finess = False
    for token in alternatives:
        if token.system is None and token.code is not None:
            bare = _bare_author(token.code)
            rpps |= bare.rpps
            finess |= bare.finess
            forms += bare.forms
            continue
        known = author_key(token.system, token.code) if token.code is not None else None
        if known is not None:
            (rpps if known[0] == "rpps" else finess).add(known[1])
            forms.append(f"author|{known[0]}|{known[1]}")
        elif token.code is None and token.system in {IDNPS_SYSTEM, RPPS_SYSTEM, IDNST_SYSTEM}:
            kind = "finess" if token.system == IDNST_SYSTEM else "rpps"
            any_rpps, any_finess = any_rpps or kind == "rpps", any_finess or kind == "finess"
            forms.append(f"author|{kind}|*")
        else:
            forms.append(query_form("author", token))
    return AuthorMatch(frozenset(rpps), frozenset(finess), any_rpps, any_finess, tuple(dict.fromkeys(forms)))


def _page(values: Mapping[str, list[str]]) -> tuple[int, int]:
    count = search.integer(search.one(values, "_count"), "_count", DEFAULT_COUNT, 9_999_999)
    return min(count, MAX_COUNT), search.integer(search.one(values, "_offset"), "_offset", 0, MAX_OFFSET)


def search_request(params: Iterable[tuple[str, str]], now: datetime) -> DocumentSearch:
    """The parameters of an ITI-67 search (GET query string, or POST ``_search`` form and query string together);
    ``InputError`` (400) on anything not understood — an unknown parameter, an impossible date, a huge ``_offset``."""
    values = search.grouped(params, SEARCH_PARAMETERS)
    designation, designated_by = search.designation(values)
    summary = search.one_of(values, "_summary", SUMMARIES)
    search.one_of(values, "_total", TOTALS)  # the total is always given: it costs one indexed count
    search.one(values, "_format")  # the format itself is the interface's (JSON, or 406)
    count, offset = _page(values)
    codes = tuple(
        (name, alternatives) for name in TOKENS for alternatives in search.token_groups(values.get(name, []), name)
    )
    authors = tuple(
        author_match(alternatives)
        for alternatives in search.token_groups(values.get("author.identifier", []), "author.identifier")
    )
    dates = tuple(
        (name, alternatives) for name in DATES for alternatives in search.date_criteria(values.get(name, []), name, now)
    )
    return DocumentSearch(
        designation,
        designated_by,
        _statuses(search.token_groups(values.get("status", []), "status")),
        codes,
        authors,
        dates,
        count,
        offset,
        summary == "count",
    )
