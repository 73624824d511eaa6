"""The vaccinations recorded in the medical profile (PRF-1 « Vaccinations », FHIR ``Immunization``), read back as
(vaccine as written, date) for the prevention calendar (AGD-2): the agenda turns the names into vaccine families
and the dates into doses (``carnet.agenda.model.prevention.assign_doses``).

No access check here: the caller is a use case that already asked the policy (``PREVENTION_READ``) in the same
transaction, or the reminder job (the system, for the person's own e-mail). Entries whose sealed payload cannot
be read as a vaccination (no name, no day) are left out, never guessed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.bootstrap import Services
from carnet.profile.tables import ProfileEntry
from carnet.storage import keyring

log = logging.getLogger("carnet.profile")
SECTION = "vaccinations"
Vaccination = tuple[str, date]


def _aad(entry_id: str) -> bytes:
    return b"profile:" + entry_id.encode()  # as ``entries`` seals every entry of the profile


def _record(data_key: bytes, entry_id: str, sealed: bytes) -> Vaccination | None:
    payload = orjson.loads(keyring.open_sealed(data_key, sealed, _aad(entry_id)))
    fields = payload.get("fields") if isinstance(payload, dict) else None
    if not isinstance(fields, dict):
        return None
    label, day = str(fields.get("label") or "").strip(), str(fields.get("date") or "")
    try:
        return (label, date.fromisoformat(day)) if label else None
    except ValueError:
        return None


def vaccinations_of(services: Services, db: Session, patient_id: str, include_masked: bool = True) -> list[Vaccination]:
    """The person's recorded vaccinations, oldest first. ``include_masked=False`` leaves out the entries the
    person masked to professionals (for a professional's view that does not show masked items)."""
    query = select(ProfileEntry).where(ProfileEntry.patient_id == patient_id, ProfileEntry.section == SECTION)
    if not include_masked:
        query = query.where(ProfileEntry.masked.is_(False))
    rows = db.scalars(query).all()
    if not rows:
        return []
    data_key = keyring.data_key(db, services.keyring, patient_id, create=False)
    found = [record for row in rows if (record := _record(data_key, row.id, row.sealed)) is not None]
    return sorted(found, key=lambda record: record[1])


def vaccinations_in_range(
    db: Session, first_id: str, last_id: str, key_of: Callable[[str], bytes]
) -> dict[str, list[Vaccination]]:
    """The vaccinations of every patient whose id lies in ``[first_id, last_id]`` (the reminder job reads people
    in id order, a batch at a time): one query for the batch; ``key_of`` gives a patient's data key (the caller
    reads the batch's keys at once). An entry that cannot be opened is left out, and logged (ids only)."""
    rows = db.execute(
        select(ProfileEntry.patient_id, ProfileEntry.id, ProfileEntry.sealed).where(
            ProfileEntry.patient_id >= first_id,
            ProfileEntry.patient_id <= last_id,
            ProfileEntry.section == SECTION,
        )
    )
    found: dict[str, list[Vaccination]] = {}
    for patient_id, entry_id, sealed in rows:
        try:
            record = _record(key_of(patient_id), entry_id, sealed)
        except keyring.DecryptionError:  # one damaged entry does not stop the others' run
            log.warning("vaccination illisible ignorée (espace %s, élément %s)", patient_id, entry_id)
            continue
        if record is not None:
            found.setdefault(patient_id, []).append(record)
    for records in found.values():
        records.sort(key=lambda record: record[1])
    return found
