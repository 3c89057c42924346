"""Helpers for the outbox tests, including the app a worker *subprocess* runs.

`flask --app tests.jobs.helpers worker` (cwd = the repository) builds Kassa from the
environment (APP_ENV, TEST_DATABASE_URL, JOB_LEASE_SECONDS ...) and registers the
`test.slow_marker` handler, which only exists in that process.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import sqlalchemy as sa

from app import jobs
from app.extensions import db
from app.models import Job

SLOW_MARKER = "test.slow_marker"
FIRST_RUN_SLEEP = 30.0


def marker_lines(path: Path) -> list[str]:
    """The lines the slow_marker handler wrote so far: `<unix time> <pid>` each."""
    try:
        return [line for line in path.read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        return []


def slow_marker(payload: dict) -> None:
    """Append `<unix time> <pid>` to payload["marker"]; sleep long on the first run only."""
    path = Path(payload["marker"])
    first_run = not marker_lines(path)
    with path.open("a") as out:
        out.write(f"{time.time():.6f} {os.getpid()}\n")
        out.flush()
        os.fsync(out.fileno())
    if first_run:
        time.sleep(float(payload.get("sleep", FIRST_RUN_SLEEP)))


def create_app():
    """The Flask app factory `flask --app tests.jobs.helpers` finds."""
    from app import create_app as create_kassa_app

    app = create_kassa_app({"WORKER_IDLE_SLEEP": 0.05})
    registry = jobs.registry(app)
    # Only the job under test: no reconciler rows, no calls to a bank or ATOL on loopback.
    registry.periodic_jobs.clear()
    registry.handler(SLOW_MARKER, slow_marker)
    return app


class Clock:
    """A frozen, hand-advanced replacement for `utcnow` in app.jobs and app.jobs.worker."""

    def __init__(self, start: datetime):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now

    def set(self, when: datetime) -> datetime:
        self.now = when
        return self.now


JOB_COLUMNS = ("id", "name", "payload", "key", "status", "attempts", "max_attempts", "run_at",
               "locked_until", "locked_by", "last_error", "finished_at")


def job_rows(*where) -> list[SimpleNamespace]:
    """Jobs as plain snapshots, read fresh, ordered by id; the read transaction is ended.

    (On SQLite every transaction is BEGIN IMMEDIATE: a test must not sit on one while a
    worker in another session or process wants to write.)
    """
    try:
        rows = db.session.execute(
            sa.select(*(getattr(Job, c) for c in JOB_COLUMNS)).where(*where).order_by(Job.id)
        ).all()
        return [SimpleNamespace(**dict(zip(JOB_COLUMNS, row, strict=True))) for row in rows]
    finally:
        db.session.rollback()


def job_row(job_id: int) -> SimpleNamespace:
    (row,) = job_rows(Job.id == job_id)
    return row


def update_job(job_id: int, **values) -> None:
    """Change a job behind the worker's back (a dead worker's lease, say) and commit."""
    db.session.execute(sa.update(Job).where(Job.id == job_id).values(**values))
    db.session.commit()


def enqueue_committed(name: str, payload: dict | None = None, **kwargs) -> int:
    """Enqueue one job, commit, and return its id."""
    jobs.enqueue(name, payload, **kwargs)
    db.session.commit()
    return max(row.id for row in job_rows())
