"""The worker loop: claim due jobs with a lease, run their handlers, retry with backoff.

Several workers may share one PostgreSQL database: claims use FOR UPDATE SKIP LOCKED, so
no job is handed to two workers. On SQLite every transaction is BEGIN IMMEDIATE, which
serializes claims. A worker that dies leaves its jobs leased; when the lease runs out,
another worker takes them again.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import socket
import threading
import time
from datetime import timedelta
from typing import NamedTuple

import sqlalchemy as sa
from flask import Flask

from app.extensions import DATABASE_UNAVAILABLE, database_failure, db
from app.jobs import RetryJob, get_handler, periodic_jobs
from app.models import Job, JobStatus, utcnow
from app.models.base import UTCDateTime

logger = logging.getLogger(__name__)

BACKOFF_BASE_SECONDS = 2.0
BACKOFF_MAX_SECONDS = 3600.0
# Jobs that succeeded are marked done together; one waits at most this long for the rest.
DONE_FLUSH_SECONDS = 0.2
# The pause after a claim that did not fill its batch (an empty claim waits the idle time).
GATHER_SECONDS = 0.05
# A claim takes about this much work: quick jobs go in large batches, whose claim and done
# statements cost little per job, while slow ones (a receipt waits for the cash register)
# are claimed a few at a time, so that an idle worker can take the rest.
BATCH_SECONDS = 0.25
# The claim before the worker has timed any job.
FIRST_CLAIM = 10
# After a failed round of the loop (the database is down or restarting) the worker waits
# this long, doubling with each failure in a row up to LOOP_RETRY_MAX_SECONDS.
LOOP_RETRY_SECONDS = 0.5
LOOP_RETRY_MAX_SECONDS = 30.0


def backoff_seconds(attempts: int, base: float = BACKOFF_BASE_SECONDS) -> float:
    """2 s, 4 s, 8 s ... capped at an hour, with ±20 % jitter so retries don't stampede."""
    delay = min(base * 2 ** max(attempts - 1, 0), BACKOFF_MAX_SECONDS)
    return delay * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not security


class _Claimed(NamedTuple):
    id: int
    name: str
    payload: dict
    attempts: int
    max_attempts: int
    run_at: object
    last_error: str | None
    was: JobStatus
    held_by: str | None


class Worker:
    """Runs jobs for one Flask app. `run()` loops until `stop` is set."""

    def __init__(self, app: Flask, *, worker_id: str | None = None, batch: int = 50):
        self.app = app
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{id(self) % 10000}"
        self.batch = batch  # the most jobs one claim takes
        self.job_seconds: float | None = None  # a moving average of how long a job takes
        self._claimed_size = 0
        self.stop = threading.Event()
        self.lease = timedelta(seconds=app.config["JOB_LEASE_SECONDS"])
        self.backoff_base = float(app.config.get("JOB_BACKOFF_SECONDS", BACKOFF_BASE_SECONDS))
        self._next_arm = 0.0

    def run(self) -> None:
        logger.info("worker %s started", self.worker_id)
        idle = float(self.app.config.get("WORKER_IDLE_SLEEP", 0.5))
        failures = 0
        while not self.stop.is_set():
            try:
                with self.app.app_context():
                    self.arm_periodic()
                    claimed = self.run_once()
            except Exception as exc:
                # The database may be restarting: wait and try again; nothing is lost.
                # One line per attempt for an unreachable database, a traceback otherwise.
                failures += 1
                delay = min(LOOP_RETRY_SECONDS * 2 ** (failures - 1), LOOP_RETRY_MAX_SECONDS)
                if isinstance(exc, DATABASE_UNAVAILABLE):
                    logger.error("database unavailable (attempt %d, next in %.1f s): %s",
                                 failures, delay,
                                 database_failure(exc, self.app.config["SQLALCHEMY_DATABASE_URI"]))
                else:
                    logger.exception("worker loop error (attempt %d, next in %.1f s)",
                                     failures, delay)
                self.stop.wait(delay)
                continue
            if failures:
                logger.info("worker loop running again after %d failed attempts", failures)
                failures = 0
            if not claimed:
                self.stop.wait(idle)
            elif claimed < self._claimed_size:
                # The queue is drained for now: a moment's pause lets the next claim
                # gather what arrives meanwhile, rather than one job per round trip.
                self.stop.wait(min(idle, GATHER_SECONDS))
        logger.info("worker %s stopped", self.worker_id)

    def claim_size(self) -> int:
        """How many jobs the next claim takes: about BATCH_SECONDS of work, 1 to `batch`."""
        if self.job_seconds is None:
            return min(self.batch, FIRST_CLAIM)
        return max(1, min(self.batch, int(BATCH_SECONDS / max(self.job_seconds, 1e-6))))

    def _timed(self, seconds: float) -> None:
        self.job_seconds = (seconds if self.job_seconds is None
                            else 0.8 * self.job_seconds + 0.2 * seconds)

    def run_once(self) -> int:
        """Claim due jobs (`claim_size`) and run them. Needs an app context.

        A batch that runs past twice BATCH_SECONDS gives back the jobs it has not started.
        Jobs that succeed are marked done together, in one UPDATE, when the batch ends or
        before the next job starts once DONE_FLUSH_SECONDS have passed. So a mark waits at
        most for one handler (bounded by its HTTP timeouts, far below the lease); a worker
        that dies in between leaves the jobs leased, and they run again after the lease
        (every handler is idempotent).

        :returns: how many jobs were claimed.
        """
        claimed_at = time.monotonic()  # no later than the start of the lease
        claimed = self._claim()
        done: list[int] = []
        done_since = 0.0
        try:
            for index, job in enumerate(claimed):
                # Stopping, or the batch has run twice its budget (the jobs were slower
                # than the claim expected): give back what has not started, so that an
                # idle worker need not wait for this one.
                if self.stop.is_set() or (
                        index and time.monotonic() - claimed_at > 2 * BATCH_SECONDS):
                    self._release([j.id for j in claimed[index:]])
                    break
                if done and time.monotonic() - done_since > DONE_FLUSH_SECONDS:
                    self._done(done)
                    done = []
                # The first job was leased a moment ago. A later one waited while the
                # earlier ones ran: once half its lease has gone, it may have run out and
                # gone to another worker, so ask the database before starting it.
                if (index and time.monotonic() - claimed_at > self.lease.total_seconds() / 2
                        and not self._still_ours(job.id)):
                    continue
                if self._run(job.id, job.name, dict(job.payload or {}), job.attempts):
                    if not done:
                        done_since = time.monotonic()
                    done.append(job.id)
        finally:
            if done:
                self._done(done)
        return len(claimed)

    def _still_ours(self, job_id: int) -> bool:
        jobs = Job.__table__
        row = db.session.execute(
            sa.select(jobs.c.locked_by, jobs.c.status).where(jobs.c.id == job_id)
        ).one_or_none()
        db.session.rollback()
        if row is None or row.locked_by != self.worker_id or row.status != JobStatus.RUNNING:
            # Running the handler again would repeat its effects (the job may be done).
            logger.warning("job %s: lease lost to %s before it started; skipped",
                           job_id, row and row.locked_by)
            return False
        return True

    def _release(self, job_ids: list[int]) -> None:
        """Give back jobs claimed but not started (the worker is stopping, or its batch ran
        long): they are due again at once for any worker instead of waiting out the lease,
        and keep their attempt. Only jobs our lease still holds are touched."""
        _bookkeeping_commit()
        db.session.execute(
            sa.update(Job)
            .where(Job.id.in_(job_ids), Job.locked_by == self.worker_id,
                   Job.status == JobStatus.RUNNING)
            .values(status=JobStatus.QUEUED, attempts=Job.attempts - 1, locked_by=None,
                    locked_until=None, updated_at=utcnow())
        )
        db.session.commit()

    def claim(self) -> list[int]:
        """Claim due jobs (see `_claim`); returns their ids."""
        return [job.id for job in self._claim()]

    def _claim(self) -> list:
        """Lease up to `batch` due jobs in one statement and commit.

        Due: queued and run_at passed, or running under a lease that ran out (its worker
        died). The candidates are picked FOR UPDATE SKIP LOCKED (PostgreSQL), so two
        workers never pick the same row; SQLite serializes the statement instead. A job
        taken over on its last attempt is buried instead of run.
        """
        now = utcnow()
        size = self._claimed_size = self.claim_size()
        params = {"now": now, "batch": size, "worker": self.worker_id,
                  "until": now + self.lease}
        try:
            if db.session.get_bind().dialect.name == "postgresql":
                _bookkeeping_commit()
                # Pick, lease and return in a single statement.
                rows = db.session.execute(_claim_statement(), params).all()
            else:
                # SQLite's RETURNING sees only the updated table; its write lock (BEGIN
                # IMMEDIATE) already keeps other workers out between the statements.
                lost, due, lease = _claim_statements_sqlite()
                picked = [*db.session.execute(lost, params), *db.session.execute(due, params)]
                before = {r.id: r for r in picked[:size]}
                rows = [
                    _Claimed(*row, before[row.id].was, before[row.id].held_by)
                    for row in db.session.execute(lease, {**params, "ids": list(before)})
                ] if before else []
            claimed = []
            for row in sorted(rows, key=lambda r: (r.run_at, r.id)):
                if row.was == JobStatus.RUNNING:
                    logger.warning("job %s %s: lease of %s ran out; taking it again",
                                   row.id, row.name, row.held_by)
                if row.attempts > row.max_attempts:
                    job = db.session.get(Job, row.id)
                    job.attempts = row.max_attempts
                    self._bury(job, row.last_error or "worker died on the last attempt")
                    continue
                claimed.append(row)
            db.session.commit()
            return claimed
        except Exception:
            db.session.rollback()
            raise

    def execute(self, job_id: int) -> None:
        """Run one claimed job, if its lease is still ours."""
        if not self._still_ours(job_id):
            return
        job = db.session.get(Job, job_id)
        name, payload, attempts = job.name, dict(job.payload or {}), job.attempts
        db.session.rollback()  # end the read transaction before the handler's own work
        if self._run(job_id, name, payload, attempts):
            self._done([job_id])

    def _run(self, job_id: int, name: str, payload: dict, attempts: int) -> bool:
        """Run the handler; a failure is recorded at once.

        :returns: True when the handler succeeded: the caller marks the job done.
        """
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
            # Services commit their own work; this ends whatever a handler left open (as
            # the job's own UPDATE did when jobs were marked done one at a time).
            if db.session.registry.has() and db.session().in_transaction():
                db.session.commit()
            took = time.monotonic() - started
            self._timed(took)
            logger.info("job %s %s done in %.0f ms", job_id, name, took * 1000)
            return True
        self._timed(time.monotonic() - started)
        return False

    def _done(self, job_ids: list[int]) -> None:
        """Mark jobs done with one guarded UPDATE: only those our lease still holds."""
        _bookkeeping_commit()
        updated = db.session.execute(_done_statement(), {
            "ids": job_ids, "worker": self.worker_id, "now": utcnow(),
        }).rowcount
        db.session.commit()
        if updated != len(job_ids):
            # Our lease ran out and another worker took the job: its outcome wins.
            logger.warning("jobs %s: %d of them lost their lease; their results dropped",
                           job_ids, len(job_ids) - updated)

    def _finish(
        self,
        job_id: int,
        *,
        retry_in: float,
        error: str,
        count_attempt: bool = True,
    ) -> None:
        """Schedule a failed job's next attempt, or bury it when it has none left."""
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
        job.last_error = error
        if not count_attempt:
            job.attempts -= 1
        if job.attempts >= job.max_attempts:
            self._bury(job, error)
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


def _bookkeeping_commit() -> None:
    """PostgreSQL: the commit of this transaction does not wait for the disk.

    Only for the worker's own bookkeeping: claim, done, give back. A crash of the machine
    (not of PostgreSQL) within a fraction of a second after such a commit can lose it, and
    the job then runs again: a lost claim leaves it queued, a lost done mark leaves it
    leased until the lease runs out. Every handler bears that already (a worker may die
    between its handler and the mark). A handler's own work still commits synchronously,
    and as the log is written in order, that commit makes the claim before it durable too.
    A bank callback's commit always waits for the disk.

    Each such wait is a WAL flush (an fsync); under load the worker's flushes queue up with
    the callbacks' ones, which are the ones the bank waits for.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(_ASYNC_COMMIT)


_ASYNC_COMMIT = sa.text("SET LOCAL synchronous_commit = off")


# -- statements, built once: a worker runs them several times a second -----------------------

_RETURNED = ("id", "name", "payload", "attempts", "max_attempts", "run_at", "last_error")


def _pickers():
    """Two pickers, each served by its own partial index (models/jobs.py): running jobs
    whose lease ran out (their worker died), and queued jobs that are due, oldest first.
    The first come first, so a queue that is never empty cannot starve them.

    Kept apart rather than OR-ed: an OR makes PostgreSQL scan both indexes with a bitmap,
    which walks every dead index entry a busy queue leaves behind until VACUUM, while a
    plain index scan marks them dead and skips them from then on.
    """
    jobs = Job.__table__
    columns = (jobs.c.id, jobs.c.run_at, jobs.c.status.label("was"),
               jobs.c.locked_by.label("held_by"))
    now, batch = sa.bindparam("now", type_=UTCDateTime()), sa.bindparam("batch")
    lost = (sa.select(*columns, sa.literal(0).label("rank"))
            .where(jobs.c.status == JobStatus.RUNNING, jobs.c.locked_until < now)
            .order_by(jobs.c.locked_until).limit(batch))
    due = (sa.select(*columns, sa.literal(1).label("rank"))
           .where(jobs.c.status == JobStatus.QUEUED, jobs.c.run_at <= now)
           .order_by(jobs.c.run_at, jobs.c.id).limit(batch))
    return lost, due


def _lease():
    jobs = Job.__table__
    now = sa.bindparam("now", type_=UTCDateTime())
    return sa.update(jobs).values(
        status=JobStatus.RUNNING, attempts=jobs.c.attempts + 1,
        locked_by=sa.bindparam("worker"),
        locked_until=sa.bindparam("until", type_=UTCDateTime()), updated_at=now,
    )


@functools.cache
def _claim_statement():
    jobs = Job.__table__
    lost, due = (q.with_for_update(skip_locked=True) for q in _pickers())
    lost, due = lost.cte("lost"), due.cte("due")
    both = sa.union_all(sa.select(lost), sa.select(due)).subquery("both")
    # No more than a batch in all (each picker may find a batch).
    picked = (sa.select(both).order_by(both.c.rank, both.c.run_at, both.c.id)
              .limit(sa.bindparam("batch")).subquery("picked"))
    return (_lease().where(jobs.c.id == picked.c.id)
            .returning(*(jobs.c[name] for name in _RETURNED), picked.c.was, picked.c.held_by))


@functools.cache
def _claim_statements_sqlite():
    jobs = Job.__table__
    lost, due = _pickers()
    lease = (_lease().where(jobs.c.id.in_(sa.bindparam("ids", expanding=True)))
             .returning(*(jobs.c[name] for name in _RETURNED)))
    return lost, due, lease


@functools.cache
def _done_statement():
    jobs = Job.__table__
    now = sa.bindparam("now", type_=UTCDateTime())
    return (
        sa.update(jobs)
        .where(jobs.c.id.in_(sa.bindparam("ids", expanding=True)),
               jobs.c.locked_by == sa.bindparam("worker"), jobs.c.status == JobStatus.RUNNING)
        .values(status=JobStatus.DONE, finished_at=now, updated_at=now, locked_by=None,
                locked_until=None, last_error=None)
    )
