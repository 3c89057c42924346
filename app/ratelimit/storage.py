"""A `limits` storage backend that keeps the counters in Kassa's own database
(`RATELIMIT_STORAGE_URI=kassa-db://`, the default), so every web process and every machine
that shares the database shares the counts.

It serves the fixed-window strategy only: one row per limit and client (`key`, `count`,
`expires_at`), and one statement per hit, an upsert that starts the window again when it
is over:

    INSERT INTO rate_limit_counters (key, count, expires_at) VALUES (:key, :n, :now + window)
    ON CONFLICT (key) DO UPDATE SET
        count = CASE WHEN expires_at <= :now THEN :n ELSE count + :n END,
        expires_at = CASE WHEN expires_at <= :now THEN :now + window ELSE expires_at END
    RETURNING count

Every call runs on a connection and transaction of its own (`engine.begin()`), never the
request's session: the storage neither commits nor rolls back what a view is doing.

It knows nothing of Flask: it is given a SQLAlchemy engine (storage option `engine`).
Time is the process's UTC clock; the machines sharing a database keep their clocks in sync.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import sqlalchemy as sa
from limits.storage import Storage
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from app.extensions import READ_ONLY
from app.models.base import UTCDateTime
from app.models.ratelimit import KEY_MAX, RateLimitCounter

SCHEME = "kassa-db"

TABLE = RateLimitCounter.__table__
INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def _now() -> datetime:
    return datetime.now(UTC)


def _row_key(key: str) -> str:
    return key if len(key) <= KEY_MAX else "sha256:" + hashlib.sha256(key.encode()).hexdigest()


class DatabaseStorage(Storage):
    """Rate limit counters in the `rate_limit_counters` table (PostgreSQL or SQLite)."""

    STORAGE_SCHEME: ClassVar[list[str]] = [SCHEME]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, *,
                 engine: Engine | None = None, now: Callable[[], datetime] = _now,
                 **options):
        if engine is None:
            raise ValueError(f"{SCHEME}:// needs the storage option engine")
        if engine.dialect.name not in INSERTS:
            raise ValueError(f"{SCHEME}:// supports PostgreSQL and SQLite, "
                             f"not {engine.dialect.name}")
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self.engine = engine
        self.now = now
        self._incr = self._incr_statement(engine.dialect.name)

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return sa.exc.SQLAlchemyError

    @staticmethod
    def _incr_statement(dialect: str):
        now = sa.bindparam("now", type_=UTCDateTime)
        expires = sa.bindparam("expires", type_=UTCDateTime)
        amount = sa.bindparam("amount", type_=sa.Integer)
        over = TABLE.c.expires_at <= now
        insert = INSERTS[dialect](TABLE).values(key=sa.bindparam("key"), count=amount,
                                                expires_at=expires)
        return insert.on_conflict_do_update(index_elements=[TABLE.c.key], set_={
            "count": sa.case((over, amount), else_=TABLE.c.count + amount),
            "expires_at": sa.case((over, expires), else_=TABLE.c.expires_at),
        }).returning(TABLE.c.count)

    def _reading(self):
        # SQLite: a reader begins deferred and never queues behind a writer (WAL).
        return self.engine.connect().execution_options(**{READ_ONLY: True})

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """Count `amount` hits on `key`; a window that is over starts again with them.

        :returns: the hits in the current window, these included.
        """
        now = self.now()
        with self.engine.begin() as conn:
            return conn.execute(self._incr, {
                "key": _row_key(key), "amount": amount, "now": now,
                "expires": now + timedelta(seconds=expiry),
            }).scalar_one()

    def get(self, key: str) -> int:
        with self._reading() as conn:
            count = conn.scalar(sa.select(TABLE.c.count).where(
                TABLE.c.key == _row_key(key), TABLE.c.expires_at > self.now()))
            conn.rollback()
        return count or 0

    def get_expiry(self, key: str) -> float:
        """When the key's window ends (a UNIX time); now if it has no window."""
        with self._reading() as conn:
            expires_at = conn.scalar(sa.select(TABLE.c.expires_at).where(
                TABLE.c.key == _row_key(key), TABLE.c.expires_at > self.now()))
            conn.rollback()
        return expires_at.timestamp() if expires_at else time.time()

    def check(self) -> bool:
        try:
            with self._reading() as conn:
                conn.execute(sa.select(1))
                conn.rollback()
        except sa.exc.SQLAlchemyError:
            return False
        return True

    def reset(self) -> int | None:
        with self.engine.begin() as conn:
            return conn.execute(sa.delete(TABLE)).rowcount

    def clear(self, key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.delete(TABLE).where(TABLE.c.key == _row_key(key)))

    def purge_expired(self) -> int:
        """Delete the rows whose window is over (they count for nothing).

        :returns: how many were deleted.
        """
        with self.engine.begin() as conn:
            return conn.execute(sa.delete(TABLE).where(TABLE.c.expires_at <= self.now())
                                ).rowcount
