"""A job worker for the benchmark: `python -m bench.worker` from the repository root.

The same loop as `flask worker` (app/jobs/worker.py), on the app of bench/app_with_noop.py so
that the `bench.noop` handler is registered (BENCH_APP_MODULE names another module with an
`app`, and optionally a `Worker` class, to measure a variant). SIGTERM or SIGINT stops it
after the current job.
"""

from __future__ import annotations

import importlib
import os
import signal

from app.jobs.worker import Worker


def main() -> None:
    module = importlib.import_module(os.environ.get("BENCH_APP_MODULE", "bench.app_with_noop"))
    worker = getattr(module, "Worker", Worker)(module.app)

    def stop(_signum, _frame):
        worker.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    worker.run()


if __name__ == "__main__":
    main()
