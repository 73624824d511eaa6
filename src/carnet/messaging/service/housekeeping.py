"""The attachment bodies a crash left without their row (like the vault's, issue #15-8): an attachment's sealed
blob is written before its transaction commits; a gateway or server killed in between leaves a blob no row names.
The worker removes those older than a grace period longer than any delivery."""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from itertools import islice

from sqlalchemy import select

from carnet.bootstrap import Services
from carnet.messaging.tables import Attachment
from carnet.storage.types import utcnow

logger = logging.getLogger("carnet")
MESSAGE_BLOB = re.compile(r"msg-[0-9a-f-]{36}")  # store.blob_key
ORPHAN_GRACE = timedelta(hours=1)


def sweep_orphan_blobs(services: Services, now: datetime | None = None, grace: timedelta = ORPHAN_GRACE) -> int:
    candidates = (k for k in services.blobs.older_than((now or utcnow()) - grace) if MESSAGE_BLOB.fullmatch(k))
    removed = 0
    while batch := list(islice(candidates, 500)):
        with services.db.unit_of_work() as db:
            kept = set(db.scalars(select(Attachment.blob_key).where(Attachment.blob_key.in_(batch))))
        for key in sorted(set(batch) - kept):
            services.blobs.delete(key)
            removed += 1
    if removed:
        logger.warning("messagerie : %d pièce(s) jointe(s) chiffrée(s) sans message supprimée(s)", removed)
    return removed
