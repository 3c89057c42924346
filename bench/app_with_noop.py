"""Kassa as it ships, plus a no-op subscriber of "payment.paid" for the callback benchmark.

Gunicorn serves `bench.app_with_noop:app` and bench/worker.py runs the job workers from the
same module, so web and worker processes agree on the subscription: every paid callback
enqueues one `bench.noop` job in the same transaction, and a worker runs it.
"""

from __future__ import annotations

import os

from app import create_app, jobs

NOOP_JOB = "bench.noop"

app = create_app()
# Not read from the environment by app.config: how long an idle worker sleeps between polls.
app.config["WORKER_IDLE_SLEEP"] = float(os.environ.get("BENCH_WORKER_IDLE_SLEEP", "0.2"))


def noop(payload: dict) -> None:
    """Does nothing: the benchmark measures the outbox, not a handler."""


jobs.registry(app).subscribe("payment.paid", NOOP_JOB, noop)
