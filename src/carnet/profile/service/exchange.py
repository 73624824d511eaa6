"""The profile over FHIR (PRF-3): create, read and search one resource type at a time, under the same policy,
scopes and history as the pages.

The FHIR interface (``carnet.profile.fhir``) turns a resource into a ``NewEntry`` with the pure mapping of
``carnet.profile.model.fhir_map`` and calls one use case here; each opens its unit of work, finds the
patient by INS (an unknown patient and a space that is not open are the same 404), asks the policy, acts
and records the history. Which sections a professional reads is the policy's decision (the profession's
row of ``profile_access.json``): a professional without access gets nothing and counts nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from carnet.bootstrap import Services
from carnet.hall import audit
from carnet.hall.actors import Actor
from carnet.hall.guard import guard
from carnet.hall.policy import Action, Resource
from carnet.people.tables import Patient
from carnet.profile.model import measures as catalogue
from carnet.profile.model.sections import MEASURES_SECTION
from carnet.profile.service import entries
from carnet.profile.service.entries import EntryNotFound, EntryView, NewEntry
from carnet.profile.tables import ProfileEntry
from carnet.storage import keyring
from carnet.vault.service.mhd import Subject, patient_for, subject_of

RESOURCE_SECTIONS = {
    "Observation": MEASURES_SECTION,
    "Condition": "conditions",
    "MedicationStatement": "treatments",
    "AllergyIntolerance": "allergies",
    "FamilyMemberHistory": "family_history",
    "Immunization": "vaccinations",
}
LOINC = "http://loinc.org"


@dataclass(frozen=True)
class Stored:
    entry: EntryView
    subject: Subject


def _record(db: Any, actor: Actor, action: Action, patient_id: str, resource_type: str, entry_id: str | None) -> None:
    audit.record(
        db,
        actor,
        str(action),
        patient_id=patient_id,
        resource_type="profile_item" if entry_id else "profile",
        resource_id=entry_id,
        details={"fhir": resource_type, **({"op": "add"} if action == Action.PROFILE_WRITE else {})},
    )


def create(services: Services, actor: Actor, resource_type: str, subject: dict[str, Any], new: NewEntry) -> Stored:
    """Store one resource for the patient it designates (``MhdError`` 404 when there is no open space)."""
    with services.db.unit_of_work() as db:
        patient = patient_for(db, subject, f"{resource_type}.subject")
        guard(db, actor, patient.id, Action.PROFILE_WRITE, Resource("profile_item", category=new.section))
        entry = entries.store(services, db, actor, patient.id, new)
        db.flush()
        _record(db, actor, Action.PROFILE_WRITE, patient.id, resource_type, entry.id)
        return Stored(entries.stored_view(entry, new), patient)


def read(services: Services, actor: Actor, resource_type: str, entry_id: str) -> Stored:
    """One resource by id; unknown, of another type, and not readable are the same ``EntryNotFound``."""
    with services.db.unit_of_work() as db:
        entry = entries.load(db, actor, Action.PROFILE_READ, entry_id)
        if entry.section != RESOURCE_SECTIONS[resource_type]:
            raise EntryNotFound()
        _record(db, actor, Action.PROFILE_READ, entry.patient_id, resource_type, entry.id)
        patient = db.get(Patient, entry.patient_id)
        assert patient is not None
        return Stored(entries.views(services, db, entry.patient_id, [entry])[0], subject_of(patient))


@dataclass(frozen=True)
class EntryFilters:
    """A FHIR search: codes (``(system or None, code)``, any of them), a period [from, to), a page."""

    codes: tuple[tuple[str | None, str], ...] = ()
    date_from: datetime | None = None
    date_to: datetime | None = None
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True)
class Found:
    subject: Subject
    entries: list[EntryView]
    total: int


def _code_conditions(data_key: bytes | None, section: str, codes: Sequence[tuple[str | None, str]]) -> list[Any]:
    """Observations are searched by the measure's LOINC code (in clear); other items by blind token."""
    if section == MEASURES_SECTION:
        keys = {
            m.key
            for system, code in codes
            if system in {None, "", LOINC}
            for m in [catalogue.BY_LOINC.get(code)]
            if m is not None
        }
        return [ProfileEntry.measure.in_(keys or {"-"})]
    tokens = {entries.code_token(data_key, {"code": code}) for _, code in codes} if data_key else set()
    return [ProfileEntry.code_token.in_({t for t in tokens if t} or {"-"})]


def _system_matches(view: EntryView, codes: Sequence[tuple[str | None, str]]) -> bool:
    """The system of ``system|code`` is honoured (the blind token is of the code alone)."""
    code = view.code or {}
    return any(system in {None, ""} or (system == code.get("system") and c == code.get("code")) for system, c in codes)


def search(
    services: Services, actor: Actor, resource_type: str, designation: dict[str, Any], filters: EntryFilters
) -> Found:
    section = RESOURCE_SECTIONS[resource_type]
    with services.db.unit_of_work() as db:
        patient = patient_for(db, designation, "patient.identifier")
        _, query = entries.readable(db, actor, patient.id)
        query = query.where(ProfileEntry.section == section)
        if filters.codes:
            try:
                data_key: bytes | None = keyring.data_key(db, services.keyring, patient.id, create=False)
            except keyring.DataKeyMissing:
                data_key = None
            query = query.where(*_code_conditions(data_key, section, filters.codes))
        if filters.date_from is not None:
            query = query.where(ProfileEntry.effective_at >= filters.date_from)
        if filters.date_to is not None:
            query = query.where(ProfileEntry.effective_at < filters.date_to)
        ordered = query.order_by(ProfileEntry.effective_at.desc(), ProfileEntry.id)
        post_filter = section != MEASURES_SECTION and any(system for system, _ in filters.codes)
        if post_filter:  # few rows share a code: filter them all on their system, then page
            opened = entries.views(services, db, patient.id, db.scalars(ordered).all())
            found = [v for v in opened if _system_matches(v, filters.codes)]
            total, page = len(found), found[filters.offset : filters.offset + filters.limit]
        else:
            total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = db.scalars(ordered.limit(filters.limit).offset(filters.offset)).all() if filters.limit else []
            page = entries.views(services, db, patient.id, rows)
        _record(db, actor, Action.PROFILE_READ, patient.id, resource_type, None)
        return Found(patient, page, total)
