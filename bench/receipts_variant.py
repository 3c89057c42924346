"""Kassa with prototypes of the fixes bench/receipts.py points at, to measure them (bench only;
app/ is untouched). `bench/receipts.py --variant priority,callback,nolookup` serves this
module's `app` with gunicorn and runs `python -m bench.receipts_variant` as the job workers;
BENCH_RECEIPTS_VARIANT (comma-separated) picks the features:

priority  due jobs are claimed finishing work first: fiscal.poll, then fiscal.submit, then
          everything else, each by run_at (receipts complete one by one instead of all
          sells, then all submits, then all polls). A copy of Worker._claim with that
          ORDER BY.
callback  an ATOL callback moves a queued poll to now only if that is earlier than its
          run_at (app/fiscal/services.py sets run_at = now, which pushes an overdue poll to
          the back of the queue).
nolookup  a job of a batch starts without Worker._still_ours' SELECT + ROLLBACK while the
          batch's lease has more than LEASE_MARGIN_SECONDS left by the worker's own clock.

Written against app/jobs/worker.py as of b2849f0 ("Faster outbox"); it refuses to start if
the Worker it overrides has changed shape.
"""

from __future__ import annotations

import logging
import os
import signal
import time

import sqlalchemy as sa

from app import create_app
from app.extensions import db
from app.jobs import enqueue
from app.jobs import worker as worker_module
from app.models import Job, JobStatus, Receipt, ReceiptStatus, utcnow

logger = logging.getLogger("bench.receipts_variant")

FEATURES = frozenset(f for f in os.environ.get("BENCH_RECEIPTS_VARIANT", "").split(",") if f)
KNOWN = frozenset({"priority", "callback", "nolookup"})
if FEATURES - KNOWN:
    raise SystemExit(f"BENCH_RECEIPTS_VARIANT: unknown {sorted(FEATURES - KNOWN)}; "
                     f"known: {sorted(KNOWN)}")
for _name in ("_claim", "_still_ours", "_run", "_bury"):
    if not hasattr(worker_module.Worker, _name) or not hasattr(worker_module, "_Claimed"):
        raise SystemExit(f"app.jobs.worker.Worker has no {_name} (or _Claimed): "
                         "bench/receipts_variant.py must be updated to the new worker")
#: A claimed job starts without asking the database while this much of its lease is left.
LEASE_MARGIN_SECONDS = 30.0
STAGE = {"fiscal.poll": 0, "fiscal.submit": 1}


class Worker(worker_module.Worker):
    _claimed_at = 0.0

    def _claim(self) -> list:
        self._claimed_at = time.monotonic()
        if "priority" not in FEATURES:
            return super()._claim()
        # app.jobs.worker.Worker._claim with the stage first in ORDER BY and in the sort.
        now = utcnow()
        jobs = Job.__table__
        stage = sa.case(STAGE, value=jobs.c.name, else_=2)
        picked = (
            sa.select(jobs.c.id, jobs.c.status.label("was"), jobs.c.locked_by.label("held_by"))
            .where(sa.or_(
                sa.and_(jobs.c.status == JobStatus.QUEUED, jobs.c.run_at <= now),
                sa.and_(jobs.c.status == JobStatus.RUNNING, jobs.c.locked_until < now),
            ))
            .order_by(stage, jobs.c.run_at, jobs.c.id).limit(self.batch)
            .with_for_update(skip_locked=True)
        )
        lease = sa.update(jobs).values(
            status=JobStatus.RUNNING, attempts=jobs.c.attempts + 1, locked_by=self.worker_id,
            locked_until=now + self.lease, updated_at=now,
        )
        returned = (jobs.c.id, jobs.c.name, jobs.c.payload, jobs.c.attempts,
                    jobs.c.max_attempts, jobs.c.run_at, jobs.c.last_error)
        try:
            if db.session.get_bind().dialect.name == "postgresql":
                cte = picked.cte("picked")
                rows = db.session.execute(
                    lease.where(jobs.c.id == cte.c.id)
                    .returning(*returned, cte.c.was, cte.c.held_by)
                ).all()
            else:
                before = {r.id: r for r in db.session.execute(picked)}
                rows = [
                    worker_module._Claimed(*row, before[row.id].was, before[row.id].held_by)
                    for row in db.session.execute(
                        lease.where(jobs.c.id.in_(before)).returning(*returned)
                    )
                ] if before else []
            claimed = []
            for row in sorted(rows, key=lambda r: (STAGE.get(r.name, 2), r.run_at, r.id)):
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

    def _still_ours(self, job_id: int) -> bool:
        left = self.lease.total_seconds() - (time.monotonic() - self._claimed_at)
        if "nolookup" in FEATURES and left > LEASE_MARGIN_SECONDS:
            return True
        return super()._still_ours(job_id)


def handle_atol_callback(raw_body: bytes) -> str:
    """app.fiscal.services.handle_atol_callback with run_at = min(run_at, now)."""
    from app.errors import NotFoundError
    from app.fiscal import get_register

    hint = get_register().parse_callback(raw_body)
    receipt = db.session.scalars(sa.select(Receipt).where(sa.or_(
        Receipt.external_id == hint.external_id,
        sa.and_(Receipt.provider_id.is_not(None), Receipt.provider_id == hint.provider_id),
    ))).first()
    if receipt is None:
        db.session.rollback()
        raise NotFoundError("receipt not found")
    if receipt.status != ReceiptStatus.WAIT:
        status = receipt.status.value
        db.session.rollback()
        return status
    key = f"fiscal.poll:{receipt.id}:{receipt.attempt}"
    now = utcnow()
    moved = db.session.execute(
        sa.update(Job).where(Job.key == key, Job.status == JobStatus.QUEUED)
        .values(run_at=sa.case((Job.run_at > now, now), else_=Job.run_at))
    ).rowcount
    if not moved:
        enqueue("fiscal.poll", {"receipt_id": receipt.id},
                key=f"fiscal.poll:{receipt.id}:{receipt.attempt}:cb")
    db.session.commit()
    return "poll_scheduled"


app = create_app()
if "callback" in FEATURES:
    from app.fiscal import services

    services.handle_atol_callback = handle_atol_callback  # the route looks it up per call
logger.info("bench variant: %s", ",".join(sorted(FEATURES)) or "(none: Kassa as it is)")


def main() -> None:
    worker = Worker(app)

    def stop(_signum, _frame):
        worker.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    worker.run()


if __name__ == "__main__":
    main()
