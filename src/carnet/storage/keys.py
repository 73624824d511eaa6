"""Instance keys kept outside the database, in files (0600) generated on first start.

- the *master key* wraps each patient's data key (used by the vault);
- the *secret key* signs CSRF tokens, hashes one-time codes and seals TOTP secrets.
A KMS/HSM can replace the files later behind the same small interface.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def load_or_create_key(path: Path) -> bytes:
    """Read a base64 32-byte key, creating it (and its folder) if it does not exist."""
    if path.exists():
        key = base64.b64decode(path.read_text().strip())
        if len(key) != 32:
            raise ValueError(f"{path}: la clé doit faire 32 octets")
        return key
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, base64.b64encode(key) + b"\n")
    finally:
        os.close(fd)
    return key


@dataclass(frozen=True)
class InstanceKeys:
    secret: bytes

    def mac(self, purpose: str, message: str) -> str:
        """A keyed hash (HMAC-SHA256) separated by purpose."""
        return hmac.digest(self._mac_key(purpose), message.encode("utf-8"), "sha256").hex()

    def _mac_key(self, purpose: str) -> bytes:
        keys = self.__dict__.setdefault("_mac_keys", {})  # derived once per purpose (campaigns hash 10⁵ codes)
        if purpose not in keys:
            keys[purpose] = hashlib.sha256(self.secret + purpose.encode()).digest()
        return bytes(keys[purpose])

    @cached_property
    def _aead(self) -> AESGCM:
        return AESGCM(self.secret)

    def seal(self, plaintext: str, purpose: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode("utf-8"), purpose.encode())
        return base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def unseal(self, token: str, purpose: str) -> str:
        raw = base64.urlsafe_b64decode(token.encode("ascii"))
        return self._aead.decrypt(raw[:12], raw[12:], purpose.encode()).decode("utf-8")


def load_instance_keys(secret_file: Path, master_file: Path) -> InstanceKeys:
    """The instance secret; the master key file is created here too (first start) for the keyring."""
    load_or_create_key(master_file)
    return InstanceKeys(secret=load_or_create_key(secret_file))


def secure_data_dir(folder: Path) -> list[Path]:
    """The data folder is the service's alone (issue #15-6): created 0700, put back to 0700 at each start, and
    its files (SQLite database and journals, key files) put back to 0600 when an earlier version, a copy or a
    restore left them readable by others. Returns what was corrected (the caller says so). The folders below
    (blobs, outbox, keys) are created 0700 by their owners; the top folder's 0700 closes them to others anyway."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    corrected = []
    if folder.stat().st_mode & 0o077:
        folder.chmod(0o700)
        corrected.append(folder)
    for path in folder.iterdir():
        if path.is_file() and not path.is_symlink() and path.stat().st_mode & 0o077:
            path.chmod(0o600)
            corrected.append(path)
    return corrected
