"""The outbox: enqueue() in the caller's transaction, a job registry per app, events.

A state change and the jobs it causes commit together or not at all. The worker
(app/jobs/worker.py) runs them later, with retries; every handler must be idempotent.

Each part of Kassa fills its app's registry in its `init_app`:

    registry = jobs.registry(app)
    registry.handler("fiscal.submit", submit)                  # run jobs called so
    registry.subscribe("payment.paid", "telegram.paid", paid)  # a job per published event
    registry.periodic("sbp.reconcile", 15, reconcile)          # one job about every 15 s
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy.dialects import postgresql, sqlite

from app import audit
from app.errors import InvalidStateError, NotFoundError
from app.extensions import db
from app.logs import current_request_id
from app.models import Job, JobStatus, utcnow

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], None]

EXTENSION = "kassa.jobs"
# How often done jobs older than JOB_RETENTION_DAYS are deleted.
PURGE_INTERVAL_SECONDS = 3600


class RetryJob(Exception):
    """Raised by a handler that wants to run again later without it counting as a failure
    (a refund still in progress at the bank, say)."""

    def __init__(self, delay: float, reason: str = ""):
        super().__init__(reason or f"retry in {delay}s")
        self.delay = delay


class GiveUpJob(Exception):
    """Raised by a handler whose job can never succeed as it stands (a callback URL that now
    leads into the internal network): the job is dead at once, with this as its error, for
    an admin to look at and queue again (`retry_dead`) once the cause is fixed."""


class JobRegistry:
    """What one app's jobs are: handlers by job name, the jobs each event causes, and the
    jobs that run on their own every so often."""

    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}
        self.subscribers: dict[str, list[str]] = {}
        self.periodic_jobs: dict[str, float] = {}
        # Jobs whose effect nobody downstream can recognise as a repeat (a Telegram message).
        self.unrepeatable: set[str] = set()

    def handler(self, name: str, fn: Handler | None = None, *, repeatable: bool = True):
        """Run jobs called `name` with `fn`; without `fn`, a decorator.

        `repeatable=False` for a handler whose effect the other side cannot deduplicate
        (a Telegram message): the worker marks such a job done the moment it succeeds,
        not with the rest of its batch, so a worker that dies or loses the database later
        in the batch does not leave it to run a second time.
        """
        if fn is None:
            return functools.partial(self.handler, name, repeatable=repeatable)
        if self.handlers.get(name) not in (None, fn):
            raise RuntimeError(f"job handler {name!r} registered twice")
        self.handlers[name] = fn
        if not repeatable:
            self.unrepeatable.add(name)
        return fn

    def subscribe(self, event: str, job_name: str, fn: Handler | None = None) -> None:
        """When `event` is published, enqueue a `job_name` job in the same transaction;
        `fn`, if given, becomes that job's handler."""
        if fn is not None:
            self.handler(job_name, fn)
        names = self.subscribers.setdefault(event, [])
        if job_name not in names:
            names.append(job_name)

    def periodic(self, name: str, every_seconds: float, fn: Handler | None = None) -> None:
        """Run the job `name` about every `every_seconds`, on one worker at a time; `fn`, if
        given, becomes its handler."""
        if fn is not None:
            self.handler(name, fn)
        self.periodic_jobs[name] = every_seconds


def init_app(app: Flask) -> None:
    """Give the app its (empty) job registry, and the job that forgets old done jobs."""
    app.extensions[EXTENSION] = JobRegistry()
    registry(app).periodic("jobs.purge_done", PURGE_INTERVAL_SECONDS, purge_done)


def registry(app: Flask | None = None) -> JobRegistry:
    """The job registry of `app` (the current app by default)."""
    return (app or current_app).extensions[EXTENSION]


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

    The job carries the current request id (app/logs.py): the web request's, or, for a job
    enqueued by a job, that job's, so one id follows a callback through all it causes.
    """
    now = utcnow()
    values = {
        "name": name,
        "payload": payload or {},
        "key": key,
        "status": JobStatus.QUEUED,
        "attempts": 0,
        "max_attempts": max_attempts or int(current_app.config["JOB_MAX_ATTEMPTS"]),
        "run_at": run_at or now,
        "created_at": now,
        "updated_at": now,
        "request_id": current_request_id(),
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
    """Enqueue one job per subscriber of `event` in the current app, keyed
    `<job name>:<key>`.

    :returns: the job names enqueued.
    """
    names = list(registry().subscribers.get(event, []))
    for job_name in names:
        enqueue(job_name, payload, key=f"{job_name}:{key}")
    return names


def purge_done(payload: dict) -> None:
    """Job `jobs.purge_done`: delete done jobs finished more than JOB_RETENTION_DAYS ago.
    Dead jobs stay until an admin deals with them. (A deleted job's key is free again.)"""
    days = int(current_app.config["JOB_RETENTION_DAYS"])
    deleted = db.session.execute(
        sa.delete(Job).where(Job.status == JobStatus.DONE,
                             Job.finished_at < utcnow() - timedelta(days=days))
    ).rowcount
    db.session.commit()
    if deleted:
        logger.info("deleted %d done jobs older than %d days", deleted, days)


# -- an admin's hand on the queue ------------------------------------------------------------

# The job that delivers a notification (app/telegram/notify.py SEND_JOB).
NOTIFICATION_JOB = "telegram.send"


def _job(job_id: int) -> Job:
    job = db.session.scalars(sa.select(Job).where(Job.id == job_id).with_for_update()
                             ).one_or_none()
    if job is None:
        db.session.rollback()
        raise NotFoundError(_l("Задача не найдена"))
    return job


def retry_dead(job_id: int) -> Job:
    """Give a dead job (out of attempts) a fresh set of attempts, due now; commit.

    :raises InvalidStateError: the job is not dead.
    """
    job = _job(job_id)
    if job.status != JobStatus.DEAD:
        db.session.rollback()
        raise InvalidStateError(_l("Повторить можно только задачу, у которой кончились "
                                   "попытки"), code="job_not_dead")
    now = utcnow()
    attempts, error = job.attempts, job.last_error
    job.status, job.attempts, job.run_at = JobStatus.QUEUED, 0, now
    job.locked_until = job.locked_by = job.finished_at = None
    audit.record("job.retry", target_type="job", target_id=job.id, name=job.name,
                 attempts=attempts, last_error=(error or "")[:300])
    db.session.commit()
    logger.warning("dead job %s %s queued again", job.id, job.name)
    return job


def resend_notification(job_id: int) -> Job:
    """Send a notification (a `telegram.send` job that is done or dead) once more, as a new
    job with the same message and chat; commit.

    :raises InvalidStateError: not a notification, or it is still on its way.
    """
    job = _job(job_id)
    if job.name != NOTIFICATION_JOB:
        db.session.rollback()
        raise InvalidStateError(_l("Это не уведомление"), code="not_a_notification")
    if job.status not in (JobStatus.DONE, JobStatus.DEAD):
        db.session.rollback()
        raise InvalidStateError(_l("Уведомление ещё отправляется"), code="still_sending")
    stamp = utcnow().strftime("%Y%m%d%H%M%S%f")
    key = f"{NOTIFICATION_JOB}:resend-{job.id}-{stamp}"
    enqueue(NOTIFICATION_JOB, dict(job.payload), key=key)
    audit.record("notification.resend", target_type="job", target_id=job.id,
                 chat_id=job.payload.get("chat_id"), key=key)
    db.session.commit()
    return db.session.scalars(sa.select(Job).where(Job.key == key)).one()
