"""The catalogue's pure rules: statuses and referencing (CAT-1), SMART v2 patient scopes in French, PKCE S256
(CAT-2)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from carnet.catalogue.model import pkce
from carnet.catalogue.model import scopes as smart
from carnet.catalogue.model.apps import AppStatus, TransitionError, is_live, next_status, referenced_until

NOW = datetime(2026, 12, 5, 12, tzinfo=UTC)


def test_cat1_publishing_references_an_app_for_one_year_and_renewal_adds_a_year_to_what_is_left() -> None:
    assert referenced_until(NOW, None) == NOW + timedelta(days=365)
    later = NOW + timedelta(days=100)
    assert referenced_until(NOW, later) == later + timedelta(days=365)
    assert referenced_until(NOW, NOW - timedelta(days=1)) == NOW + timedelta(days=365)


@pytest.mark.parametrize(
    ("current", "decision", "target"),
    [
        ("PRESERIE", "publish", AppStatus.EN_LIGNE),
        ("EN_LIGNE", "suspend", AppStatus.SUSPENDUE),
        ("EN_LIGNE", "offline", AppStatus.HORS_LIGNE),
        ("HORS_LIGNE", "publish", AppStatus.EN_LIGNE),
        ("SUSPENDUE", "publish", AppStatus.EN_LIGNE),
        ("SUSPENDUE", "dereference", AppStatus.DEREFERENCEE),
    ],
)
def test_cat1_the_operator_moves_an_app_between_the_five_statuses(current: str, decision: str, target: str) -> None:
    assert next_status(current, decision) == target


@pytest.mark.parametrize(
    ("current", "decision"),
    [("DEREFERENCEE", "publish"), ("PRESERIE", "suspend"), ("EN_LIGNE", "publish"), ("EN_LIGNE", "n'importe")],
)
def test_cat1_a_decision_the_status_does_not_allow_is_refused_in_french(current: str, decision: str) -> None:
    with pytest.raises(TransitionError, match=r"Impossible|inconnue"):
        next_status(current, decision)


def test_cat3_only_a_published_app_whose_referencing_runs_is_live() -> None:
    ahead = NOW + timedelta(days=1)
    assert is_live("EN_LIGNE", ahead, NOW)
    assert not is_live("EN_LIGNE", NOW - timedelta(seconds=1), NOW)
    for status in ("PRESERIE", "HORS_LIGNE", "SUSPENDUE", "DEREFERENCEE"):
        assert not is_live(status, ahead, NOW)


def test_cat2_smart_v2_and_v1_patient_scopes_are_parsed_and_written_as_v2() -> None:
    parsed = smart.parse("launch/patient patient/Observation.read patient/Observation.c offline_access")
    assert parsed.resources == {"Observation": frozenset("crs")}
    assert parsed.text() == "launch/patient offline_access patient/Observation.crs"
    assert parsed.as_system() == "system/Observation.crs"


@pytest.mark.parametrize(
    "scope",
    [
        "system/Observation.r",
        "user/Observation.r",
        "patient/Observation.x",
        "patient/Consent.r",
        "patient/Observation.d",
    ],
)
def test_cat2_a_scope_carnet_does_not_give_to_apps_is_refused(scope: str) -> None:
    with pytest.raises(smart.ScopeError):
        smart.parse(scope)


def test_cat2_each_scope_reads_as_a_french_sentence_on_the_consent_screen() -> None:
    lines = dict(smart.wording(smart.parse("patient/Observation.cr patient/DocumentReference.rs offline_access")))
    assert lines["patient/Observation.cr"] == "Lire et ajouter vos mesures (poids, tension, glycémie, pas…)"
    assert lines["patient/DocumentReference.rs"].startswith("Lire et rechercher vos documents de santé")
    assert "déconnectiez" in lines["offline_access"]


def test_cat2_a_refresh_may_narrow_the_scopes_never_widen_them() -> None:
    granted = smart.parse("offline_access patient/Observation.crs")
    assert smart.parse("patient/Observation.r").within(granted)
    assert not smart.parse("patient/Observation.r patient/Appointment.r").within(granted)


def test_cat2_pkce_s256_checks_the_verifier_and_refuses_plain() -> None:
    verifier = "v" * 43
    challenge = pkce.s256(verifier)
    assert pkce.challenge_problem(challenge, "S256") is None
    assert "plain" in (pkce.challenge_problem(challenge, "plain") or "")
    assert pkce.challenge_problem(challenge, "") is not None
    assert pkce.challenge_problem("court", "S256") is not None
    assert pkce.verifies(verifier, challenge)
    assert not pkce.verifies("w" * 43, challenge)
    assert not pkce.verifies("", challenge)
