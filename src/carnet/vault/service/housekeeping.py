"""Housekeeping of the vault run by the job worker: documents hidden from the patient revealed when due (VLT-6),
and the bodies a crash left without their document (issue #15-8)."""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from itertools import islice

from carnet.bootstrap import Services
from carnet.storage.types import utcnow
from carnet.vault.service import documents

logger = logging.getLogger("carnet")
VAULT_BLOB = re.compile(r"[0-9a-f]{32}[bp]")  # a document's body or preview (documents.blob_key_of)
ORPHAN_GRACE = timedelta(hours=1)  # longer than any deposit: a body is written before its row commits


def reveal_due_documents(services: Services, now: datetime | None = None) -> int:
    with services.db.unit_of_work() as db:
        return documents.reveal_due(db, now)


def sweep_orphan_blobs(services: Services, now: datetime | None = None, grace: timedelta = ORPHAN_GRACE) -> int:
    """Remove the vault's blobs older than ``grace`` that no document references (a deposit killed between the
    body's write and the row's commit); other capabilities' blobs are not the vault's to judge."""
    candidates = (k for k in services.blobs.older_than((now or utcnow()) - grace) if VAULT_BLOB.fullmatch(k))
    removed = 0
    while batch := list(islice(candidates, 500)):
        with services.db.unit_of_work() as db:
            orphans = set(batch) - documents.referenced_blobs(db, batch)
        for key in sorted(orphans):
            services.blobs.delete(key)
        removed += len(orphans)
    if removed:
        logger.warning("coffre : %d fichier(s) chiffré(s) sans document supprimé(s) (reste d'un arrêt brutal)", removed)
    return removed
