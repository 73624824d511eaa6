"""The declarative base every capability's ``tables.py`` maps onto; constraint names stay stable."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import MetaData, Table
from sqlalchemy.orm import DeclarativeBase

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def table_of(model: type[Base]) -> Table:
    """A mapped class's table. A statement built once from it (or from its columns, ``columns``) and run often takes
    SQLAlchemy's Core path — about 20 µs less per execution than the same statement on the class's attributes, which
    goes through the ORM's compile step — and a session still flushes what is pending before running it (#14)."""
    return cast(Table, model.__table__)


def columns(model: type[Base]) -> Any:
    """A mapped class's table columns (``table_of``)."""
    return table_of(model).c
