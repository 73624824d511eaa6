"""The history of an imported archive (ENR-7, item 5): kept, in front of this instance's chain.

Each ``AuditEvent`` of the archive becomes one entry ``history.imported`` of the new space's chain, in the
archive's order: by whom (the name the other service recorded), what (the sentence it told, refusals included),
and when (its date, in the words) — marked as imported, since this instance did not witness it and its own
chain only vouches that the import happened. Then the space's own life here follows on the same chain.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from carnet.export.model.restoring import RestoreError, Restoring, resources_of
from carnet.hall import audit
from carnet.hall.actors import Actor
from carnet.hall.vocabulary import PARIS


def _line(event: dict[str, Any]) -> tuple[str, str, str]:
    """(who, what, when) of an AuditEvent of a Carnet archive."""
    agents = event.get("agent") or [{}]
    who = str(((agents[0] or {}).get("who") or {}).get("display") or "Inconnu")
    kind = str(((agents[0] or {}).get("type") or {}).get("text") or "")
    entities = event.get("entity") or [{}]
    sentence = str((entities[0] or {}).get("description") or "")
    for prefix in (f"{who} ({kind}) ", f"{who} "):
        if sentence.startswith(prefix):
            sentence = sentence[len(prefix) :]
            break
    try:
        moment = datetime.fromisoformat(str(event.get("recorded")))
    except ValueError as exc:
        raise RestoreError(f"AuditEvent/{event.get('id')} : date illisible.") from exc
    label = f"{who} ({kind})" if kind else who
    return label[:200], sentence or "a agi sur l'espace", f"{moment.astimezone(PARIS):%d/%m/%Y à %H:%M}"


def restore(db: Session, restoring: Restoring, bundle: dict[str, Any]) -> int:
    """The archive's history as imported entries of the new space's chain; how many."""
    count = 0
    for event in resources_of(bundle, "AuditEvent"):
        who, what, when = _line(event)
        audit.record(
            db,
            Actor.system(who),
            "history.imported",
            patient_id=restoring.patient_id,
            details={"fait": what, "le": when},
        )
        count += 1
    return count
