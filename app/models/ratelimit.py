"""Rate limit counters (app/ratelimit): one row per limit and client, shared by every web
process through the database."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import UTCDateTime

# Limit keys are short ("LIMITER/ip:203.0.113.7/sbp-callback/1200/1/minute"); a longer one
# is stored as its sha256 (app/ratelimit/storage.py).
KEY_MAX = 255


class RateLimitCounter(db.Model):
    """Hits of one fixed window: `count` hits until `expires_at`, when the window starts
    again. Expired rows mean nothing; the worker deletes them (`ratelimit.purge`)."""

    __tablename__ = "rate_limit_counters"

    key: Mapped[str] = mapped_column(sa.String(KEY_MAX), primary_key=True)
    count: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, index=True)

    def __repr__(self) -> str:
        return f"<RateLimitCounter {self.key} {self.count} until={self.expires_at}>"


# PostgreSQL: counters need no crash safety, so the table writes no WAL and a hit's commit
# does not wait for the disk (after a crash the table comes back empty: every window starts
# again). The migration does the same.
UNLOGGED_DDL = "ALTER TABLE rate_limit_counters SET UNLOGGED"
sa.event.listen(RateLimitCounter.__table__, "after_create",
                sa.DDL(UNLOGGED_DDL).execute_if(dialect="postgresql"))
