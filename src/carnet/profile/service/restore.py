"""The profile of an imported archive (ENR-7, item 5): its Observation, AllergyIntolerance, Condition,
FamilyMemberHistory, MedicationStatement and Immunization resources written back as the space's entries.

Each resource is read back by the pure ``carnet.profile.model.restore_map`` (the reverse of the export's mapping)
and stored as the profile stores an entry (``entries``): a new id on this instance, the payload sealed with the
space's key under ``profile:<id>``, the code's blind token, in clear the section, the measure, the moment, who
entered it, whether it is masked and its dates and version as the archive tells them. ``restoring.ids`` notes
``<type>/<id in the archive>`` → the new id.

How an entry came (``source``: the person, a professional, an establishment, an application) and the author's name
when the resource does not bind it are the archive's history's (``carnet.export.model.authorship``: who added the
entry). Without it (an archive without its history): an entry the person masked is a professional's (only those
are masked), one that came over FHIR a professional's, one typed in the portal the space's own (``patient``). Who,
on the old instance, entered it (``author_id``, an id of that instance) is not restored. Targets of measures
(``MeasureTarget``) are not in the archive and are not restored.

The import asks the policy once and records its own history: nothing is asked or recorded here per entry.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy.orm import Session

from carnet.bootstrap import Services
from carnet.export.model import authorship
from carnet.export.model import restoring as restoring_model
from carnet.export.model.authorship import Author
from carnet.export.model.restoring import RestoreError, Restoring
from carnet.hall.policy import Action
from carnet.profile.model import restore_map
from carnet.profile.model.fhir_map import RESOURCE_TYPES
from carnet.profile.model.restore_map import RestoredEntry, Unreadable
from carnet.profile.service import entries
from carnet.profile.service.entries import NewEntry
from carnet.profile.tables import ProfileEntry
from carnet.storage import keyring
from carnet.storage.types import new_id, utcnow


def source_of(entry: RestoredEntry, author: Author | None) -> str:
    """How the entry came, as far as the archive tells it (see the module's docstring)."""
    if author is not None:
        return author.source
    return "professional" if entry.masked or not entry.typed else "patient"


def _row(restoring: Restoring, entry: RestoredEntry, author: Author | None) -> ProfileEntry:
    new = NewEntry(
        section=entry.section,
        effective_at=entry.effective_at,
        fields=entry.fields,
        code=entry.code,
        measure=entry.measure,
        value=entry.value,
        components=entry.components,
        unit_entered=entry.unit_entered,
        fhir=entry.fhir,
    )
    entry_id = new_id()
    return ProfileEntry(
        id=entry_id,
        patient_id=restoring.patient_id,
        section=entry.section,
        measure=entry.measure,
        code_token=entries.code_token(restoring.key, entry.code),
        effective_at=entry.effective_at,
        sealed=keyring.seal(restoring.key, orjson.dumps(new.payload()), entries._aad(entry_id)),
        source=source_of(entry, author),
        author_id=None,
        author_label=entry.author_label if entry.author_bound or author is None else author.label,
        masked=entry.masked,
        created_at=entry.created_at,
        updated_at=entry.updated_at,
        version=entry.version,
    )


def restore(db: Session, services: Services, restoring: Restoring, bundle: dict[str, Any]) -> int:
    """Write the archive's profile into the space being restored; how many entries (``RestoreError`` on the
    first resource that cannot be read, naming it — the import then changes nothing)."""
    now = utcnow()
    count = 0
    written_by = authorship.authors(bundle, str(Action.PROFILE_WRITE), "profile_item")
    for resource in restoring_model.resources_of(bundle, *RESOURCE_TYPES):
        name = f"{resource.get('resourceType')}/{str(resource.get('id') or '?')[:64]}"
        try:
            entry = restore_map.read_entry(resource, now)
        except Unreadable as error:
            raise RestoreError(f"Profil médical, {name} illisible : {error.message}") from None
        row = _row(restoring, entry, written_by.get(entry.id))
        db.add(row)
        if entry.id:
            restoring.ids[f"{resource['resourceType']}/{entry.id}"] = row.id
        count += 1
    db.flush()
    return count
