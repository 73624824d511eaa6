"""The medical profile in the archive of a space (ENR-7, PRF-1..3): every item and every measure the asker may read,
as the FHIR R4 resources the profile's API serves — Observation (the fourteen measures), AllergyIntolerance,
Condition, FamilyMemberHistory, MedicationStatement, Immunization — and an Observation for each item of the
sections FHIR does not exchange (``carnet.profile.model.export_map``).

What may be read is decided as on the profile's pages: ``PROFILE_READ`` on the profile, its scope applied to the
query (``entries.scope_conditions``), then each entry put to the policy as its own page would. The person and
their legal representatives read the whole profile, masked entries included (masking hides an entry from
professionals, not from the person): a masked entry carries the MASQUE_PS security label. Entries are read and
opened 500 at a time, oldest first; nothing is recorded per entry (the export records its own lines).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from carnet.bootstrap import Services
from carnet.export.model.exported import Exported
from carnet.hall.actors import Actor
from carnet.hall.guard import facts_for
from carnet.hall.policy import Action, Facts, Resource, decide
from carnet.people.model.fhir_map import patient_element
from carnet.people.service.export import enter_export
from carnet.people.tables import Patient
from carnet.profile.model import export_map
from carnet.profile.service import entries
from carnet.profile.tables import ProfileEntry
from carnet.storage import keyring

SECTION = "Profil médical"
BATCH = 500


def _batch(db: Session, where: list[Any], after: tuple[datetime, str] | None) -> list[ProfileEntry]:
    query = select(ProfileEntry).where(*where)
    if after is not None:
        at, last = after
        query = query.where(
            or_(ProfileEntry.created_at > at, and_(ProfileEntry.created_at == at, ProfileEntry.id > last))
        )
    return list(db.scalars(query.order_by(ProfileEntry.created_at, ProfileEntry.id).limit(BATCH)))


def _item(key: bytes, row: ProfileEntry, patient: dict[str, Any]) -> Exported:
    view = entries.view_of(key, row)
    resource = export_map.entry_resource(view, patient, view.author_label, view.masked)
    return Exported(resource, (), export_map.summary(view, view.author_label, view.masked), SECTION)


def _entries(
    services: Services, actor: Actor, patient_id: str, key: bytes, where: list[Any], facts: Facts
) -> Iterator[Exported]:
    patient: dict[str, Any] = {}
    after: tuple[datetime, str] | None = None
    while True:
        with services.db.unit_of_work() as db:
            if not patient:
                row = db.get(Patient, patient_id)
                assert row is not None  # the policy refuses unknown spaces
                patient = patient_element(row.id, row.ins, row.ins_oid)
            rows = _batch(db, where, after)
            items = [
                _item(key, entry, patient)
                for entry in rows
                if decide(actor, patient_id, Action.PROFILE_READ, entries.resource_of(entry), facts).allowed
            ]
        yield from items
        if len(rows) < BATCH:
            return
        after = (rows[-1].created_at, rows[-1].id)


def export_resources(services: Services, actor: Actor, patient_id: str) -> Iterator[Exported]:
    """Every profile entry ``actor`` may read, oldest first."""
    with services.db.unit_of_work() as db:
        decision = enter_export(db, actor, patient_id, Action.PROFILE_READ, Resource("profile"))
        where = [ProfileEntry.patient_id == patient_id, *entries.scope_conditions(actor, decision)]
        facts = facts_for(db, actor, patient_id)
        try:
            key = keyring.data_key(db, services.keyring, patient_id, create=False)
        except keyring.DataKeyMissing:  # nothing was ever sealed for this space: an empty profile
            return
    yield from _entries(services, actor, patient_id, key, where, facts)
