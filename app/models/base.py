"""Shared model pieces: UTC timestamps, string enums, the transition-table helper."""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from app.errors import InvalidStateError

logger = logging.getLogger(__name__)

# Primary keys are INTEGER: on PostgreSQL a bigger number in a query is an error, not "no
# such row", so ids from outside (URLs, carts) are checked against this first.
MAX_ROW_ID = 2**31 - 1


def utcnow() -> datetime:
    """The current time, timezone-aware UTC. Use it (a callable) as column default."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """A timestamp that is always aware UTC in Python, whatever the database keeps.

    SQLite has no time zones, so values are stored as naive UTC there; PostgreSQL gets
    `timestamptz`. Naive datetimes are refused on the way in: they hide bugs.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use aware UTC (app.models.base.utcnow)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def str_enum(enum_cls: type[enum.Enum], name: str) -> sa.Enum:
    """A VARCHAR column with a CHECK constraint holding the enum's lowercase values."""
    return sa.Enum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=24,
        values_callable=lambda cls: [member.value for member in cls],
        validate_strings=True,
    )


class InvalidTransition(InvalidStateError):
    code = "invalid_transition"


def move(obj, to: enum.Enum, table: Mapping[enum.Enum, frozenset], what: str, *,
         attribute: str = "status") -> bool:
    """Move `obj.status` (or another state `attribute`) to `to` if the table allows it.

    :returns: True when the status changed, False when it already was `to` (a repeat).
    :raises InvalidTransition: the table forbids it; nothing is changed.
    """
    current = getattr(obj, attribute)
    if current == to:
        logger.debug("%s %s already %s", what, obj.id, to.value)
        return False
    if to not in table.get(current, frozenset()):
        logger.error(
            "refused transition of %s %s: %s -> %s",
            what, obj.id, current.value, to.value,
            extra={"object": what, "object_id": obj.id},
        )
        raise InvalidTransition(f"{what} {obj.id}: {current.value} -> {to.value} is not allowed")
    logger.info("%s %s: %s -> %s", what, obj.id, current.value, to.value)
    setattr(obj, attribute, to)
    obj.updated_at = utcnow()
    return True


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False
    )
