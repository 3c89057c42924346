"""The outbox: side effects written in the same transaction as the state change."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import TimestampMixin, UTCDateTime, str_enum, utcnow


class JobStatus(enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"   # leased by a worker until locked_until
    DONE = "done"
    DEAD = "dead"         # out of attempts: an admin must look


class Job(TimestampMixin, db.Model):
    __tablename__ = "jobs"
    __table_args__ = (
        # Partial indexes, one per question the worker and the admin ask: each stays as
        # small as the queue, not as big as the history (app/jobs/worker.py).
        sa.Index("ix_jobs_queued_run_at", "run_at", "id",
                 postgresql_where=sa.text("status = 'queued'"),
                 sqlite_where=sa.text("status = 'queued'")),
        sa.Index("ix_jobs_running_locked_until", "locked_until",
                 postgresql_where=sa.text("status = 'running'"),
                 sqlite_where=sa.text("status = 'running'")),
        sa.Index("ix_jobs_dead_finished_at", "finished_at",
                 postgresql_where=sa.text("status = 'dead'"),
                 sqlite_where=sa.text("status = 'dead'")),
        sa.CheckConstraint("attempts >= 0", name="attempts_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64))
    payload: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    # Idempotency key: enqueueing the same key twice gives one job.
    key: Mapped[str | None] = mapped_column(sa.String(160), unique=True)
    status: Mapped[JobStatus] = mapped_column(
        str_enum(JobStatus, "job_status"), default=JobStatus.QUEUED
    )
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=12)
    run_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    locked_by: Mapped[str | None] = mapped_column(sa.String(64))
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The id of the web request (or of the job) that enqueued it: its log lines carry it.
    request_id: Mapped[str | None] = mapped_column(sa.String(64))

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.name} {self.status.value} attempt {self.attempts}>"
