"""Time source of the sandbox.

Every business timestamp and every expiry check goes through :func:`now`, looked up
on this module at call time, so tests can ``monkeypatch.setattr(clock, "now", ...)``
to move the bank's clock. (Scheduling of retries and refund completion uses
``time.monotonic`` instead, so a frozen fake clock cannot stall the background thread.)
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

#: Moscow time; no DST since 2014, so a fixed offset is exact. The bank emits +03:00.
MSK = timezone(timedelta(hours=3), "MSK")


def now() -> datetime:
    """The current aware time in Moscow."""
    return datetime.now(MSK)


def iso(moment: datetime) -> str:
    """ISO-8601 in Moscow time with microseconds, like ``2020-07-24T17:20:00.999232+03:00``."""
    return moment.astimezone(MSK).isoformat(timespec="microseconds")


def parse_iso(text: object) -> datetime:
    """Parse an ISO-8601 timestamp that carries an offset (``Z`` is accepted).

    Raises ``ValueError`` for anything else, including naive timestamps.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("expected an ISO-8601 timestamp string")
    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("the timestamp has no UTC offset")
    return moment
