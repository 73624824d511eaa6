"""Identity rules: passwords (ENR-4: at least 9 characters with lower, upper, digit and special) and the
SMART on FHIR scopes a system may be granted."""

from __future__ import annotations

from carnet.errors import CarnetError

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


# --- SMART on FHIR v2 scopes (system/<Resource>.<cruds>) for the systems calling /fhir --------------------

PERMISSIONS = "cruds"  # create, read, update, delete, search — the order SMART v2 writes them in
V1_ALIASES = {"read": "rs", "write": "cud", "*": "cruds"}  # SMART v1 names, still accepted in requests
CLIENT_SCOPES: dict[str, str] = {  # what a client of Carnet may ever be granted
    "DocumentReference": "crus",
    "Binary": "r",
    "Patient": "rs",
    "Consent": "crs",
    # the medical profile (PRF-3): no update over FHIR yet — a correction is a new resource
    "Observation": "crs",
    "Condition": "crs",
    "MedicationStatement": "crs",
    "AllergyIntolerance": "crs",
    "FamilyMemberHistory": "crs",
    "Immunization": "crs",
    "ImmunizationRecommendation": "rs",  # AGD-2: computed from the prevention calendar, read-only
    "Appointment": "crs",  # AGD-1: appointments given to the patient (no update over FHIR yet)
}


class ScopeError(CarnetError):
    pass


def parse_scopes(text: str) -> dict[str, set[str]]:
    """``"system/DocumentReference.rs system/Binary.read"`` → ``{"DocumentReference": {"r", "s"}, "Binary": …}``.
    Raises ``ScopeError`` (French) on anything that is not a system-level scope of SMART v1 or v2."""
    scopes: dict[str, set[str]] = {}
    for item in text.split():
        context, _, rest = item.partition("/")
        resource, _, permissions = rest.partition(".")
        permissions = V1_ALIASES.get(permissions, permissions)
        if context != "system" or not resource or not permissions or set(permissions) - set(PERMISSIONS):
            raise ScopeError(f"Portée non reconnue : « {item} » (attendu par exemple system/DocumentReference.crs).")
        scopes.setdefault(resource, set()).update(permissions)
    return scopes


def format_scopes(scopes: dict[str, set[str]]) -> str:
    return " ".join(
        f"system/{resource}.{''.join(p for p in PERMISSIONS if p in perms)}"
        for resource, perms in sorted(scopes.items())
        if perms
    )


def narrow(requested: str | None) -> str:
    """The scopes granted for a client-credentials request: all a client may have, or the requested ones
    narrowed to those (SMART Backend Services). Empty when nothing requested is available."""
    allowed = {resource: set(perms) for resource, perms in CLIENT_SCOPES.items()}
    if not requested:
        return format_scopes(allowed)
    wanted = parse_scopes(requested)
    return format_scopes({r: perms & allowed.get(r, set()) for r, perms in wanted.items()})


def permits(granted: str, needed: str) -> bool:
    """Whether the granted scopes cover ``needed`` (one resource, one or more permissions)."""
    want = parse_scopes(needed)
    have = parse_scopes(granted)
    return all(perms <= have.get(resource, set()) for resource, perms in want.items())
