"""An entry of a space's history (TRC-1, TRC-2) as a FHIR R4 ``AuditEvent`` — pure.

The words are the history's (``carnet.history.labels``, through the service that calls this): the caller gives the
sentence the portal shows (« Dr Jean-Baptiste FERRACCI (professionnel de santé) a consulté un document »), the
action's words and the actor's kind in French; this module puts them where R4 reads them:

* ``type``: the domain of the action (``document``, ``profile``, ``access``…) and ``subtype`` the action itself
  (``document.read``, with its words as display), both in Carnet's code systems; ``action`` C/R/U/D when the
  action's last word says it (read, search, deposit, delete…), else none;
* ``recorded``: when it happened; ``outcome`` 0 (done) or 4 (refused by the policy), and for a refusal
  ``outcomeDesc`` the reason the policy gave (French);
* ``agent``: who acted, by name (``who.display`` = the label the history recorded), the requestor, the kind of
  actor in ``type.text`` (« professionnel de santé », « représentant légal »…) when the history names one;
* ``source``: Carnet, the application server that recorded it;
* ``entity``: what was acted on — its Carnet type (``entity.type``) and id (``what.identifier``, with the FHIR type
  when there is one: ``DocumentReference`` for a document…), the sentence in ``description``, the entry's details
  (the type of a document, the reason of an emergency access…) as ``detail`` —, and the patient whose space it is.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from carnet.fhir.search import instant

BASE = "https://carnet.example/fhir"
AUDIT_DOMAINS = f"{BASE}/CodeSystem/audit-domain"
AUDIT_ACTIONS = f"{BASE}/CodeSystem/audit-action"
RESOURCE_TYPES = f"{BASE}/CodeSystem/audit-resource-type"
RESOURCE_IDS = f"{BASE}/sid/"  # + Carnet's resource type: the system of an acted-on resource's id
SOURCE_TYPES = "http://terminology.hl7.org/CodeSystem/security-source-type"
ENTITY_TYPES = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLES = "http://terminology.hl7.org/CodeSystem/object-role"
FHIR_TYPES = {  # Carnet's resource types that are FHIR resources of the archive
    "document": "DocumentReference",
    "folder": "List",
    "agenda_event": "Appointment",
    "consent": "Consent",
}
CRUD = {  # the last word of an action → R4's AuditEvent.action
    **dict.fromkeys(("read", "search", "view", "find", "download", "metadata"), "R"),
    **dict.fromkeys(("deposit", "create", "created", "record", "replace"), "C"),
    **dict.fromkeys(("update", "write", "mask", "unmask", "labels", "entered_in_error", "revealed"), "U"),
    **dict.fromkeys(("delete",), "D"),
}


class EntryFields(Protocol):
    """An entry of the history (a row of the audit log has all of it)."""

    @property
    def id(self) -> int: ...
    @property
    def at(self) -> datetime: ...
    @property
    def actor_label(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def resource_type(self) -> str | None: ...
    @property
    def resource_id(self) -> str | None: ...
    @property
    def outcome(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def details(self) -> Mapping[str, object]: ...


def _source() -> dict[str, Any]:
    """Carnet, the application server that recorded the entry."""
    return {
        "site": "Carnet",
        "observer": {"display": "Carnet"},
        "type": [{"system": SOURCE_TYPES, "code": "4", "display": "Application Server"}],
    }


def _detail(name: str, value: object) -> dict[str, str]:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return {"type": name, "valueString": text}


def _acted_on(entry: EntryFields, sentence: str) -> dict[str, Any]:
    entity: dict[str, Any] = {}
    if entry.resource_id:
        what: dict[str, Any] = {
            "identifier": {"system": f"{RESOURCE_IDS}{entry.resource_type or 'ressource'}", "value": entry.resource_id}
        }
        fhir_type = FHIR_TYPES.get(entry.resource_type or "")
        entity["what"] = {**({"type": fhir_type} if fhir_type else {}), **what}
    if entry.resource_type:
        entity["type"] = {"system": RESOURCE_TYPES, "code": entry.resource_type}
    entity["description"] = sentence
    details = entry.details if isinstance(entry.details, Mapping) else {}
    if details:
        entity["detail"] = [_detail(str(name), value) for name, value in sorted(details.items())]
    return entity


def audit_event(
    entry: EntryFields, sentence: str, done: str, kind_words: str, patient: Mapping[str, Any]
) -> dict[str, Any]:
    """The entry as an AuditEvent: ``sentence`` as the portal tells it, ``done`` the action's words, ``kind_words``
    the actor's kind in French (empty for the person, the service)."""
    denied = entry.outcome == "deny"
    agent: dict[str, Any] = {"who": {"display": entry.actor_label}, "requestor": True}
    if kind_words:
        agent["type"] = {"text": kind_words}
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": str(entry.id),
        "type": {"system": AUDIT_DOMAINS, "code": entry.action.split(".", 1)[0]},
        "subtype": [{"system": AUDIT_ACTIONS, "code": entry.action, "display": done}],
        "recorded": instant(entry.at),
        "outcome": "4" if denied else "0",
        "agent": [agent],
        "source": _source(),
        "entity": [
            _acted_on(entry, sentence),
            {
                "what": dict(patient),
                "type": {"system": ENTITY_TYPES, "code": "1", "display": "Person"},
                "role": {"system": OBJECT_ROLES, "code": "1", "display": "Patient"},
            },
        ],
    }
    crud = CRUD.get(entry.action.rsplit(".", 1)[-1])
    if crud:
        resource["action"] = crud
    if denied and entry.reason:
        resource["outcomeDesc"] = entry.reason
    return resource
