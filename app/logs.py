"""Logging: JSON or plain lines, a request id on every line, secrets masked.

- `context`: a contextvar with the fields every log line of the current unit of work carries
  (`request_id`; `job_id` and `job` while the worker runs a job). The web sets it per request
  (`init_app`), the worker per job (app/jobs/worker.py), and `app.jobs.enqueue` stores the
  request id on the job, so one id follows a bank callback through every job it causes.
- `redact()`: the one redaction function. It masks the secret values it is given (the app's
  settings: `secret_values()`) and what looks like a credential wherever it appears (bearer
  tokens, Authorization values, bot tokens in Telegram URLs, `token=` / `password=`, the API
  keys and webhook secrets Kassa shows once). `RedactFilter` runs it on every record;
  `scrub()` on error texts shown to people (the admin dashboard, `flask doctor`).
- `JsonFormatter`: one JSON object per line (`LOG_FORMAT=json`, the production default).
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

MASK = "***"
# The settings whose values never appear in a log line or an error shown to people.
SECRET_SETTINGS = ("SECRET_KEY", "TELEGRAM_BOT_TOKEN", "RAIFFEISEN_SECRET_KEY", "ATOL_PASSWORD",
                   "TELEGRAM_WEBHOOK_SECRET", "METRICS_TOKEN")
# Shorter values are not masked by value: they would mask ordinary words (the patterns below
# still catch them in their usual places).
MIN_SECRET_LENGTH = 6

_PATTERNS = [
    # Authorization: <scheme> <credentials>, in a header dump or a message.
    (re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)(?:(bearer|basic|tma|token)\s+)?"
                r"[^\s\"',;]+"),
     lambda m: f"{m.group(1)}{m.group(2) + ' ' if m.group(2) else ''}{MASK}"),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]+"), lambda m: f"{m.group(1)}{MASK}"),
    # A bot token: in a Bot API URL (/bot<token>/method), or alone (123456:AA...).
    (re.compile(r"(/bot)[^/\s]{10,}(?=/)"), lambda m: f"{m.group(1)}{MASK}"),
    (re.compile(r"(?<!\d)\d{5,}:[A-Za-z0-9_-]{30,}"), lambda m: MASK),
    # token=..., password=..., secret=... in query strings, forms and key=value dumps.
    (re.compile(r"(?i)\b((?:[a-z_]*token|password|passwd|secret|api_key|apikey)"
                r"[\"']?\s*[=:]\s*[\"']?)[^\s&\"',;]+"),
     lambda m: f"{m.group(1)}{MASK}"),
    # The constructor API's keys (app/constructor/clients.py) and webhook signing secrets
    # (app/constructor/signing.py), shown to their owner once.
    (re.compile(r"\bkassa_[A-Za-z0-9_-]{20,}"), lambda m: f"kassa_{MASK}"),
    (re.compile(r"\bwhsec_[0-9a-f]{16,}"), lambda m: f"whsec_{MASK}"),
    # The password in a URL: scheme://user:password@host.
    (re.compile(r"([a-z][a-z0-9+.-]*://[^/\s:@]*:)[^/\s@]+@"), lambda m: f"{m.group(1)}{MASK}@"),
]


def mask_values(text: str, values: Iterable[str], min_length: int = MIN_SECRET_LENGTH) -> str:
    """`text` with each of `values` (at least `min_length` long) as `***`, the longest
    first, so a secret that contains another is masked whole."""
    for value in sorted({v for v in values if v}, key=len, reverse=True):
        if len(value) >= min_length and value in text:
            text = text.replace(value, MASK)
    return text


def redact(text: str, secret_values: Iterable[str] = ()) -> str:
    """`text` with every given secret value and every credential-looking part as `***`."""
    if not text:
        return text
    text = mask_values(text, secret_values)
    for pattern, replace in _PATTERNS:
        text = pattern.sub(replace, text)
    return text


def secret_values(config: Mapping[str, Any]) -> list[str]:
    """The secret settings' values in `config`, and the database's password."""
    values = [str(config[name]) for name in SECRET_SETTINGS if config.get(name)]
    url = urlsplit(str(config.get("SQLALCHEMY_DATABASE_URI") or ""))
    try:
        password = url.password
    except ValueError:
        password = None
    if password:
        values += [password, unquote(password)]
    return values


def scrub(text: str) -> str:
    """`text` redacted with the current app's secrets (an error to show or store)."""
    from flask import current_app

    return redact(text, secret_values(current_app.config))


# -- the context every line carries --------------------------------------------------------

context: ContextVar[Mapping[str, Any] | None] = ContextVar("kassa_log_context", default=None)

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def new_request_id() -> str:
    return secrets.token_hex(16)


def sane_request_id(value: str | None) -> str:
    """An incoming X-Request-ID if it is safe to log and pass on (1-64 characters of
    A-Z a-z 0-9 . _ -), otherwise a new one."""
    if value and _SANE_REQUEST_ID.fullmatch(value):
        return value
    return new_request_id()


def current_request_id() -> str | None:
    fields = context.get()
    return fields.get("request_id") if fields else None


class ContextFilter(logging.Filter):
    """Puts the context's fields on every record (`request_id` is always there, maybe None)."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = context.get() or {}
        record.request_id = fields.get("request_id")
        for name, value in fields.items():
            if name != "request_id" and not hasattr(record, name):
                setattr(record, name, value)
        return True


class RedactFilter(logging.Filter):
    """Masks secrets in the message, the formatted exception and string extras of every
    record, before any formatter sees them."""

    def __init__(self, secrets_: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = list(secrets_)
        self._exceptions = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep what there is
            message = str(record.msg)
        record.msg, record.args = redact(message, self.secrets), None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._exceptions.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
            # The formatters use exc_text; the live exception (and its message) is dropped.
            record.exc_info = None
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.secrets)
        for name, value in vars(record).items():
            if name not in _RECORD_FIELDS and isinstance(value, str):
                setattr(record, name, redact(value, self.secrets))
        return True


_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "request_id"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (UTC, ISO 8601), level, logger, message, process,
    request_id, the record's extra fields, and exc_info as text."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
            "request_id": getattr(record, "request_id", None),
        }
        for name, value in vars(record).items():
            if name not in _RECORD_FIELDS:
                line[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc_info"] = record.exc_text
        if record.stack_info:
            line["stack_info"] = record.stack_info
        return json.dumps(line, ensure_ascii=False, default=str)


class PlainFormatter(logging.Formatter):
    """`time LEVEL logger [pid request-id] message`, for people reading a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(process)d%(rid)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None)
        record.rid = f" {request_id}" if request_id else ""
        return super().format(record)


LOG_FORMATS = ("json", "plain")


# -- the web: one id per request --------------------------------------------------------------

_STARTED = "kassa.request_started"
# Asked every few seconds by a load balancer or a scraper: their lines are DEBUG.
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_CONTEXT_RESET = "kassa.log_context_token"

request_logger = logging.getLogger("kassa.request")


def request_seconds() -> float | None:
    """How long the current request has taken so far (None outside `init_app`'s hooks)."""
    from flask import request

    started = request.environ.get(_STARTED)
    return time.perf_counter() - started if started is not None else None


def init_app(app) -> None:
    """Every request: an id (the caller's X-Request-ID if sane), set for its log lines and
    returned in the response; in JSON mode, one INFO line when it is answered."""
    from flask import request

    log_requests = app.config["LOG_FORMAT"] == "json"

    def start() -> None:
        environ = request.environ
        environ[_STARTED] = time.perf_counter()
        request_id = sane_request_id(environ.get("HTTP_X_REQUEST_ID"))
        environ[_CONTEXT_RESET] = context.set({"request_id": request_id})

    def finish(response):
        request_id = current_request_id()
        if request_id:
            response.headers[REQUEST_ID_HEADER] = request_id
        if log_requests:
            seconds = request_seconds()
            level = logging.DEBUG if request.path in QUIET_PATHS else logging.INFO
            request_logger.log(
                level, "%s %s %s", request.method, request.path, response.status_code,
                extra={"method": request.method, "path": request.path,
                       "status": response.status_code,
                       "duration_ms": round(seconds * 1000, 1) if seconds is not None else None})
        return response

    def end(exc: BaseException | None = None) -> None:
        token = request.environ.pop(_CONTEXT_RESET, None)
        if token is not None:
            try:
                context.reset(token)
            except ValueError:  # set in another context (a copied one): nothing to undo
                context.set(None)

    # First of all: the lines other before_request functions write carry the id too.
    app.before_request_funcs.setdefault(None, []).insert(0, start)
    app.after_request(finish)
    app.teardown_request(end)
