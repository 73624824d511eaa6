"""Activation codes (ENR-2, ENR-4): 12 characters a person can read on a letter and type without doubt.

The alphabet leaves out the characters that are easily confused when printed or read aloud
(0/O, 1/I/L): 8 digits and 23 letters, 31 symbols, so a code carries 12 × log2(31) ≈ 59 bits.
A code is stored twice, never in clear: an HMAC of the normalised code to find the invitation,
and the code sealed (AES-GCM) under the instance secret so a letter can be printed again.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Final

ALPHABET: Final = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
LENGTH: Final = 12
GROUP: Final = 4
VALIDITY: Final = timedelta(days=90)
MAC_PURPOSE: Final = "activation"
SEAL_PURPOSE: Final = "activation-code"

_ALLOWED: Final = frozenset(ALPHABET)
_SIZE: Final = len(ALPHABET)
_LIMIT: Final = 256 - 256 % _SIZE  # rejection sampling: no bias towards the first symbols
_SEPARATORS: Final = str.maketrans("", "", " -\u00a0\u2009\u202f._\t")


def new_code() -> str:
    """A fresh random code (12 symbols of the alphabet, upper-case, no separators)."""
    while True:  # 24 random bytes keep ~23 symbols after rejection: one draw almost always suffices
        symbols = [ALPHABET[byte % _SIZE] for byte in secrets.token_bytes(2 * LENGTH) if byte < _LIMIT]
        if len(symbols) >= LENGTH:
            return "".join(symbols[:LENGTH])


def normalise(code: str) -> str:
    """What the person typed → the stored form: upper-case, spaces, dashes and dots removed."""
    return code.translate(_SEPARATORS).upper()


def is_well_formed(code: str) -> bool:
    """True when the normalised ``code`` has the right length and only symbols of the alphabet."""
    return len(code) == LENGTH and all(char in _ALLOWED for char in code)


def format_code(code: str) -> str:
    """« ABCD-EFGH-JKMN »: groups of four, easier to read on a letter and to type."""
    code = normalise(code)
    return "-".join(code[i : i + GROUP] for i in range(0, len(code), GROUP))
