"""Rate limits that hold across processes and machines (Flask-Limiter on `limits`).

The counters live where `RATELIMIT_STORAGE_URI` says: by default Kassa's own database
(`kassa-db://`, app/ratelimit/storage.py), so every gunicorn worker and every web machine
that shares the database shares them; `redis://...` works too for an operator who runs
Redis (the `redis` package is then theirs to install). The strategy is the fixed window:
one row per limit and client and one statement per hit (a moving window would keep a row
per hit).

Each room says what it limits in its `init_app` with `limit(...)`: the limits are checked
before any view code runs (Flask-Limiter's before_request), so an over-limit request
changes nothing. The limit strings come from the config (`RATELIMIT_*`, README), read on
every request. A request over a limit gets 429 with `Retry-After`: JSON `{"ok": false,
"error": "rate_limited", "message": ...}` by default (the API, the bank's callback, the
webhook); a room may answer in its own style with an error handler for
`RateLimitExceeded` (the admin login page, the Mini Apps' screens).

If the storage cannot be reached, Flask-Limiter's in-memory fallback counts in this process
until the storage answers again (it logs one warning line, and one when it recovers): the
limits keep holding per process, and nothing fails for want of a counter. A bank callback
refused meanwhile is resent by the bank.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable

from flask import Blueprint, Flask, current_app, request
from flask_babel import gettext as _
from flask_limiter import Limiter, RateLimitExceeded, RequestLimit
from limits import parse_many
from limits.errors import ConfigurationError

from app.config import ConfigError
from app.errors import error_response

logger = logging.getLogger(__name__)

EXTENSION = "kassa.ratelimit"
LIMITED_BLUEPRINTS = "kassa.ratelimit.blueprints"
PURGE_JOB = "ratelimit.purge"
PURGE_INTERVAL_SECONDS = 3600

#: The config keys that hold a limit string ("600/minute", "10/second;300/hour").
LIMIT_KEYS = ("RATELIMIT_ADMIN_LOGIN", "RATELIMIT_API", "RATELIMIT_SBP_CALLBACK",
              "RATELIMIT_TELEGRAM_WEBHOOK", "RATELIMIT_MINIAPP")

__all__ = ["RateLimitExceeded", "client_ip", "init_app", "limit", "rate_limited_message",
           "retry_after"]


def client_ip() -> str:
    """The client's address, as the rest of Kassa sees it: behind the proxy, gunicorn's
    --forwarded-allow-ips puts the client's address in REMOTE_ADDR."""
    return request.remote_addr or "unknown"


def _ip_key() -> str:
    return f"ip:{client_ip()}"


def init_app(app: Flask) -> None:
    """Check the limit settings, build the app's limiter on its storage, and register the
    429 answer and the job that deletes expired counters."""
    _check_limits(app.config)
    from app.extensions import db
    from app.ratelimit.storage import SCHEME, DatabaseStorage  # noqa: F401 - registers the scheme

    uri = app.config.get("RATELIMIT_STORAGE_URI") or f"{SCHEME}://"
    options = dict(app.config.get("RATELIMIT_STORAGE_OPTIONS") or {})
    if uri.split(":", 1)[0] == SCHEME:
        with app.app_context():
            options["engine"] = db.engine
        app.before_request(_no_transaction_left_open)
    # One limiter per app (tests build several apps in one process); the limits are
    # registered on it by the rooms.
    limiter = Limiter(_ip_key, storage_uri=uri, storage_options=options,
                      strategy="fixed-window", key_prefix="", swallow_errors=True,
                      in_memory_fallback_enabled=True,
                      headers_enabled=False, on_breach=_log_breach)
    try:
        limiter.init_app(app)
    except (ConfigurationError, ValueError, ImportError) as exc:
        raise ConfigError(f"RATELIMIT_STORAGE_URI cannot be used: {exc}") from exc
    app.extensions[EXTENSION] = limiter
    app.extensions[LIMITED_BLUEPRINTS] = {}
    app.register_error_handler(RateLimitExceeded, _too_many_requests)

    from app import jobs

    jobs.registry(app).periodic(PURGE_JOB, PURGE_INTERVAL_SECONDS, purge_expired)


def _no_transaction_left_open() -> None:
    """SQLite has one writer: a hit written while this thread's session holds a transaction
    would wait for that transaction, that is for ever (the busy timeout). A request starts
    with none, except where one app context serves several requests (tests, a script) and
    an earlier request left its session's transaction open: that one is committed before a
    limited request is counted, as the earlier request's view would have done."""
    from app.extensions import db

    counted = current_app.extensions[LIMITED_BLUEPRINTS].get(request.blueprint, ())
    if (any(check() for check in counted)
            and db.session().in_transaction()
            and db.session.get_bind().dialect.name == "sqlite"):
        db.session.commit()


def _check_limits(config: dict) -> None:
    problems = []
    for key in LIMIT_KEYS:
        value = config.get(key)
        try:
            if not value or not parse_many(value):
                raise ValueError(value)
        except ValueError:
            problems.append(f"{key} must be a limit such as 600/minute or 10/second;300/hour, "
                            f"got {value!r}")
    if problems:
        raise ConfigError(problems)


def limiter(app: Flask | None = None) -> Limiter:
    return (app or current_app).extensions[EXTENSION]


def limit(app: Flask, bp: Blueprint, config_key: str, *, scope: str,
          key_func: Callable[[], str] = _ip_key, endpoints: Iterable[str] | None = None,
          methods: Iterable[str] | None = None) -> None:
    """Limit requests to the blueprint `bp` (only `endpoints`, only `methods`, if given) to
    the config's `config_key` per `key_func` (the client's address by default). All the
    blueprint's limited endpoints share one count per client, named `scope`."""
    if config_key not in LIMIT_KEYS:
        raise RuntimeError(f"{config_key} is not one of {LIMIT_KEYS}")
    only = frozenset(endpoints) if endpoints is not None else None
    verbs = frozenset(m.upper() for m in methods) if methods else None

    def exempt() -> bool:
        return only is not None and request.endpoint not in only

    def counted() -> bool:
        return not exempt() and (verbs is None or request.method in verbs)

    app.extensions[LIMITED_BLUEPRINTS].setdefault(bp.name, []).append(counted)
    limiter(app).shared_limit(
        lambda: current_app.config[config_key], scope=scope, key_func=key_func,
        methods=sorted(verbs) if verbs else None, exempt_when=exempt,
    )(bp)


def _log_breach(breached: RequestLimit) -> None:
    logger.warning("rate limit %s exceeded by %s on %s %s", breached.limit,
                   breached.request_args[0] if breached.request_args else "?",
                   request.method, request.path)


def retry_after() -> int:
    """Seconds until the current request's broken limit lets it through again (at least 1)."""
    current = limiter().current_limit
    if current is None:
        return 1
    return max(1, math.ceil(current.window.reset_time - time.time()))


def rate_limited_message(seconds: int) -> str:
    return _("Слишком много запросов. Повторите через %(seconds)d с.", seconds=seconds)


def _too_many_requests(_exc: RateLimitExceeded):
    """The default 429: JSON for the API, the bank and Telegram, a page for browsers."""
    seconds = retry_after()
    response, status = error_response(429, "rate_limited", rate_limited_message(seconds))
    response = current_app.make_response((response, status))
    response.headers["Retry-After"] = str(seconds)
    return response


def purge_expired(_payload: dict) -> None:
    """Job `ratelimit.purge`: delete the database counters whose window is over."""
    from app.ratelimit.storage import DatabaseStorage

    storage = limiter().storage
    if isinstance(storage, DatabaseStorage):
        deleted = storage.purge_expired()
        if deleted:
            logger.info("deleted %d expired rate limit counters", deleted)
