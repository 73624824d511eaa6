"""The patient's messaging address (MSG-3): ``<INS>@<domain>``, as the MSSanté pattern ``<INS>@patient.<domain>``."""

from __future__ import annotations

from email.utils import parseaddr

from carnet.people.model.identifiers import IdentifierError, parse_nir

DEFAULT_DOMAIN = "patient.carnet.localhost"


def patient_address(ins: str, domain: str) -> str:
    return f"{ins}@{domain}"


def ins_of(address: str, domain: str) -> str | None:
    """The INS an address names, if it is one of this service's patient addresses (case-insensitive domain, the
    key checked); None otherwise."""
    _, bare = parseaddr(address)
    local, at, host = (bare or address).strip().rpartition("@")
    if not at or host.lower().rstrip(".") != domain.lower() or not local or len(local) > 20:
        return None
    try:
        return parse_nir(local).value
    except IdentifierError:
        return None


def bare_address(address: str) -> str:
    """``Dr X <x@y.fr>`` → ``x@y.fr``, lowercased (how the directory keeps e-mail addresses)."""
    _, bare = parseaddr(address)
    return (bare or "").strip().lower()
