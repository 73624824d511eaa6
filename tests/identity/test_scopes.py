"""SMART on FHIR v2 scopes (issue #9): parsing, narrowing at the token endpoint, what a grant permits."""

from __future__ import annotations

import pytest

from carnet.identity.model import ScopeError, narrow, parse_scopes, permits


def test_v2_and_v1_scopes_parse_to_the_same_permissions() -> None:
    assert parse_scopes("system/DocumentReference.rs") == {"DocumentReference": {"r", "s"}}
    assert parse_scopes("system/DocumentReference.read") == {"DocumentReference": {"r", "s"}}
    assert parse_scopes("system/Binary.r system/Binary.s") == {"Binary": {"r", "s"}}


@pytest.mark.parametrize(
    "bad",
    ["patient/DocumentReference.rs", "system/DocumentReference", "system/.rs", "system/Binary.rx", "nimportequoi"],
)
def test_what_is_not_a_system_scope_is_refused_in_french(bad: str) -> None:
    with pytest.raises(ScopeError, match="Portée non reconnue"):
        parse_scopes(bad)


def test_without_a_request_a_client_gets_everything_a_client_may_have() -> None:
    granted = narrow(None)
    assert "system/DocumentReference.crus" in granted.split()
    assert "system/Binary.r" in granted.split()


def test_a_request_narrows_and_never_widens() -> None:
    assert narrow("system/DocumentReference.rs") == "system/DocumentReference.rs"
    assert narrow("system/DocumentReference.cruds") == "system/DocumentReference.crus"  # no delete for clients
    assert narrow("system/Observation.cruds") == "system/Observation.crs"  # PRF-3: measures are fed, not edited
    assert narrow("system/Claim.rs") == ""  # a type Carnet does not serve


def test_a_grant_permits_only_what_it_names() -> None:
    granted = "system/DocumentReference.rs system/Binary.r"
    assert permits(granted, "system/DocumentReference.s")
    assert permits(granted, "system/Binary.r")
    assert not permits(granted, "system/DocumentReference.c")
    assert not permits(granted, "system/Consent.r")
