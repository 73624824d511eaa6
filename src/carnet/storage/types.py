"""Column types shared by the tables."""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import DateTime, Dialect, TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(UTC)


class TimeOrderedIds:
    """UUIDs with the layout of version 7: a 48-bit millisecond clock, then 74 random bits.

    Rows written in bulk (the patients of a registry import, the invitations of a campaign) get ids that sort
    together, so inserting them appends to the primary-key index instead of writing to a random page of it for
    every row (uuid4). They stay as unguessable as a uuid4 for anyone who does not know the writing time to the
    millisecond. Randomness is drawn from ``os.urandom`` 4,096 ids at a time (one system call, not one per row),
    and the clock read once per block: the ids of one block share its millisecond and are not ordered among
    themselves.
    """

    _BLOCK: Final = 4096
    _VARIANT: Final = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}

    def __init__(self) -> None:
        self._random = ""
        self._position = 0
        self._clock = ""

    def __call__(self) -> str:
        if self._position >= len(self._random):
            self._random = os.urandom(10 * self._BLOCK).hex()
            self._position = 0
            clock = f"{time.time_ns() // 1_000_000:012x}"
            self._clock = f"{clock[:8]}-{clock[8:]}-7"
        bits = self._random[self._position : self._position + 20]
        self._position += 20
        return f"{self._clock}{bits[:3]}-{self._VARIANT[bits[3]]}{bits[4:7]}-{bits[7:19]}"
