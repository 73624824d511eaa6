"""The profile's use cases for the pages (PRF-1, PRF-2): the overview, a section, a measure over time, and
adding, correcting, deleting and masking entries.

Each use case opens its unit of work, asks the policy (through ``entries``), acts and records the history
in the same transaction, and returns frozen views. What a person typed that cannot be kept comes back as a
``CarnetError`` with the French reason (``ItemError``, ``MeasureError``, ``ProfileError``); nothing is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from carnet.access.service.grants import medecin_traitant_of, professional_name
from carnet.bootstrap import Services
from carnet.errors import CarnetError
from carnet.hall import audit
from carnet.hall.actors import Actor, ActorKind
from carnet.hall.guard import guard
from carnet.hall.policy import Action, Resource
from carnet.hall.vocabulary import PARIS
from carnet.people.model.identifiers import is_minor
from carnet.people.service.lookup import PatientView, patient_view
from carnet.people.tables import Patient
from carnet.profile.model import growth
from carnet.profile.model import measures as catalogue
from carnet.profile.model.sections import MEASURES_SECTION, SECTIONS, TRUSTED_PERSON, Section, clean_fields
from carnet.profile.service import entries
from carnet.profile.service.entries import EntryView, NewEntry
from carnet.profile.tables import MeasureTarget, ProfileEntry
from carnet.storage.types import utcnow

PERIODS = {"3m": 92, "1a": 366, "5a": 5 * 366, "tout": None}  # the measure page's choice of period
DEFAULT_PERIOD = "1a"
ROWS_SHOWN = 200  # the table under a chart shows the newest rows; the chart shows every point of the period


class ProfileError(CarnetError):
    """A request on the profile that cannot be done as asked (the French reason)."""


def section_of(key: str) -> Section:
    section = SECTIONS.get(key)
    if section is None:
        raise entries.EntryNotFound()
    return section


def measure_of(key: str) -> catalogue.Measure:
    measure = catalogue.MEASURES.get(key)
    if measure is None:
        raise entries.EntryNotFound()
    return measure


def _patient(db: Session, patient_id: str) -> PatientView:
    patient = db.get(Patient, patient_id)
    assert patient is not None  # the policy refuses unknown spaces first
    return patient_view(patient)


def _record(db: Session, actor: Actor, action: Action, patient_id: str, entry_id: str | None, **details: Any) -> None:
    audit.record(
        db,
        actor,
        str(action),
        patient_id=patient_id,
        resource_type="profile_item" if entry_id else "profile",
        resource_id=entry_id,
        details={k: v for k, v in details.items() if v is not None},
    )


# ------------------------------------------------------------------ reading


@dataclass(frozen=True)
class SectionView:
    section: Section
    items: list[EntryView]
    shown: bool  # False: this reader's profession does not see the section (not « empty »)


@dataclass(frozen=True)
class LatestMeasure:
    measure: catalogue.Measure
    entry: EntryView | None
    text: str  # the latest value in French with its unit, or "" when nothing is recorded
    shown: bool


@dataclass(frozen=True)
class Overview:
    patient: PatientView
    sections: list[SectionView]
    measures: list[LatestMeasure]
    medecin_traitant: str | None
    minor: bool
    people_of_space: bool  # the person, a representative or a caregiver: they add and correct


def _people_of_space(actor: Actor) -> bool:
    return actor.kind == ActorKind.PATIENT


def _latest_measures(
    services: Services, db: Session, actor: Actor, patient_id: str, query: Any, seen: frozenset[str] | None
) -> list[LatestMeasure]:
    shown = seen is None or MEASURES_SECTION in seen
    latest: dict[str, EntryView] = {}
    if shown:
        rows = [
            db.scalar(
                query.where(ProfileEntry.section == MEASURES_SECTION, ProfileEntry.measure == key)
                .order_by(ProfileEntry.effective_at.desc())
                .limit(1)
            )
            for key, measure in catalogue.MEASURES.items()
            if not measure.computed
        ]
        latest = {v.measure or "": v for v in entries.views(services, db, patient_id, [r for r in rows if r])}
    lines = []
    for key, measure in catalogue.MEASURES.items():
        entry = latest.get(key)
        text = _value_text(measure, entry) if entry else ""
        if measure.computed and shown:
            text = _bmi_text(latest)
        lines.append(LatestMeasure(measure, entry, text, shown))
    return lines


def _value_text(measure: catalogue.Measure, entry: EntryView) -> str:
    if entry.components:
        parts = [catalogue.french_number(entry.components.get(c.key, 0), measure.decimals) for c in measure.components]
        return f"{' / '.join(parts)} {measure.unit.label}"
    return catalogue.format_value(measure, entry.value or 0)


def _bmi_text(latest: Mapping[str, EntryView]) -> str:
    weight, height = latest.get("weight"), latest.get("height")
    if weight is None or height is None or weight.value is None or height.value is None:
        return ""
    try:
        value = catalogue.bmi(weight.value, height.value)
    except catalogue.MeasureError:
        return ""
    return catalogue.format_value(catalogue.MEASURES["bmi"], value)


def overview(services: Services, actor: Actor, patient_id: str) -> Overview:
    """The whole profile as the actor may see it (PRF-1, PRF-2), recorded in the history."""
    with services.db.unit_of_work() as db:
        decision, query = entries.readable(db, actor, patient_id)
        seen = entries.sections_seen(decision)
        rows = db.scalars(
            query.where(ProfileEntry.section != MEASURES_SECTION).order_by(
                ProfileEntry.effective_at.desc(), ProfileEntry.created_at.desc()
            )
        ).all()
        items = entries.views(services, db, patient_id, rows)
        sections = [
            SectionView(s, [i for i in items if i.section == s.key], seen is None or s.key in seen)
            for s in SECTIONS.values()
        ]
        measures = _latest_measures(services, db, actor, patient_id, query, seen)
        doctor = medecin_traitant_of(db, patient_id)
        patient = _patient(db, patient_id)
        _record(db, actor, Action.PROFILE_READ, patient_id, None)
        return Overview(
            patient=patient,
            sections=sections,
            measures=measures,
            medecin_traitant=professional_name(doctor) if doctor else None,
            minor=is_minor(patient.birth_date, utcnow().astimezone(PARIS).date()),
            people_of_space=_people_of_space(actor),
        )


@dataclass(frozen=True)
class SectionPage:
    patient: PatientView
    section: Section
    items: list[EntryView]
    people_of_space: bool


def section_page(services: Services, actor: Actor, patient_id: str, key: str) -> SectionPage:
    section = section_of(key)
    with services.db.unit_of_work() as db:
        decision, query = entries.readable(db, actor, patient_id)
        seen = entries.sections_seen(decision)
        rows = db.scalars(
            query.where(ProfileEntry.section == key).order_by(
                ProfileEntry.effective_at.desc(), ProfileEntry.created_at.desc()
            )
        ).all()
        items = entries.views(services, db, patient_id, rows)
        if seen is not None and key not in seen:
            items = [i for i in items if i.author_id in _keys(actor)]  # what they entered themselves
        _record(db, actor, Action.PROFILE_READ, patient_id, None, section=key)
        return SectionPage(_patient(db, patient_id), section, items, _people_of_space(actor))


def _keys(actor: Actor) -> set[str]:
    return {k for k in (actor.professional_id, actor.establishment_id) if k}


@dataclass(frozen=True)
class MeasurePage:
    patient: PatientView
    measure: catalogue.Measure
    period: str
    points: list[EntryView]  # oldest first: the chart
    rows: list[EntryView]  # newest first, at most ROWS_SHOWN: the table
    total: int
    target: float | None
    growth: dict[str, Any] | None  # reference curves for a child: {"source", "sex", "birth_date", "curves"}
    people_of_space: bool
    shown: bool = True  # False: this reader's profession does not see the measures (only what they entered)


def _growth(patient: PatientView, sex: str, key: str, today: date) -> dict[str, Any] | None:
    if key not in growth.INDICATORS:
        return None
    age_months = (today - patient.birth_date).days / 30.4375
    if age_months > 228:
        return None
    up_to = min(max(age_months + 6, 24), 228)
    curves = growth.curves(key, sex, up_to)
    if not curves:
        return None
    return {"source": growth.source_label(key), "sex": sex, "birth_date": patient.birth_date, "curves": curves}


def _bmi_points(
    services: Services, db: Session, patient_id: str, key: str, weights: Any, heights: Any
) -> list[EntryView]:
    """The IMC at each weight of the period, with the latest height measured by then (PRF-2: computed, never
    typed); each point keeps its weight's id, date and author."""
    by_date = ProfileEntry.effective_at
    weight_rows = db.scalars(weights.where(ProfileEntry.measure == "weight").order_by(by_date)).all()
    height_rows = (
        db.scalars(heights.where(ProfileEntry.measure == "height").order_by(by_date)).all() if weight_rows else []
    )
    heights_at = [(h.effective_at, h.value) for h in entries.views(services, db, patient_id, height_rows)]
    points = []
    for weight in entries.views(services, db, patient_id, weight_rows):
        before = [cm for at, cm in heights_at if at and cm and weight.effective_at and at <= weight.effective_at]
        if not before or weight.value is None:
            continue
        try:
            value = catalogue.bmi(weight.value, before[-1])
        except catalogue.MeasureError:
            continue
        points.append(replace(weight, measure=key, value=value, unit_entered=None, fields={}, fhir=None))
    return points


def measure_page(services: Services, actor: Actor, patient_id: str, key: str, period: str | None = None) -> MeasurePage:
    """One measure over a period (``None`` or unknown: all of a child's growth measure, else DEFAULT_PERIOD)."""
    measure = measure_of(key)
    with services.db.unit_of_work() as db:
        decision, query = entries.readable(db, actor, patient_id)
        seen = entries.sections_seen(decision)
        patient = db.get(Patient, patient_id)
        assert patient is not None
        view = patient_view(patient)
        curves = _growth(view, patient.sex, key, utcnow().astimezone(PARIS).date())
        if period not in PERIODS:
            period = "tout" if curves else DEFAULT_PERIOD
        days = PERIODS[period]
        query = query.where(ProfileEntry.section == MEASURES_SECTION)
        if seen is not None and MEASURES_SECTION not in seen:
            query = query.where(ProfileEntry.author_id.in_(_keys(actor) or {"-"}))
        in_period = query
        if days is not None:
            in_period = query.where(ProfileEntry.effective_at >= utcnow() - timedelta(days=days))
        if measure.computed:
            points = _bmi_points(services, db, patient_id, key, in_period, query)
        else:
            rows = db.scalars(in_period.where(ProfileEntry.measure == key).order_by(ProfileEntry.effective_at)).all()
            points = entries.views(services, db, patient_id, rows)
        target = db.get(MeasureTarget, (patient_id, key))
        _record(db, actor, Action.PROFILE_READ, patient_id, None, section=MEASURES_SECTION, measure=key)
        return MeasurePage(
            patient=view,
            measure=measure,
            period=period,
            points=points,
            rows=points[::-1][:ROWS_SHOWN],
            total=len(points),
            target=target.value if target else measure.default_target,
            growth=curves,
            people_of_space=_people_of_space(actor),
            shown=seen is None or MEASURES_SECTION in seen,
        )


# ------------------------------------------------------------------ writing


def _today() -> date:
    return utcnow().astimezone(PARIS).date()


def _item(section: Section, raw: Mapping[str, str]) -> NewEntry:
    fields = clean_fields(section, raw, _today())
    when = fields.get("date") or fields.get("since") or fields.get("start")
    effective = datetime.fromisoformat(when).replace(tzinfo=PARIS) if when else None
    return NewEntry(section=section.key, effective_at=effective, fields=fields)


def _check_unique(
    services: Services, db: Session, patient_id: str, section: Section, new: NewEntry, exclude: str | None = None
) -> None:
    """One personne de confiance (PRF-1)."""
    if section.key != "entourage" or new.fields.get("role") != TRUSTED_PERSON:
        return
    others = db.scalars(
        select(ProfileEntry).where(ProfileEntry.patient_id == patient_id, ProfileEntry.section == "entourage")
    ).all()
    for view in entries.views(services, db, patient_id, [o for o in others if o.id != exclude]):
        if view.fields.get("role") == TRUSTED_PERSON:
            raise ProfileError("Vous avez déjà désigné une personne de confiance : modifiez-la ou retirez-la d'abord.")


def add_item(services: Services, actor: Actor, patient_id: str, key: str, raw: Mapping[str, str]) -> str:
    """Add an item to a section (a single section's item from the space is replaced instead)."""
    section = section_of(key)
    new = _item(section, raw)
    with services.db.unit_of_work() as db:
        guard(db, actor, patient_id, Action.PROFILE_WRITE, Resource("profile_item", category=key))
        _check_unique(services, db, patient_id, section, new)
        existing = None
        if section.single and _people_of_space(actor):  # the space's own item is corrected, not doubled
            existing = db.scalar(
                select(ProfileEntry).where(
                    ProfileEntry.patient_id == patient_id, ProfileEntry.section == key, ProfileEntry.source == "patient"
                )
            )
        if existing is not None:
            entries.replace(services, db, existing, new)
            _record(db, actor, Action.PROFILE_WRITE, patient_id, existing.id, op="update", section=key)
            return existing.id
        entry = entries.store(services, db, actor, patient_id, new)
        _record(db, actor, Action.PROFILE_WRITE, patient_id, entry.id, op="add", section=key)
        return entry.id


@dataclass(frozen=True)
class ItemForm:
    patient: PatientView
    section: Section
    entry: EntryView


def item_form(services: Services, actor: Actor, patient_id: str, entry_id: str) -> ItemForm:
    """An item as its form shows it again, for correcting (the policy's yes to write it, asked now)."""
    with services.db.unit_of_work() as db:
        entry = entries.load(db, actor, Action.PROFILE_WRITE, entry_id, space=patient_id)
        if entries.is_measure(entry):
            raise entries.EntryNotFound()
        view = entries.views(services, db, patient_id, [entry])[0]
        return ItemForm(_patient(db, patient_id), SECTIONS[entry.section], view)


@dataclass(frozen=True)
class Removal:
    patient: PatientView
    entry: EntryView
    title: str  # the section's title, or the measure's name


def removal(services: Services, actor: Actor, patient_id: str, entry_id: str) -> Removal:
    """An item or a measure as the confirmation of its deletion shows it (the policy's yes to delete it, asked now)."""
    with services.db.unit_of_work() as db:
        entry = entries.load(db, actor, Action.PROFILE_WRITE, entry_id, space=patient_id)
        view = entries.views(services, db, patient_id, [entry])[0]
        title = measure_of(entry.measure or "").label if entries.is_measure(entry) else SECTIONS[entry.section].title
        return Removal(_patient(db, patient_id), view, title)


def update_item(services: Services, actor: Actor, patient_id: str, entry_id: str, raw: Mapping[str, str]) -> str:
    with services.db.unit_of_work() as db:
        entry = entries.load(db, actor, Action.PROFILE_WRITE, entry_id, space=patient_id)
        if entries.is_measure(entry):
            raise entries.EntryNotFound()
        section = SECTIONS[entry.section]
        new = _item(section, raw)
        _check_unique(services, db, patient_id, section, new, exclude=entry.id)
        entries.replace(services, db, entry, new)
        _record(db, actor, Action.PROFILE_WRITE, patient_id, entry.id, op="update", section=section.key)
        return section.key


def delete_entry(services: Services, actor: Actor, patient_id: str, entry_id: str) -> ProfileEntry:
    """Delete an item or a measure (the people of the space: what they entered; a professional: theirs)."""
    with services.db.unit_of_work() as db:
        entry = entries.load(db, actor, Action.PROFILE_WRITE, entry_id, space=patient_id)
        db.execute(delete(ProfileEntry).where(ProfileEntry.id == entry.id))
        _record(db, actor, Action.PROFILE_WRITE, patient_id, entry.id, op="delete", section=entry.section)
        return entry


def set_masked(services: Services, actor: Actor, patient_id: str, entry_id: str, masked: bool) -> ProfileEntry:
    """Mask (or show again) to professionals an entry a professional entered (PRF-1, like documents)."""
    with services.db.unit_of_work() as db:
        entry = entries.load(db, actor, Action.PROFILE_MASK, entry_id, space=patient_id)
        entry.masked = masked
        _record(db, actor, Action.PROFILE_MASK, patient_id, entry.id, masked=masked, section=entry.section)
        return entry


@dataclass(frozen=True)
class MeasureInput:
    """A measure as typed in the form: text values (French decimals), the unit chosen, the moment."""

    value: str = ""
    unit: str | None = None
    systolic: str = ""
    diastolic: str = ""
    when: datetime | None = None
    note: str = ""


def measure_entry(measure: catalogue.Measure, typed: MeasureInput, now: datetime) -> NewEntry:
    """Check and convert a typed measure (``MeasureError`` with the French reason)."""
    if measure.computed:
        raise ProfileError(f"{measure.label} : cette valeur est calculée, elle ne se saisit pas.")
    when = typed.when or now
    if when > now + timedelta(minutes=5):
        raise ProfileError("La date de la mesure ne peut pas être dans le futur.")
    if when.year < 1900:
        raise ProfileError("La date de la mesure doit être postérieure à 1900.")
    note = typed.note.strip()[:500]
    fields = {"note": note} if note else {}
    if measure.components:
        systolic, diastolic = catalogue.check_blood_pressure(
            catalogue.parse_number(typed.systolic), catalogue.parse_number(typed.diastolic)
        )
        return NewEntry(
            MEASURES_SECTION,
            when,
            fields,
            measure=measure.key,
            components={"systolic": systolic, "diastolic": diastolic},
            unit_entered=measure.unit.code,
        )
    value = catalogue.to_canonical(measure, catalogue.parse_number(typed.value), typed.unit)
    return NewEntry(
        MEASURES_SECTION, when, fields, measure=measure.key, value=value, unit_entered=typed.unit or measure.unit.code
    )


def add_measure(services: Services, actor: Actor, patient_id: str, key: str, typed: MeasureInput) -> str:
    measure = measure_of(key)
    new = measure_entry(measure, typed, utcnow())
    with services.db.unit_of_work() as db:
        guard(db, actor, patient_id, Action.PROFILE_WRITE, Resource("profile_item", category=MEASURES_SECTION))
        entry = entries.store(services, db, actor, patient_id, new)
        _record(db, actor, Action.PROFILE_WRITE, patient_id, entry.id, op="add", section=MEASURES_SECTION, measure=key)
        return entry.id


def set_target(services: Services, actor: Actor, patient_id: str, key: str, typed: str) -> None:
    """The person's target for a measure that has one (HbA1c, PRF-2)."""
    measure = measure_of(key)
    if measure.default_target is None:
        raise ProfileError(f"{measure.label} : pas d'objectif pour cette mesure.")
    value = catalogue.to_canonical(measure, catalogue.parse_number(typed), None)
    with services.db.unit_of_work() as db:
        guard(db, actor, patient_id, Action.PROFILE_WRITE, Resource("profile_item", category=MEASURES_SECTION))
        target = db.get(MeasureTarget, (patient_id, key))
        if target is None:
            target = MeasureTarget(patient_id=patient_id, measure=key, value=value, set_by_label=actor.label[:200])
            db.add(target)
        target.value, target.set_by_label, target.set_at = value, actor.label[:200], utcnow()
        _record(db, actor, Action.PROFILE_WRITE, patient_id, None, op="target", section=MEASURES_SECTION, measure=key)
