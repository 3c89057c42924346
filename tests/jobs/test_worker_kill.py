"""A real worker process is SIGKILLed mid-job; a second worker re-runs the job after the lease.

The workers are `flask --app tests.jobs.helpers worker` subprocesses, as in production
(Procfile.dev), on a file SQLite database and, when TEST_DATABASE_URL is set, on it too.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from app import jobs
from app.extensions import db
from app.models import JobStatus
from tests.helpers import TEST_DATABASE_URL, wait_for
from tests.jobs.helpers import SLOW_MARKER, job_row, job_rows, marker_lines

ROOT = Path(__file__).resolve().parents[2]
FLASK = Path(sys.executable).with_name("flask")
LEASE_SECONDS = 4

BACKENDS = ["sqlite-file"] + (["test-database-url"] if TEST_DATABASE_URL else [])


@pytest.fixture(params=BACKENDS)
def kill_db(request, make_app, database_url, tmp_path):
    """(app, url): an app in this process and the URL the worker processes are given."""
    if request.param == "sqlite-file":
        url = f"sqlite:///{tmp_path / 'worker-kill.db'}"
        app = make_app(SQLALCHEMY_DATABASE_URI=url)
        with app.app_context():
            db.create_all()
    else:
        url = database_url
        app = make_app()
    return app, url


@pytest.fixture
def spawn_worker(tmp_path):
    """Start `flask worker` subprocesses; every one still alive is SIGKILLed at teardown."""
    started: list[tuple[subprocess.Popen, object]] = []

    def spawn(url: str, name: str) -> tuple[subprocess.Popen, Path]:
        log_path = tmp_path / f"{name}.log"
        log = log_path.open("wb")
        env = {
            **os.environ,
            "APP_ENV": "testing",
            "TEST_DATABASE_URL": url,
            "JOB_LEASE_SECONDS": str(LEASE_SECONDS),
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }
        proc = subprocess.Popen(
            [str(FLASK), "--app", "tests.jobs.helpers", "worker"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        started.append((proc, log))
        return proc, log_path

    yield spawn
    for proc, log in started:
        if proc.poll() is None:
            proc.kill()
        try:
            proc.wait(timeout=10)
        finally:
            log.close()


def _log(path: Path) -> str:
    return path.read_text(errors="replace")


def test_killed_worker_job_is_rerun_by_another_worker_after_the_lease(
    kill_db, spawn_worker, tmp_path
):
    app, url = kill_db
    marker = tmp_path / "marker.txt"
    with app.app_context():
        jobs.enqueue(SLOW_MARKER, {"marker": str(marker)}, key="kill-me")
        db.session.commit()
        (job,) = job_rows()
        job_id = job.id

    first, first_log = spawn_worker(url, "worker-1")
    wait_for(lambda: marker_lines(marker) or first.poll() is not None, timeout=20)
    assert first.poll() is None, _log(first_log)
    with app.app_context():
        leased = job_row(job_id)
    assert leased.status is JobStatus.RUNNING
    assert leased.attempts == 1
    assert f":{first.pid}:" in leased.locked_by
    lease_end = leased.locked_until

    first.send_signal(signal.SIGKILL)
    assert first.wait(timeout=10) == -signal.SIGKILL

    # Worker 2 polls all along; the dead worker's lease holds the job until it runs out.
    second, second_log = spawn_worker(url, "worker-2")
    with app.app_context():
        wait_for(lambda: job_row(job_id).status is JobStatus.DONE or second.poll() is not None,
                 timeout=30)
        done = job_row(job_id)
    assert done.status is JobStatus.DONE, _log(second_log)

    lines = [line.split() for line in marker_lines(marker)]
    assert len(lines) == 2, lines
    (_, first_pid), (rerun_at, rerun_pid) = lines
    assert (int(first_pid), int(rerun_pid)) == (first.pid, second.pid)
    assert float(rerun_at) >= lease_end.timestamp(), "re-run before the lease ran out"
    assert done.attempts == 2
    assert done.last_error is None
    assert done.finished_at is not None
    assert done.locked_by is None
    assert second.poll() is None, "the second worker should still be running"
    assert "lease of" in _log(second_log) and "ran out" in _log(second_log)
