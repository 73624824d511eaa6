"""The profile's resources of an archive read back (ENR-7, item 5) — pure, the reverse of ``export_map``.

A resource of the archive is read as the entry the profile kept, so that the restored space exports the same
resource again:

* what the export added is taken off first: the MASQUE_PS security label (the entry is masked), who entered the
  entry when it is a bare display reference in the element ``export_map.AUTHOR_ELEMENT`` names (the author's
  label), the ``active`` clinical status of an AllergyIntolerance (the export adds it when the resource has none;
  taking it off an allergy that carried it changes nothing, the export adds it back);
* an Observation coded in ``PROFILE_SECTIONS`` is an item of a section FHIR does not exchange, read field by field
  (``valueString``/``valueCodeableConcept``, components coded in ``PROFILE_FIELDS``, ``note``) and checked by the
  section's own rules; it was typed in the portal;
* every other resource is read by the FHIR API's own reading (``fhir_map.incoming``): the fields, the code, the
  measure in its canonical unit. Whether it was typed in the portal or came over FHIR is told by building it
  again from what was read: when the built resource is the archived one, the entry is restored as typed (its
  fields), otherwise as sent (the resource, without what the export added, is kept as it came). A resource sent
  exactly as the portal would have built it is restored as typed: the same resource either way (its ``source`` is
  the history's, see ``carnet.profile.service.restore``).

Dates: the version and ``updated_at`` are the resource's ``meta``; ``created_at`` is what the resource says of it
(``issued`` of a section's Observation, ``recordedDate`` of a typed Condition or AllergyIntolerance), else
``meta.lastUpdated``. The moment an entry is filed under is the API's (sent) or the portal's (typed: its date,
« depuis le » or « début »). What cannot be read is ``Unreadable`` with the French reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from carnet.errors import CarnetError
from carnet.fhir.search import period_of
from carnet.hall.vocabulary import PARIS
from carnet.profile.model import export_map, fhir_map
from carnet.profile.model import measures as catalogue
from carnet.profile.model.fhir_map import ALLERGY_CLINICAL, MappingError
from carnet.profile.model.sections import MEASURES_SECTION, SECTIONS, ItemError, clean_fields

NO_REACTION = "Réaction non précisée"  # what a typed allergy with a severity but no reaction is exported with
ACTIVE_ALLERGY = {"coding": [{"system": ALLERGY_CLINICAL, "code": "active"}]}
SERVER_META = frozenset({"versionId", "lastUpdated", "source"})  # the export's, never the sender's


class Unreadable(CarnetError):
    """A resource of the archive the profile cannot restore (the French reason)."""


@dataclass(frozen=True)
class RestoredEntry:
    """One entry as the archive tells it (``id``: its id in the archive); a ``StoredEntry`` for ``export_map``."""

    id: str
    section: str
    effective_at: datetime | None
    created_at: datetime
    updated_at: datetime
    version: int
    author_label: str
    masked: bool
    author_bound: bool = False  # the label is bound by the resource (see ``_author``); else the history may say
    fields: dict[str, str] = field(default_factory=dict)
    code: dict[str, str] | None = None
    measure: str | None = None
    value: float | None = None
    components: dict[str, float] | None = None
    unit_entered: str | None = None
    fhir: dict[str, Any] | None = None  # the resource as sent; None: typed in the portal

    @property
    def typed(self) -> bool:
        return self.fhir is None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _moment(value: Any, what: str) -> datetime:
    try:
        return period_of(value).start
    except ValueError:
        raise Unreadable(f"date illisible ({what}).") from None


def _version(meta: Mapping[str, Any]) -> int:
    version = str(meta.get("versionId") or "1")
    return int(version) if version.isdigit() and 0 < int(version) < 1_000_000 else 1


def _unmasked(resource: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    meta = dict(_dict(resource.get("meta")))
    security = [s for s in meta.get("security") or [] if isinstance(s, dict)]
    kept = [s for s in security if (s.get("system"), s.get("code")) != (export_map.MASKED["system"], "MASQUE_PS")]
    if len(kept) == len(security):
        return resource, False
    if kept:
        meta["security"] = kept
    else:
        meta.pop("security", None)
    return {**resource, "meta": meta}, True


def _author(resource: dict[str, Any]) -> tuple[dict[str, Any], str, bool]:
    """Who entered the entry, the resource without it when the export added it (a bare display), and whether the
    label is bound by the resource (the export would add it back, or add one if the label were not empty)."""
    place = export_map.AUTHOR_ELEMENT.get(str(resource.get("resourceType")))
    if place is None:
        performers = [_dict(_dict(p).get("actor")) for p in resource.get("performer") or []]
        return resource, next((str(p["display"]) for p in performers if p.get("display")), "")[:200], False
    element, listed = place
    value = resource.get(element)
    if value is None:
        return resource, "", True
    first = _dict(value[0] if listed and isinstance(value, list) and value else value)
    label = str(first.get("display") or "")[:200]
    bare = set(first) == {"display"} and (not listed or (isinstance(value, list) and len(value) == 1))
    if bare and label:
        return {k: v for k, v in resource.items() if k != element}, label, True
    return resource, label, False


def _typed_moment(fields: Mapping[str, str]) -> datetime | None:
    """When the portal files a typed item: its date, « depuis le » or « début » (French time)."""
    when = fields.get("date") or fields.get("since") or fields.get("start")
    return datetime.fromisoformat(when).replace(tzinfo=PARIS) if when else None


def _section_of(resource: Mapping[str, Any]) -> str | None:
    if resource.get("resourceType") != "Observation":
        return None
    codings = [_dict(c) for c in _dict(resource.get("code")).get("coding") or []]
    return next((str(c.get("code")) for c in codings if c.get("system") == export_map.PROFILE_SECTIONS), None)


def _section_fields(key: str, resource: Mapping[str, Any], today: Any) -> dict[str, str]:
    section = SECTIONS.get(key)
    if section is None or section.fhir_type is not None:
        raise Unreadable(f"rubrique du profil inconnue (« {key[:40]} »).")
    main = section.main.name
    raw: dict[str, str] = {}
    value = resource.get("valueString")
    if value is None:
        value = _dict(resource.get("valueCodeableConcept")).get("text")
    if isinstance(value, str) and value:
        raw[main] = value
    for component in resource.get("component") or []:
        codings = [_dict(c) for c in _dict(_dict(component).get("code")).get("coding") or []]
        name = next((str(c.get("code")) for c in codings if c.get("system") == export_map.PROFILE_FIELDS), "")
        if name and isinstance(_dict(component).get("valueString"), str):
            raw[name] = _dict(component)["valueString"]
    notes = [str(_dict(n).get("text") or "") for n in resource.get("note") or []]
    if any(notes):
        raw["note"] = "\n".join(n for n in notes if n)
    try:
        return clean_fields(section, raw, today)
    except ItemError as error:
        raise Unreadable(error.message) from None


def read_entry(archived: Mapping[str, Any], now: datetime) -> RestoredEntry:
    """The entry ``archived`` (a profile resource of the archive) tells, checked at ``now``; ``Unreadable``."""
    resource, masked = _unmasked(dict(archived))
    resource, author_label, author_bound = _author(resource)
    kind = str(resource.get("resourceType"))
    meta = _dict(archived.get("meta"))
    updated_at = _moment(meta["lastUpdated"], "meta.lastUpdated") if meta.get("lastUpdated") else now
    common: dict[str, Any] = {
        "id": str(archived.get("id") or ""),
        "updated_at": updated_at,
        "version": _version(meta),
        "author_label": author_label,
        "author_bound": author_bound,
        "masked": masked,
    }
    section_key = _section_of(resource)
    if section_key is not None:
        fields = _section_fields(section_key, resource, now.astimezone(PARIS).date())
        created = _moment(resource["issued"], "issued") if resource.get("issued") else updated_at
        return RestoredEntry(
            section=section_key, effective_at=_typed_moment(fields), created_at=created, fields=fields, **common
        )
    if kind not in fhir_map.SECTION_OF:
        raise Unreadable(f"type de ressource inattendu ({kind[:40]}).")
    if kind == "AllergyIntolerance" and resource.get("clinicalStatus") == ACTIVE_ALLERGY:
        resource = {k: v for k, v in resource.items() if k != "clinicalStatus"}
    try:
        kept = fhir_map.incoming(kind, resource, now)
    except MappingError as error:
        raise Unreadable(" ; ".join(text for _, text, _ in error.issues) or "ressource illisible.") from None
    typed = _typed(kind, kept, archived, common)
    if typed is not None:
        return typed
    sent_meta = {k: v for k, v in _dict(resource.get("meta")).items() if k not in SERVER_META}
    sent = {k: v for k, v in resource.items() if k not in {"id", "meta"}}
    return RestoredEntry(
        section=kept.section,
        effective_at=kept.effective_at,
        created_at=updated_at,
        fields=kept.fields,
        code=kept.code,
        measure=kept.measure,
        value=kept.value,
        components=kept.components,
        unit_entered=kept.unit_entered,
        fhir={**({"meta": sent_meta} if sent_meta else {}), **sent},
        **common,
    )


def _typed(
    kind: str, kept: fhir_map.Incoming, archived: Mapping[str, Any], common: dict[str, Any]
) -> RestoredEntry | None:
    """The entry as typed in the portal, if building it again gives the archived resource; None otherwise."""
    fields = dict(kept.fields)
    if kind == "AllergyIntolerance" and fields.get("reaction") == NO_REACTION:
        fields.pop("reaction")
    created = common["updated_at"]
    recorded = archived.get("recordedDate")
    if kind in {"Condition", "AllergyIntolerance"} and isinstance(recorded, str) and recorded:
        try:
            created = period_of(recorded).start
        except ValueError:
            return None
    if kind == "Observation":
        measure = catalogue.MEASURES.get(kept.measure or "")
        unit = measure.unit.code if measure is not None else kept.unit_entered
        candidate = RestoredEntry(
            section=MEASURES_SECTION,
            effective_at=kept.effective_at,
            created_at=created,
            fields=fields,
            measure=kept.measure,
            value=kept.value,
            components=kept.components,
            unit_entered=unit,
            **common,
        )
    else:
        candidate = RestoredEntry(
            section=kept.section,
            effective_at=_typed_moment(fields),
            created_at=created,
            fields=fields,
            code=kept.code,
            **common,
        )
    element = fhir_map.PATIENT_ELEMENT[kind]
    built = export_map.entry_resource(candidate, _dict(archived.get(element)), candidate.author_label, candidate.masked)
    return candidate if built == dict(archived) else None
