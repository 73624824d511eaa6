"""The whole profile in the archive of a space (ENR-7) as FHIR R4 — pure, beside the exchange mapping it extends.

The six sections the FHIR API exchanges (``carnet.profile.model.fhir_map``) and the measures are the resources
that API serves (``outgoing``: the resource as it was sent, or built from what was typed), completed for an archive
that is read without Carnet:

* who entered the entry, where R4 has a place for it and the resource does not already say: Observation
  ``performer``, Condition and AllergyIntolerance ``recorder``, MedicationStatement ``informationSource`` (a
  display reference: the name Carnet recorded);
* an entry the person masked from professionals carries the MASQUE_PS security label (as a masked document);
* an AllergyIntolerance without ``clinicalStatus`` gets ``active`` (R4's invariant ait-1: a clinical status
  unless the allergy was entered in error — what the portal records is an allergy the person has).

The sections without a FHIR resource of their own (hospitalisations, handicaps, groupe sanguin, habitudes de vie,
professionnels de santé, entourage, don d'organes) become an ``Observation`` each: coded with the section in
Carnet's code system ``PROFILE_SECTIONS`` (the blood group with LOINC 882-1), the main field as ``valueString``
(the blood group as ``valueCodeableConcept``), every other field a ``component`` coded in ``PROFILE_FIELDS``
with the field's French label as text, the comment as ``note`` — so that another Carnet can read the entry back
field by field, and a person reads it as the portal shows it.

``summary`` is the entry's line in the archive's reading guide (French).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from carnet.fhir.search import instant
from carnet.hall.vocabulary import PARIS
from carnet.profile.model import fhir_map
from carnet.profile.model import measures as catalogue
from carnet.profile.model.fhir_map import ALLERGY_CLINICAL, LOINC, OBSERVATION_CATEGORY, StoredEntry
from carnet.profile.model.sections import MEASURES_SECTION, SECTIONS, Field
from carnet.vault.model.documents import CONFIDENTIALITY_SYSTEM_FR

BASE = "https://carnet.example/fhir"
PROFILE_SECTIONS = f"{BASE}/CodeSystem/profile-section"
PROFILE_FIELDS = f"{BASE}/CodeSystem/profile-field"
BLOOD_GROUP = {"system": LOINC, "code": "882-1", "display": "ABO and Rh group [Type] in Blood"}
AUTHOR_ELEMENT = {  # where R4 says who entered the entry (a single reference, or a list of them)
    "Observation": ("performer", True),
    "Condition": ("recorder", False),
    "AllergyIntolerance": ("recorder", False),
    "MedicationStatement": ("informationSource", False),
}
MASKED = {"system": CONFIDENTIALITY_SYSTEM_FR, "code": "MASQUE_PS"}


def resource_type(section: str) -> str:
    """The resource an entry of ``section`` is exported as."""
    if section == MEASURES_SECTION:
        return "Observation"
    known = SECTIONS.get(section)
    return known.fhir_type if known is not None and known.fhir_type else "Observation"


def _section_observation(entry: StoredEntry, patient: Mapping[str, Any]) -> dict[str, Any]:
    """An entry of a section FHIR does not exchange, as an Observation field by field."""
    section = SECTIONS[entry.section]
    fields = entry.fields
    main = section.main.name
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": entry.id,
        "meta": {"versionId": str(entry.version), "lastUpdated": instant(entry.updated_at)},
        "status": "final",
        "code": {
            "coding": [{"system": PROFILE_SECTIONS, "code": section.key, "display": section.title}],
            "text": section.title,
        },
        "subject": dict(patient),
        "issued": instant(entry.created_at),
    }
    if entry.section == "blood_group":
        resource["category"] = [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "laboratory"}]}]
        resource["code"] = {"coding": [{**BLOOD_GROUP}, *resource["code"]["coding"]], "text": section.title}
        resource["valueCodeableConcept"] = {"text": fields.get(main, "")}
    elif fields.get(main):
        resource["valueString"] = fields[main]
    components = [
        {
            "code": {"coding": [{"system": PROFILE_FIELDS, "code": f.name}], "text": f.label},
            "valueString": fields[f.name],
        }
        for f in section.fields
        if f.name not in {main, "note"} and fields.get(f.name)
    ]
    if components:
        resource["component"] = components
    if fields.get("note"):
        resource["note"] = [{"text": fields["note"]}]
    return resource


def entry_resource(
    entry: StoredEntry, patient: Mapping[str, Any], author_label: str = "", masked: bool = False
) -> dict[str, Any]:
    """The entry as an R4 resource of the archive (see the module's docstring)."""
    kind = resource_type(entry.section)
    known = entry.section == MEASURES_SECTION or entry.section in fhir_map.SECTION_OF.values()
    resource = fhir_map.outgoing(kind, entry, patient) if known else _section_observation(entry, patient)
    element = AUTHOR_ELEMENT.get(kind)
    if element is not None and author_label and element[0] not in resource:
        who = {"display": author_label}
        resource[element[0]] = [who] if element[1] else who
    if kind == "AllergyIntolerance" and "clinicalStatus" not in resource:
        resource["clinicalStatus"] = {"coding": [{"system": ALLERGY_CLINICAL, "code": "active"}]}
    if masked:
        meta = dict(resource.get("meta") or {})
        meta["security"] = [*(meta.get("security") or []), MASKED]
        resource["meta"] = meta
    return resource


def _day(moment: datetime | None) -> str:
    return f" le {moment.astimezone(PARIS):%d/%m/%Y}" if moment is not None else ""


def _measure_text(entry: StoredEntry) -> str:
    measure = catalogue.MEASURES.get(entry.measure or "")
    if measure is None:
        return f"Mesure{_day(entry.effective_at)}"
    if measure.components:
        values = entry.components or {}
        parts = [
            f"{c.label.lower()} {catalogue.format_value(measure, values.get(c.key, 0.0))}" for c in measure.components
        ]
        return f"{measure.label} : {', '.join(parts)}{_day(entry.effective_at)}"
    value = catalogue.format_value(measure, entry.value) if entry.value is not None else "—"
    return f"{measure.label} : {value}{_day(entry.effective_at)}"


def _shown(field: Field, value: str) -> str:
    """A field as the reading guide shows it: a date in the French way, no comment (it stays in the resource)."""
    if field.name == "note" or not value:
        return ""
    if field.kind == "date":
        try:
            return f"{date.fromisoformat(value):%d/%m/%Y}"
        except ValueError:
            return value
    return value


def summary(entry: StoredEntry, author_label: str = "", masked: bool = False) -> str:
    """« Allergies : Pénicilline — Urticaire — Modérée (saisi par Marie-Ange SANTONI) »; a measure with its value and
    date."""
    if entry.section == MEASURES_SECTION:
        line = _measure_text(entry)
    else:
        section = SECTIONS.get(entry.section)
        title = section.title if section is not None else entry.section
        shown = [_shown(f, entry.fields.get(f.name, "")) for f in (section.fields if section is not None else ())]
        line = f"{title} : {' — '.join(value for value in shown if value) or '—'}"
    if author_label:
        line += f" (saisi par {author_label})"
    return line + (" ; masqué aux professionnels" if masked else "")
