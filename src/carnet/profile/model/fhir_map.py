"""The medical profile as FHIR R4 (PRF-3): a pure mapping between six resource types and the profile's entries.

**Incoming.** A resource whose structure the FHIR models accepted (the interface checks that) is read as what
Carnet keeps: an item's fields, checked by the section's own rules (``clean_fields``), or one of the fourteen
measures, converted to its canonical unit and range-checked by the catalogue (``to_canonical``,
``check_blood_pressure``); with the moment it is filed under and the patient element as sent. The resource
itself is kept as sent. What cannot be kept is a ``MappingError`` listing OperationOutcome issues (French, each
with its FHIRPath) and the HTTP status: **400** for what is not understood (an unknown LOINC code or unit, a
missing element, a status Carnet does not record), **422** for what is understood but refused by Carnet's rules
(an implausible value — the message gives the range —, a date in the future, a text too long).

**Outgoing.** A stored entry as a resource: the resource as it was sent when there is one, otherwise built from
the fields (what the person typed in the portal); always with Carnet's id, ``meta.versionId``,
``meta.lastUpdated`` and the patient (reference and INS).

**Search.** The parameters of a search (``patient`` or ``patient.identifier``, ``code``, ``date`` with its
prefixes and partial dates, ``_count``, ``_offset``) as plain values, in the half-open period ``[from, to)``
the service applies to each entry's moment — read by the shared ``carnet.fhir.search`` (the agenda reads its
searches the same way).

Which moment an entry is filed (and searched by ``date``) under: Observation ``effective[x]``; Condition and
AllergyIntolerance ``onset[x]``, else ``recordedDate``; MedicationStatement ``effective[x]``, else
``dateAsserted``; Immunization ``occurrenceDateTime``; FamilyMemberHistory ``date``. Dates without a time are
read in French time (Europe/Paris). A treatment's planned end (a date still to come) is not its « Fin »: the
field stays empty until the treatment has ended (the resource as sent keeps it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from carnet.fhir import search
from carnet.fhir.search import INS_SYSTEMS, Period, date_bounds, instant, period_of
from carnet.hall.vocabulary import PARIS
from carnet.people.model.identifiers import INS_NIR_OID
from carnet.profile.model import measures as catalogue
from carnet.profile.model.sections import MEASURES_SECTION, RELATIVES, SECTIONS, ItemError, clean_fields

__all__ = [
    "INS_SYSTEMS",
    "LOINC",
    "PATIENT_ELEMENT",
    "RESOURCE_TYPES",
    "SECTION_OF",
    "UCUM",
    "Incoming",
    "MappingError",
    "Period",
    "SearchRequest",
    "StoredEntry",
    "date_bounds",
    "incoming",
    "outgoing",
    "period_of",
    "search_request",
]

Issue = tuple[str, str, str]  # (FHIR issue code, French diagnostics, FHIRPath or "")

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
VITAL_SIGNS_PROFILE = "http://hl7.org/fhir/StructureDefinition/vitalsigns"

SECTION_OF: Mapping[str, str] = {
    "Observation": MEASURES_SECTION,
    "Condition": "conditions",
    "MedicationStatement": "treatments",
    "AllergyIntolerance": "allergies",
    "FamilyMemberHistory": "family_history",
    "Immunization": "vaccinations",
}
RESOURCE_TYPES = tuple(SECTION_OF)
PATIENT_ELEMENT: Mapping[str, str] = {  # where each resource names its patient
    "Observation": "subject",
    "Condition": "subject",
    "MedicationStatement": "subject",
    "AllergyIntolerance": "patient",
    "FamilyMemberHistory": "patient",
    "Immunization": "patient",
}

MAX_COUNT = 100
MAX_OFFSET = 100_000
MAX_CODES = 50
SEARCH_PARAMETERS = frozenset({"patient", "patient.identifier", "code", "date", "_count", "_offset", "_format"})
FUTURE_SLACK = timedelta(minutes=5)  # clocks of the sender and of Carnet differ a little

RECORDED_OBSERVATIONS = frozenset({"final", "amended", "corrected", "preliminary"})
REFUSED_VERIFICATION = frozenset({"refuted", "entered-in-error"})
CLINICAL_WORDS = {
    "active": "En cours",
    "recurrence": "En cours",
    "relapse": "En cours",
    "inactive": "Guérie ou terminée",
    "remission": "Guérie ou terminée",
    "resolved": "Guérie ou terminée",
}
SEVERITY_WORDS = {"mild": "Légère", "moderate": "Modérée", "severe": "Sévère"}
RELATIVE_OF_ROLE = {
    **dict.fromkeys(("MTH", "NMTH"), "Mère"),
    **dict.fromkeys(("FTH", "NFTH"), "Père"),
    **dict.fromkeys(("SIS", "NSIS", "HSIS", "TWINSIS"), "Sœur"),
    **dict.fromkeys(("BRO", "NBRO", "HBRO", "TWINBRO"), "Frère"),
    **dict.fromkeys(("DAU", "DAUC"), "Fille"),
    **dict.fromkeys(("SON", "SONC"), "Fils"),
    "MGRMTH": "Grand-mère maternelle",
    "MGRFTH": "Grand-père maternel",
    "PGRMTH": "Grand-mère paternelle",
    "PGRFTH": "Grand-père paternel",
    **dict.fromkeys(("AUNT", "MAUNT", "PAUNT"), "Tante"),
    **dict.fromkeys(("UNCLE", "MUNCLE", "PUNCLE"), "Oncle"),
}
OTHER_RELATIVE = RELATIVES[-1]
ROLE_OF_RELATIVE = {
    "Mère": "MTH",
    "Père": "FTH",
    "Sœur": "SIS",
    "Frère": "BRO",
    "Fille": "DAU",
    "Fils": "SON",
    "Grand-mère maternelle": "MGRMTH",
    "Grand-père maternel": "MGRFTH",
    "Grand-mère paternelle": "PGRMTH",
    "Grand-père paternel": "PGRFTH",
    "Tante": "AUNT",
    "Oncle": "UNCLE",
    OTHER_RELATIVE: "FAMMEMB",
}


MappingError = search.InputError  # what cannot be kept or searched: OperationOutcome issues and the HTTP status


def _fail(code: str, text: str, path: str, status: int = 400) -> MappingError:
    return search.fail(code, text, path, status)


# ------------------------------------------------------------------ dates


def _period(value: Any, path: str) -> Period:
    try:
        return period_of(value)
    except ValueError:
        raise _fail("value", "Date invalide (AAAA, AAAA-MM, AAAA-MM-JJ ou date et heure FHIR).", path) from None


# ------------------------------------------------------------------ reading a resource


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _codings(concept: Any) -> list[dict[str, Any]]:
    return [c for c in _list(_dict(concept).get("coding")) if isinstance(c, dict)]


def _str(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def concept_text(concept: Any) -> str:
    """What a CodeableConcept says to a person: its text, else its first coding's display, else its code."""
    text = _str(_dict(concept).get("text"))
    if text:
        return text
    for coding in _codings(concept):
        if _str(coding.get("display")):
            return _str(coding["display"])
    return next((_str(c.get("code")) for c in _codings(concept) if _str(c.get("code"))), "")


def concept_code(concept: Any) -> dict[str, str] | None:
    """The first coding with a code, as kept (``system``, ``code``, ``display``), or None."""
    for coding in _codings(concept):
        code = _str(coding.get("code"))
        if code:
            kept = {"system": _str(coding.get("system")), "code": code, "display": _str(coding.get("display"))}
            return {k: v for k, v in kept.items() if v}
    return None


def _notes(raw: Mapping[str, Any]) -> str:
    return "\n".join(_str(_dict(n).get("text")) for n in _list(raw.get("note")) if _str(_dict(n).get("text")))


def _choice(raw: Mapping[str, Any], stem: str, path: str) -> Period | None:
    """The moment of a ``<stem>[x]`` element: dateTime, instant, or the start of a Period."""
    for suffix in ("DateTime", "Instant"):
        if raw.get(stem + suffix) is not None:
            return _period(raw[stem + suffix], f"{path}.{stem}{suffix}")
    start = _dict(raw.get(stem + "Period")).get("start")
    return _period(start, f"{path}.{stem}Period.start") if start is not None else None


def _status(raw: Mapping[str, Any], allowed: Iterable[str], path: str, what: str) -> None:
    status = raw.get("status")
    if status not in set(allowed):
        raise _fail("value", f"{what} (reçu : « {str(status)[:30]} »).", f"{path}.status")


def _verified(raw: Mapping[str, Any], path: str) -> None:
    codes = {_str(c.get("code")) for c in _codings(raw.get("verificationStatus"))}
    if codes & REFUSED_VERIFICATION:
        raise _fail(
            "value",
            "Un élément réfuté ou saisi par erreur ne s'enregistre pas dans le profil (verificationStatus).",
            f"{path}.verificationStatus",
        )


def _day(period: Period | None) -> str:
    return period.day.isoformat() if period is not None and period.day is not None else ""


@dataclass(frozen=True)
class Incoming:
    """A resource as the profile keeps it: the patient element as sent, and what the entry holds."""

    subject: dict[str, Any]
    section: str
    effective_at: datetime | None
    fields: dict[str, str] = field(default_factory=dict)
    code: dict[str, str] | None = None
    measure: str | None = None
    value: float | None = None
    components: dict[str, float] | None = None
    unit_entered: str | None = None
    fhir: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Item:
    """An item's fields as read from a resource, each with the element it came from (for error paths)."""

    fields: dict[str, str]
    paths: dict[str, str]
    code: dict[str, str] | None
    effective: Period | None


def _clean(section_key: str, item: _Item, now: datetime, root: str) -> dict[str, str]:
    section = SECTIONS[section_key]
    try:
        return clean_fields(section, {k: v for k, v in item.fields.items() if v}, now.astimezone(PARIS).date())
    except ItemError as error:
        path = next(
            (item.paths.get(f.name, root) for f in section.fields if f"« {f.label} »" in error.message),
            root,
        )
        raise _fail("business-rule", error.message, path, 422) from None


def _required(text: str, path: str, what: str) -> str:
    if not text:
        raise _fail("required", what, path)
    return text


def _condition(raw: Mapping[str, Any]) -> _Item:
    _verified(raw, "Condition")
    label = _required(
        concept_text(raw.get("code")),
        "Condition.code",
        "La maladie est obligatoire : code (text, ou coding avec display).",
    )
    onset = _choice(raw, "onset", "Condition")
    recorded = _period(raw["recordedDate"], "Condition.recordedDate") if raw.get("recordedDate") else None
    clinical = [_str(c.get("code")) for c in _codings(raw.get("clinicalStatus"))]
    status = next((CLINICAL_WORDS[c] for c in clinical if c in CLINICAL_WORDS), "")
    return _Item(
        {"label": label, "since": _day(onset), "status": status, "note": _notes(raw)},
        {"label": "Condition.code", "since": "Condition.onset", "note": "Condition.note"},
        concept_code(raw.get("code")),
        onset or recorded,
    )


def _allergy(raw: Mapping[str, Any]) -> _Item:
    _verified(raw, "AllergyIntolerance")
    label = _required(
        concept_text(raw.get("code")),
        "AllergyIntolerance.code",
        "La substance est obligatoire : code (text, ou coding avec display).",
    )
    reactions = [_dict(r) for r in _list(raw.get("reaction"))]
    manifestations: list[str] = []
    for reaction in reactions:
        for concept in _list(reaction.get("manifestation")):
            text = concept_text(concept)
            if text and text not in manifestations:
                manifestations.append(text)
    order = list(SEVERITY_WORDS)
    severities = [order.index(r["severity"]) for r in reactions if r.get("severity") in SEVERITY_WORDS]
    severity = SEVERITY_WORDS[order[max(severities)]] if severities else ""
    onset = _choice(raw, "onset", "AllergyIntolerance")
    recorded = _period(raw["recordedDate"], "AllergyIntolerance.recordedDate") if raw.get("recordedDate") else None
    return _Item(
        {
            "label": label,
            "reaction": ", ".join(manifestations),
            "severity": severity,
            "since": _day(onset),
            "note": _notes(raw),
        },
        {
            "label": "AllergyIntolerance.code",
            "reaction": "AllergyIntolerance.reaction.manifestation",
            "since": "AllergyIntolerance.onset",
            "note": "AllergyIntolerance.note",
        },
        concept_code(raw.get("code")),
        onset or recorded,
    )


def relative_of(relationship: Any) -> str:
    """The relative (a choice of the section) a ``relationship`` of v3-RoleCode names; « Autre … » otherwise."""
    for coding in _codings(relationship):
        if coding.get("system") in {None, "", ROLE_CODE} and _str(coding.get("code")).upper() in RELATIVE_OF_ROLE:
            return RELATIVE_OF_ROLE[_str(coding["code"]).upper()]
    return OTHER_RELATIVE


def _family(raw: Mapping[str, Any]) -> _Item:
    _status(raw, {"partial", "completed", "health-unknown"}, "FamilyMemberHistory", "Statut non enregistrable")
    conditions = [_dict(c) for c in _list(raw.get("condition"))]
    labels = [t for t in (concept_text(c.get("code")) for c in conditions) if t]
    label = _required(
        ", ".join(dict.fromkeys(labels)),
        "FamilyMemberHistory.condition",
        "La maladie du proche est obligatoire : condition.code (text, ou coding avec display).",
    )
    when = _period(raw["date"], "FamilyMemberHistory.date") if raw.get("date") else None
    code = next((c for c in (concept_code(x.get("code")) for x in conditions) if c), None)
    return _Item(
        {"label": label, "relative": relative_of(raw.get("relationship")), "note": _notes(raw)},
        {"label": "FamilyMemberHistory.condition", "note": "FamilyMemberHistory.note"},
        code,
        when,
    )


def _treatment(raw: Mapping[str, Any], now: datetime) -> _Item:
    _status(
        raw,
        {"active", "completed", "intended", "stopped", "on-hold", "unknown"},
        "MedicationStatement",
        "Seul un traitement pris ou prévu s'enregistre (statut « not-taken » ou « entered-in-error » refusé)",
    )
    concept = raw.get("medicationCodeableConcept")
    label = concept_text(concept) or _str(_dict(raw.get("medicationReference")).get("display"))
    _required(
        label,
        "MedicationStatement.medication",
        "Le médicament est obligatoire : medicationCodeableConcept (text, ou coding avec display).",
    )
    start = _choice(raw, "effective", "MedicationStatement")
    end_text = _dict(raw.get("effectivePeriod")).get("end")
    end = _period(end_text, "MedicationStatement.effectivePeriod.end") if end_text is not None else None
    if end is not None and end.start > now:
        end = None  # a planned end: the treatment has not ended yet
    asserted = _period(raw["dateAsserted"], "MedicationStatement.dateAsserted") if raw.get("dateAsserted") else None
    dosage = "; ".join(_str(_dict(d).get("text")) for d in _list(raw.get("dosage")) if _str(_dict(d).get("text")))
    return _Item(
        {"label": label, "dosage": dosage, "start": _day(start), "end": _day(end), "note": _notes(raw)},
        {
            "label": "MedicationStatement.medication",
            "dosage": "MedicationStatement.dosage.text",
            "start": "MedicationStatement.effective",
            "end": "MedicationStatement.effectivePeriod.end",
            "note": "MedicationStatement.note",
        },
        concept_code(concept),
        start or asserted,
    )


def _dose(raw: Mapping[str, Any]) -> str:
    for protocol in _list(raw.get("protocolApplied")):
        number = _dict(protocol).get("doseNumberPositiveInt")
        if isinstance(number, int) and not isinstance(number, bool):
            return f"{number}{'re' if number == 1 else 'e'} dose"
        if _str(_dict(protocol).get("doseNumberString")):
            return _str(_dict(protocol)["doseNumberString"])
    return ""


def _immunization(raw: Mapping[str, Any]) -> _Item:
    _status(raw, {"completed"}, "Immunization", "Seule une vaccination faite (statut « completed ») s'enregistre")
    label = _required(
        concept_text(raw.get("vaccineCode")),
        "Immunization.vaccineCode",
        "Le vaccin est obligatoire : vaccineCode (text, ou coding avec display).",
    )
    if raw.get("occurrenceDateTime") is None:
        raise _fail(
            "required", "La date de la vaccination est obligatoire (occurrenceDateTime).", "Immunization.occurrence"
        )
    when = _period(raw["occurrenceDateTime"], "Immunization.occurrenceDateTime")
    if when.day is None:
        raise _fail(
            "business-rule",
            "« Date de la vaccination » : le jour est obligatoire (AAAA-MM-JJ).",
            "Immunization.occurrenceDateTime",
            422,
        )
    return _Item(
        {
            "label": label,
            "date": when.day.isoformat(),
            "dose": _dose(raw),
            "lot": _str(raw.get("lotNumber")),
            "note": _notes(raw),
        },
        {
            "label": "Immunization.vaccineCode",
            "date": "Immunization.occurrenceDateTime",
            "dose": "Immunization.protocolApplied",
            "lot": "Immunization.lotNumber",
            "note": "Immunization.note",
        },
        concept_code(raw.get("vaccineCode")),
        when,
    )


# ------------------------------------------------------------------ Observation (PRF-2)


def accepted_codes() -> str:
    return ", ".join(f"{m.loinc} ({m.label})" for m in catalogue.MEASURES.values() if not m.computed)


def _measure_of(raw: Mapping[str, Any]) -> catalogue.Measure:
    loinc = [_str(c.get("code")) for c in _codings(raw.get("code")) if c.get("system") == LOINC and c.get("code")]
    if not loinc:
        raise _fail(
            "required",
            f"Le code LOINC de la mesure est obligatoire (code.coding, system {LOINC}).",
            "Observation.code",
        )
    measure = next((catalogue.BY_LOINC[c] for c in loinc if c in catalogue.BY_LOINC), None)
    if measure is None:
        raise _fail(
            "code-invalid",
            f"Code LOINC non pris en charge : {loinc[0][:20]}. Codes acceptés : {accepted_codes()}.",
            "Observation.code",
        )
    if measure.computed:
        raise _fail(
            "business-rule",
            f"{measure.label} : cette valeur est calculée par Carnet à partir du poids et de la taille, "
            "elle ne se transmet pas.",
            "Observation.code",
            422,
        )
    return measure


def _quantity(quantity: Any, path: str) -> tuple[Any, str]:
    """The value and the UCUM unit code of a valueQuantity (``MappingError`` when they are missing)."""
    if not isinstance(quantity, dict) or quantity.get("value") is None:
        raise _fail(
            "required",
            "La valeur est obligatoire : valueQuantity (value, unit, system UCUM, code).",
            path,
        )
    if quantity.get("comparator") is not None:
        raise _fail("not-supported", "Une valeur approchée (comparator) ne s'enregistre pas.", f"{path}.comparator")
    code, system = _str(quantity.get("code")), quantity.get("system")
    if code and system not in {None, UCUM}:
        raise _fail("code-invalid", f"L'unité doit être un code UCUM (system {UCUM}).", f"{path}.system")
    unit = code or _str(quantity.get("unit"))
    if not unit:
        raise _fail("required", f"L'unité est obligatoire (valueQuantity.code, system {UCUM}).", f"{path}.code")
    return quantity["value"], unit


def _measure_error(error: catalogue.MeasureError, path: str) -> MappingError:
    if isinstance(error, catalogue.ImplausibleValue):
        return _fail("business-rule", error.message, path, 422)
    if isinstance(error, catalogue.UnknownUnit):
        return _fail("code-invalid", error.message, path)
    return _fail("value", error.message, path)


def _components(measure: catalogue.Measure, raw: Mapping[str, Any]) -> tuple[dict[str, float], str]:
    found: dict[str, tuple[Any, str, str]] = {}
    by_code = {c.loinc: c.key for c in measure.components}
    for index, item in enumerate(_list(raw.get("component"))):
        codes = [_str(c.get("code")) for c in _codings(_dict(item).get("code")) if c.get("system") == LOINC]
        key = next((by_code[c] for c in codes if c in by_code), None)
        if key is not None and key not in found:
            path = f"Observation.component[{index}].valueQuantity"
            found[key] = (*_quantity(_dict(item).get("valueQuantity"), path), path)
    if set(found) != set(by_code.values()):
        wanted = " et ".join(f"{c.label.lower()} ({c.loinc})" for c in measure.components)
        raise _fail(
            "required", f"{measure.label} : les deux composants sont obligatoires, {wanted}.", "Observation.component"
        )
    units = {unit for _, unit, _ in found.values()}
    if len(units) > 1:
        raise _fail(
            "value", f"{measure.label} : les deux composants doivent avoir la même unité.", "Observation.component"
        )
    unit = units.pop()
    try:
        systolic, diastolic = catalogue.check_blood_pressure(found["systolic"][0], found["diastolic"][0], unit)
    except catalogue.MeasureError as error:
        raise _measure_error(error, "Observation.component") from None
    return {"systolic": systolic, "diastolic": diastolic}, unit


def _observation(raw: Mapping[str, Any], now: datetime) -> Incoming:
    _status(
        raw, RECORDED_OBSERVATIONS, "Observation", "Statut non enregistrable : final, amended, corrected ou preliminary"
    )
    measure = _measure_of(raw)
    when = _choice(raw, "effective", "Observation")
    if when is None:
        raise _fail("required", "Le moment de la mesure est obligatoire (effectiveDateTime).", "Observation.effective")
    if when.start > now + FUTURE_SLACK:
        raise _fail(
            "business-rule", "La date de la mesure ne peut pas être dans le futur.", "Observation.effective", 422
        )
    if when.start.year < 1900:
        raise _fail("business-rule", "La date de la mesure doit être postérieure à 1900.", "Observation.effective", 422)
    note = _notes(raw)[:500]
    common: dict[str, Any] = {
        "section": MEASURES_SECTION,
        "effective_at": when.start,
        "fields": {"note": note} if note else {},
        "measure": measure.key,
        "fhir": dict(raw),
    }
    subject = _dict(raw.get("subject"))
    if measure.components:
        components, unit = _components(measure, raw)
        return Incoming(subject, components=components, unit_entered=unit, **common)
    value, unit = _quantity(raw.get("valueQuantity"), "Observation.valueQuantity")
    try:
        canonical = catalogue.to_canonical(measure, value, unit)
    except catalogue.MeasureError as error:
        path = "Observation.valueQuantity." + ("code" if isinstance(error, catalogue.UnknownUnit) else "value")
        raise _measure_error(error, path) from None
    return Incoming(subject, value=canonical, unit_entered=unit, **common)


designates_a_patient = search.designates_a_patient


def incoming(resource_type: str, raw: Mapping[str, Any], now: datetime) -> Incoming:
    """What the profile keeps of ``raw`` (a resource of ``resource_type`` the FHIR models accepted), checked
    at ``now`` (aware); ``MappingError`` lists what cannot be kept."""
    if resource_type not in SECTION_OF or raw.get("resourceType") != resource_type:
        raise _fail("invalid", f"La ressource envoyée doit être un(e) {resource_type}.", "resourceType")
    element = PATIENT_ELEMENT[resource_type]
    subject = raw.get(element)
    if not designates_a_patient(subject):
        raise _fail(
            "required",
            f"Le patient est obligatoire : {element}.identifier (system urn:oid:{INS_NIR_OID}, valeur l'INS).",
            f"{resource_type}.{element}",
        )
    if resource_type == "Observation":
        return _observation(raw, now)
    section = SECTION_OF[resource_type]
    readers = {
        "Condition": _condition,
        "AllergyIntolerance": _allergy,
        "FamilyMemberHistory": _family,
        "Immunization": _immunization,
    }
    item = _treatment(raw, now) if resource_type == "MedicationStatement" else readers[resource_type](raw)
    fields = _clean(section, item, now, resource_type)
    effective = item.effective.start if item.effective is not None else None
    return Incoming(_dict(subject), section, effective, fields, code=item.code, fhir=dict(raw))


# ------------------------------------------------------------------ a stored entry as a resource


class StoredEntry(Protocol):
    """What a resource is built from (the service's ``EntryView`` has all of it)."""

    @property
    def id(self) -> str: ...
    @property
    def section(self) -> str: ...
    @property
    def measure(self) -> str | None: ...
    @property
    def effective_at(self) -> datetime | None: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def updated_at(self) -> datetime: ...
    @property
    def version(self) -> int: ...
    @property
    def fields(self) -> dict[str, str]: ...
    @property
    def code(self) -> dict[str, str] | None: ...
    @property
    def value(self) -> float | None: ...
    @property
    def components(self) -> dict[str, float] | None: ...
    @property
    def unit_entered(self) -> str | None: ...
    @property
    def fhir(self) -> dict[str, Any] | None: ...


def _concept(text: str, code: dict[str, str] | None) -> dict[str, Any]:
    concept: dict[str, Any] = {"text": text}
    if code:
        concept["coding"] = [dict(code)]
    return concept


def _note(fields: Mapping[str, str]) -> dict[str, Any]:
    return {"note": [{"text": fields["note"]}]} if fields.get("note") else {}


def _built_observation(entry: StoredEntry) -> dict[str, Any]:
    measure = catalogue.MEASURES[entry.measure or ""]
    resource: dict[str, Any] = {
        "status": "final",
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": measure.category}]}],
        "code": {
            "coding": [{"system": LOINC, "code": measure.loinc, "display": measure.display}],
            "text": measure.label,
        },
    }
    if measure.category == "vital-signs":
        resource["meta"] = {"profile": [VITAL_SIGNS_PROFILE]}
    if entry.effective_at is not None:
        resource["effectiveDateTime"] = instant(entry.effective_at)

    def quantity(value: float) -> dict[str, Any]:
        return {"value": value, "unit": measure.unit.label, "system": UCUM, "code": measure.unit.code}

    if measure.components:
        resource["component"] = [
            {
                "code": {"coding": [{"system": LOINC, "code": c.loinc, "display": c.display}], "text": c.label},
                "valueQuantity": quantity((entry.components or {}).get(c.key, 0.0)),
            }
            for c in measure.components
        ]
    elif entry.value is not None:
        resource["valueQuantity"] = quantity(entry.value)
    return {**resource, **_note(entry.fields)}


def _built_item(resource_type: str, entry: StoredEntry) -> dict[str, Any]:
    f = entry.fields
    label = _concept(f.get("label", ""), entry.code)
    if resource_type == "Condition":
        status = next((code for code, word in CLINICAL_WORDS.items() if word == f.get("status")), None)
        return {
            **({"clinicalStatus": {"coding": [{"system": CONDITION_CLINICAL, "code": status}]}} if status else {}),
            "code": label,
            **({"onsetDateTime": f["since"]} if f.get("since") else {}),
            "recordedDate": instant(entry.created_at),
            **_note(f),
        }
    if resource_type == "AllergyIntolerance":
        severity = next((code for code, word in SEVERITY_WORDS.items() if word == f.get("severity")), None)
        reaction: dict[str, Any] = {"manifestation": [{"text": f.get("reaction") or "Réaction non précisée"}]}
        if severity:
            reaction["severity"] = severity
        return {
            "code": label,
            **({"onsetDateTime": f["since"]} if f.get("since") else {}),
            "recordedDate": instant(entry.created_at),
            **({"reaction": [reaction]} if f.get("reaction") or severity else {}),
            **_note(f),
        }
    if resource_type == "FamilyMemberHistory":
        relative = f.get("relative") or OTHER_RELATIVE
        return {
            "status": "completed",
            "relationship": {
                "coding": [{"system": ROLE_CODE, "code": ROLE_OF_RELATIVE.get(relative, "FAMMEMB")}],
                "text": relative,
            },
            "condition": [{"code": label}],
            **_note(f),
        }
    if resource_type == "MedicationStatement":
        period = {k: f[name] for k, name in (("start", "start"), ("end", "end")) if f.get(name)}
        return {
            "status": "completed" if f.get("end") else "active",
            "medicationCodeableConcept": label,
            **({"effectivePeriod": period} if period else {}),
            **({"dosage": [{"text": f["dosage"]}]} if f.get("dosage") else {}),
            **_note(f),
        }
    return {  # Immunization
        "status": "completed",
        "vaccineCode": label,
        "occurrenceDateTime": f.get("date", ""),
        **({"lotNumber": f["lot"]} if f.get("lot") else {}),
        **({"protocolApplied": [{"doseNumberString": f["dose"]}]} if f.get("dose") else {}),
        **_note(f),
    }


def outgoing(resource_type: str, entry: StoredEntry, patient: Mapping[str, Any]) -> dict[str, Any]:
    """The entry as a ``resource_type``: as sent, or built from its fields; Carnet's id, version and patient."""
    if entry.fhir:
        body = dict(entry.fhir)
    elif resource_type == "Observation":
        body = _built_observation(entry)
    else:
        body = _built_item(resource_type, entry)
    sent_meta = {k: v for k, v in _dict(body.get("meta")).items() if k not in {"versionId", "lastUpdated", "source"}}
    rest = {k: v for k, v in body.items() if k not in {"resourceType", "id", "meta"}}
    rest[PATIENT_ELEMENT[resource_type]] = dict(patient)
    return {
        "resourceType": resource_type,
        "id": entry.id,
        "meta": {**sent_meta, "versionId": str(entry.version), "lastUpdated": instant(entry.updated_at)},
        **rest,
    }


# ------------------------------------------------------------------ search parameters


@dataclass(frozen=True)
class SearchRequest:
    """A search as the service takes it: whose profile (``{"reference"}`` or ``{"identifier"}``) and by which
    parameter, the codes (any of them), the period ``[date_from, date_to)``, the page."""

    designation: dict[str, Any]
    designated_by: str
    codes: tuple[tuple[str | None, str], ...] = ()
    date_from: datetime | None = None
    date_to: datetime | None = None
    count: int = 50
    offset: int = 0


def _codes(value: str | None) -> tuple[tuple[str | None, str], ...]:
    if value is None:
        return ()
    tokens = value.split(",")
    if len(tokens) > MAX_CODES:
        raise search.invalid(f"{MAX_CODES} codes au plus dans le paramètre code.", "code")
    codes: list[tuple[str | None, str]] = []
    for token in tokens:
        system, bar, code = token.strip().rpartition("|")
        if not code.strip() or len(code) > 100 or len(system) > 200:
            raise search.invalid("Code de recherche invalide : system|code, |code ou code.", "code")
        codes.append((system.strip() if bar else None, code.strip()))
    return tuple(codes)


def search_request(params: Iterable[tuple[str, str]]) -> SearchRequest:
    """The query string of a search (its name/value pairs, repeated names kept); ``MappingError`` (400) on
    anything not understood — never silently ignored."""
    values = search.grouped(params, SEARCH_PARAMETERS)
    designation, designated_by = search.designation(values)
    date_from, date_to = date_bounds(values.get("date", []))
    return SearchRequest(
        designation,
        designated_by,
        _codes(search.one(values, "code")),
        date_from,
        date_to,
        search.integer(search.one(values, "_count"), "_count", 50, MAX_COUNT),
        search.integer(search.one(values, "_offset"), "_offset", 0, MAX_OFFSET),
    )
