"""gunicorn reads this file from its working directory (flags on the command line still win).

It only keeps the books of Prometheus' multiprocess mode, when PROMETHEUS_MULTIPROC_DIR is
set (docs/deploy.md, "Metrics"): the folder is emptied when gunicorn starts, so counts of an
earlier run are not added to this one's, and a worker that exits is reported to the library.
"""

import os
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def on_starting(server):
    path = os.environ.get(MULTIPROC_ENV)
    if path:
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):
            stale.unlink(missing_ok=True)


def child_exit(server, worker):
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
