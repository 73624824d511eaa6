"""Hash chaining of audit entries (TRC-4): pure functions, no storage.

Each entry's hash covers its content and the previous entry's hash in the same chain, so
changing or removing an entry breaks every later link; the chain head (last seq + hash),
kept apart, also catches the removal of the newest entry.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

GENESIS = "0" * 64
HASHED_FIELDS = (
    "chain",
    "seq",
    "at",
    "actor_kind",
    "actor_id",
    "actor_label",
    "action",
    "patient_id",
    "resource_type",
    "resource_id",
    "outcome",
    "reason",
    "details",
)


def canonical_time(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_hash(prev_hash: str, fields: Mapping[str, object]) -> str:
    payload = {name: fields[name] for name in HASHED_FIELDS}
    if isinstance(payload["at"], datetime):
        payload["at"] = canonical_time(payload["at"])
    body = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ChainBreak:
    chain: str
    seq: int
    problem: str


def verify_chain(
    chain: str, entries: Iterable[Mapping[str, object]], head_seq: int | None, head_hash: str | None
) -> list[ChainBreak]:
    """Check one chain given its entries ordered by seq and its recorded head."""
    breaks: list[ChainBreak] = []
    prev = GENESIS
    expected_seq = 1
    for entry in entries:
        seq = int(str(entry["seq"]))
        if seq != expected_seq:
            breaks.append(ChainBreak(chain, expected_seq, f"entrée(s) manquante(s) avant le n° {seq}"))
        if entry["prev_hash"] != prev:
            breaks.append(ChainBreak(chain, seq, "le lien avec l'entrée précédente est rompu"))
        if entry_hash(str(entry["prev_hash"]), entry) != entry["hash"]:
            breaks.append(ChainBreak(chain, seq, "le contenu de l'entrée a été modifié"))
        prev = str(entry["hash"])
        expected_seq = seq + 1
    last_seq = expected_seq - 1
    if head_seq is not None and (head_seq != last_seq or (head_hash or GENESIS) != prev):
        breaks.append(ChainBreak(chain, head_seq, "la ou les dernières entrées ont été supprimées ou modifiées"))
    return breaks
