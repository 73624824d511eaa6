"""The agenda of an imported archive (ENR-7, item 5): its ``Appointment`` resources written back as the space's
appointments and reminders.

Each resource is read back as the export wrote it (``carnet.agenda.service.export.appointment``):

* what the export added is taken off first: the ``appointmentType`` « Rappel » of a reminder (the event is a
  reminder), and the end equal to the start given to an event without an end (R4's app-2) — the event is restored
  without an end, as it was;
* the rest is read by the FHIR API's own reading (``fhir_map.incoming``): when, the status (``cancelled`` is
  cancelled), the title, with whom, the place, the comment;
* an event typed in the portal is told by building it again from what was read (a whole day starts at midnight,
  French time, and ends at the next): when the built resource is the archived one, it is restored as typed (its
  words), otherwise as sent over FHIR (the resource, without what the export added, kept as it came).

Stored as the agenda stores an event (``events``): a new id on this instance, the words sealed with the space's key
under ``agenda:<id>``, in clear the kind, when, the status, the dates and version as the archive tells them.
``restoring.ids`` notes ``Appointment/<id in the archive>`` → the new id.

Who entered an event and how it came (``source``) are the archive's history's (``carnet.export.model.authorship``:
who added it). Without it (an archive without its history): one typed in the portal is restored as the space's own
(``patient``, no author's name — the pages show none for those), one sent over FHIR as a professional's, « donné
par » the other participants it names (« Professionnel de santé » when it names none). Who, on the old instance,
entered it (``author_id``, an id of that instance) is not restored. An event sent over FHIR does not say when it
was created: its last change's moment stands for it. The import asks the policy once and records its own history:
nothing is asked or recorded here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

import orjson
from sqlalchemy.orm import Session

from carnet.agenda.model import events as rules
from carnet.agenda.model import fhir_map
from carnet.agenda.service import events
from carnet.agenda.service.events import EventView, NewEvent
from carnet.agenda.service.export import appointment
from carnet.agenda.tables import AgendaEvent
from carnet.bootstrap import Services
from carnet.export.model import authorship
from carnet.export.model import restoring as restoring_model
from carnet.export.model.authorship import Author
from carnet.export.model.restoring import RestoreError, Restoring
from carnet.fhir.search import InputError, designates_a_patient, period_of
from carnet.hall.policy import Action
from carnet.hall.vocabulary import PARIS
from carnet.storage import keyring
from carnet.storage.types import new_id, utcnow

REMINDER_TYPE = {"text": rules.KINDS[rules.REMINDER]}
SERVER_META = frozenset({"versionId", "lastUpdated", "source"})
SENT_BY_DEFAULT = "Professionnel de santé"


@dataclass(frozen=True)
class RestoredEvent:
    """An event as the archive tells it: what the agenda keeps, and how it came."""

    view: EventView  # its id: the id in the archive
    sent: bool


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _moment(value: Any, what: str) -> datetime:
    try:
        return period_of(value).start
    except (ValueError, TypeError):
        raise RestoreError(f"date illisible ({what}).") from None


def _whole_day(starts_at: datetime, ends_at: datetime | None) -> bool:
    local = starts_at.astimezone(PARIS)
    midnight = datetime.combine(local.date(), time(), PARIS)
    following = datetime.combine(local.date() + timedelta(days=1), time(), PARIS)
    return local == midnight and ends_at is not None and ends_at == following


def read_event(archived: Mapping[str, Any], now: datetime) -> RestoredEvent:
    """The event ``archived`` (an Appointment of the archive) tells; ``RestoreError`` with the reason."""
    resource = dict(archived)
    kind = rules.APPOINTMENT
    if resource.get("appointmentType") == REMINDER_TYPE:
        kind = rules.REMINDER
        resource.pop("appointmentType")
    if resource.get("end") is not None and resource.get("end") == resource.get("start"):
        resource.pop("end")  # added by the export to an event without an end
    try:
        kept = fhir_map.incoming(resource)
    except InputError as error:
        raise RestoreError(" ; ".join(text for _, text, _ in error.issues) or "ressource illisible.") from None
    meta = _dict(archived.get("meta"))
    updated_at = _moment(meta["lastUpdated"], "meta.lastUpdated") if meta.get("lastUpdated") else now
    version_text = str(meta.get("versionId") or "1")
    version = int(version_text) if version_text.isdigit() and 0 < int(version_text) < 1_000_000 else 1
    created_at = _moment(archived["created"], "created") if archived.get("created") else updated_at
    all_day = _whole_day(kept.starts_at, kept.ends_at)
    typed = EventView(
        id=str(archived.get("id") or ""),
        patient_id="",
        kind=kind,
        starts_at=kept.starts_at,
        ends_at=None if all_day else kept.ends_at,
        all_day=all_day,
        status=kept.status,
        source="patient",
        author_id=None,
        author_label="",
        created_at=created_at,
        updated_at=updated_at,
        version=version,
        title=kept.title,
        place=kept.place,
        with_whom=kept.with_whom,
        comment=kept.comment,
    )
    patients = [_dict(p).get("actor") for p in archived.get("participant") or []]
    patient = next((_dict(a) for a in patients if designates_a_patient(a)), {})
    patient = {k: v for k, v in patient.items() if k != "type"}
    if appointment(typed, patient) == dict(archived):
        return RestoredEvent(typed, sent=False)
    sent_meta = {k: v for k, v in _dict(resource.get("meta")).items() if k not in SERVER_META}
    sent = {k: v for k, v in resource.items() if k not in {"id", "meta"}}
    view = EventView(
        **{
            **typed.__dict__,
            "ends_at": kept.ends_at,
            "all_day": False,
            "source": "professional",
            "author_label": (kept.with_whom or SENT_BY_DEFAULT)[:200],
            "created_at": updated_at if not archived.get("created") else created_at,
            "fhir": {**({"meta": sent_meta} if sent_meta else {}), **sent},
        }
    )
    return RestoredEvent(view, sent=True)


def _row(restoring: Restoring, view: EventView, author: Author | None) -> AgendaEvent:
    new = NewEvent(
        kind=view.kind,
        title=view.title,
        starts_at=view.starts_at,
        ends_at=view.ends_at,
        all_day=view.all_day,
        status=view.status,
        place=view.place,
        with_whom=view.with_whom,
        comment=view.comment,
        fhir=view.fhir,
    )
    event_id = new_id()
    return AgendaEvent(
        id=event_id,
        patient_id=restoring.patient_id,
        kind=view.kind,
        starts_at=view.starts_at,
        ends_at=view.ends_at,
        all_day=view.all_day,
        status=view.status,
        sealed=keyring.seal(restoring.key, orjson.dumps(new.payload()), events._aad(event_id)),
        source=view.source if author is None else author.source,
        author_id=None,
        author_label=view.author_label if author is None else author.label,
        created_at=view.created_at,
        updated_at=view.updated_at,
        version=view.version,
    )


def restore(db: Session, services: Services, restoring: Restoring, bundle: dict[str, Any]) -> int:
    """Write the archive's appointments and reminders into the space being restored; how many (``RestoreError``
    on the first resource that cannot be read, naming it — the import then changes nothing)."""
    now = utcnow()
    count = 0
    written_by = authorship.authors(bundle, str(Action.AGENDA_WRITE), "agenda_event")
    for resource in restoring_model.resources_of(bundle, "Appointment"):
        name = f"Appointment/{str(resource.get('id') or '?')[:64]}"
        try:
            restored = read_event(resource, now)
        except RestoreError as error:
            raise RestoreError(f"Agenda, {name} illisible : {error.message}") from None
        row = _row(restoring, restored.view, written_by.get(restored.view.id))
        db.add(row)
        if restored.view.id:
            restoring.ids[f"Appointment/{restored.view.id}"] = row.id
        count += 1
    db.flush()
    return count
