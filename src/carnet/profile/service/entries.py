"""The profile's store (PRF-1..3): sealing, reading back and scoping the entries of one space.

Used by the use cases of ``portal`` (the pages) and ``exchange`` (FHIR); each of those opens the unit of
work, asks the policy (``hall.guard``) and records the history. Here: what every one of them shares —
an entry's payload sealed with the patient's key (associated data ``profile:<id>``, so rows cannot be
swapped), the frozen view pages and FHIR read, the ``Resource`` the policy judges, and the conditions a
search decision puts on a query (the same for the portal's lists and FHIR's searches).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import Session

from carnet.bootstrap import Services
from carnet.errors import CarnetError
from carnet.hall.actors import Actor, ActorKind
from carnet.hall.guard import AccessDenied, facts_for, guard
from carnet.hall.policy import Action, Decision, Resource, Scope, author_keys, decide
from carnet.profile.model.sections import MEASURES_SECTION
from carnet.profile.tables import ProfileEntry
from carnet.storage import keyring
from carnet.storage.types import new_id, utcnow

NOT_FOUND = "Élément introuvable."


class EntryNotFound(CarnetError):
    """An entry that does not exist and one the actor may not read get the same answer."""

    def __init__(self) -> None:
        super().__init__(NOT_FOUND)

    def __reduce__(self) -> tuple[type[EntryNotFound], tuple[()]]:
        return (type(self), ())


SOURCE_WORDS = {
    "patient": "saisi dans l'espace",
    "professional": "saisi par un professionnel",
    "establishment": "transmis par un établissement",
    "app": "transmis par une application",
    "service": "saisi par le service",
}


@dataclass(frozen=True)
class EntryView:
    """One entry as pages and FHIR show it: the fields (an item) or the value (a measure) and who entered it."""

    id: str
    patient_id: str
    section: str
    measure: str | None
    effective_at: datetime | None
    source: str
    author_id: str | None
    author_label: str
    masked: bool
    created_at: datetime
    updated_at: datetime
    version: int
    fields: dict[str, str] = field(default_factory=dict)
    code: dict[str, str] | None = None
    value: float | None = None
    components: dict[str, float] | None = None
    unit_entered: str | None = None
    fhir: dict[str, Any] | None = None

    @property
    def from_space(self) -> bool:
        """Entered by the person or someone acting in their space (they may correct it)."""
        return self.source == "patient"

    @property
    def source_words(self) -> str:
        return SOURCE_WORDS.get(self.source, self.source)


@dataclass(frozen=True)
class NewEntry:
    """What a use case asks to store: an item's fields or a measure's value, and the FHIR resource as sent."""

    section: str
    effective_at: datetime | None = None
    fields: dict[str, str] = field(default_factory=dict)
    code: dict[str, str] | None = None
    measure: str | None = None
    value: float | None = None
    components: dict[str, float] | None = None
    unit_entered: str | None = None
    fhir: dict[str, Any] | None = None

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {"fields": self.fields}
        for name in ("code", "value", "components", "unit_entered", "fhir"):
            if getattr(self, name) is not None:
                data[name] = getattr(self, name)
        return data


def author_fields(actor: Actor) -> dict[str, Any]:
    """Who entered an entry: the people of the space are ``patient`` (the label says who exactly)."""
    if actor.kind == ActorKind.PATIENT:
        return {"source": "patient", "author_id": actor.patient_id, "author_label": actor.label[:200]}
    source = {
        ActorKind.PROFESSIONAL: "professional",
        ActorKind.ESTABLISHMENT: "establishment",
        ActorKind.APP: "app",
    }.get(actor.kind, "service")
    author_id = actor.professional_id or actor.establishment_id or actor.id
    return {"source": source, "author_id": author_id, "author_label": actor.label[:200]}


def resource_of(entry: ProfileEntry) -> Resource:
    return Resource(
        "profile_item",
        entry.id,
        author_id=entry.author_id,
        source=entry.source,
        labels=frozenset({"MASQUE_PS"}) if entry.masked else frozenset(),
        category=entry.section,
    )


def _aad(entry_id: str) -> bytes:
    return b"profile:" + entry_id.encode()


def code_token(data_key: bytes, code: dict[str, str] | None) -> str | None:
    """The blind token of a coded item's code (its system is checked on the opened entry), for FHIR searches."""
    if not code or not code.get("code"):
        return None
    return keyring.blind_term(data_key, "code:" + code["code"])[:32]


def store(services: Services, db: Session, actor: Actor, patient_id: str, new: NewEntry) -> ProfileEntry:
    """Seal and add one entry (the caller asked the policy and records the history)."""
    data_key = keyring.data_key(db, services.keyring, patient_id)
    entry_id = new_id()
    now = utcnow()
    entry = ProfileEntry(
        id=entry_id,
        patient_id=patient_id,
        section=new.section,
        measure=new.measure,
        code_token=code_token(data_key, new.code),
        effective_at=new.effective_at,
        sealed=keyring.seal(data_key, orjson.dumps(new.payload()), _aad(entry_id)),
        masked=False,
        created_at=now,
        updated_at=now,
        version=1,
        **author_fields(actor),
    )
    db.add(entry)
    return entry


def replace(services: Services, db: Session, entry: ProfileEntry, new: NewEntry) -> None:
    """Correct an entry in place (a new version; who entered it stays)."""
    data_key = keyring.data_key(db, services.keyring, entry.patient_id)
    entry.code_token = code_token(data_key, new.code)
    entry.effective_at = new.effective_at
    entry.sealed = keyring.seal(data_key, orjson.dumps(new.payload()), _aad(entry.id))
    entry.updated_at = utcnow()
    entry.version += 1


def views(services: Services, db: Session, patient_id: str, entries: Sequence[ProfileEntry]) -> list[EntryView]:
    """Open the entries (one key look-up for all of them)."""
    if not entries:
        return []
    data_key = keyring.data_key(db, services.keyring, patient_id, create=False)
    return [view_of(data_key, entry) for entry in entries]


def view_of(data_key: bytes, entry: ProfileEntry) -> EntryView:
    return _view(entry, orjson.loads(keyring.open_sealed(data_key, entry.sealed, _aad(entry.id))))


def stored_view(entry: ProfileEntry, new: NewEntry) -> EntryView:
    """The view of an entry just stored from ``new`` (nothing to open again)."""
    return _view(entry, new.payload())


def _view(entry: ProfileEntry, data: dict[str, Any]) -> EntryView:
    return EntryView(
        id=entry.id,
        patient_id=entry.patient_id,
        section=entry.section,
        measure=entry.measure,
        effective_at=entry.effective_at,
        source=entry.source,
        author_id=entry.author_id,
        author_label=entry.author_label,
        masked=entry.masked,
        created_at=entry.created_at,
        updated_at=entry.updated_at,
        version=entry.version,
        fields=data.get("fields") or {},
        code=data.get("code"),
        value=data.get("value"),
        components=data.get("components"),
        unit_entered=data.get("unit_entered"),
        fhir=data.get("fhir"),
    )


def scope_conditions(actor: Actor, decision: Decision) -> list[Any]:
    """The conditions the policy's ``PROFILE_READ`` decision puts on a query of the space's entries."""
    authored = ProfileEntry.author_id.in_(author_keys(actor) or {"-"})
    if decision.scope == Scope.AUTHORED:
        return [authored]
    if decision.scope == Scope.PROFESSIONAL:
        seen = []
        if decision.categories is not None:
            seen.append(ProfileEntry.section.in_(decision.categories or {"-"}))
        if not decision.include_masked:
            seen.append(ProfileEntry.masked.is_(False))
        return [or_(authored, and_(*seen))] if seen else []
    if decision.scope in {Scope.PATIENT, Scope.REPRESENTATIVE, Scope.ALL}:
        return []
    raise AccessDenied(decision)


def readable(db: Session, actor: Actor, patient_id: str) -> tuple[Decision, Select[ProfileEntry]]:
    """The policy's decision on reading this profile, and the query of what it lets the actor see."""
    decision = guard(db, actor, patient_id, Action.PROFILE_READ, Resource("profile"))
    query = select(ProfileEntry).where(ProfileEntry.patient_id == patient_id, *scope_conditions(actor, decision))
    return decision, query


def sections_seen(decision: Decision) -> frozenset[str] | None:
    """Which sections a reader sees (None: all of them) — to say « not shown to you » rather than « empty »."""
    return decision.categories if decision.scope == Scope.PROFESSIONAL else None


def load(db: Session, actor: Actor, action: Action, entry_id: str, space: str | None = None) -> ProfileEntry:
    """One entry, with the policy's yes for ``action`` on it; unknown and forbidden are the same
    ``EntryNotFound`` for anyone but the people of the space (who learn why)."""
    well_formed = len(entry_id) <= 36 and entry_id.isascii() and entry_id.replace("-", "").isalnum()
    entry = db.get(ProfileEntry, entry_id) if well_formed else None
    if entry is None or (space is not None and entry.patient_id != space):
        raise EntryNotFound()
    try:
        guard(db, actor, entry.patient_id, action, resource_of(entry))
    except AccessDenied:
        if action != Action.PROFILE_READ and _may_read(db, actor, entry):
            raise  # readable, but this act is refused: 403 with the reason
        raise EntryNotFound() from None
    return entry


def _may_read(db: Session, actor: Actor, entry: ProfileEntry) -> bool:
    facts = facts_for(db, actor, entry.patient_id)
    return decide(actor, entry.patient_id, Action.PROFILE_READ, resource_of(entry), facts).allowed


def is_measure(entry: ProfileEntry | EntryView) -> bool:
    return entry.section == MEASURES_SECTION
