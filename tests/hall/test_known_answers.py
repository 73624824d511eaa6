"""Known answers (issue #15-14): the history's hash and the sealed-data format are pinned by fixed vectors, so a
change of what is hashed (a field dropped from the chain) or of the sealing format fails here, loudly — and a
blob sealed today must stay readable by every later version."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from carnet.hall.chain import GENESIS, entry_hash, verify_chain
from carnet.storage import keyring

ENTRY: dict[str, Any] = {
    "chain": "patient-1",
    "seq": 1,
    "at": datetime(2026, 12, 5, 6, 0, 0, 123456, tzinfo=UTC),
    "actor_kind": "professional",
    "actor_id": "pro-1",
    "actor_label": "Dr Jean-Baptiste FERRACCI",
    "action": "document.read",
    "patient_id": "patient-1",
    "resource_type": "document",
    "resource_id": "doc-1",
    "outcome": "allow",
    "reason": "La personne a autorisé ce professionnel.",
    "details": {"catégorie": "BIOLOGIE"},
}
SECOND = {**ENTRY, "seq": 2, "action": "document.search", "resource_id": None, "details": {}}
# Computed on 2026-12-05 and kept: a change here is a change of the history's format (old chains would break).
FIRST_HASH = "1a7cf064f7cef8625f375817d50b0215b597a163b246ef8ed083806ce8523f82"
SECOND_HASH = "918616aadef571c0d4e0084050e75799e5bfb012ff939701ecd2b2f70b840934"
EVERY_HASHED_FIELD = list(ENTRY)  # written out above, not imported from the code under test

KEY = bytes(range(32))
PLAINTEXT = b"Compte rendu de consultation"
SEALED_TODAY = bytes.fromhex(
    "01c7aab2843fdb868853644bc120ec80c44c8ae71738645d999ef9b4a6b3a2d9c3421b9fa2a1f309464fce8ddf233558e5c5e8520f0c18bc8a"
)
BLIND_HEMOGRAMME = "2c08c9593feb2081a79f6995"


def test_the_chain_hashes_are_the_known_ones() -> None:
    assert entry_hash(GENESIS, ENTRY) == FIRST_HASH
    assert entry_hash(FIRST_HASH, SECOND) == SECOND_HASH


@pytest.mark.parametrize("field", EVERY_HASHED_FIELD)
def test_changing_any_field_breaks_the_chain(field: str) -> None:
    stored = [
        {**ENTRY, "prev_hash": GENESIS, "hash": FIRST_HASH},
        {**SECOND, "prev_hash": FIRST_HASH, "hash": SECOND_HASH},
    ]
    assert verify_chain("patient-1", stored, 2, SECOND_HASH) == []
    value = stored[0][field]
    tampered = {"seq": 7, "at": datetime(2027, 1, 1, tzinfo=UTC), "details": {"catégorie": "SYNTHESE"}}.get(
        field, f"{value}-modifié"
    )
    stored[0] = {**stored[0], field: tampered}
    assert verify_chain("patient-1", stored, 2, SECOND_HASH) != [], field


def test_a_blob_sealed_today_opens_and_has_the_known_format() -> None:
    assert keyring.open_sealed(KEY, SEALED_TODAY, b"doc-1") == PLAINTEXT
    version, nonce, body = SEALED_TODAY[0], SEALED_TODAY[1:13], SEALED_TODAY[13:]
    assert version == 1 and len(body) == len(PLAINTEXT) + 16
    assert AESGCM(KEY).encrypt(nonce, PLAINTEXT, b"doc-1") == body  # AES-256-GCM, the AAD is the document id
    with pytest.raises(keyring.DecryptionError):
        keyring.open_sealed(KEY, SEALED_TODAY, b"doc-2")  # another document's AAD


def test_a_fresh_seal_has_the_same_format() -> None:
    sealed = keyring.seal(KEY, PLAINTEXT, b"doc-1")
    assert sealed[0] == 1 and len(sealed) == len(SEALED_TODAY) and sealed != SEALED_TODAY  # a fresh nonce
    assert AESGCM(KEY).decrypt(sealed[1:13], sealed[13:], b"doc-1") == PLAINTEXT


def test_the_blind_index_term_is_the_known_one() -> None:
    assert keyring.blind_term(KEY, "hemogramme") == BLIND_HEMOGRAMME
