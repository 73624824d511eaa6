"""The parameters of an ITI-67 search (``carnet.vault.model.mhd_search``) as SQL conditions on the documents.

Tokens searched in clear columns: ``type`` (the LOINC type), ``category`` (the class code with its system, or
Carnet's category), ``format``, ``security-label`` (the labels, a closed list). Tokens searched through the blind
index (HMAC under the patient's key, ``document_terms``): ``event``, ``facility``, ``setting``, ``identifier``
and the authors as sent — with, for documents deposited before they were kept, the columns that were (the
``masterIdentifier``; the depositing professional's RPPS or establishment's FINESS). Dates compare R4 ranges
(``carnet.fhir.search.DateCriterion``) with the document's: an instant for ``date``, ``creation`` and
``_lastUpdated``, the period ``[start, end)`` for ``period``. A document without the value never matches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, String, and_, cast, false, func, not_, or_, select

from carnet.fhir.search import DateCriterion, Token
from carnet.storage import keyring
from carnet.vault.model.mhd_metadata import query_form
from carnet.vault.model.mhd_search import AuthorMatch, DocumentSearch, label_codes
from carnet.vault.tables import Document, DocumentTerm

BLIND = ("event", "facility", "setting", "identifier")


def _coded(system_column: Any, code_column: Any, token: Token) -> ColumnElement[bool]:
    """One token against a (system, code) pair of columns."""
    conditions = []
    if token.system == "":
        conditions.append(system_column.is_(None))
    elif token.system is not None:
        conditions.append(system_column == token.system)
    if token.code is not None:
        conditions.append(code_column == token.code)
    return and_(*conditions)


def _category(token: Token) -> ColumnElement[bool]:
    """The class code sent in ``category``, or — a bare code — Carnet's own category (BIOLOGIE…)."""
    sent = _coded(Document.class_system, Document.class_code, token)
    return or_(sent, Document.category == token.code) if token.system is None else sent


def _labelled(tokens: Sequence[Token]) -> ColumnElement[bool]:
    codes = sorted(label_codes(tokens))  # a closed list of codes of letters and « _ »: safe in LIKE
    return or_(false(), *(cast(Document.confidentiality, String).like(f'%"{code}"%') for code in codes))


def _column_token(name: str, token: Token) -> ColumnElement[bool]:
    if name == "type":
        return _coded(Document.type_system, Document.type_code, token)
    if name == "format":
        return _coded(Document.format_system, Document.format_code, token)
    return _category(token)


def _blind(patient_id: str, blind: Callable[[str], str], forms: Sequence[str]) -> ColumnElement[bool]:
    matching = select(DocumentTerm.document_id).where(
        DocumentTerm.patient_id == patient_id, DocumentTerm.term.in_({blind(form) for form in forms})
    )
    return Document.id.in_(matching)


def _identifier(patient_id: str, blind: Callable[[str], str], tokens: Sequence[Token]) -> ColumnElement[bool]:
    """The identifiers as sent (blind), or the ``masterIdentifier`` of a document deposited before they were kept."""
    earlier = [t.code for t in tokens if t.code is not None]
    sent = _blind(patient_id, blind, [query_form("identifier", t) for t in tokens])
    if not earlier:
        return sent
    return or_(sent, and_(Document.metadata_sealed.is_(None), Document.master_identifier.in_(earlier)))


def _author(patient_id: str, blind: Callable[[str], str], match: AuthorMatch) -> ColumnElement[bool]:
    """The depositing professional or establishment (columns), or an author as sent (blind)."""
    found: list[ColumnElement[bool]] = []
    if match.rpps:
        found.append(Document.author_rpps.in_(match.rpps))
    if match.finess:
        found.append(Document.author_finess.in_(match.finess))
    if match.any_rpps:
        found.append(Document.author_rpps.is_not(None))
    if match.any_finess:
        found.append(Document.author_finess.is_not(None))
    if match.forms:
        found.append(_blind(patient_id, blind, match.forms))
    return or_(false(), *found)


# ------------------------------------------------------------------ dates


def _at(moment: Any, criterion: DateCriterion) -> ColumnElement[bool]:
    """An instant against a date criterion (R4 search §3.1.1.4.7)."""
    start, end = criterion.start, criterion.end
    return {
        "eq": and_(moment >= start, moment < end),
        "ap": and_(moment >= start, moment < end),
        "ne": or_(moment < start, moment >= end),
        "gt": moment >= end,
        "sa": moment >= end,
        "ge": moment >= start,
        "lt": moment < start,
        "eb": moment < start,
        "le": moment < end,
    }[criterion.prefix]


def _within(first: Any, after: Any, criterion: DateCriterion) -> ColumnElement[bool]:
    """A period ``[first, after)`` against a date criterion: ``eq`` held in the range, ``gt`` / ``ge`` reaching past
    its end / start, ``lt`` / ``le`` beginning before its start / end, ``sa`` starting after it, ``eb`` ending
    before it, ``ap`` overlapping the widened range."""
    start, end = criterion.start, criterion.end
    held = and_(first >= start, after <= end)
    return {
        "eq": held,
        "ne": not_(held),
        "gt": after > end,
        "ge": after > start,
        "lt": first < start,
        "le": first < end,
        "sa": first >= end,
        "eb": after <= start,
        "ap": and_(first < end, after > start),
    }[criterion.prefix]


def _dated(name: str, criterion: DateCriterion) -> ColumnElement[bool]:
    if name == "period":
        ends = func.coalesce(Document.service_end, Document.service_date)
        return and_(Document.service_date.is_not(None), _within(Document.service_date, ends, criterion))
    column = {
        "date": Document.document_date,
        "creation": Document.creation_date,
        "_lastUpdated": func.coalesce(Document.updated_at, Document.created_at),
    }[name]
    return and_(column.is_not(None), _at(column, criterion))


# ------------------------------------------------------------------ all of them


def conditions(blind_key: Callable[[], bytes | None], patient_id: str, asked: DocumentSearch) -> list[Any]:
    """The WHERE conditions of ``asked`` for one patient's documents. ``blind_key`` gives the patient's data key
    (None when nothing was ever sealed for them: then no document matches a blind token)."""
    key: list[bytes | None] = []

    def blind(form: str) -> str:
        if not key:
            key.append(blind_key())
        return keyring.blind_term(key[0], form) if key[0] is not None else "-"

    where: list[Any] = []
    for name, tokens in asked.codes:
        if name == "security-label":
            where.append(_labelled(tokens))
        elif name == "identifier":
            where.append(_identifier(patient_id, blind, tokens))
        elif name in BLIND:
            where.append(_blind(patient_id, blind, [query_form(name, t) for t in tokens]))
        else:
            where.append(or_(false(), *(_column_token(name, t) for t in tokens)))
    where += [_author(patient_id, blind, match) for match in asked.authors]
    where += [or_(false(), *(_dated(name, c) for c in criteria)) for name, criteria in asked.dates]
    return where
