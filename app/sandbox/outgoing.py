"""Callbacks the sandbox sends (bank notifications, ATOL reports) and their attempts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class Attempt:
    at: datetime
    url: str
    status_code: int | None = None
    error: str | None = None


@dataclass(kw_only=True)
class Outgoing:
    """A callback the sandbox sends, retried until answered 200; the worker delivers it."""

    url: str
    body: str
    next_due: float | None  # time.monotonic(); None while in flight or when finished
    signature: str | None = None
    #: The header carrying ``signature`` (SBP and ecom notifications spell it differently).
    signature_header: str = "X-Api-Signature-SHA256"
    attempts: list[Attempt] = field(default_factory=list)
    delivered: bool = False
    gave_up: bool = False
    first_monotonic: float | None = None

    @property
    def label(self) -> str:
        raise NotImplementedError
