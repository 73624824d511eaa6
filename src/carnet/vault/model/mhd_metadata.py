"""What the vault keeps of a DocumentReference deposited over MHD (ITI-65, the ANS PDSm profile) — pure.

**What is deposited comes back as sent** (issue #14-3): the resource as sent, without its payload, is kept whole —
``date``, ``identifier`` (the entryUUID), ``masterIdentifier`` with its system, ``category``, ``type`` and ``format``
with theirs, ``attachment.hash``, ``.creation``, ``.language``, ``context`` (``period``, ``event``,
``facilityType``, ``practiceSetting``, ``sourcePatientInfo``), ``author`` and the ``contained`` resources it points
at, extensions… The service seals it with the patient's data key (``sent``): it holds names and identity traits.

In clear, beside it, only what lists, sorts and filters need (docs/decisions.md): the document's ``date``, the
attachment's ``creation``, the period of service, the class (``category``) and format codes with their systems.
The codes of the clinical acts (``event``), the facility and practice setting, the document's identifiers and its
authors' are searched through **blind tokens** (``index``: HMAC under the patient's key, beside the words of the
document) — never in clear. ``index_forms`` says which tokens a coded value gives, ``query_form`` which one a
search value (``code``, ``system|code``, ``|code``, ``system|``) looks for.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from carnet.fhir.search import Token, fail, period_of

IDNPS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"  # identifiant national des professionnels de santé: « 8 » + RPPS
IDNST_SYSTEM = "urn:oid:1.2.250.1.71.4.2.2"  # identifiant national des structures: « 1 » + FINESS
RPPS_SYSTEM = "https://rpps.esante.gouv.fr"
RPPS = re.compile(r"\d{11}")
FINESS = re.compile(r"[0-9][0-9AB][0-9]{7}")
MAX_SYSTEM = 200
MAX_CODE = 100
MAX_CLASS_CODE = 40  # documents.class_code
MAX_MASTER = 128  # documents.master_identifier
MAX_INDEX = 200  # coded values of one document searched through blind tokens
ANY = "*"
DEPOSIT_TIME = "https://carnet.example/fhir/StructureDefinition/deposit-time"  # valueInstant: when Carnet received it


def _escaped(part: str) -> str:
    return part.replace("\\", "\\\\").replace("|", "\\|")


def index_forms(param: str, system: str | None, code: str) -> list[str]:
    """The tokens a coded value is found by: its code in any system, with its system (or with none), and its
    system alone. Words of a document never hold ``|``, so no token is ever a word."""
    forms = [f"{param}|{ANY}|{_escaped(code)}", f"{param}|{_escaped(system or '')}|{_escaped(code)}"]
    if system:
        forms.append(f"{param}|{_escaped(system)}|{ANY}")
    return forms


def query_form(param: str, token: Token) -> str:
    """The token a search value looks for (``code``, ``system|code``, ``|code``, ``system|``)."""
    system = ANY if token.system is None else _escaped(token.system)
    return f"{param}|{system}|{ANY if token.code is None else _escaped(token.code)}"


def author_key(system: str | None, value: str) -> tuple[str, str] | None:
    """A professional's or an establishment's identifier as Carnet files it: ``("rpps", <11 digits>)`` for the
    IdNatPs ``8`` + RPPS (or the RPPS in its own system), ``("finess", <FINESS>)`` for the IdNatStruct ``1`` +
    FINESS; None for any other identifier (kept as sent)."""
    value = value.strip()
    if system == IDNPS_SYSTEM and value[:1] == "8" and RPPS.fullmatch(value[1:]):
        return "rpps", value[1:]
    if system == RPPS_SYSTEM and RPPS.fullmatch(value):
        return "rpps", value
    if system == IDNST_SYSTEM and value[:1] == "1" and FINESS.fullmatch(value[1:]):
        return "finess", value[1:]
    return None


def _author_forms(system: str | None, value: str) -> list[str]:
    known = author_key(system, value)
    return index_forms("author", *known) if known else index_forms("author", system, value)


# ------------------------------------------------------------------ reading the resource


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def codings(concept: Any) -> list[tuple[str | None, str]]:
    """The ``(system, code)`` of a CodeableConcept's codings that have a code."""
    found = []
    for coding in _list(_dict(concept).get("coding")):
        coding = _dict(coding)
        if isinstance(coding.get("code"), str) and coding["code"]:
            system = coding.get("system")
            found.append((system if isinstance(system, str) else None, coding["code"]))
    return found


def _identifiers(element: Any) -> Iterator[tuple[str | None, str]]:
    for identifier in [element] if isinstance(element, dict) else _list(element):
        identifier = _dict(identifier)
        if isinstance(identifier.get("value"), str) and identifier["value"]:
            system = identifier.get("system")
            yield (system if isinstance(system, str) else None), identifier["value"]


def _referenced(
    reference: Any, contained: Mapping[str, dict[str, Any]], depth: int = 0
) -> Iterator[tuple[str | None, str]]:
    """The identifiers a reference names: its logical ``identifier``, or those of the contained resource it points at
    (a PractitionerRole's practitioner and organization too)."""
    reference = _dict(reference)
    yield from _identifiers(reference.get("identifier"))
    target = reference.get("reference")
    if depth < 2 and isinstance(target, str) and target.startswith("#") and target[1:] in contained:
        resource = contained[target[1:]]
        yield from _identifiers(resource.get("identifier"))
        for linked in ("practitioner", "organization"):
            yield from _referenced(resource.get(linked), contained, depth + 1)


def author_identifiers(resource: Mapping[str, Any]) -> list[tuple[str | None, str]]:
    """The identifiers of the document's authors as sent (logical references, or the contained resources the
    ``author`` references point at — the PDSm way)."""
    contained = {r["id"]: r for r in map(_dict, _list(resource.get("contained"))) if isinstance(r.get("id"), str)}
    found: list[tuple[str | None, str]] = []
    for author in _list(resource.get("author")):
        found += [i for i in _referenced(author, contained) if i not in found]
    return found


# ------------------------------------------------------------------ what is kept


@dataclass(frozen=True)
class Kept:
    """What the vault keeps of one deposited DocumentReference: the clear columns, the blind index forms, and the
    resource as sent (to be sealed)."""

    document_date: datetime | None
    creation: datetime | None
    service_start: datetime | None
    service_end: datetime | None
    class_system: str | None
    class_code: str | None
    format_system: str | None
    format_code: str | None
    index: tuple[str, ...]
    sent: dict[str, Any]


def _moment(value: Any, path: str, end: bool = False) -> datetime | None:
    if value is None:
        return None
    try:
        period = period_of(value)
    except ValueError:
        raise fail("invalid", f"Date invalide : {str(value)[:40]}.", path) from None
    return period.end if end else period.start


def _code(found: list[tuple[str | None, str]], path: str, longest: int) -> tuple[str | None, str | None]:
    """The first coding of a CodeableConcept, within the lengths the columns hold."""
    if not found:
        return None, None
    system, code = found[0]
    if len(code) > longest or len(system or "") > MAX_SYSTEM:
        raise fail("invalid", f"Code trop long (au plus {longest} caractères, système {MAX_SYSTEM}).", path)
    return system, code


def _period(context: dict[str, Any], path: str) -> tuple[datetime | None, datetime | None]:
    """The period of service: from its start to the end of its end (or of its start, when it has none)."""
    period = _dict(context.get("period"))
    start = _moment(period.get("start"), f"{path}.context.period.start")
    end = _moment(period.get("end") or period.get("start"), f"{path}.context.period.end", end=True)
    if start is not None and end is not None and end <= start:
        raise fail("invalid", "La fin de la période de l'acte précède son début.", f"{path}.context.period")
    return start, end


def _index(resource: Mapping[str, Any], path: str) -> tuple[str, ...]:
    context = _dict(resource.get("context"))
    forms: list[str] = []
    for concept in _list(context.get("event")):
        forms += [f for system, code in codings(concept) for f in index_forms("event", system, code)]
    forms += [f for system, code in codings(context.get("facilityType")) for f in index_forms("facility", system, code)]
    forms += [
        f for system, code in codings(context.get("practiceSetting")) for f in index_forms("setting", system, code)
    ]
    for system, value in [*_identifiers(resource.get("masterIdentifier")), *_identifiers(resource.get("identifier"))]:
        forms += index_forms("identifier", system, value)
    for system, value in author_identifiers(resource):
        forms += _author_forms(system, value)
    unique = tuple(dict.fromkeys(forms))
    if len(unique) > MAX_INDEX or any(len(f) > 3 * (MAX_SYSTEM + MAX_CODE) for f in unique):
        raise fail("too-costly", "Trop de codes ou d'identifiants dans ce DocumentReference.", path)
    return unique


def as_sent(resource: Mapping[str, Any], body: bytes) -> dict[str, Any]:
    """The resource as sent, to be given back: without its payload, the Binary's address, the sender's own id and
    version; only its first content (the document kept); its ``attachment.hash`` (SHA-1, base64, as FHIR R4 says)
    computed when the sender gave none."""
    sent = {k: v for k, v in resource.items() if k not in {"id", "content"}}
    meta = {k: v for k, v in _dict(resource.get("meta")).items() if k not in {"versionId", "lastUpdated"}}
    if meta:
        sent["meta"] = meta
    else:
        sent.pop("meta", None)
    content = dict(_dict((_list(resource.get("content")) or [{}])[0]))
    attachment = {k: v for k, v in _dict(content.get("attachment")).items() if k not in {"data", "url"}}
    attachment.setdefault("hash", base64.b64encode(hashlib.sha1(body, usedforsecurity=False).digest()).decode())
    sent["content"] = [{**content, "attachment": attachment}]
    return sent


def keep(resource: Mapping[str, Any], body: bytes, path: str) -> Kept:
    """What the vault keeps of ``resource`` (its structure already checked); ``InputError`` (400) names the element
    that cannot be kept: an impossible date, a code longer than the columns hold, a period ending before it starts,
    hundreds of codes."""
    content = _dict((_list(resource.get("content")) or [{}])[0])
    attachment = _dict(content.get("attachment"))
    master = _dict(resource.get("masterIdentifier")).get("value")
    if isinstance(master, str) and len(master) > MAX_MASTER:
        raise fail("invalid", f"masterIdentifier : {MAX_MASTER} caractères au plus.", f"{path}.masterIdentifier")
    start, end = _period(_dict(resource.get("context")), path)
    class_system, class_code = _code(
        [c for concept in _list(resource.get("category")) for c in codings(concept)], f"{path}.category", MAX_CLASS_CODE
    )
    format_system, format_code = _code(
        codings({"coding": [content.get("format")]}), f"{path}.content[0].format", MAX_CODE
    )
    return Kept(
        document_date=_moment(resource.get("date"), f"{path}.date"),
        creation=_moment(attachment.get("creation"), f"{path}.content[0].attachment.creation"),
        service_start=start,
        service_end=end,
        class_system=class_system,
        class_code=class_code,
        format_system=format_system,
        format_code=format_code,
        index=_index(resource, path),
        sent=as_sent(resource, body),
    )


# ------------------------------------------------------------------ given back


def _label_codes(resource: Mapping[str, Any]) -> list[str]:
    return sorted(code for label in _list(resource.get("securityLabel")) for _, code in codings(label))


def _with_authors(sent_authors: list[Any], depositor: dict[str, Any]) -> list[Any]:
    """The authors as sent, then the one who deposited it — unless the sender already named them so."""
    named = [_dict(author).get("identifier") for author in sent_authors]
    if depositor.get("identifier") and depositor["identifier"] in named:
        return sent_authors
    return [*sent_authors, depositor]


def given_back(carnet: dict[str, Any], sent: Mapping[str, Any]) -> dict[str, Any]:
    """A deposited document's DocumentReference: the resource as sent, with Carnet's own elements — its id, version
    and time (``meta``, the sender's profiles and tags kept), its status, the patient as Carnet names them, the
    labels once they changed (PATCH, the person's masking), where the bytes are (``attachment.url``) and their
    size, the depositor after the authors as sent, the deposit time (extension ``deposit-time``); what the sender
    left out and Carnet knows (``date``: the deposit time; ``description``…) is added."""
    resource = {**carnet, **sent}
    for key in ("resourceType", "id", "status", "subject"):
        resource[key] = carnet[key]
    resource["meta"] = {**_dict(sent.get("meta")), **carnet["meta"]}
    if _label_codes(sent) != _label_codes(carnet):
        resource.pop("securityLabel", None)
        if carnet.get("securityLabel"):
            resource["securityLabel"] = carnet["securityLabel"]
    ours = _dict(carnet["content"][0]["attachment"])
    content = _dict((_list(sent.get("content")) or [{}])[0])
    attachment = {**_dict(content.get("attachment")), "url": ours["url"], "size": ours["size"]}
    resource["content"] = [{**carnet["content"][0], **content, "attachment": {**ours, **attachment}}]
    resource["author"] = _with_authors(_list(sent.get("author")), carnet["author"][0])
    others = [e for e in _list(sent.get("extension")) if _dict(e).get("url") != DEPOSIT_TIME]
    resource["extension"] = [*others, *carnet["extension"]]
    replaces = [r for r in _list(carnet.get("relatesTo")) if r not in _list(sent.get("relatesTo"))]
    if replaces:
        resource["relatesTo"] = [*_list(sent.get("relatesTo")), *replaces]
    return resource
