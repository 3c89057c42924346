"""The outbox: enqueue() in the caller's transaction, handlers registered by name, events.

A state change and the jobs it causes commit together or not at all. The worker
(app/jobs/worker.py) runs them later, with retries; every handler must be idempotent.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite

from app.extensions import db
from app.models import Job, JobStatus, utcnow

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], None]

_handlers: dict[str, Handler] = {}
_subscribers: dict[str, list[str]] = {}
_periodic: dict[str, float] = {}


class RetryJob(Exception):
    """Raised by a handler that wants to run again later without it counting as a failure
    (a refund still in progress at the bank, say)."""

    def __init__(self, delay: float, reason: str = ""):
        super().__init__(reason or f"retry in {delay}s")
        self.delay = delay


def handler(name: str) -> Callable[[Handler], Handler]:
    """Register `fn` as the handler of jobs called `name`."""

    def register(fn: Handler) -> Handler:
        if _handlers.get(name) not in (None, fn):
            raise RuntimeError(f"job handler {name!r} registered twice")
        _handlers[name] = fn
        return fn

    return register


def get_handler(name: str) -> Handler | None:
    return _handlers.get(name)


def subscribe(event: str, job_name: str) -> None:
    """When `event` is published, enqueue a `job_name` job (same transaction)."""
    names = _subscribers.setdefault(event, [])
    if job_name not in names:
        names.append(job_name)


def unsubscribe(event: str, job_name: str) -> None:
    if job_name in _subscribers.get(event, []):
        _subscribers[event].remove(job_name)


def subscribers(event: str) -> list[str]:
    return list(_subscribers.get(event, []))


def periodic(name: str, every_seconds: float) -> None:
    """Run the job `name` about every `every_seconds`, on one worker at a time."""
    _periodic[name] = every_seconds


def periodic_jobs() -> dict[str, float]:
    return dict(_periodic)


def enqueue(
    name: str,
    payload: dict[str, Any] | None = None,
    *,
    key: str | None = None,
    run_at: datetime | None = None,
    max_attempts: int | None = None,
) -> None:
    """Add a job to the current transaction; the caller commits.

    :param key: idempotency key; a second job with the same key is silently not added,
        so a repeated event never doubles its side effects.
    """
    now = utcnow()
    values = {
        "name": name,
        "payload": payload or {},
        "key": key,
        "status": JobStatus.QUEUED,
        "attempts": 0,
        "max_attempts": max_attempts or default_max_attempts(),
        "run_at": run_at or now,
        "created_at": now,
        "updated_at": now,
    }
    # INSERT ... ON CONFLICT (key) DO NOTHING: a repeated key adds nothing, without an
    # error that would spoil the caller's transaction. Built once; only values change.
    db.session.execute(_insert_statement(db.session.get_bind().dialect.name), values)
    logger.debug("enqueued %s key=%s", name, key)


@functools.cache
def _insert_statement(dialect: str):
    module = {"postgresql": postgresql, "sqlite": sqlite}.get(dialect)
    if module is None:
        raise RuntimeError(f"the job outbox supports PostgreSQL and SQLite, not {dialect}")
    return module.insert(Job.__table__).on_conflict_do_nothing(index_elements=["key"])


def publish(event: str, payload: dict[str, Any], *, key: str) -> list[str]:
    """Enqueue one job per subscriber of `event`, keyed `<job name>:<key>`.

    :returns: the job names enqueued.
    """
    names = subscribers(event)
    for job_name in names:
        enqueue(job_name, payload, key=f"{job_name}:{key}")
    return names


def default_max_attempts() -> int:
    """JOB_MAX_ATTEMPTS of the current app (12 unless configured)."""
    from flask import current_app

    return int(current_app.config.get("JOB_MAX_ATTEMPTS", 12))
