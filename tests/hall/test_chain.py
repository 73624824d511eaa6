"""TRC-4: hash chaining as pure functions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from carnet.hall.chain import GENESIS, entry_hash, verify_chain


def chain_of(actions: list[str]) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    prev = GENESIS
    for seq, action in enumerate(actions, start=1):
        entry: dict[str, Any] = {
            "chain": "p",
            "seq": seq,
            "at": datetime(2026, 11, 25, 10, 0, seq % 60, tzinfo=UTC),
            "actor_kind": "patient",
            "actor_id": "a",
            "actor_label": "Marie",
            "action": action,
            "patient_id": "p",
            "resource_type": None,
            "resource_id": None,
            "outcome": "allow",
            "reason": "",
            "details": {"n": seq},
        }
        entry["prev_hash"] = prev
        entry["hash"] = prev = entry_hash(prev, entry)
        entries.append(entry)
    return entries


actions = st.lists(st.sampled_from(["space.view", "history.read", "auth.login"]), min_size=1, max_size=12)


@given(actions)
def test_an_untouched_chain_verifies(names: list[str]) -> None:
    entries = chain_of(names)
    assert verify_chain("p", entries, len(entries), entries[-1]["hash"]) == []


@given(actions, st.data())
def test_changing_any_field_of_any_entry_is_detected(names: list[str], data: st.DataObject) -> None:
    entries = chain_of(names)
    victim = data.draw(st.sampled_from(entries))
    field = data.draw(st.sampled_from(["actor_label", "action", "outcome", "reason"]))
    victim[field] = str(victim[field]) + "!"
    assert verify_chain("p", entries, len(entries), entries[-1]["hash"]) != []


@given(actions, st.data())
def test_removing_any_entry_is_detected(names: list[str], data: st.DataObject) -> None:
    entries = chain_of(names)
    head = entries[-1]["hash"]
    del entries[data.draw(st.integers(0, len(entries) - 1))]
    assert verify_chain("p", entries, len(names), head) != []


def test_the_hash_depends_on_the_previous_hash() -> None:
    entry = chain_of(["space.view"])[0]
    assert entry_hash(GENESIS, entry) != entry_hash("1" * 64, entry)
