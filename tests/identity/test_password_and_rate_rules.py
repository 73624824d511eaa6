"""ENR-4 password rules and the per-address limiter."""

from __future__ import annotations

from carnet.identity.model import password_problems
from carnet.identity.service.ratelimit import RateLimiter


def test_a_strong_password_has_no_problem() -> None:
    assert password_problems("Ajaccio-2026!") == []


def test_each_missing_rule_is_named_in_french() -> None:
    assert password_problems("court") == [
        "au moins 9 caractères",
        "une lettre majuscule",
        "un chiffre",
        "un caractère spécial (par exemple ! ? - _ @)",
    ]
    assert password_problems("SANSMINUSCULE1!") == ["une lettre minuscule"]


def test_the_limiter_refuses_past_its_limit_then_forgets_after_the_window() -> None:
    limiter = RateLimiter(limit=3, window_seconds=60)
    assert [limiter.hit("ip", now=t) for t in (0, 1, 2, 3)] == [True, True, True, False]
    assert limiter.hit("other", now=3)
    assert limiter.hit("ip", now=61)
