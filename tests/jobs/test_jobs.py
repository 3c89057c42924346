"""The outbox (app/jobs) and the worker (app/jobs/worker.py), in process.

Runs on SQLite by default and on PostgreSQL when TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

import app.jobs.worker as worker_module
from app import jobs
from app.config import ConfigError
from app.extensions import db
from app.jobs.worker import Worker
from app.models import Job, JobStatus, utcnow
from tests.jobs.helpers import Clock, enqueue_committed, job_row, job_rows, update_job


@pytest.fixture
def clock(monkeypatch) -> Clock:
    """Freeze the outbox's and the worker's notion of now; tests move it by hand."""
    frozen = Clock(utcnow().replace(microsecond=0))
    monkeypatch.setattr(jobs, "utcnow", frozen)
    monkeypatch.setattr(worker_module, "utcnow", frozen)
    return frozen


def recorder(name: str, *, fail: BaseException | None = None) -> list[dict]:
    """Register handler `name` that records each payload (and raises `fail`, if given)."""
    calls: list[dict] = []

    def handle(payload):
        calls.append(payload)
        if fail is not None:
            raise fail

    jobs.registry().handler(name, handle)
    return calls


# --- enqueue: idempotency and outbox semantics -----------------------------------------


def test_same_key_twice_in_one_transaction_gives_one_job(app):
    jobs.enqueue("test.notify", {"n": 1}, key="order-7:paid")
    jobs.enqueue("test.notify", {"n": 2}, key="order-7:paid")
    db.session.commit()

    rows = job_rows()
    assert [(r.name, r.key, r.payload) for r in rows] == [
        ("test.notify", "order-7:paid", {"n": 1})
    ]
    assert rows[0].status is JobStatus.QUEUED
    assert rows[0].attempts == 0


def test_same_key_in_a_later_transaction_is_ignored(app):
    jobs.enqueue("test.notify", {"n": 1}, key="order-7:paid")
    db.session.commit()
    jobs.enqueue("test.notify", {"n": 2}, key="order-7:paid")
    db.session.commit()

    assert [(r.key, r.payload) for r in job_rows()] == [("order-7:paid", {"n": 1})]


def test_key_is_kept_after_the_job_is_done(app):
    """A repeated event after the job already ran must not run it a second time."""
    calls = recorder("test.notify")
    jobs.enqueue("test.notify", {"n": 1}, key="order-7:paid")
    db.session.commit()
    assert Worker(app, worker_id="w").run_once() == 1

    jobs.enqueue("test.notify", {"n": 2}, key="order-7:paid")
    db.session.commit()
    assert Worker(app, worker_id="w").run_once() == 0
    assert calls == [{"n": 1}]
    assert len(job_rows()) == 1


def test_jobs_without_a_key_are_not_deduplicated(app):
    jobs.enqueue("test.notify", {"n": 1})
    jobs.enqueue("test.notify", {"n": 1})
    db.session.commit()

    assert [r.key for r in job_rows()] == [None, None]


def test_publish_enqueues_one_job_per_subscriber_keyed_by_job_name(app):
    registry = jobs.registry()
    registry.subscribe("test.payment_paid", "test.receipt")
    registry.subscribe("test.payment_paid", "test.telegram")
    registry.subscribe("test.payment_paid", "test.telegram")  # twice is once

    assert jobs.publish("test.payment_paid", {"payment_id": 5}, key="pay-5") == [
        "test.receipt", "test.telegram",
    ]
    db.session.commit()
    # The bank repeats its callback: the same event again adds nothing.
    jobs.publish("test.payment_paid", {"payment_id": 5}, key="pay-5")
    db.session.commit()

    assert sorted((r.name, r.key, r.payload) for r in job_rows()) == [
        ("test.receipt", "test.receipt:pay-5", {"payment_id": 5}),
        ("test.telegram", "test.telegram:pay-5", {"payment_id": 5}),
    ]


def test_publish_without_subscribers_enqueues_nothing(app):
    assert jobs.publish("nobody.listens", {"x": 1}, key="k") == []
    db.session.commit()
    assert job_rows() == []


def test_rolled_back_transaction_enqueues_nothing(app):
    jobs.registry().subscribe("test.payment_paid", "test.receipt")
    jobs.enqueue("test.notify", {"n": 1})
    jobs.enqueue("test.notify", {"n": 2}, key="order-7:paid")
    jobs.publish("test.payment_paid", {"payment_id": 5}, key="pay-5")
    db.session.rollback()

    assert job_rows() == []
    assert Worker(app, worker_id="w").run_once() == 0

    # The key was not used up by the rolled-back attempt.
    jobs.enqueue("test.notify", {"n": 3}, key="order-7:paid")
    db.session.commit()
    assert [(r.key, r.payload) for r in job_rows()] == [("order-7:paid", {"n": 3})]


def test_each_app_has_its_own_registry(app, make_app):
    """What one app subscribes (a test, later the Telegram bot) is not another app's."""
    calls = recorder("test.telegram")
    jobs.registry().subscribe("payment.paid", "test.telegram")
    other = make_app()

    assert "test.telegram" not in jobs.registry(other).subscribers["payment.paid"]
    assert "test.telegram" not in jobs.registry(other).handlers
    with other.app_context():
        assert jobs.publish("payment.paid", {"payment_id": 5}, key="pay-5") == [
            "fiscal.sell", "constructor.paid", "storefront.stock"]
        db.session.rollback()
    assert jobs.publish("payment.paid", {"payment_id": 5}, key="pay-5") == [
        "fiscal.sell", "constructor.paid", "storefront.stock", "test.telegram"]
    db.session.execute(sa.delete(Job).where(Job.name != "test.telegram"))
    db.session.commit()
    assert Worker(app, worker_id="w").run_once() == 1
    assert calls == [{"payment_id": 5}]


# --- running, retries, dead jobs ---------------------------------------------------------


def test_job_runs_once_and_is_marked_done(app):
    calls = recorder("test.notify")
    job_id = enqueue_committed("test.notify", {"n": 1})
    worker = Worker(app, worker_id="w")

    before = utcnow()
    assert worker.run_once() == 1
    after = utcnow()
    assert worker.run_once() == 0

    assert calls == [{"n": 1}]
    job = job_row(job_id)
    assert job.status is JobStatus.DONE
    assert job.attempts == 1
    assert before <= job.finished_at <= after
    assert (job.locked_by, job.locked_until, job.last_error) == (None, None, None)


def test_job_scheduled_for_later_waits_until_run_at(app, clock):
    calls = recorder("test.notify")
    job_id = enqueue_committed("test.notify", {"n": 1}, run_at=clock.now + timedelta(minutes=5))
    worker = Worker(app, worker_id="w")

    clock.advance(299)
    assert worker.run_once() == 0
    clock.advance(1)
    assert worker.run_once() == 1
    assert calls == [{"n": 1}]
    assert job_row(job_id).status is JobStatus.DONE


def test_failing_job_backs_off_doubling_then_dies_keeping_its_error(app, clock):
    calls = recorder("test.flaky", fail=ValueError("bank said no"))
    job_id = enqueue_committed("test.flaky", {"n": 1}, max_attempts=4)
    worker = Worker(app, worker_id="w")

    delays = []
    for attempt in (1, 2, 3):
        assert worker.run_once() == 1
        job = job_row(job_id)
        assert job.status is JobStatus.QUEUED
        assert job.attempts == attempt
        assert "bank said no" in job.last_error
        assert job.finished_at is None
        delay = (job.run_at - clock.now).total_seconds()
        expected = 2.0 * 2 ** (attempt - 1)  # 2 s, 4 s, 8 s
        assert 0.8 * expected <= delay <= 1.2 * expected, (attempt, delay)
        delays.append(delay)
        # Not a moment early...
        clock.set(job.run_at - timedelta(milliseconds=10))
        assert worker.run_once() == 0
        # ...but as soon as it is due.
        clock.set(job.run_at)

    assert delays == sorted(delays)
    assert worker.run_once() == 1  # the 4th and last attempt
    job = job_row(job_id)
    assert job.status is JobStatus.DEAD
    assert job.attempts == 4
    assert "ValueError" in job.last_error and "bank said no" in job.last_error
    assert job.finished_at == clock.now
    assert (job.locked_by, job.locked_until) == (None, None)
    assert len(calls) == 4

    clock.advance(7 * 24 * 3600)
    assert worker.run_once() == 0
    assert len(calls) == 4


def test_max_attempts_defaults_to_config(make_app):
    app = make_app(JOB_MAX_ATTEMPTS=3)
    with app.app_context():
        job_id = enqueue_committed("test.notify")
        assert job_row(job_id).max_attempts == 3


def test_unknown_handler_ends_dead_and_the_worker_goes_on(app, clock):
    calls = recorder("test.notify")
    lost = enqueue_committed("test.renamed_long_ago", {"n": 0}, max_attempts=2)
    good = enqueue_committed("test.notify", {"n": 1})
    worker = Worker(app, worker_id="w")

    assert worker.run_once() == 2  # no exception escapes
    assert calls == [{"n": 1}]
    assert job_row(good).status is JobStatus.DONE
    job = job_row(lost)
    assert job.status is JobStatus.QUEUED
    assert job.attempts == 1
    assert "no handler registered" in job.last_error

    clock.set(job.run_at)
    assert worker.run_once() == 1
    job = job_row(lost)
    assert job.status is JobStatus.DEAD
    assert job.attempts == 2
    assert "no handler registered for job 'test.renamed_long_ago'" in job.last_error
    assert job.finished_at is not None

    # The worker still runs new work afterwards.
    enqueue_committed("test.notify", {"n": 2})
    assert worker.run_once() == 1
    assert calls == [{"n": 1}, {"n": 2}]


def test_retry_job_reschedules_without_using_an_attempt(app, clock):
    """A refund still processing at the bank is asked again later, however many times."""
    calls = []

    @jobs.registry().handler("test.poll_refund")
    def poll(payload):
        calls.append(clock.now)
        if len(calls) <= 3:
            raise jobs.RetryJob(30, "refund 9 still in_progress")

    job_id = enqueue_committed("test.poll_refund", {"refund_id": 9}, max_attempts=2)
    worker = Worker(app, worker_id="w")

    for _ in range(3):
        assert worker.run_once() == 1
        job = job_row(job_id)
        assert job.status is JobStatus.QUEUED
        assert job.attempts == 0
        assert job.run_at == clock.now + timedelta(seconds=30)  # its own delay, no jitter
        assert job.last_error == "refund 9 still in_progress"
        clock.advance(29)
        assert worker.run_once() == 0
        clock.advance(1)

    assert worker.run_once() == 1
    job = job_row(job_id)
    assert job.status is JobStatus.DONE
    assert job.attempts == 1
    assert job.last_error is None
    assert len(calls) == 4


# --- leases --------------------------------------------------------------------------------


def test_expired_lease_of_a_dead_worker_is_taken_by_another_worker(app):
    calls = recorder("test.notify")
    job_id = enqueue_committed("test.notify", {"n": 1})
    update_job(job_id, status=JobStatus.RUNNING, attempts=1, locked_by="dead-host:1:1",
               locked_until=utcnow() - timedelta(seconds=1))

    assert Worker(app, worker_id="alive").run_once() == 1

    assert calls == [{"n": 1}]
    job = job_row(job_id)
    assert job.status is JobStatus.DONE
    assert job.attempts == 2
    assert job.locked_by is None


def test_a_dead_workers_job_comes_before_a_busy_queue_and_a_claim_stays_one_batch(app):
    """Jobs whose lease ran out are claimed before due queued ones, so a queue that is
    never empty cannot starve them; and a claim never takes more than its batch."""
    calls = recorder("test.notify")
    queued = [enqueue_committed("test.notify", {"n": n}) for n in (1, 2, 3)]
    lost = enqueue_committed("test.notify", {"n": 4})
    update_job(lost, status=JobStatus.RUNNING, attempts=1, locked_by="dead-host:1:1",
               locked_until=utcnow() - timedelta(seconds=1))

    assert Worker(app, worker_id="alive", batch=2).run_once() == 2

    assert calls == [{"n": 4}, {"n": 1}]
    assert [r.status for r in job_rows()] == [
        JobStatus.DONE, JobStatus.QUEUED, JobStatus.QUEUED, JobStatus.DONE]
    assert [r.id for r in job_rows() if r.status is JobStatus.QUEUED] == queued[1:]


def test_live_lease_is_not_taken(app):
    calls = recorder("test.notify")
    job_id = enqueue_committed("test.notify", {"n": 1})
    locked_until = utcnow() + timedelta(seconds=60)
    update_job(job_id, status=JobStatus.RUNNING, attempts=1, locked_by="busy-host:1:1",
               locked_until=locked_until)

    assert Worker(app, worker_id="other").run_once() == 0

    assert calls == []
    job = job_row(job_id)
    assert (job.status, job.locked_by, job.attempts) == (JobStatus.RUNNING, "busy-host:1:1", 1)


def test_worker_dying_on_the_last_attempt_leaves_a_dead_job(app):
    calls = recorder("test.notify")
    job_id = enqueue_committed("test.notify", {"n": 1}, max_attempts=3)
    update_job(job_id, status=JobStatus.RUNNING, attempts=3, locked_by="dead-host:1:1",
               locked_until=utcnow() - timedelta(seconds=1), last_error="TimeoutError()")

    assert Worker(app, worker_id="alive").run_once() == 0

    assert calls == []
    job = job_row(job_id)
    assert job.status is JobStatus.DEAD
    assert job.attempts == 3
    assert job.last_error == "TimeoutError()"
    assert job.finished_at is not None
    assert job.locked_by is None


def _take_over(app, job_id: int, worker: Worker | None) -> None:
    """From a separate session (another worker), expire `job_id`'s lease, then let `worker`
    run it, or, without one, lease it to a worker "B" that is still running it."""
    with app.app_context():
        update_job(job_id, locked_until=utcnow() - timedelta(seconds=1))
        if worker is not None:
            assert worker.run_once() == 1
        else:
            update_job(job_id, attempts=2, locked_by="B",
                       locked_until=utcnow() + timedelta(seconds=60))


@pytest.mark.parametrize("other_finished", [False, True],
                         ids=["other-still-running", "other-finished"])
def test_worker_that_lost_its_lease_does_not_overwrite_the_result(app, other_finished):
    """A's handler outlives its lease; B takes the job; A's late failure must be dropped."""
    late, other = Worker(app, worker_id="A"), Worker(app, worker_id="B")
    calls = []

    @jobs.registry().handler("test.slow")
    def slow(payload):
        calls.append(len(calls) + 1)
        if len(calls) == 1:  # A's run: meanwhile its lease runs out and B takes over
            _take_over(app, job_id, other if other_finished else None)
            raise TimeoutError("A gave up")

    job_id = enqueue_committed("test.slow", {"n": 1})
    assert late.run_once() == 1

    job = job_row(job_id)
    assert job.last_error is None
    assert job.attempts == 2
    if other_finished:
        assert calls == [1, 2]
        assert job.status is JobStatus.DONE
        assert job.finished_at is not None
    else:
        # B still holds the job: A did not requeue it, nor take B's lease away.
        assert calls == [1]
        assert (job.status, job.locked_by) == (JobStatus.RUNNING, "B")


def test_worker_does_not_start_a_job_whose_lease_ran_out_in_its_batch(app):
    """A claims two jobs; while the first runs, the second's lease runs out and B runs it.
    A must then not run the second job's handler again: it is done."""
    slow_worker, other = Worker(app, worker_id="A", batch=2), Worker(app, worker_id="B")
    seconds = [0.0]
    slow_worker.clock = lambda: seconds[0]
    calls = []

    @jobs.registry().handler("test.batch")
    def handle(payload):
        calls.append(payload["n"])
        if payload["n"] == 1:
            seconds[0] += app.config["JOB_LEASE_SECONDS"]  # the first job took that long
            _take_over(app, second, other)

    enqueue_committed("test.batch", {"n": 1})
    second = enqueue_committed("test.batch", {"n": 2})

    assert slow_worker.run_once() == 2

    assert calls == [1, 2], "job 2 ran again after B had finished it"
    assert [r.status for r in job_rows()] == [JobStatus.DONE, JobStatus.DONE]
    # A's claim counted as an attempt (as for a worker that died); B's run is the second.
    job = job_row(second)
    assert (job.attempts, job.last_error) == (2, None)


def test_stopping_worker_gives_back_the_jobs_it_did_not_start(app):
    """SIGTERM (deploy) while a batch runs: the rest of the batch must not wait out the
    lease, nor lose an attempt (a job on its last attempt would be buried unrun)."""
    stopping, successor = Worker(app, worker_id="old", batch=3), Worker(app, worker_id="new")
    calls = []

    @jobs.registry().handler("test.batch")
    def handle(payload):
        calls.append(payload["n"])
        stopping.stop.set()  # the signal arrives while the first job runs

    for n in (1, 2, 3):
        enqueue_committed("test.batch", {"n": n}, max_attempts=1)
    stopping.run_once()
    assert calls == [1]

    assert successor.run_once() == 2
    assert calls == [1, 2, 3]
    assert [(r.status, r.attempts) for r in job_rows()] == [(JobStatus.DONE, 1)] * 3


def test_a_burst_worker_runs_what_is_due_and_returns(app):
    """`flask worker --burst`: every due job, the periodic ones included, then it exits."""
    jobs.registry().periodic_jobs.clear()  # only ours, not the app's reconcilers
    ticks = []
    jobs.registry().periodic("test.tick", 60, ticks.append)
    calls = recorder("test.notify")
    for n in range(5):
        enqueue_committed("test.notify", {"n": n})
    later = enqueue_committed("test.notify", {"n": 99}, run_at=utcnow() + timedelta(hours=1))

    Worker(app, worker_id="w", batch=2).run(burst=True)

    assert calls == [{"n": n} for n in range(5)]
    assert ticks == [{}]
    assert job_row(later).status is JobStatus.QUEUED


# --- several workers at once -------------------------------------------------------------


def test_concurrent_workers_run_every_job_exactly_once(make_app):
    app = make_app(JOB_LEASE_SECONDS=60)
    total, threads_count = 200, 4
    seen: list[tuple[int, str]] = []
    seen_lock = threading.Lock()
    errors: list[BaseException] = []

    @jobs.registry(app).handler("test.count")
    def count(payload):
        with seen_lock:
            seen.append((payload["n"], threading.current_thread().name))
        time.sleep(0.001)

    with app.app_context():
        for n in range(total):
            jobs.enqueue("test.count", {"n": n})
        db.session.commit()

    jobs.registry(app).periodic_jobs.clear()  # only ours, not the app's reconcilers

    def work(index: int) -> None:
        try:
            # Each returns when it finds nothing due: every job is done or another's.
            Worker(app, worker_id=f"w{index}", batch=5).run(burst=True)
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,), name=f"worker-{i}")
               for i in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not errors, errors
    assert not any(t.is_alive() for t in threads)
    runs = Counter(n for n, _ in seen)
    assert sorted(runs) == list(range(total))
    assert [n for n, times in runs.items() if times > 1] == []
    assert len({name for _, name in seen}) >= 2, "only one worker ever got a job"
    with app.app_context():
        rows = job_rows()
    assert Counter((r.status, r.attempts) for r in rows) == {(JobStatus.DONE, 1): total}


# --- periodic jobs -------------------------------------------------------------------------


def test_periodic_job_has_one_row_and_runs_once_per_interval(app, clock):
    jobs.registry().periodic_jobs.clear()  # only ours, not the app's reconcilers
    ticks: list[datetime] = []
    jobs.registry().periodic("test.tick", 60, lambda payload: ticks.append(clock.now))

    def tick(*workers: Worker) -> int:
        """Every worker arms and runs once, as in its loop; how many jobs ran."""
        ran = 0
        for worker in workers:
            worker.arm_periodic()
        for worker in workers:
            ran += worker.run_once()
        return ran

    one, two = Worker(app, worker_id="one"), Worker(app, worker_id="two")
    start = clock.now

    assert tick(one, two) == 1
    rows = job_rows()
    assert [(r.name, r.key, r.status) for r in rows] == [
        ("test.tick", "periodic:test.tick", JobStatus.DONE)
    ]

    clock.advance(30)
    assert tick(one, two) == 0
    clock.advance(29)
    assert tick(two, one) == 0

    clock.advance(1)  # 60 s after the first run finished
    assert tick(two, one) == 1
    for _ in range(5):
        clock.advance(11)
        assert tick(one, two) == 0
    clock.advance(5)  # 60 s after the second run
    assert tick(one, two) == 1

    assert ticks == [start, start + timedelta(seconds=60), start + timedelta(seconds=120)]
    rows = job_rows()
    assert len(rows) == 1
    assert (rows[0].key, rows[0].status, rows[0].attempts) == (
        "periodic:test.tick", JobStatus.DONE, 1
    )


def test_failing_periodic_job_is_not_buried_after_a_few_failures(app, clock):
    """A reconciler that fails while the bank is down keeps being retried."""
    jobs.registry().periodic_jobs.clear()  # only ours, not the app's reconcilers
    jobs.registry().periodic("test.tick", 60)
    calls = recorder("test.tick", fail=ConnectionError("bank down"))
    worker = Worker(app, worker_id="w", batch=1)

    worker.arm_periodic()
    for _ in range(15):
        assert worker.run_once() == 1
        (job,) = job_rows()
        assert job.status is JobStatus.QUEUED
        clock.set(job.run_at)
    assert len(calls) == 15


# --- retention ------------------------------------------------------------------------------


def _finished_days_ago(name: str, status: JobStatus, days: float, now: datetime) -> int:
    job_id = enqueue_committed(name)
    update_job(job_id, status=status, attempts=1, finished_at=now - timedelta(days=days))
    return job_id


def test_done_jobs_past_the_retention_are_deleted_and_dead_ones_kept(app, clock):
    """The jobs room's periodic job forgets done jobs after JOB_RETENTION_DAYS (14); an
    admin still finds the dead ones, however old."""
    registry = jobs.registry()
    registry.periodic_jobs = {"jobs.purge_done": registry.periodic_jobs["jobs.purge_done"]}
    old = _finished_days_ago("test.notify", JobStatus.DONE, 15, clock.now)
    recent = _finished_days_ago("test.notify", JobStatus.DONE, 13, clock.now)
    dead = _finished_days_ago("test.notify", JobStatus.DEAD, 400, clock.now)
    waiting = enqueue_committed("test.notify", run_at=clock.now + timedelta(days=30))

    Worker(app, worker_id="w").run(burst=True)

    rows = {r.id: r for r in job_rows()}
    assert old not in rows
    assert {recent, dead, waiting} <= set(rows)
    assert rows[dead].status is JobStatus.DEAD
    purge = [r for r in rows.values() if r.key == "periodic:jobs.purge_done"]
    assert [r.status for r in purge] == [JobStatus.DONE]


def test_the_retention_is_read_from_the_environment(make_app, monkeypatch, clock):
    monkeypatch.setenv("JOB_RETENTION_DAYS", "3")
    app = make_app()
    with app.app_context():
        old = _finished_days_ago("test.notify", JobStatus.DONE, 4, clock.now)
        recent = _finished_days_ago("test.notify", JobStatus.DONE, 2, clock.now)
        jobs.purge_done({})
        assert old not in [r.id for r in job_rows()]
        assert [r.id for r in job_rows()] == [recent]


def test_a_retention_under_a_day_is_refused(make_app, monkeypatch):
    """Done jobs keep their keys, so that a repeated event adds nothing: never purge them
    at once."""
    monkeypatch.setenv("JOB_RETENTION_DAYS", "0")
    with pytest.raises(ConfigError, match="JOB_RETENTION_DAYS must be at least 1, got 0"):
        make_app()


def test_a_batch_that_runs_quickly_renews_no_lease(app):
    """Jobs of a batch that start well within the lease they were claimed with run without
    another round trip to renew it; they are done all the same."""
    worker = Worker(app, worker_id="A", batch=3)
    worker.clock = lambda: 0.0
    renewals = []
    real = worker._renew_lease
    worker._renew_lease = lambda job_id: renewals.append(job_id) or real(job_id)

    @jobs.registry().handler("test.quick")
    def handle(payload):
        pass

    for n in range(3):
        enqueue_committed("test.quick", {"n": n})
    assert worker.run_once() == 3
    assert renewals == []
    assert [r.status for r in job_rows()] == [JobStatus.DONE] * 3


# --- the database lost in the middle of a batch --------------------------------------------

def _database_gone(*_args, **_kwargs):
    raise sa.exc.OperationalError("UPDATE jobs", {}, Exception("the database system is "
                                                              "shutting down"))


def test_a_batch_that_loses_the_database_runs_no_finished_job_again(app, monkeypatch):
    """PostgreSQL restarts while a batch runs (found by tests/faults): the jobs that had
    finished must be marked done once it is back, not run again when their lease runs out
    (a Telegram message sent twice); the jobs not yet started go back to the queue."""
    worker = Worker(app, worker_id="w", batch=3)
    calls = []

    @jobs.registry().handler("test.batch")
    def handle(payload):
        calls.append(payload["n"])
        if payload["n"] == 2:
            # The handler fails because the database went away, and so does recording it.
            monkeypatch.setattr(worker, "_failed", _database_gone)
            raise sa.exc.OperationalError("SELECT", {}, Exception("server closed"))

    first, second, third = (enqueue_committed("test.batch", {"n": n}) for n in (1, 2, 3))
    with pytest.raises(sa.exc.OperationalError):
        worker.run_once()
    monkeypatch.undo()  # the database is back

    worker.run_once()

    assert calls == [1, 2, 3], "a finished job ran again, or the rest never ran"
    assert job_row(first).status is JobStatus.DONE
    assert (job_row(third).status, job_row(third).attempts) == (JobStatus.DONE, 1)
    # The failed one is left to its lease, as for a worker that died while running it.
    assert job_row(second).status is JobStatus.RUNNING


class _Died(BaseException):
    """The worker process is killed (SIGKILL): nothing after this point runs."""


def test_an_unrepeatable_job_is_marked_done_as_soon_as_it_succeeds(app):
    """A worker killed later in its batch: the repeatable jobs it finished run again (their
    handlers allow it), the unrepeatable one (a Telegram message) is already done."""
    jobs.registry().handler("test.message", lambda payload: None, repeatable=False)
    calls = recorder("test.idempotent")

    @jobs.registry().handler("test.killed")
    def killed(payload):
        raise _Died

    message = enqueue_committed("test.message", {})
    repeatable = enqueue_committed("test.idempotent", {})
    enqueue_committed("test.killed", {})
    with pytest.raises(_Died):
        Worker(app, worker_id="w", batch=3).run_once()

    db.session.rollback()
    assert calls == [{}]
    assert job_row(message).status is JobStatus.DONE
    assert job_row(repeatable).status is JobStatus.RUNNING
