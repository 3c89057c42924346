"""Telegram Mini App `initData`: validation of the signed launch data, and signing it.

The Mini App sends `Telegram.WebApp.initData` unchanged: a URL query string whose `hash` field
is hex(HMAC-SHA256(key=secret_key, msg=data_check_string)), where
secret_key = HMAC-SHA256(key=b"WebAppData", msg=bot_token) and data_check_string is every other
field (`signature` included), URL-decoded, as `key=value`, sorted by key, joined by "\\n".

This module knows nothing of Flask or the database: plain values in, a dataclass out, and
`InitDataError` with a stable code when the data cannot be trusted.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

# Error codes (the web layer maps them to screens).
MISSING = "missing"  # no initData at all, or no hash in it
MALFORMED = "malformed"  # not a query string, a repeated field, no usable auth_date
BAD_HASH = "bad_hash"  # the hash is not ours: tampered data or another bot's token
EXPIRED = "expired"  # auth_date older than the allowed age
FUTURE = "future"  # auth_date more than FUTURE_TOLERANCE ahead of our clock
BAD_USER = "bad_user"  # no user, or a user that is not a JSON object with an id

HASH_FIELD = "hash"
FUTURE_TOLERANCE = timedelta(minutes=1)
# Telegram sends about ten fields; a bound keeps a hostile string from costing much.
MAX_FIELDS = 64


class InitDataError(Exception):
    """initData that cannot be trusted; `code` is one of the module's error codes."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class InitData:
    """The trusted part of a Mini App launch. `fields` holds every signed field, URL-decoded
    (all but `hash`), for what this class does not name."""

    user_id: int
    first_name: str
    last_name: str | None
    username: str | None
    language_code: str | None
    auth_date: datetime  # aware, UTC
    query_id: str | None
    start_param: str | None
    fields: Mapping[str, str] = field(hash=False)


def _secret_key(bot_token: str) -> bytes:
    return hmac.digest(b"WebAppData", bot_token.encode(), "sha256")


def _data_check_string(fields: Mapping[str, str]) -> str:
    return "\n".join(f"{key}={fields[key]}" for key in sorted(fields) if key != HASH_FIELD)


def _compute_hash(fields: Mapping[str, str], *, bot_token: str) -> str:
    """The hex hash Telegram puts into initData for these (decoded) fields."""
    return hmac.digest(
        _secret_key(bot_token), _data_check_string(fields).encode(), "sha256"
    ).hex()


def sign_init_data(fields: Mapping[str, str], *, bot_token: str) -> str:
    """A raw initData string carrying `fields` and their valid hash, encoded as Telegram does.

    For tests and the demo mode: `fields` are plain (decoded) values, e.g. `user` as a JSON
    string and `auth_date` as a Unix timestamp string.
    """
    if HASH_FIELD in fields:
        raise ValueError("fields must not contain 'hash': it is computed here")
    signed = {**fields, HASH_FIELD: _compute_hash(fields, bot_token=bot_token)}
    return urlencode(signed, quote_via=quote, safe="")


def _split(raw: str) -> dict[str, str]:
    try:
        pairs = parse_qsl(
            raw,
            keep_blank_values=True,
            strict_parsing=True,
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except ValueError as exc:  # also UnicodeDecodeError on bad percent-escapes
        raise InitDataError(MALFORMED, "initData is not a valid query string") from exc
    fields: dict[str, str] = {}
    for key, value in pairs:
        if key in fields:
            raise InitDataError(MALFORMED, f"initData repeats the field {key!r}")
        fields[key] = value
    return fields


def _check_hash(fields: Mapping[str, str], received: str, bot_token: str) -> None:
    if not received.isascii():
        raise InitDataError(BAD_HASH, "initData hash is not a hex string")
    expected = _compute_hash(fields, bot_token=bot_token)
    if not hmac.compare_digest(expected.encode("ascii"), received.encode("ascii")):
        raise InitDataError(BAD_HASH, "initData hash does not match its data")


def _auth_date(fields: Mapping[str, str], *, max_age_seconds: int, now: datetime) -> datetime:
    value = fields.get("auth_date", "")
    if not (value.isascii() and value.isdigit()):
        raise InitDataError(MALFORMED, "initData has no valid auth_date")
    try:
        auth_date = datetime.fromtimestamp(int(value), tz=UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise InitDataError(MALFORMED, "initData auth_date is out of range") from exc
    if auth_date > now + FUTURE_TOLERANCE:
        raise InitDataError(FUTURE, "initData auth_date is in the future")
    if now - auth_date > timedelta(seconds=max_age_seconds):
        raise InitDataError(EXPIRED, "initData is too old; reopen the Mini App")
    return auth_date


def _optional_str(user: Mapping[str, Any], key: str) -> str | None:
    value = user.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InitDataError(BAD_USER, f"initData user {key} is not a string")
    return value


def _user(fields: Mapping[str, str]) -> dict[str, Any]:
    if "user" not in fields:
        raise InitDataError(BAD_USER, "initData has no user")
    try:
        user = json.loads(fields["user"])
    except ValueError as exc:
        raise InitDataError(BAD_USER, "initData user is not JSON") from exc
    if not isinstance(user, dict):
        raise InitDataError(BAD_USER, "initData user is not a JSON object")
    user_id = user.get("id")
    if isinstance(user_id, bool) or not isinstance(user_id, int) or user_id <= 0:
        raise InitDataError(BAD_USER, "initData user has no valid id")
    if not isinstance(user.get("first_name"), str):
        raise InitDataError(BAD_USER, "initData user has no first_name")
    return user


def parse_init_data(
    raw: str, *, bot_token: str, max_age_seconds: int, now: datetime | None = None
) -> InitData:
    """Validate raw initData signed for `bot_token` and return what it says.

    Checks, in order: present, well formed, hash (constant time), auth_date not older than
    `max_age_seconds` nor more than a minute ahead of `now` (default: the current UTC time),
    and a user object with an id. Raises `InitDataError` on the first failure.
    """
    if not bot_token:
        raise ValueError("bot_token is required")
    if max_age_seconds <= 0:
        raise ValueError("max_age_seconds must be positive")
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None:
        raise ValueError("now must be timezone-aware")

    if not raw or not raw.strip():
        raise InitDataError(MISSING, "initData is empty")
    fields = _split(raw)
    received = fields.pop(HASH_FIELD, None)
    if not received:
        raise InitDataError(MISSING, "initData has no hash")
    _check_hash(fields, received, bot_token)
    auth_date = _auth_date(fields, max_age_seconds=max_age_seconds, now=now)
    user = _user(fields)
    return InitData(
        user_id=user["id"],
        first_name=user["first_name"],
        last_name=_optional_str(user, "last_name"),
        username=_optional_str(user, "username"),
        language_code=_optional_str(user, "language_code"),
        auth_date=auth_date,
        query_id=fields.get("query_id"),
        start_param=fields.get("start_param"),
        fields=MappingProxyType(dict(fields)),
    )
