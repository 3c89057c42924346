"""Outbound HTTP for providers: timeouts always, logs without secrets, retries only when safe.

Providers (app/sbp/raiffeisen.py, app/fiscal/...) use this; nothing here knows Flask.

`check_outbound_url` is the SSRF guard for URLs that an admin or an API client sets (the
constructor callbacks): http(s) only, and every address the host resolves to must be public.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import re
import socket
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import requests

logger = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE", "PUT"})
RETRY_STATUSES = frozenset({502, 503, 504})


class ProviderError(Exception):
    """An outside service refused a call or could not be reached.

    :param code: the provider's own error code ("ERROR.REFUND_INSUFFICIENT_FUNDS"), or
        "network" / "timeout" / "http_<status>" / "bad_response" when it gave none.
    :param retryable: True when the same call may succeed later (network, 5xx).
    :param retry_after: seconds to wait before that call, when the provider says so.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        provider: str = "",
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ):
        super().__init__(f"{provider} {code}: {message}" if provider else f"{code}: {message}")
        self.code = code
        self.message = message
        self.provider = provider
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number")


def _storable(text: str) -> bool:
    """Text a database driver can take: no NUL, no lone surrogate."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def loads_inbound(raw: bytes | str, **kwargs: Any) -> Any:
    """JSON that someone POSTed to us (a bank's, a register's, Telegram's callback), read as
    `json.loads(raw, **kwargs)` but refused with ValueError when it could not be kept:
    absurd nesting (RecursionError), NaN or Infinity (PostgreSQL's json refuses them), and
    text with NUL or a lone surrogate (no database driver takes them). Found by fuzzing:
    each of these was a 500.
    """
    kwargs.setdefault("parse_constant", _no_constant)
    try:
        data = json.loads(raw, **kwargs)
    except RecursionError:
        raise ValueError("JSON nested too deep") from None
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if not _storable(value):
                raise ValueError("JSON text with NUL or a lone surrogate")
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError("JSON number out of range")
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return data


@dataclass(frozen=True)
class HttpResponse:
    status: int
    text: str

    def json(self) -> Any:
        """The body as JSON, with numbers as Decimal so money keeps every digit."""
        return json.loads(self.text, parse_float=Decimal) if self.text else {}


class HttpClient:
    """A requests.Session bound to one base URL.

    :param retries: extra attempts for a safe request (or one marked idempotent) after a
        network error or a 502/503/504. A non-idempotent POST is sent once.
    """

    def __init__(
        self,
        base_url: str,
        *,
        provider: str,
        timeout: tuple[float, float] = (3.05, 15),
        retries: int = 2,
        backoff: float = 0.3,
        session: requests.Session | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.provider = provider
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.session = session or requests.Session()

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> HttpResponse:
        method = method.upper()
        safe = idempotent if idempotent is not None else method in SAFE_METHODS
        url = f"{self.base_url}{path}"
        data = None
        send_headers = {"Accept": "application/json"}
        if json_body is not None:
            data = dumps(json_body).encode()
            send_headers["Content-Type"] = "application/json; charset=utf-8"
        send_headers.update(headers or {})
        attempts = 1 + (self.retries if safe else 0)
        for attempt in range(1, attempts + 1):
            started = time.monotonic()
            try:
                resp = self.session.request(
                    method, url, data=data, headers=send_headers, timeout=self.timeout
                )
            except requests.Timeout as exc:
                error = ProviderError(
                    "timeout", f"{method} {path} timed out", provider=self.provider, retryable=True
                )
                cause: Exception = exc
            except requests.RequestException as exc:
                error = ProviderError(
                    "network",
                    f"{method} {path}: {type(exc).__name__}",
                    provider=self.provider,
                    retryable=True,
                )
                cause = exc
            else:
                elapsed = (time.monotonic() - started) * 1000
                logger.info(
                    "%s %s %s -> %s in %.0f ms",
                    self.provider, method, path, resp.status_code, elapsed,
                    extra={"provider": self.provider, "status": resp.status_code},
                )
                if resp.status_code in RETRY_STATUSES and attempt < attempts:
                    time.sleep(self.backoff * attempt)
                    continue
                return HttpResponse(resp.status_code, resp.text)
            logger.warning(
                "%s %s %s failed (attempt %d/%d): %s",
                self.provider, method, path, attempt, attempts, error.message,
            )
            if attempt >= attempts:
                raise error from cause
            time.sleep(self.backoff * attempt)
        raise AssertionError("unreachable")  # pragma: no cover


_DECIMAL_MARK = re.compile(r'"\\u0000dec:(-?[0-9]+(?:\.[0-9]+)?)"')


def dumps(value: Any) -> str:
    """JSON text in which every Decimal is a number with exactly its own digits.

    Banks read "100.10" and the signature of a callback is computed over the text, so money
    must never pass through binary float on its way out.
    """
    text = json.dumps(value, default=_json_default, ensure_ascii=False)
    return _DECIMAL_MARK.sub(r"\1", text)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return f"\u0000dec:{value}"
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# -- the SSRF guard ------------------------------------------------------------------------------

#: NAT64's well-known prefix: 64:ff9b::a.b.c.d reaches the IPv4 a.b.c.d.
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class UnsafeUrl(ValueError):
    """A URL that outbound calls must not reach.

    :param reason: "scheme" (not http/https), "malformed" (no host, a bad port),
        "unresolvable" (the host has no address) or "private" (an address is not public).
    :param address: the refused address, for "private".
    """

    def __init__(self, reason: str, message: str, *, host: str = "", address: str = ""):
        super().__init__(message)
        self.reason = reason
        self.host = host
        self.address = address


def resolve_host(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (IPv4 and IPv6), as the connection would see them.

    :raises OSError: the name does not resolve.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def is_public_address(text: str) -> bool:
    """False for loopback, private (RFC 1918, ULA, CGNAT), link-local (169.254/16 with the
    cloud metadata address, fe80::/10), multicast, unspecified, reserved and every other
    non-global address, also when wrapped in IPv6 (IPv4-mapped, 6to4, NAT64)."""
    address = ipaddress.ip_address(text.split("%", 1)[0])  # an IPv6 zone is not the address
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        elif address.sixtofour is not None:
            address = address.sixtofour
        elif address in NAT64:
            address = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return not (address.is_loopback or address.is_private or address.is_link_local
                or address.is_multicast or address.is_unspecified or address.is_reserved
                or not address.is_global)


def check_outbound_url(url: str, *, allow_private: bool = False) -> list[str]:
    """Refuse a URL that is not http(s), or whose host resolves (any of its addresses) to an
    address that is not public. `allow_private` (development, tests: the capture servers on
    127.0.0.1) skips the address check, not the scheme check.

    :returns: the checked addresses (empty when `allow_private`).
    :raises UnsafeUrl: why the URL is refused.
    """
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        raise UnsafeUrl("malformed", f"not a valid URL: {url!r}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeUrl("scheme", f"only http:// and https:// URLs are called, not {scheme!r}")
    if not host:
        raise UnsafeUrl("malformed", f"the URL has no host: {url!r}")
    if allow_private:
        return []
    try:
        addresses = resolve_host(host, port or (443 if scheme == "https" else 80))
    except (OSError, UnicodeError):
        raise UnsafeUrl("unresolvable", f"{host} does not resolve", host=host) from None
    if not addresses:
        raise UnsafeUrl("unresolvable", f"{host} does not resolve", host=host)
    for address in addresses:
        if not is_public_address(address):
            raise UnsafeUrl("private", f"{host} resolves to {address}, an internal address",
                            host=host, address=address)
    return addresses
