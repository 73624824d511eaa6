"""Password rules (ENR-4): at least 9 characters with lower, upper, digit and special."""

from __future__ import annotations

MIN_LENGTH = 9


def password_problems(password: str) -> list[str]:
    """Everything to fix in ``password``, in French; empty when it is acceptable."""
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(f"au moins {MIN_LENGTH} caractères")
    if not any(c.islower() for c in password):
        problems.append("une lettre minuscule")
    if not any(c.isupper() for c in password):
        problems.append("une lettre majuscule")
    if not any(c.isdigit() for c in password):
        problems.append("un chiffre")
    if all(c.isalnum() for c in password):
        problems.append("un caractère spécial (par exemple ! ? - _ @)")
    return problems
