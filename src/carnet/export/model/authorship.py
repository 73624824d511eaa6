"""Who wrote each item of an archive, as its history tells it (ENR-7, item 5) — pure.

The profile's and the agenda's resources do not all say who entered an entry, nor how it came (typed by the person,
a professional, an establishment, an application): the history does. Its ``AuditEvent`` s
(``carnet.history.model.fhir_map``) carry, for each write, the action (``subtype``), the outcome, the acted-on item's
Carnet type and id (``entity[0].what.identifier``), the operation (``entity[0].detail`` « op ») and who acted
(``agent[0].who.display``, the label the row keeps, and the kind of actor in ``agent[0].type.text``, in the history's
French words — ``carnet.history.labels.ACTOR_KINDS``, of which ``SOURCE_OF_KIND`` is the reverse). The first
successful « add » of an item is its author. An archive without its history (or an item whose creation is not in
it) gives nothing: the capability then falls back on what its resources tell.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from carnet.export.model.restoring import resources_of
from carnet.history.model.fhir_map import AUDIT_ACTIONS, RESOURCE_IDS

SOURCE_OF_KIND = {  # the history's words for a kind of actor → the ``source`` an entry keeps
    "": "patient",  # the person (the history names no kind for them)
    "représentant légal": "patient",
    "aidant": "patient",
    "professionnel de santé": "professional",
    "établissement": "establishment",
    "service connecté": "app",
    "conseiller Carnet": "service",
}


@dataclass(frozen=True)
class Author:
    source: str  # patient | professional | establishment | app | service
    label: str  # the name the history recorded


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _first(value: Any) -> dict[str, Any]:
    return _dict(value[0]) if isinstance(value, list) and value else {}


def authors(bundle: Mapping[str, Any], action: str, item_type: str) -> dict[str, Author]:
    """Item id in the archive → who added it, from the history's successful ``action`` (``profile.write``,
    ``agenda.write``) « add » on items of Carnet type ``item_type`` (``profile_item``, ``agenda_event``)."""
    found: dict[str, Author] = {}
    system = f"{RESOURCE_IDS}{item_type}"
    for event in resources_of(dict(bundle), "AuditEvent"):
        if event.get("outcome") != "0":
            continue
        subtype = _first(event.get("subtype"))
        if (subtype.get("system"), subtype.get("code")) != (AUDIT_ACTIONS, action):
            continue
        entity = _first(event.get("entity"))
        identifier = _dict(_dict(entity.get("what")).get("identifier"))
        details = {_dict(d).get("type"): _dict(d).get("valueString") for d in entity.get("detail") or []}
        item = identifier.get("value")
        if identifier.get("system") != system or not isinstance(item, str) or details.get("op") != "add":
            continue
        agent = _first(event.get("agent"))
        kind = str(_dict(agent.get("type")).get("text") or "")
        label = str(_dict(agent.get("who")).get("display") or "")[:200]
        if item not in found and kind in SOURCE_OF_KIND:
            found[item] = Author(SOURCE_OF_KIND[kind], label)
    return found
