"""Large bodies sealed as a stream (ENR-7's archives): written and read 1 MiB at a time, never whole in memory.

Format: ``CSS1`` then chunks, each ``length (4 bytes, big-endian) ‖ seal(chunk)`` where ``seal`` is the patient's
AES-256-GCM (``keyring.seal``) with associated data ``<purpose>:<index>:<0|1>`` — the last chunk says it is the
last, so a file cut short, reordered or spliced from another fails to open (``keyring.DecryptionError``).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

from carnet.storage import keyring

MAGIC = b"CSS1"
CHUNK = 1024 * 1024


class SealedFileWriter(io.RawIOBase):
    """A write-only, non-seekable stream that seals what it is given into ``path`` (mode 0600)."""

    def __init__(self, path: Path, data_key: bytes, purpose: str) -> None:
        super().__init__()
        self._key = data_key
        self._purpose = purpose
        self._buffer = bytearray()
        self._index = 0
        self._written = 0
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        self._file = os.fdopen(descriptor, "wb")
        self._file.write(MAGIC)

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._written  # zipfile needs positions of what it wrote, not of the sealed file

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self._buffer += data
        self._written += len(data)
        while len(self._buffer) > CHUNK:
            self._flush_chunk(bytes(self._buffer[:CHUNK]), last=False)
            del self._buffer[:CHUNK]
        return len(data)

    def _flush_chunk(self, chunk: bytes, last: bool) -> None:
        aad = f"{self._purpose}:{self._index}:{int(last)}".encode()
        sealed = keyring.seal(self._key, chunk, aad)
        self._file.write(len(sealed).to_bytes(4, "big") + sealed)
        self._index += 1

    def close(self) -> None:
        if not self.closed:
            self._flush_chunk(bytes(self._buffer), last=True)
            self._buffer.clear()
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
        super().close()

    def abort(self) -> None:
        """Close without the final chunk: the file will never open (the caller deletes it)."""
        if not self.closed:
            self._file.close()
        super().close()


def read_sealed(path: Path, data_key: bytes, purpose: str) -> Iterator[bytes]:
    """The plaintext of a ``SealedFileWriter`` file, chunk by chunk; ``DecryptionError`` if altered or cut."""
    with path.open("rb") as file:
        if file.read(len(MAGIC)) != MAGIC:
            raise keyring.DecryptionError("archive chiffrée illisible (format inconnu)")
        index = 0
        while True:
            size = file.read(4)
            if len(size) < 4:
                raise keyring.DecryptionError("archive chiffrée tronquée")
            sealed = file.read(int.from_bytes(size, "big"))
            try:
                chunk = keyring.open_sealed(data_key, sealed, f"{purpose}:{index}:0".encode())
                last = False
            except keyring.DecryptionError:
                chunk = keyring.open_sealed(data_key, sealed, f"{purpose}:{index}:1".encode())
                last = True
            yield chunk
            if last:
                if file.read(1):
                    raise keyring.DecryptionError("archive chiffrée : données après la fin")
                return
            index += 1
