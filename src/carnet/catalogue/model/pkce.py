"""PKCE (RFC 7636), S256 only: ``plain`` is refused (OAuth 2.1, SMART App Launch 2)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

METHOD = "S256"
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
_CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{43}")


def challenge_problem(challenge: str, method: str) -> str | None:
    """What is wrong with an authorisation request's PKCE parameters, in French; None when they are fine."""
    if method != METHOD:
        return "PKCE obligatoire avec code_challenge_method=S256 (la méthode plain est refusée)."
    if not _CHALLENGE.fullmatch(challenge):
        return "code_challenge absent ou mal formé (43 caractères base64url attendus)."
    return None


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def verifies(verifier: str, challenge: str) -> bool:
    """Whether ``verifier`` is the one the challenge was made from (constant-time comparison)."""
    if not _VERIFIER.fullmatch(verifier):
        return False
    return hmac.compare_digest(s256(verifier), challenge)
