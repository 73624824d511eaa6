"""What a crash leaves (issue #15-8): a body written without its document row (a deposit killed between the two)
is removed by the vault's sweep once older than the grace period; bodies of documents, fresh ones and other
capabilities' blobs stay."""

from __future__ import annotations

import os
import uuid
from datetime import timedelta

from sqlalchemy import select

from carnet.bootstrap import Services
from carnet.storage.types import utcnow
from carnet.vault.service import housekeeping
from carnet.vault.tables import Document
from tests.support.actors import Feeders
from tests.support.documents import document_entry, make_pdf, provide_bundle


def aged(services: Services, key: str, hours: float) -> None:
    path = services.blobs.path_of(key)  # type: ignore[attr-defined]
    moment = (utcnow() - timedelta(hours=hours)).timestamp()
    os.utime(path, (moment, moment))


def test_the_sweep_removes_only_old_bodies_without_a_document(feeders: Feeders, demo: Services) -> None:
    answer = feeders.client.post(
        "/fhir", json=provide_bundle(document_entry(feeders.ins, make_pdf("Compte rendu"))), headers=feeders.lab
    )
    assert answer.status_code == 200, answer.text
    with demo.db.unit_of_work() as db:
        kept = db.scalars(select(Document.blob_key)).all()
    assert kept
    orphan, fresh, foreign = uuid.uuid4().hex + "b", uuid.uuid4().hex + "p", "export-" + uuid.uuid4().hex
    for key in (orphan, fresh, foreign):
        demo.blobs.put(key, b"sealed")
    for key in (*kept, orphan, foreign):
        aged(demo, key, hours=3)
    half_written = demo.blobs.path_of(orphan).parent / f".{fresh}.x1.tmp"  # type: ignore[attr-defined]
    half_written.write_bytes(b"half")
    moment = (utcnow() - timedelta(hours=3)).timestamp()
    os.utime(half_written, (moment, moment))

    assert housekeeping.sweep_orphan_blobs(demo) == 1
    assert not demo.blobs.exists(orphan) and not half_written.exists()
    assert all(demo.blobs.exists(key) for key in (*kept, fresh, foreign))
    assert housekeeping.sweep_orphan_blobs(demo) == 0
