"""LocalBlobStore: layout, atomic 0600 files, key validation (no path traversal)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from carnet.storage.blobs import BlobNotFound, BlobStore, LocalBlobStore

KEY = "AbCdEf0123456789_-xyz"


def test_round_trip_and_layout(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    assert isinstance(store, BlobStore)
    assert not store.exists(KEY)
    store.put(KEY, b"\x00premier\xff")
    assert store.exists(KEY)
    assert store.get(KEY) == b"\x00premier\xff"
    assert (tmp_path / "blobs" / "Ab" / "Cd" / KEY).read_bytes() == b"\x00premier\xff"

    store.put(KEY, b"second")  # replaces
    assert store.get(KEY) == b"second"
    store.put(KEY, b"")
    assert store.get(KEY) == b""

    store.delete(KEY)
    assert not store.exists(KEY)
    store.delete(KEY)  # deleting a missing blob is not an error


def test_no_temporary_file_is_left_behind(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    for index in range(3):
        store.put(KEY, b"x" * index)
    assert sorted(p.name for p in (tmp_path / "Ab" / "Cd").iterdir()) == [KEY]


def test_file_mode_is_0600(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)
    try:
        store = LocalBlobStore(tmp_path / "blobs")
        store.put(KEY, b"secret")
    finally:
        os.umask(old_umask)
    path = tmp_path / "blobs" / "Ab" / "Cd" / KEY
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) & 0o077 == 0


def test_missing_blob_raises_blob_not_found(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    with pytest.raises(BlobNotFound):
        store.get(KEY)


@pytest.mark.parametrize(
    "key",
    [
        "",
        "short",
        "a" * 15,
        "a" * 81,
        "../../../../etc/passwd",
        "..%2F..%2Fetc%2Fpasswd0000",
        "abcdefghijklmnop/../../x",
        "abcdefghijklmnop\\..\\x",
        "/abcdefghijklmnopqrst",
        "abcdefghijklmnop.qrst",
        "abcdefghijklmnopqrst\n",
        "abcdefghijklmnop\x00qrst",
        "abcdefghijklmnopé",
        " abcdefghijklmnopqrst",
    ],
)
def test_invalid_keys_are_rejected(tmp_path: Path, key: str) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    for call in (lambda: store.put(key, b"x"), lambda: store.get(key), lambda: store.delete(key)):
        with pytest.raises(ValueError):
            call()
    with pytest.raises(ValueError):
        store.exists(key)
    assert not (tmp_path / "blobs").exists()  # nothing was written anywhere


def test_boundary_lengths_are_accepted(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    for key in ("a" * 16, "Z" * 80, "-" * 16, "_" * 20):
        store.put(key, key.encode())
        assert store.get(key) == key.encode()
