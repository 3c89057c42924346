"""The generic webhook's signature, as Stripe signs its webhooks.

Header `X-Kassa-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>`.
The receiver recomputes the HMAC over the raw bytes it received (never over re-serialized
JSON), compares in constant time, and refuses a timestamp further than a tolerance from its
own clock: a captured request replayed later fails. A receiver in ten lines:

    import hashlib, hmac, time

    def verify(secret: str, body: bytes, header: str, tolerance: int = 300) -> bool:
        parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
        t, v1 = parts.get("t", ""), parts.get("v1", "")
        if not t.isdigit() or abs(time.time() - int(t)) > tolerance:
            return False  # no timestamp, or too old: a replay
        signed = t.encode() + b"." + body
        expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, v1)

Nothing here knows Flask.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

HEADER = "X-Kassa-Signature"
# How far a timestamp may be from the receiver's clock, in seconds (Stripe's default).
TOLERANCE_SECONDS = 300
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix  # nosec B105


class SignatureError(Exception):
    """A signature header that is missing, malformed, wrong, or too old (a replay)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def new_secret() -> str:
    """A fresh signing secret for a webhook client (shown to its owner, kept in settings)."""
    return SECRET_PREFIX + secrets.token_hex(24)


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    """The header value for `body` sent now (or at `timestamp`)."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    return f"t={t},v1={_digest(secret, t, body)}"


def verify(secret: str, body: bytes, header: str | None, *,
           tolerance: int = TOLERANCE_SECONDS, now: float | None = None) -> int:
    """Check a signature header against the raw `body`.

    Several `v1=` values are accepted (one per secret while a secret is being rotated);
    any one matching is enough.

    :returns: the signed timestamp.
    :raises SignatureError: missing or malformed header ("malformed"), a timestamp outside
        the tolerance ("expired": a replay or a wrong clock), no matching HMAC ("mismatch").
    """
    timestamp, candidates = None, []
    for part in (header or "").split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1" and value:
            candidates.append(value)
    if timestamp is None or not candidates:
        raise SignatureError("malformed", f"{HEADER} needs t=<unix seconds> and v1=<hex>")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise SignatureError("expired", f"signed {int(current - timestamp)} s away from now; "
                                        f"at most {tolerance} s is accepted")
    expected = _digest(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, value) for value in candidates):
        raise SignatureError("mismatch", "the signature does not match the body")
    return timestamp
