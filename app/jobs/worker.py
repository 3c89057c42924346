"""The worker: claim due jobs with a lease, run their handlers, retry with backoff.

One round of `run()`:
1. `arm_periodic` (about once a second): re-queue the periodic jobs whose interval is up.
2. `run_once`: claim up to `batch` due jobs, run each handler, record the outcome:
   done; queued again after a backoff (or after a handler's `RetryJob` delay); or dead
   once out of attempts. An admin looks at dead jobs.
3. Nothing was due: wait WORKER_IDLE_SLEEP.

Several workers may share one database. A claim leases its jobs (`locked_by`,
`locked_until`); PostgreSQL picks them FOR UPDATE SKIP LOCKED, so no job goes to two
workers, and on SQLite every transaction is BEGIN IMMEDIATE, which serializes claims. A
worker that dies leaves its jobs leased; when the lease runs out another worker takes them
again (every handler is idempotent). Each outcome is written only while the lease is still
ours: a worker that lost its job to another one drops its result.
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

from app.extensions import DATABASE_UNAVAILABLE, database_failure, db
from app.jobs import GiveUpJob, RetryJob, enqueue, registry
from app.logs import context as log_context
from app.logs import scrub
from app.models import Job, JobStatus, utcnow

logger = logging.getLogger(__name__)
# The worker's own bookkeeping updates the table directly: it holds no Job objects to keep
# in step, so the ORM's per-statement session synchronisation would be work for nothing.
JOBS = Job.__table__

BACKOFF_BASE_SECONDS = 2.0
BACKOFF_MAX_SECONDS = 3600.0
# After a failed round (the database is down or restarting) the worker waits this long,
# doubling with each failure in a row up to LOOP_RETRY_MAX_SECONDS.
LOOP_RETRY_SECONDS = 0.5
LOOP_RETRY_MAX_SECONDS = 30.0
ARM_PERIODIC_EVERY_SECONDS = 1.0
# After a claim that did not fill its batch, a short pause before the next one.
PARTIAL_CLAIM_PAUSE_SECONDS = 0.05


def backoff_seconds(attempts: int, base: float = BACKOFF_BASE_SECONDS) -> float:
    """2 s, 4 s, 8 s ... capped at an hour, with ±20 % jitter so retries don't stampede."""
    delay = min(base * 2 ** max(attempts - 1, 0), BACKOFF_MAX_SECONDS)
    return delay * random.uniform(0.8, 1.2)  # noqa: S311 - jitter  # nosec B311


class Worker:
    """Runs the jobs of one Flask app. `run()` loops until `stop` is set."""

    def __init__(self, app: Flask, *, worker_id: str | None = None, batch: int = 50):
        self.app = app
        self.jobs = registry(app)
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{id(self) % 10000}"
        self.batch = batch  # the most jobs one claim takes
        self.lease = timedelta(seconds=app.config["JOB_LEASE_SECONDS"])
        self.backoff_base = float(app.config["JOB_BACKOFF_SECONDS"])
        self.stop = threading.Event()
        self.clock = time.monotonic  # seconds, for how long a claimed batch has been running
        # Marks a batch could not write because the database went away mid-batch: written
        # first thing once it answers again (see run_once).
        self._owed_done: list[int] = []
        self._owed_back: list[int] = []

    # -- the loop ----------------------------------------------------------------------------

    def run(self, *, burst: bool = False) -> None:
        """Run jobs until `stop` is set; with `burst`, until no job is due (errors raise)."""
        level = logging.DEBUG if burst else logging.INFO  # a script's output stays quiet
        logger.log(level, "worker %s started", self.worker_id)
        idle = float(self.app.config["WORKER_IDLE_SLEEP"])
        next_arm = 0.0
        failures = 0
        while not self.stop.is_set():
            try:
                with self.app.app_context():
                    if time.monotonic() >= next_arm:
                        self.arm_periodic()
                        next_arm = time.monotonic() + ARM_PERIODIC_EVERY_SECONDS
                    claimed = self.run_once()
            except Exception as exc:
                if burst:
                    raise
                failures += 1
                self._wait_after_failure(exc, failures)
                continue
            if failures:
                logger.info("worker loop running again after %d failed attempts", failures)
                failures = 0
            if not claimed:
                if burst:
                    break
                self.stop.wait(idle)
            elif claimed < self.batch and not burst:
                # The queue ran short: let the next claim gather what arrives meanwhile
                # instead of coming back with one job, or none and a full idle sleep.
                self.stop.wait(PARTIAL_CLAIM_PAUSE_SECONDS)
        logger.log(level, "worker %s stopped", self.worker_id)

    def _wait_after_failure(self, exc: Exception, failures: int) -> None:
        """The database may be restarting: wait longer each time; nothing is lost. One log
        line per attempt for an unreachable database, a traceback for anything else."""
        delay = min(LOOP_RETRY_SECONDS * 2 ** (failures - 1), LOOP_RETRY_MAX_SECONDS)
        if isinstance(exc, DATABASE_UNAVAILABLE):
            logger.error("database unavailable (attempt %d, next in %.1f s): %s",
                         failures, delay,
                         database_failure(exc, self.app.config["SQLALCHEMY_DATABASE_URI"]))
        else:
            logger.exception("worker loop error (attempt %d, next in %.1f s)", failures, delay)
        self.stop.wait(delay)

    def run_once(self) -> int:
        """Claim up to `batch` due jobs and run them, one after another. Needs an app context.

        A stop request (SIGTERM) lets the running job finish and gives back the rest.

        :returns: how many jobs were claimed.
        """
        self._settle_owed()
        claimed = self._claim()
        claimed_at = self.clock()
        done: list[int] = []
        unstarted = 0  # claimed[unstarted:] have not been started
        try:
            for index, job in enumerate(claimed):
                if self.stop.is_set():
                    self._give_back([j.id for j in claimed[index:]])
                    unstarted = len(claimed)
                    break
                # A later job waited while the earlier ones ran. Once half its lease is gone
                # it is renewed before it starts (its lease may have run out and gone to
                # another worker), and the jobs done so far are marked so; before that, the
                # lease they were claimed with is still safely theirs.
                late = self.clock() - claimed_at > self.lease.total_seconds() / 2
                if index and late:
                    done = self._done(done)
                    if not self._renew_lease(job.id):
                        unstarted = index + 1
                        continue
                unstarted = index + 1
                if self._run(job):
                    done.append(job.id)
                    if job.name in self.jobs.unrepeatable:
                        done = self._done(done)
            # The batch's successes are marked done together: a worker that dies before
            # this leaves them to run again, which their handlers allow (the unrepeatable
            # ones are marked as they succeed).
            self._done(done)
        except Exception:
            # The database went away mid-batch (a restart, say). What succeeded is owed its
            # done mark and what did not start is owed back to the queue: both are written
            # as soon as the database answers, rather than leaving the jobs leased until the
            # lease runs out and then running the finished ones a second time.
            self._owed_done += done
            self._owed_back += [job.id for job in claimed[unstarted:]]
            raise
        return len(claimed)

    def _settle_owed(self) -> None:
        """Write the marks a batch that lost the database still owes (see run_once)."""
        if self._owed_done:
            logger.info("jobs %s: marked done after the database came back", self._owed_done)
            self._owed_done = self._done(self._owed_done)
        if self._owed_back:
            self._give_back(self._owed_back)
            self._owed_back = []

    # -- claiming ----------------------------------------------------------------------------

    def _claim(self) -> list:
        """Lease up to `batch` due jobs and commit; returns their rows, in the order to run.

        Due: running under a lease that ran out (its worker died), then queued with run_at
        passed, oldest first; the first come first, so a queue that is never empty cannot
        starve them. A job taken over on its last attempt is buried instead of run.
        """
        now = utcnow()
        try:
            picked = _pick(_lost_leases(now), self.batch)
            picked += _pick(_due(now), self.batch - len(picked))
            to_run, to_bury = [], []
            for job in picked:
                if job.status == JobStatus.RUNNING:
                    logger.warning("job %s %s: lease of %s ran out; taking it again",
                                   job.id, job.name, job.locked_by)
                (to_bury if job.attempts >= job.max_attempts else to_run).append(job)
            for job in to_bury:
                self._bury(job.id, job.name, job.attempts,
                           job.last_error or "worker died on the last attempt")
            if to_run:
                db.session.execute(
                    sa.update(JOBS).where(JOBS.c.id.in_([job.id for job in to_run]))
                    .values(status=JobStatus.RUNNING, attempts=JOBS.c.attempts + 1,
                            locked_by=self.worker_id, locked_until=now + self.lease,
                            updated_at=now))
            db.session.commit()
        except Exception:
            db.session.rollback()
            raise
        return to_run

    def _renew_lease(self, job_id: int) -> bool:
        """A full lease again for a job about to start, if the lease is still ours."""
        now = utcnow()
        renewed = db.session.execute(
            self._ours(sa.update(JOBS), job_id)
            .values(locked_until=now + self.lease, updated_at=now)).rowcount
        db.session.commit()
        if not renewed:
            # Running the handler again would repeat its effects (the job may be done).
            logger.warning("job %s: lease lost to another worker before it started; skipped",
                           job_id)
        return bool(renewed)

    def _give_back(self, job_ids: list[int]) -> None:
        """Jobs claimed but not started (the worker is stopping) are due again at once for
        any worker, in their place in the queue, instead of waiting out the lease; they keep
        their attempt."""
        now = utcnow()
        db.session.execute(
            self._ours(sa.update(JOBS), *job_ids)
            .values(status=JobStatus.QUEUED, attempts=JOBS.c.attempts - 1, locked_by=None,
                    locked_until=None, updated_at=now))
        db.session.commit()

    # -- running one job ---------------------------------------------------------------------

    def _run(self, job) -> bool:
        """Run the job's handler; record a failure. :returns: whether it succeeded.

        While it runs, the log context holds the job's request id (and its id and name), so
        its lines, and the jobs it enqueues, carry the id of the request that caused it.
        """
        token = log_context.set({"request_id": job.request_id, "job_id": job.id,
                                 "job": job.name})
        try:
            return self._run_handler(job)
        finally:
            log_context.reset(token)

    def _run_handler(self, job) -> bool:
        fn = self.jobs.handlers.get(job.name)
        started = time.monotonic()
        logger.info("job %s %s started (attempt %d)", job.id, job.name, job.attempts + 1)
        try:
            if fn is None:
                raise LookupError(f"no handler registered for job {job.name!r}")
            fn(dict(job.payload or {}))
        except RetryJob as retry:
            db.session.rollback()
            logger.debug("job %s %s: again in %.1f s (%s)", job.id, job.name, retry.delay,
                         retry)
            self._failed(job.id, retry_in=retry.delay, error=str(retry), count_attempt=False)
            return False
        except GiveUpJob as exc:
            db.session.rollback()
            logger.warning("job %s %s given up: %s", job.id, job.name, exc)
            self._failed(job.id, retry_in=0, error=scrub(str(exc))[:2000], bury=True)
            return False
        except Exception as exc:
            db.session.rollback()
            attempts = job.attempts + 1  # this run's attempt, counted by the claim
            logger.warning("job %s %s failed (attempt %d): %s", job.id, job.name, attempts,
                           exc, exc_info=not isinstance(exc, LookupError))
            # The admin panel shows the error: no secret in it (an HTTP error quotes its URL).
            self._failed(job.id, retry_in=backoff_seconds(attempts, self.backoff_base),
                         error=scrub(repr(exc))[:2000])
            return False
        # Services commit their own work; this ends whatever a handler left open.
        db.session.commit()
        duration_ms = (time.monotonic() - started) * 1000
        logger.info("job %s %s done in %.0f ms", job.id, job.name, duration_ms,
                    extra={"duration_ms": round(duration_ms, 1)})
        return True

    def _done(self, job_ids: list[int]) -> list[int]:
        """Mark jobs done while their leases are ours. :returns: an empty list, the marks
        still to write."""
        if not job_ids:
            return []
        now = utcnow()
        marked = db.session.execute(
            self._ours(sa.update(JOBS), *job_ids)
            .values(status=JobStatus.DONE, finished_at=now, updated_at=now, locked_by=None,
                    locked_until=None, last_error=None)).rowcount
        db.session.commit()
        if marked < len(job_ids):
            logger.warning("jobs %s: %d leases lost to another worker; their results win",
                           job_ids, len(job_ids) - marked)
        return []

    def _failed(self, job_id: int, *, retry_in: float, error: str,
                count_attempt: bool = True, bury: bool = False) -> None:
        """Schedule a failed job's next attempt, or bury it when it has none left (or when
        `bury`: the handler gave it up)."""
        job = db.session.execute(
            self._ours(sa.select(Job.name, Job.attempts, Job.max_attempts), job_id)
            .with_for_update()).one_or_none()
        if job is None:
            logger.warning("job %s: lease lost to another worker; its result wins", job_id)
            db.session.rollback()
            return
        attempts = job.attempts if count_attempt else job.attempts - 1
        if bury or attempts >= job.max_attempts:
            self._bury(job_id, job.name, attempts, error)
        else:
            db.session.execute(
                sa.update(JOBS).where(JOBS.c.id == job_id)
                .values(status=JobStatus.QUEUED, attempts=attempts, last_error=error,
                        run_at=utcnow() + timedelta(seconds=retry_in), locked_by=None,
                        locked_until=None, updated_at=utcnow()))
        db.session.commit()

    def _ours(self, statement, *job_ids: int):
        """`statement` limited to the given jobs while this worker's lease holds them."""
        return statement.where(JOBS.c.id.in_(job_ids), JOBS.c.locked_by == self.worker_id,
                               JOBS.c.status == JobStatus.RUNNING)

    @staticmethod
    def _bury(job_id: int, name: str, attempts: int, error: str) -> None:
        logger.error("job %s %s is dead after %d attempts: %s", job_id, name, attempts, error)
        db.session.execute(
            sa.update(JOBS).where(JOBS.c.id == job_id)
            .values(status=JobStatus.DEAD, attempts=attempts, last_error=error,
                    locked_by=None, locked_until=None, finished_at=utcnow(),
                    updated_at=utcnow()))

    # -- periodic jobs -----------------------------------------------------------------------

    def arm_periodic(self) -> None:
        """Make sure each periodic job has a row, and re-queue it when its interval is up.

        The row's key is `periodic:<name>` and re-arming is a conditional UPDATE, so any
        number of workers run each periodic job once per interval.
        """
        if not self.jobs.periodic_jobs:
            return
        now = utcnow()
        for name, every in self.jobs.periodic_jobs.items():
            key = f"periodic:{name}"
            enqueue(name, {}, key=key, max_attempts=1_000_000)
            db.session.execute(
                sa.update(JOBS)
                .where(JOBS.c.key == key, JOBS.c.status.in_([JobStatus.DONE, JobStatus.DEAD]),
                       JOBS.c.finished_at <= now - timedelta(seconds=every))
                .values(status=JobStatus.QUEUED, run_at=now, attempts=0, updated_at=now))
        db.session.commit()


def _lost_leases(now):
    """Running jobs whose lease ran out (their worker died), the longest lost first."""
    return (sa.select(Job).where(Job.status == JobStatus.RUNNING, Job.locked_until < now)
            .order_by(Job.locked_until))


def _due(now):
    """Queued jobs whose time has come, oldest first."""
    return (sa.select(Job).where(Job.status == JobStatus.QUEUED, Job.run_at <= now)
            .order_by(Job.run_at, Job.id))


def _pick(query, limit: int) -> list:
    """Up to `limit` rows of `query`, as plain rows, skipping those another worker is
    claiming right now (PostgreSQL; SQLite's write lock keeps other workers out).

    Lost leases and due jobs are two queries, not one OR: each is served by its own
    partial index (models/jobs.py), which a plain index scan walks without the dead
    entries a busy queue leaves behind until VACUUM.
    """
    if limit <= 0:
        return []
    columns = [getattr(Job, name) for name in _COLUMNS]
    query = query.with_only_columns(*columns).limit(limit).with_for_update(skip_locked=True)
    return list(db.session.execute(query))


_COLUMNS = ("id", "name", "payload", "status", "attempts", "max_attempts", "locked_by",
            "last_error", "request_id")
