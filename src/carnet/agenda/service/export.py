"""The agenda in the archive of a space (ENR-7, AGD-1): every appointment and every reminder the asker may read, as
FHIR R4 ``Appointment`` resources — the ones the agenda's API serves (``carnet.agenda.model.fhir_map.outgoing``:
as sent over FHIR, or built from what was typed in the portal; cancelled ones ``cancelled``).

Two things are added for an archive read without Carnet: a reminder (« rappel », which the API does not serve)
says so in ``appointmentType`` (text « Rappel »), and an event with a start but no end is given its end — the kept
one, else its start — as R4's invariant app-2 wants both or neither.

What may be read is decided as on the agenda's pages: ``AGENDA_READ`` on the agenda, its scope applied to the
query (``events.scope_conditions``), each event put to the policy as its own page would. The events are read and
opened 500 at a time, in the order of their start; nothing is recorded per event.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from carnet.agenda.model import events as rules
from carnet.agenda.model import fhir_map
from carnet.agenda.service import events
from carnet.agenda.service.events import EventView
from carnet.agenda.tables import AgendaEvent
from carnet.bootstrap import Services
from carnet.export.model.exported import Exported
from carnet.fhir.search import instant
from carnet.hall.actors import Actor
from carnet.hall.guard import facts_for
from carnet.hall.policy import Action, Facts, Resource, decide
from carnet.hall.vocabulary import PARIS
from carnet.people.model.fhir_map import patient_element
from carnet.people.service.export import enter_export
from carnet.people.tables import Patient
from carnet.storage import keyring

SECTION = "Agenda"
BATCH = 500


def appointment(view: EventView, patient: dict[str, Any]) -> dict[str, Any]:
    """The event as the API serves it, completed for the archive (see the module's docstring)."""
    resource = fhir_map.outgoing(view, patient)
    if view.kind == rules.REMINDER and "appointmentType" not in resource:
        resource["appointmentType"] = {"text": rules.KINDS[rules.REMINDER]}
    if "start" in resource and "end" not in resource:
        resource["end"] = instant(view.ends_at) if view.ends_at is not None else resource["start"]
    return resource


def summary(view: EventView) -> str:
    """« Rendez-vous : Bilan sanguin — 12/03/2026, 09:30 – 10:30, Laboratoire…, avec … »."""
    line = f"{view.kind_label} : {view.title or view.kind_label} — {view.starts_at.astimezone(PARIS):%d/%m/%Y}, "
    line += view.hours
    line += "".join(f", {words}" for words in (view.place, f"avec {view.with_whom}" if view.with_whom else "") if words)
    if view.cancelled:
        line += " (annulé)"
    return line + f" ; {view.source_words.lower()}"


def _batch(db: Session, where: list[Any], after: tuple[datetime, str] | None) -> list[AgendaEvent]:
    query = select(AgendaEvent).where(*where)
    if after is not None:
        at, last = after
        query = query.where(or_(AgendaEvent.starts_at > at, and_(AgendaEvent.starts_at == at, AgendaEvent.id > last)))
    return list(db.scalars(query.order_by(AgendaEvent.starts_at, AgendaEvent.id).limit(BATCH)))


def _events(
    services: Services, actor: Actor, patient: dict[str, Any], key: bytes, where: list[Any], facts: Facts
) -> Iterator[Exported]:
    patient_id = patient["reference"].removeprefix("Patient/")
    after: tuple[datetime, str] | None = None
    while True:
        with services.db.unit_of_work() as db:
            rows = _batch(db, where, after)
            views = [
                events.view_of(key, row)
                for row in rows
                if decide(actor, patient_id, Action.AGENDA_READ, events.resource_of(row), facts).allowed
            ]
        yield from (Exported(appointment(view, patient), (), summary(view), SECTION) for view in views)
        if len(rows) < BATCH:
            return
        after = (rows[-1].starts_at, rows[-1].id)


def export_resources(services: Services, actor: Actor, patient_id: str) -> Iterator[Exported]:
    """Every appointment and reminder ``actor`` may read, in the order of their start."""
    with services.db.unit_of_work() as db:
        decision = enter_export(db, actor, patient_id, Action.AGENDA_READ, Resource("agenda"))
        where = [AgendaEvent.patient_id == patient_id, *events.scope_conditions(actor, decision)]
        facts = facts_for(db, actor, patient_id)
        row = db.get(Patient, patient_id)
        assert row is not None  # the policy refuses unknown spaces
        patient = patient_element(row.id, row.ins, row.ins_oid)
        try:
            key = keyring.data_key(db, services.keyring, patient_id, create=False)
        except keyring.DataKeyMissing:  # nothing was ever sealed for this space: an empty agenda
            return
    yield from _events(services, actor, patient, key, where, facts)
