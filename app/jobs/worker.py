"""The worker loop: claim due jobs with a lease, run their handlers, retry with backoff.

Several workers may share one PostgreSQL database: claims use FOR UPDATE SKIP LOCKED, so
no job is handed to two workers. On SQLite every transaction is BEGIN IMMEDIATE, which
serializes claims. A worker that dies leaves its jobs leased; when the lease runs out,
another worker takes them again.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from datetime import timedelta

import sqlalchemy as sa
from flask import Flask

from app.extensions import db
from app.jobs import RetryJob, get_handler, periodic_jobs
from app.models import Job, JobStatus, utcnow

logger = logging.getLogger(__name__)

BACKOFF_BASE_SECONDS = 2.0
BACKOFF_MAX_SECONDS = 3600.0


def backoff_seconds(attempts: int, base: float = BACKOFF_BASE_SECONDS) -> float:
    """2 s, 4 s, 8 s ... capped at an hour, with ±20 % jitter so retries don't stampede."""
    delay = min(base * 2 ** max(attempts - 1, 0), BACKOFF_MAX_SECONDS)
    return delay * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not security


class Worker:
    """Runs jobs for one Flask app. `run()` loops until `stop` is set."""

    def __init__(self, app: Flask, *, worker_id: str | None = None, batch: int = 10):
        self.app = app
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{id(self) % 10000}"
        self.batch = batch
        self.stop = threading.Event()
        self.lease = timedelta(seconds=app.config["JOB_LEASE_SECONDS"])
        self.backoff_base = float(app.config.get("JOB_BACKOFF_SECONDS", BACKOFF_BASE_SECONDS))
        self._next_arm = 0.0

    def run(self) -> None:
        logger.info("worker %s started", self.worker_id)
        idle = float(self.app.config.get("WORKER_IDLE_SLEEP", 0.5))
        while not self.stop.is_set():
            try:
                with self.app.app_context():
                    self.arm_periodic()
                    done = self.run_once()
            except Exception:
                # The database may be restarting: wait and try again; nothing is lost.
                logger.exception("worker loop error")
                done = 0
            if not done:
                self.stop.wait(idle)
        logger.info("worker %s stopped", self.worker_id)

    def run_once(self) -> int:
        """Claim up to `batch` due jobs and run them. Needs an app context.

        :returns: how many jobs were run.
        """
        claimed = self.claim()
        for index, job_id in enumerate(claimed):
            if self.stop.is_set():
                self._release(claimed[index:])
                break
            self.execute(job_id)
        return len(claimed)

    def _release(self, job_ids: list[int]) -> None:
        """Give back jobs claimed but not started (the worker is stopping): they run at once
        on another worker instead of waiting out the lease, and keep their attempt."""
        db.session.execute(
            sa.update(Job)
            .where(Job.id.in_(job_ids), Job.locked_by == self.worker_id,
                   Job.status == JobStatus.RUNNING)
            .values(status=JobStatus.QUEUED, attempts=Job.attempts - 1, locked_by=None,
                    locked_until=None, updated_at=utcnow())
        )
        db.session.commit()

    def claim(self) -> list[int]:
        now = utcnow()
        due = sa.or_(
            sa.and_(Job.status == JobStatus.QUEUED, Job.run_at <= now),
            sa.and_(Job.status == JobStatus.RUNNING, Job.locked_until < now),
        )
        try:
            jobs = db.session.scalars(
                sa.select(Job).where(due).order_by(Job.run_at, Job.id)
                .limit(self.batch).with_for_update(skip_locked=True)
            ).all()
            ids = []
            for job in jobs:
                if job.status == JobStatus.RUNNING:
                    logger.warning(
                        "job %s %s: lease of %s ran out; taking it again",
                        job.id, job.name, job.locked_by,
                    )
                if job.attempts >= job.max_attempts:
                    self._bury(job, job.last_error or "worker died on the last attempt")
                    continue
                job.status = JobStatus.RUNNING
                job.attempts += 1
                job.locked_by = self.worker_id
                job.locked_until = now + self.lease
                ids.append(job.id)
            db.session.commit()
            return ids
        except Exception:
            db.session.rollback()
            raise

    def execute(self, job_id: int) -> None:
        job = db.session.get(Job, job_id)
        if job is None or job.locked_by != self.worker_id or job.status != JobStatus.RUNNING:
            # Earlier jobs of the batch outlasted this one's lease and another worker took
            # it (it may be done already): running the handler again would repeat its effects.
            logger.warning("job %s: lease lost to %s before it started; skipped",
                           job_id, job and job.locked_by)
            db.session.rollback()
            return
        name, payload, attempts = job.name, dict(job.payload or {}), job.attempts
        db.session.rollback()  # end the read transaction before the handler's own work
        fn = get_handler(name)
        started = time.monotonic()
        try:
            if fn is None:
                raise LookupError(f"no handler registered for job {name!r}")
            fn(payload)
        except RetryJob as retry:
            db.session.rollback()
            self._finish(job_id, retry_in=retry.delay, error=str(retry), count_attempt=False)
        except Exception as exc:
            db.session.rollback()
            logger.warning(
                "job %s %s failed (attempt %d): %s", job_id, name, attempts, exc,
                exc_info=not isinstance(exc, LookupError),
            )
            self._finish(job_id, retry_in=backoff_seconds(attempts, self.backoff_base),
                         error=repr(exc)[:2000])
        else:
            logger.info(
                "job %s %s done in %.0f ms", job_id, name, (time.monotonic() - started) * 1000
            )
            self._finish(job_id)

    def _finish(
        self,
        job_id: int,
        *,
        retry_in: float | None = None,
        error: str | None = None,
        count_attempt: bool = True,
    ) -> None:
        job = db.session.scalars(
            sa.select(Job).where(Job.id == job_id).with_for_update()
        ).one()
        if job.locked_by != self.worker_id or job.status != JobStatus.RUNNING:
            # Our lease ran out and another worker took the job: its outcome wins.
            logger.warning("job %s: lease lost to %s; result dropped", job_id, job.locked_by)
            db.session.rollback()
            return
        job.locked_by = None
        job.locked_until = None
        if retry_in is None:
            job.status = JobStatus.DONE
            job.finished_at = utcnow()
            job.last_error = None
        else:
            job.last_error = error
            if not count_attempt:
                job.attempts -= 1
            if job.attempts >= job.max_attempts:
                self._bury(job, error or "failed")
            else:
                job.status = JobStatus.QUEUED
                job.run_at = utcnow() + timedelta(seconds=retry_in)
        db.session.commit()

    @staticmethod
    def _bury(job: Job, error: str) -> None:
        logger.error("job %s %s is dead after %d attempts: %s",
                     job.id, job.name, job.attempts, error)
        job.status = JobStatus.DEAD
        job.last_error = error
        job.locked_by = None
        job.locked_until = None
        job.finished_at = utcnow()

    def arm_periodic(self) -> None:
        """Make sure each periodic job has a row, and re-queue it when its interval is up.

        The row's key is `periodic:<name>` and re-arming is a conditional UPDATE, so any
        number of workers run each periodic job once per interval.
        """
        from app.jobs import enqueue

        if time.monotonic() < self._next_arm or not periodic_jobs():
            return
        self._next_arm = time.monotonic() + 1.0
        now = utcnow()
        for name, every in periodic_jobs().items():
            key = f"periodic:{name}"
            enqueue(name, {}, key=key, max_attempts=1_000_000)
            db.session.execute(
                sa.update(Job)
                .where(
                    Job.key == key,
                    Job.status.in_([JobStatus.DONE, JobStatus.DEAD]),
                    Job.finished_at <= now - timedelta(seconds=every),
                )
                .values(status=JobStatus.QUEUED, run_at=now, attempts=0, updated_at=now)
            )
        db.session.commit()
