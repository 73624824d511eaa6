"""CAT-3 in the policy, one rule at a time (the whole table is tests/hall/test_policy.py): a connected app acts only
in the space that consented, only while connected, reads what the person reads and changes only what it added."""

from __future__ import annotations

from carnet.hall.actors import Actor, ActorKind
from carnet.hall.policy import Action, Facts, Resource, Scope, decide

SPACE = "espace"
APP = Actor(ActorKind.APP, "appli-1", "Tensio", patient_id=SPACE)
CONNECTED = Facts(app_connected=True)


def test_cat3_a_connected_app_reads_what_the_person_reads() -> None:
    search = decide(APP, SPACE, Action.DOCUMENT_SEARCH, Resource("documents"), CONNECTED)
    assert search.allowed and search.scope == Scope.PATIENT
    pending = Resource("document", "d", hidden_from_patient=True, category="BIOLOGIE")
    assert not decide(APP, SPACE, Action.DOCUMENT_READ, pending, CONNECTED)


def test_cat3_an_app_changes_only_the_items_it_added() -> None:
    own = Resource("profile_item", "i1", author_id="appli-1", category="mesures")
    other = Resource("profile_item", "i2", author_id="pro-1", category="mesures")
    assert decide(APP, SPACE, Action.PROFILE_WRITE, own, CONNECTED)
    refused = decide(APP, SPACE, Action.PROFILE_WRITE, other, CONNECTED)
    assert not refused and refused.rule == "app_not_author"
    event = Resource("agenda_event", "e1", author_id="pro-1")
    assert not decide(APP, SPACE, Action.AGENDA_WRITE, event, CONNECTED)
    assert decide(APP, SPACE, Action.AGENDA_WRITE, Resource("agenda_event"), CONNECTED)  # a new appointment


def test_cat3_a_disconnected_app_or_another_space_is_refused_with_a_french_reason() -> None:
    gone = decide(APP, SPACE, Action.PROFILE_READ, Resource("profile"), Facts())
    assert not gone and gone.rule == "app_not_connected" and "déconnectée" in gone.reason
    other = decide(APP, "autre-espace", Action.PROFILE_READ, Resource("profile"), CONNECTED)
    assert not other and other.rule == "app_other_space"


def test_cat3_an_app_never_manages_the_space() -> None:
    for action in (
        Action.ACCESS_MANAGE,
        Action.SETTINGS_WRITE,
        Action.APP_CONNECT,
        Action.HISTORY_READ,
        Action.SPACE_EXPORT,
    ):
        decision = decide(APP, SPACE, action, None, CONNECTED)
        assert not decision and decision.rule == "app_act_refused", action
