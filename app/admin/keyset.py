"""Keyset cursors of the payments list: the last row's sort values and (kind, id), as an
opaque URL-safe token, typed back for the sort when it returns."""

from __future__ import annotations

import base64
import json
from datetime import datetime

# -- the cursor-------------------------------------------------------------------------------

def encode_cursor(values: list) -> str:
    plain = [value.isoformat() if isinstance(value, datetime) else value for value in values]
    return base64.urlsafe_b64encode(json.dumps(plain).encode()).decode().rstrip("=")


def decode_cursor(token: str | None, sort: str) -> list | None:
    """The cursor's values, typed for `sort`; None for a cursor that is missing or bad
    (the list then starts at the first page)."""
    if not token:
        return None
    try:
        values = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        *primary, src, ident = values
        types = _primary_types(sort)
        if len(primary) != len(types) or src not in ("o", "p") or not isinstance(ident, int):
            return None
        return [kind(value) for kind, value in zip(types, primary, strict=True)] + [src, ident]
    except (ValueError, TypeError):
        return None


def _primary_types(sort: str) -> list:
    name = sort.lstrip("-")
    return {"created": [datetime.fromisoformat], "amount": [int],
            "status": [str, datetime.fromisoformat]}[name]
