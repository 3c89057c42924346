"""Sending one callback request over HTTP, and BotHelp's OAuth token that its requests need
(kept per process until it expires).

SSRF: a request to a URL that an admin or an API client set (`check_address=True`; the
constructors' API base URLs are the operator's settings and are not checked) is resolved and
checked right before it is sent (app/httpclient.py `check_outbound_url`): an address that is
not public refuses it, nothing is sent, and the callback's job is dead at once. requests
then resolves the name once more to connect: a DNS answer that changes in the milliseconds
between the two lookups (DNS rebinding with a zero TTL) is the window this leaves open.
Redirects are never followed, so an answer cannot send the request on to an internal
address.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass

import requests
from flask import current_app

from app.constructor import presets
from app.constructor.presets import Callback, OutboundRequest, PresetError
from app.httpclient import UnsafeUrl, check_outbound_url

logger = logging.getLogger(__name__)


# Seconds to connect and to read an answer; a constructor that says nothing in time is
# asked again later.
TIMEOUT = (3.05, 10)
# Statuses that mean "later, perhaps": retried. Any other non-2xx is given up.
RETRY_STATUSES = frozenset({408, 425, 429})


class CallbackFailed(Exception):
    """The client could not be reached or answered "later": the job runs again."""


@dataclass(frozen=True)
class Answer:
    ok: bool
    retry: bool
    status: int | None
    text: str
    error: str | None
    duration_ms: int
    #: Not sent: the URL leads to an address that is not public (SSRF guard).
    refused: bool = False


def send(call: OutboundRequest, *, check_address: bool = False) -> Answer:
    """Send one request (never following a redirect).

    :param check_address: the URL is an admin's or an API client's: refuse it, sending
        nothing, unless every address its host resolves to now is public (or
        OUTBOUND_ALLOW_PRIVATE is on).
    """
    started = time.monotonic()
    if check_address:
        try:
            check_outbound_url(call.url, allow_private=current_app.config.get(
                "OUTBOUND_ALLOW_PRIVATE", False))
        except UnsafeUrl as exc:
            # A name that does not resolve may later (the network's trouble): retried.
            retry = exc.reason == "unresolvable"
            return Answer(False, retry, None, "", f"refused: {exc}", _ms(started),
                          refused=not retry)
    try:
        response = requests.request(call.method, call.url, data=call.body, headers=call.headers,
                                    timeout=current_app.config.get("CALLBACK_TIMEOUT", TIMEOUT),
                                    allow_redirects=False)
    except requests.Timeout:
        return Answer(False, True, None, "", "timeout", _ms(started))
    except requests.RequestException as exc:
        return Answer(False, True, None, "", f"network: {type(exc).__name__}", _ms(started))
    status, text = response.status_code, response.text
    if 200 <= status < 300:
        if call.code_zero and not _code_zero(text):
            return Answer(False, False, status, text, "the answer's code is not 0",
                          _ms(started))
        return Answer(True, False, status, text, None, _ms(started))
    retry = status >= 500 or status in RETRY_STATUSES
    return Answer(False, retry, status, text, f"HTTP {status}", _ms(started))


def _code_zero(text: str) -> bool:
    try:
        return json.loads(text).get("code") in (0, "0")
    except (ValueError, AttributeError):
        return False


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


# -- BotHelp's access token, kept until it expires --------------------------------------------

_tokens: dict[tuple[str, str], tuple[str, float]] = {}
_tokens_lock = threading.Lock()
TOKEN_MARGIN_SECONDS = 60


def _token_key(callback: Callback) -> tuple[str, str]:
    return (callback.base("bothelp_oauth"), str(callback.setting("client_id")))


def forget_token(callback: Callback) -> None:
    with _tokens_lock:
        _tokens.pop(_token_key(callback), None)


def bothelp_token(callback: Callback, log) -> str:
    """A cached access token, or a new one from BotHelp's OAuth (the failed token request is
    logged, its secret masked).

    :raises CallbackFailed: OAuth did not answer, or answered "later".
    :raises PresetError: OAuth refused the client's credentials.
    """
    call = presets.bothelp_token_request(callback)
    key = _token_key(callback)
    with _tokens_lock:
        cached = _tokens.get(key)
    if cached is not None and cached[1] > time.monotonic():
        return cached[0]
    answer = send(call)
    token, lifetime = None, 0.0
    if answer.ok:
        try:
            data = json.loads(answer.text)
            token, lifetime = data.get("access_token"), float(data.get("expires_in") or 0)
        except (ValueError, AttributeError, TypeError):
            token = None
        if not token:
            answer = Answer(False, False, answer.status, answer.text,
                            "no access_token in the answer", answer.duration_ms)
    if token is None:
        log.write(call, answer)
        if answer.retry:
            raise CallbackFailed(f"BotHelp OAuth: {answer.error}")
        raise PresetError(f"BotHelp OAuth refused the client's credentials: {answer.error}")
    with _tokens_lock:
        _tokens[key] = (token, time.monotonic() + max(lifetime - TOKEN_MARGIN_SECONDS, 0))
    return token
