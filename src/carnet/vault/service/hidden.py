"""Which documents of a space an actor may not see — for the capabilities that speak of documents
without showing them (the history tells "a déposé un document" only of documents the reader may read).

Only labelled documents can be hidden from the patient's side (INVISIBLE_PATIENT,
INVISIBLE_REPRESENTANTS_LEGAUX), so only those are put to the policy.
"""

from __future__ import annotations

from sqlalchemy import String, cast, select
from sqlalchemy.orm import Session

from carnet.hall.actors import Actor
from carnet.hall.guard import facts_for
from carnet.hall.policy import Action, decide
from carnet.storage.types import utcnow
from carnet.vault.service.documents import resource_of
from carnet.vault.tables import Document


def unseen_documents(db: Session, actor: Actor, patient_id: str) -> set[str]:
    """The ids of this space's documents the policy does not let ``actor`` read (FAM-2, VLT-6).

    Asking never records anything: the caller only leaves these documents out of what it tells."""
    labelled = cast(Document.confidentiality, String).like("%INVISIBLE%")
    candidates = db.scalars(select(Document).where(Document.patient_id == patient_id, labelled))
    facts = facts_for(db, actor, patient_id)
    now = utcnow()
    return {
        document.id
        for document in candidates
        if not decide(actor, patient_id, Action.DOCUMENT_READ, resource_of(document, now), facts).allowed
    }
