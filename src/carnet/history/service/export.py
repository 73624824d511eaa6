"""The history in the archive of a space (ENR-7, TRC-1, TRC-2): every entry the asker may read, oldest first, as a
FHIR R4 ``AuditEvent`` (``carnet.history.model.fhir_map``) telling it in the portal's words.

What may be read is decided as on the history page: ``HISTORY_READ`` and its scope (the entries of the actor's own
actions only, for ``Scope.OWN_ACTIONS``), minus every entry about a document the asker may not read
(``unseen_documents``: one still hidden from the patient; for a legal representative, one hidden from them) — so
that the history reads as if those did not exist; the audit log itself keeps everything. The sentence is the
portal's (``describe``), told of the actor by name (never « Vous »: the archive is read later, maybe by someone
else). The entries are read 500 at a time in the order of the chain; reading them records nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import or_, select

from carnet.bootstrap import Services
from carnet.export.model.exported import Exported
from carnet.hall.actors import Actor
from carnet.hall.policy import Action, Resource, Scope
from carnet.hall.tables import AuditEntry
from carnet.hall.vocabulary import PARIS
from carnet.history import labels
from carnet.history import service as history
from carnet.history.model import fhir_map
from carnet.people.model.fhir_map import patient_element
from carnet.people.service.export import enter_export
from carnet.people.tables import Patient
from carnet.vault.service.hidden import unseen_documents

SECTION = "Historique"
BATCH = 500
NARRATOR = Actor.system("Archive de l'espace")  # a viewer who is nobody: every line names who acted


def _item(entry: AuditEntry, own: set[str], patient: dict[str, Any]) -> Exported:
    line = history.describe(entry, NARRATOR, own)
    sentence = f"{line.who} {line.what}"
    done, _ = labels.words(entry.action)
    resource = fhir_map.audit_event(entry, sentence, done, labels.ACTOR_KINDS.get(entry.actor_kind, ""), patient)
    summary = f"{entry.at.astimezone(PARIS):%d/%m/%Y %H:%M} — {sentence}"
    if line.denied and entry.reason:
        summary += f" ({entry.reason})"
    return Exported(resource, (), summary, SECTION)


def export_resources(services: Services, actor: Actor, patient_id: str) -> Iterator[Exported]:
    """The history of the space as ``actor`` may read it, oldest first."""
    with services.db.unit_of_work() as db:
        decision = enter_export(db, actor, patient_id, Action.HISTORY_READ, Resource("history"))
        where: list[Any] = [AuditEntry.chain == patient_id]
        if decision.scope == Scope.OWN_ACTIONS:
            where.append(history._own_actions(actor))
        unseen = unseen_documents(db, actor, patient_id)
        if unseen:
            where.append(or_(AuditEntry.resource_id.is_(None), AuditEntry.resource_id.not_in(sorted(unseen))))
        own = history._own_accounts(db, patient_id)
        row = db.get(Patient, patient_id)
        assert row is not None  # the policy refuses unknown spaces
        patient = patient_element(row.id, row.ins, row.ins_oid)
    after = -1
    while True:
        with services.db.unit_of_work() as db:
            query = select(AuditEntry).where(*where, AuditEntry.seq > after).order_by(AuditEntry.seq).limit(BATCH)
            rows = list(db.scalars(query))
            items = [_item(entry, own, patient) for entry in rows]
        yield from items
        if len(rows) < BATCH:
            return
        after = rows[-1].seq
