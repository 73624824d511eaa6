"""Moving an instance's blobs from its local folder to S3-compatible object storage (``carnet blobs move-to-s3``,
issue #18-1).

Each blob is copied as it is (it is already sealed: nothing is opened or re-encrypted), read back from the object
store and compared by SHA-256 before it counts as moved; a local copy is removed, when asked, only after that check.
The move is resumable: a blob already in the store with the same size and hash is skipped; a small journal in the
data folder (``<data_dir>/move-to-s3-<bucket>.journal``: key and hash of every verified copy) spares re-reading them
when the move is run again after an interruption. The journal is removed once a run has moved everything.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from carnet.errors import CarnetError
from carnet.storage.blobs import BlobNotFound, LocalBlobStore
from carnet.storage.s3 import S3BlobStore


class BlobMoveError(CarnetError):
    """The move cannot go on (a copy that does not read back identical…); what was verified stays verified."""


@dataclass(frozen=True)
class MoveSummary:
    total: int  # blobs in the local folder when the move started
    copied: int  # copied and verified by this run
    present: int  # already in the store, identical (an earlier run)
    removed: int  # local copies removed after verification
    bytes_copied: int


class BlobMove:
    """One move, prepared: ``keys`` (what the local folder holds) are known before ``run`` so a progress bar can be
    drawn."""

    def __init__(self, source: LocalBlobStore, target: S3BlobStore, journal: Path) -> None:
        self.source = source
        self.target = target
        self.journal = journal
        self.keys = list(source.keys())

    def run(self, *, remove_local: bool = False, advance: Callable[[int], None] = lambda n: None) -> MoveSummary:
        """Copy, verify and (if asked) remove, blob by blob; ``advance(1)`` after each."""
        self.target.ensure_bucket()
        verified = self._verified()
        copied = present = removed = size = 0
        with open(self.journal, "a", encoding="ascii") as journal:
            os.chmod(self.journal, 0o600)
            for key in self.keys:
                try:
                    data = self.source.get(key)
                except BlobNotFound:  # removed meanwhile (a deletion in the running instance): nothing to move
                    advance(1)
                    continue
                digest = hashlib.sha256(data).hexdigest()
                if self._already_there(key, data, digest, verified):
                    present += 1
                else:
                    self.target.put(key, data)
                    if hashlib.sha256(self.target.get(key)).hexdigest() != digest:
                        raise BlobMoveError(
                            f"la copie de {key} relue dans le stockage objet diffère de l'original : déplacement arrêté"
                            " (les copies locales sont intactes)"
                        )
                    journal.write(f"{key} {digest}\n")
                    journal.flush()
                    copied += 1
                    size += len(data)
                if remove_local:
                    self.source.delete(key)
                    removed += 1
                advance(1)
        self.journal.unlink(missing_ok=True)  # everything moved: a later run starts afresh
        return MoveSummary(len(self.keys), copied, present, removed, size)

    def _verified(self) -> dict[str, str]:
        if not self.journal.exists():
            return {}
        verified = {}
        for line in self.journal.read_text(encoding="ascii", errors="replace").splitlines():
            key, _, digest = line.partition(" ")
            if len(digest) == 64:  # a line cut by a crash is ignored
                verified[key] = digest
        return verified

    def _already_there(self, key: str, data: bytes, digest: str, verified: dict[str, str]) -> bool:
        if self.target.size_of(key) != len(data):
            return False
        if verified.get(key) == digest:
            return True
        try:
            return hashlib.sha256(self.target.get(key)).hexdigest() == digest
        except BlobNotFound:
            return False


def prepare_move(data_dir: Path, source: LocalBlobStore, target: S3BlobStore) -> BlobMove:
    return BlobMove(source, target, data_dir / f"move-to-s3-{target.bucket}.journal")
