"""Benchmark of fiscalization: N payments paid at once, time until all N receipts are done.

Each run is fresh and happens on 127.0.0.1, started and stopped by this script:

1. a new database (PostgreSQL DROP/CREATE, or a new SQLite file with --sqlite), the schema
   by `flask db upgrade`, then N pending orders (1-3 lines each) with an open dynamic QR;
2. the sandbox as a process (bench/receipts_sandbox.py: app.sandbox.serve_sandbox, whose
   ATOL documents stay "wait" for --processing seconds, 3 s by default), Kassa's web
   (`gunicorn wsgi:app`, 2 sync workers) and W job workers (`flask --app wsgi worker`, the
   production command: batch 10, idle sleep 0.5 s), reconcilers out of the way;
3. the N payments: N signed bank callbacks POSTed at once (--concurrency clients) to
   Kassa's /sbp/callback (or, --pay direct, handle_callback() in a loop in this process);
   each commits a paid payment and its `fiscal.sell` job, which the running workers take;
4. the clock runs from the first payment recorded (min payments.created_at; the time from
   the last one is reported too) to the last receipt done (max receipts.done_at); per
   receipt, its payment's created_at to its done_at;
5. proof that nothing was doubled: the register's documents (GET /sandbox/fiscal/state:
   one document per external id, all done, the same FN/FD as Kassa stored) and Kassa's
   receipts and jobs (each job run once, none dead, nothing left queued);
6. where the time went: when the last sell/submit/poll finished, payment -> register,
   register done -> Kassa done, report polls per receipt and the gaps between them (from
   the workers' logs), handler times, CPU per process.

A run is one (ATOL callbacks, workers) pair. With ATOL callbacks "on" Kassa's PUBLIC_URL is
its web server, whose /fiscal/atol/callback moves the receipt's queued poll to "now";
"off" points it at a closed port and Kassa learns only by polling (RetryJob between polls).

The machine may be shared: before each run the script waits until it is idle, and a run
during which other processes took more than --max-other-share of the CPU is repeated
(--retries) and flagged if it stays disturbed.

    .venv/bin/python bench/receipts.py                  # 1000 payments; 1 and 2 workers; both
    .venv/bin/python bench/receipts.py --repeat 3       # ... each 3 times, medians compared
    .venv/bin/python bench/receipts.py --quick          # 100 payments
    .venv/bin/python bench/receipts.py --processing 0.5 --atol-callbacks on
    .venv/bin/python bench/receipts.py --sqlite         # one worker on SQLite
    .venv/bin/python bench/receipts.py --profile-worker --workers 1   # cProfile of worker-1

Writes bench/results/receipts-<timestamp>.json and logs-receipts-<timestamp>/ (each run's
process logs and the register's final state). Exit status 1 when a correctness check fails
or a run does not finish in --run-timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.request
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` and `app` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (
    HOST,
    RESULTS,
    ROOT,
    Processes,
    RawConnection,
    Req,
    Seeded,
    calibrate,
    callback_req,
    code_version,
    cpu_by_process_group,
    cpu_snapshot,
    free_port,
    insert_open_qrs,
    percentile,
    recreate_database,
    step,
    stop_on_signals,
    utc_stamp,
    wait_http,
    wait_quiet,
)

FISCAL_JOBS = ("fiscal.sell", "fiscal.submit", "fiscal.poll")
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                   "ALL_PROXY")
#: Kassa's PUBLIC_URL when ATOL callbacks are off: nothing listens on the discard port.
DEAD_URL = f"http://{HOST}:9"
JOB_DONE = re.compile(r"\[(\d+)\] job \d+ (\S+) done in (\d+) ms")
REPORT_LINE = re.compile(r"^(\S+ \S+) INFO app\.httpclient \[\d+\] atol GET /[^/]+/report/"
                         r"([0-9a-f-]+) -> ")


# -- the database ----------------------------------------------------------------------------


class Database:
    """The run's database: a fresh PostgreSQL database or SQLite file, and a raw
    autocommit connection for the progress queries (no SQLAlchemy: on SQLite its
    BEGIN IMMEDIATE would compete with the worker for the write lock)."""

    def __init__(self, args: argparse.Namespace, run_dir: Path):
        self.sqlite_path: Path | None = None
        if args.sqlite:
            self.sqlite_path = run_dir / "kassa.db"
            self.url = f"sqlite:///{self.sqlite_path}"
        else:
            self.pg_url = args.pg_url
            self.name = args.db_name
            self.url = (f"{args.pg_url.replace('postgresql://', 'postgresql+psycopg://')}"
                        f"/{args.db_name}")
        self._conn: Any = None

    def recreate(self) -> None:
        if self.sqlite_path is not None:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.sqlite_path}{suffix}").unlink(missing_ok=True)
        else:
            self.close()
            recreate_database(self.pg_url, self.name)

    def rows(self, sql: str) -> list[tuple]:
        if self._conn is None:
            if self.sqlite_path is not None:
                self._conn = sqlite3.connect(self.sqlite_path, isolation_level=None)
            else:
                import psycopg

                self._conn = psycopg.connect(f"{self.pg_url}/{self.name}", autocommit=True)
        return list(self._conn.execute(sql).fetchall())

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None


def make_app(db_url: str):
    from app import create_app

    return create_app({"SQLALCHEMY_DATABASE_URI": db_url, "LOG_LEVEL": "WARNING"})


def seed(app, n: int, rng: random.Random) -> list[Seeded]:
    """N pending orders of 1-3 lines, each with an open dynamic QR, in one transaction."""
    import sqlalchemy as sa

    from app.extensions import db
    from app.models import (
        Order,
        OrderChannel,
        OrderItem,
        OrderStatus,
        utcnow,
    )

    now = utcnow()
    carts = []
    for _ in range(n):
        lines = []
        for position in range(rng.choice((1, 1, 2, 3))):
            price = rng.randint(100, 300_000)
            quantity = rng.choice((1000, 1000, 2000, 3000))
            lines.append({"position": position, "name": f"Товар {rng.randint(1, 500)}",
                          "price_kopecks": price, "quantity_milli": quantity,
                          "amount_kopecks": price * quantity // 1000,
                          "vat": rng.choice(("none", "vat20", "vat10")),
                          "payment_object": "commodity", "measure": "piece"})
        carts.append(lines)
    totals = [sum(line["amount_kopecks"] for line in lines) for lines in carts]
    publics = [f"{rng.getrandbits(128):032x}" for _ in range(n)]
    emails = [f"buyer{i}@example.com" if rng.random() < 0.5 else None for i in range(n)]
    with app.app_context():
        order_ids = db.session.scalars(
            sa.insert(Order).returning(Order.id, sort_by_parameter_order=True),
            [{"public_id": publics[i], "status": OrderStatus.PENDING,
              "channel": OrderChannel.API, "total_kopecks": totals[i],
              "description": f"bench {i}", "customer_email": emails[i],
              "created_at": now, "updated_at": now} for i in range(n)],
        ).all()
        db.session.execute(sa.insert(OrderItem), [
            {**line, "order_id": order_ids[i]} for i, lines in enumerate(carts) for line in lines
        ])
        seeded = insert_open_qrs(order_ids, publics, totals, rng,
                                 expires_at=now.replace(year=now.year + 1))
        db.session.commit()
        db.session.remove()
    return seeded


# -- CPU (read-only /proc) -------------------------------------------------------------------


















# -- paying ----------------------------------------------------------------------------------


async def _post_all(port: int, reqs: list[Req], concurrency: int, timeout: float
                    ) -> list[tuple[int | None, bytes]]:
    rendered = [r.render(port) for r in reqs]
    results: list[tuple[int | None, bytes]] = [(None, b"")] * len(reqs)
    todo = iter(range(len(reqs)))

    async def client() -> None:
        conn = RawConnection(port)
        for i in todo:  # one iterator shared by all clients: each callback is sent once
            try:
                async with asyncio.timeout(timeout):
                    results[i] = await conn.request(rendered[i])
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError,
                    RuntimeError) as exc:
                conn.close()
                results[i] = (None, repr(exc).encode())
        conn.close()

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return results


def pay_http(port: int, reqs: list[Req], args: argparse.Namespace) -> dict[str, Any]:
    results = asyncio.run(_post_all(port, reqs, args.concurrency, args.request_timeout))
    outcomes: Counter[str] = Counter()
    for status, body in results:
        try:
            outcomes[f"{status} {json.loads(body).get('outcome')}"] += 1
        except (ValueError, AttributeError):
            outcomes[f"{status} {body[:80]!r}"] += 1
    return dict(outcomes)


def pay_direct(app, reqs: list[Req]) -> dict[str, Any]:
    """The web route's service call, in a loop in this process (no HTTP, no web CPU)."""
    from app.sbp.bank_events import handle_callback

    outcomes: Counter[str] = Counter()
    with app.app_context():
        for req in reqs:
            outcomes[f"direct {handle_callback(req.body, dict(req.headers))}"] += 1
    return dict(outcomes)


# -- waiting ---------------------------------------------------------------------------------


def wait_workers_ready(db: Database, procs: Processes, run_dir: Path, workers: int,
                       timeout: float = 60) -> None:
    """Every worker has logged its start and the two periodic reconcilers (armed on the
    first loop, RECONCILE_INTERVAL_SECONDS apart) are done, so they don't run mid-run."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        procs.check_alive()
        started = sum(bool(re.search(r"worker \S+ started", (run_dir / f"worker-{i + 1}.log")
                                     .read_text(errors="replace")))
                      for i in range(workers))
        periodic = db.rows("SELECT count(*) FROM jobs WHERE key LIKE 'periodic:%' "
                           "AND status = 'done'")[0][0]
        if started == workers and periodic >= 2:
            return
        time.sleep(0.2)
    raise RuntimeError(f"job workers not ready in {timeout}s; see {run_dir}")


RECEIPT_COUNTS = ("SELECT count(*) FILTER (WHERE status = 'done'), "
                  "count(*) FILTER (WHERE status = 'wait'), "
                  "count(*) FILTER (WHERE status = 'pending'), "
                  "count(*) FILTER (WHERE status = 'failed'), "
                  "(SELECT count(*) FROM payments) FROM receipts")


def wait_receipts(db: Database, procs: Processes, n: int, started: float, timeout: float
                  ) -> tuple[bool, list[list[float]]]:
    """Until N receipts are done (or any failed for good); a timeline every 0.5 s."""
    timeline: list[list[float]] = []
    last_print = 0.0
    while True:
        done, waiting, pending, failed, payments = db.rows(RECEIPT_COUNTS)[0]
        elapsed = time.monotonic() - started
        if not timeline or elapsed - timeline[-1][0] >= 0.5:
            timeline.append([round(elapsed, 2), payments, pending, waiting, done])
        if elapsed - last_print >= 5:
            last_print = elapsed
            step("progress", f"{elapsed:6.1f}s payments {payments}, receipts pending "
                             f"{pending}, wait {waiting}, done {done}, failed {failed}")
        if done + failed >= n:
            timeline.append([round(elapsed, 2), payments, pending, waiting, done])
            return failed == 0, timeline
        if elapsed > timeout:
            return False, timeline
        procs.check_alive()
        time.sleep(0.1)


def wait_jobs_idle(db: Database, timeout: float = 15) -> int:
    """Let stragglers (a poll the callback re-queued after the receipt was done) finish.
    Returns the fiscal jobs still queued or running when it gave up (0 normally)."""
    deadline = time.monotonic() + timeout
    sql = ("SELECT count(*) FROM jobs WHERE status IN ('queued', 'running') "
           "AND key NOT LIKE 'periodic:%'")
    while True:
        left = db.rows(sql)[0][0]
        if left == 0 or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


def sandbox_state(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(  # a fixed http://127.0.0.1 URL
        f"http://{HOST}:{port}/sandbox/fiscal/state", timeout=60
    ) as response:
        return json.loads(response.read())


def code_fingerprint() -> str:
    """sha256 (12 hex) of app/ and migrations/ as they are on disk now: the working tree may be
    shared with someone committing, and each run's processes import the code anew."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted([*ROOT.glob("app/**/*.py"), *ROOT.glob("migrations/**/*.py")]):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


# -- one run ---------------------------------------------------------------------------------


def kassa_env(args: argparse.Namespace, db_url: str, sandbox_port: int, public_url: str
              ) -> dict[str, str]:
    from app.config import SANDBOX_MERCHANT_ID, SANDBOX_SECRET_KEY

    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARIABLES}
    env.pop("FLASK_DEBUG", None)
    env.update({
        "APP_ENV": "development",
        "DATABASE_URL": db_url,
        "SECRET_KEY": "bench-secret-key",
        "LOG_LEVEL": "INFO",  # the workers' "job N name done in M ms" lines are parsed
        "RAIFFEISEN_SBP_MERCHANT_ID": SANDBOX_MERCHANT_ID,
        "RAIFFEISEN_SECRET_KEY": SANDBOX_SECRET_KEY,
        "RAIFFEISEN_API_URL": f"http://{HOST}:{sandbox_port}",
        "FISCAL_PROVIDER": "atol",
        # 1000 callbacks at once from one address: the limit stays on, above the load.
        "RATELIMIT_SBP_CALLBACK": "1000000/minute",
        "ATOL_API_URL": f"http://{HOST}:{sandbox_port}/possystem/v5",
        "PUBLIC_URL": public_url,
        "SANDBOX_PORT": str(sandbox_port),
        # Only at start (before the payments): the reconcilers stay out of the measurement.
        "RECONCILE_INTERVAL_SECONDS": "86400",
        "RECONCILE_QR_AFTER_SECONDS": "86400",
        "NO_PROXY": "127.0.0.1,localhost",
        "PYTHONUNBUFFERED": "1",
    })
    return env


def run_one(args: argparse.Namespace, *, workers: int, callbacks_on: bool,
            log_root: Path, rep: int = 0) -> dict[str, Any]:
    label = f"{workers}w-callbacks-{'on' if callbacks_on else 'off'}"
    if args.repeat > 1:
        label += f"#{rep + 1}"
    run_dir = log_root.parent / f"{label}-{log_root.name}"
    run_dir.mkdir(parents=True, exist_ok=True)
    step("run", f"== {label}: {args.n} payments, {workers} worker(s), ATOL callbacks "
                f"{'on' if callbacks_on else 'off'}, processing {args.processing}s, "
                f"{'SQLite' if args.sqlite else 'PostgreSQL'}")
    db = Database(args, run_dir)
    procs = Processes(run_dir)
    sandbox_port, kassa_port = free_port(), free_port()
    public_url = f"http://{HOST}:{kassa_port}" if callbacks_on else DEAD_URL
    env = kassa_env(args, db.url, sandbox_port, public_url)
    os.environ.update({k: env[k] for k in (
        "APP_ENV", "DATABASE_URL", "SECRET_KEY", "RAIFFEISEN_SBP_MERCHANT_ID", "RAIFFEISEN_API_URL",
        "RAIFFEISEN_SECRET_KEY", "FISCAL_PROVIDER", "ATOL_API_URL", "PUBLIC_URL")})
    rng = random.Random(args.seed)
    result: dict[str, Any] = {"label": label, "workers": workers, "atol_callbacks": callbacks_on,
                              "logs": str(run_dir.relative_to(ROOT)),
                              "code": {**code_version(), "fingerprint": code_fingerprint()}}
    app = None
    try:
        db.recreate()
        subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
                       cwd=ROOT, env=env, check=True, timeout=120,
                       stdout=(run_dir / "migrate.log").open("wb"), stderr=subprocess.STDOUT)
        app = make_app(db.url)
        seeded = seed(app, args.n, rng)
        from app.config import SANDBOX_MERCHANT_ID, SANDBOX_SECRET_KEY

        transaction_base = int(time.time() * 1000)
        reqs = [callback_req(s, transaction_base + i, SANDBOX_MERCHANT_ID, SANDBOX_SECRET_KEY)
                for i, s in enumerate(seeded)]

        procs.start("sandbox", [sys.executable, "-m", "bench.receipts_sandbox", "--port",
                                str(sandbox_port), "--processing", str(args.processing)], env)
        procs.start("kassa-web", [
            sys.executable, "-m", "gunicorn", "--workers", str(args.web_workers),
            "--bind", f"{HOST}:{kassa_port}", "--log-level", "warning", "--timeout", "60",
            "--graceful-timeout", "5",
            "wsgi:app"], env)
        wait_http(sandbox_port, "GET", "/sandbox/fiscal/state", body=None, procs=procs)
        wait_http(kassa_port, "GET", "/readyz", body=None, procs=procs)
        for i in range(workers):
            profile = ["-m", "cProfile", "-o", str(run_dir / "worker-1.prof")] if (
                args.profile_worker and i == 0) else []
            command = ["-m", "flask", "--app", "wsgi", "worker"]
            procs.start(f"worker-{i + 1}", [sys.executable, *profile, *command], env)
        wait_workers_ready(db, procs, run_dir, workers)
        step("ready", f"sandbox :{sandbox_port}, kassa web :{kassa_port} "
                      f"({args.web_workers} gunicorn workers), {workers} job worker(s); "
                      f"{len(seeded)} open QRs")

        result["machine_before_run"] = wait_quiet(args.quiet_percent, args.quiet_timeout)
        result["calibration_seconds_before"] = calibrate()
        if code_fingerprint() != result["code"]["fingerprint"]:
            raise CodeChanged("app/ changed on disk while the processes started")
        before = cpu_snapshot()
        started = time.monotonic()
        outcomes = (pay_http(kassa_port, reqs, args) if args.pay == "http"
                    else pay_direct(app, reqs))
        paid_in = time.monotonic() - started
        step("paid", f"{len(reqs)} callbacks in {paid_in:.2f}s: {outcomes}")
        finished, timeline = wait_receipts(db, procs, args.n, started, args.run_timeout)
        waited = time.monotonic() - started
        left = wait_jobs_idle(db)
        after = cpu_snapshot()
        measured = time.monotonic() - started
        result["calibration_seconds_after"] = calibrate()
        state = sandbox_state(sandbox_port)
        result["cpu"] = cpu = cpu_by_process_group(before, after, procs,
                                          None if args.sqlite else args.db_name)
        share = cpu["cpu_seconds"]["other processes"] / (measured * (os.cpu_count() or 1))
        result["other_processes_cpu_share"] = round(share, 3)
        result["contaminated"] = share > args.max_other_share
        step("done" if finished else "STOPPED", f"{waited:.2f}s after the first callback; "
                                                f"{left} jobs still queued/running")
    finally:
        procs.stop()
        db.close()
    if args.profile_worker and (run_dir / "worker-1.prof").exists():
        import pstats

        with (run_dir / "worker-1-profile.txt").open("w") as text:
            stats = pstats.Stats(str(run_dir / "worker-1.prof"), stream=text)
            stats.sort_stats("cumulative").print_stats(60)
            stats.sort_stats("tottime").print_stats(40)
    (run_dir / "sandbox-fiscal-state.json").write_text(json.dumps(state, ensure_ascii=False))
    result.update(analyze(app, args, seeded, state, run_dir, outcomes=outcomes,
                          finished=finished, jobs_left=left))
    result["send_seconds"] = round(paid_in, 3)
    result["timeline"] = {"columns": ["s_since_first_send", "payments", "pending", "wait",
                                      "done"], "rows": timeline}
    with app.app_context():
        from app.extensions import db as sa_db

        sa_db.session.remove()
        sa_db.engine.dispose()
    return result


class CodeChanged(RuntimeError):
    """The working tree's app/ changed while a run's processes were importing it."""


def run_clean(args: argparse.Namespace, *, workers: int, callbacks_on: bool, log_root: Path,
              rep: int = 0) -> dict[str, Any]:
    """run_one, again (up to --retries times) while other processes took more than
    --max-other-share of the machine during it; the least disturbed attempt is kept."""
    attempts = []
    for attempt in range(1 + args.retries):
        try:
            result = run_one(args, workers=workers, callbacks_on=callbacks_on,
                             log_root=log_root / f"attempt-{attempt + 1}", rep=rep)
        except CodeChanged as exc:
            step("code", f"{exc}: running it again on the new code")
            if attempt == args.retries:
                raise
            continue
        result["attempt"] = attempt + 1
        attempts.append(result)
        if not result["contaminated"]:
            break
        step("disturbed", f"other processes used {100 * result['other_processes_cpu_share']:.0f}%"
                          f" of the machine during the run "
                          f"({result['cpu']['top_other_processes']})"
                          + ("; running it again" if attempt < args.retries else ""))
    best = min(attempts, key=lambda r: r["other_processes_cpu_share"])
    best["discarded_attempts"] = [
        {"attempt": r["attempt"], "wall_seconds": r["wall_seconds"],
         "other_processes_cpu_share": r["other_processes_cpu_share"],
         "top_other_processes": r["cpu"]["top_other_processes"]}
        for r in attempts if r is not best]
    return best


# -- analysis --------------------------------------------------------------------------------


def _seconds(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)
    out = {f"p{p}": round(percentile(ordered, p), 3) for p in (50, 90, 99)}
    out["max"] = round(ordered[-1], 3)
    out["min"] = round(ordered[0], 3)
    out["mean"] = round(sum(ordered) / len(ordered), 3)
    return out


def _log_stats(run_dir: Path) -> dict[str, Any]:
    """Jobs done per worker and job name, handler durations, and worrying lines."""
    per_worker: dict[str, Counter[str]] = {}
    durations: dict[str, list[float]] = defaultdict(list)
    warnings: Counter[str] = Counter()
    for path in sorted(run_dir.glob("worker-*.log")):
        counter: Counter[str] = Counter()
        for line in path.read_text(errors="replace").splitlines():
            match = JOB_DONE.search(line)
            if match:
                counter[match.group(2)] += 1
                durations[match.group(2)].append(int(match.group(3)) / 1000)
            elif " WARNING " in line or " ERROR " in line:
                # "receipt 12 failed at the register", "lease lost", "job 5 ... failed"
                text = re.sub(r"\d+", "N", line.split("] ", 1)[-1])[:120]
                warnings[text] += 1
        per_worker[path.stem] = dict(sorted(counter.items()))
    web = (run_dir / "kassa-web.log").read_text(errors="replace")
    web_errors = sum(1 for line in web.splitlines() if " ERROR " in line or "Traceback" in line)
    return {
        "jobs_done_per_worker": per_worker,
        "handler_seconds": {name: {**(_seconds(v) or {}), "count": len(v),
                                   "sum": round(sum(v), 2)}
                            for name, v in sorted(durations.items())},
        "worker_warnings": dict(warnings.most_common(10)),
        "web_error_lines": web_errors,
    }


def _poll_stats(run_dir: Path, docs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per receipt, the report requests the workers logged (app.httpclient INFO lines):
    how many, and for the receipts polled more than once (a RetryJob in between) how far
    apart and how long after the register had the document done the deciding poll came."""
    times: dict[str, list[datetime]] = defaultdict(list)
    local = datetime.now(UTC).astimezone().strftime("%z")  # logging's asctime is local time
    for path in sorted(run_dir.glob("worker-*.log")):
        for line in path.read_text(errors="replace").splitlines():
            match = REPORT_LINE.match(line)
            if match:
                moment = datetime.strptime(match.group(1) + local, "%Y-%m-%d %H:%M:%S,%f%z")
                times[match.group(2)].append(moment)
    by_uuid = {d["uuid"]: d for d in docs.values()}
    per_receipt: Counter[int] = Counter()
    gaps, overshoot = [], []
    for uuid, doc in by_uuid.items():
        polled = sorted(times.get(uuid, []))
        per_receipt[len(polled)] += 1
        if len(polled) > 1:
            gaps += [(b - a).total_seconds() for a, b in itertools.pairwise(polled)]
            if doc.get("finished_at"):
                finished = datetime.fromisoformat(doc["finished_at"])
                after = [t for t in polled if t >= finished]
                if after:
                    overshoot.append((after[0] - finished).total_seconds())
    return {"receipts_by_number_of_polls": {str(k): v for k, v in sorted(per_receipt.items())},
            "gap_between_polls_seconds": _seconds(gaps),
            "repolled_receipts_register_done_to_deciding_poll_seconds": _seconds(overshoot)}


def analyze(app, args: argparse.Namespace, seeded: list[Seeded], state: dict[str, Any],
            run_dir: Path, *, outcomes: dict[str, int], finished: bool, jobs_left: int
            ) -> dict[str, Any]:
    import sqlalchemy as sa

    from app.extensions import db
    from app.models import Job, Payment, Receipt

    n = len(seeded)
    with app.app_context():
        receipts = db.session.execute(sa.select(
            Receipt.external_id, Receipt.status, Receipt.payment_id, Receipt.attempt,
            Receipt.fn_number, Receipt.fiscal_document_number, Receipt.done_at,
            Receipt.created_at, Payment.created_at, Payment.status,
        ).join(Payment, Payment.id == Receipt.payment_id)).all()
        payments = db.session.execute(sa.select(Payment.id, Payment.created_at)).all()
        jobs = db.session.execute(sa.select(
            Job.name, Job.key, Job.status, Job.attempts, Job.created_at, Job.finished_at,
            Job.run_at,
        ).where(Job.key.is_(None) | ~Job.key.like("periodic:%"))).all()
        db.session.rollback()

    first_paid = min((p.created_at for p in payments), default=None)
    last_paid = max((p.created_at for p in payments), default=None)
    done = [r for r in receipts if r.status.value == "done"]
    last_done = max((r.done_at for r in done), default=None)
    first_done = min((r.done_at for r in done), default=None)

    def since_first(moment):
        return round((moment - first_paid).total_seconds(), 3) if moment and first_paid else None

    wall = since_first(last_done) if finished else None
    job_names: dict[str, Counter[str]] = defaultdict(Counter)
    last_finished: dict[str, datetime] = {}
    for job in jobs:
        counter = job_names[job.name]
        counter["jobs"] += 1
        counter[job.status.value] += 1
        counter["attempts_total"] += job.attempts
        if job.attempts != 1:
            counter["attempts_not_1"] += 1
        if job.key and job.key.endswith(":cb"):
            counter["callback_polls"] += 1
        if job.finished_at and (job.name not in last_finished
                                or job.finished_at > last_finished[job.name]):
            last_finished[job.name] = job.finished_at

    # A poll job's final run_at: created + 1 s (POLL_FIRST_DELAY), later after a RetryJob,
    # or wherever an ATOL callback moved it (handle_atol_callback sets it to "now").
    polls = [j for j in jobs if j.name == "fiscal.poll" and not (j.key or "").endswith(":cb")]
    poll_schedule = {
        "run_at_minus_created_seconds": _seconds(
            [(j.run_at - j.created_at).total_seconds() for j in polls]),
        "finished_minus_run_at_seconds": _seconds(
            [(j.finished_at - j.run_at).total_seconds() for j in polls if j.finished_at]),
    }
    docs = {d["external_id"]: d for d in state.get("documents", [])}
    counts = state.get("counts", {})
    registrations = state.get("registrations", {})
    requests = state.get("requests", {})
    to_register, notice_lag, at_register = [], [], []
    fiscal_match = 0
    for r in done:
        doc = docs.get(r.external_id)
        if doc is None:
            continue
        created = datetime.fromisoformat(doc["created_at"])
        to_register.append((created - r[8]).total_seconds())
        if doc.get("finished_at"):
            finished_at = datetime.fromisoformat(doc["finished_at"])
            at_register.append((finished_at - created).total_seconds())
            notice_lag.append((r.done_at - finished_at).total_seconds())
        payload = doc.get("payload") or {}
        fiscal_match += (payload.get("fiscal_document_number") == r.fiscal_document_number
                         and payload.get("fn_number") == r.fn_number)
    callbacks = state.get("callbacks", [])
    attempts = [a for c in callbacks for a in c["attempts"]]

    checks: list[dict[str, Any]] = []

    def check(name: str, want, got) -> None:
        checks.append({"check": name, "expected": want, "actual": got, "ok": want == got})

    paid_word = "200 paid" if args.pay == "http" else "direct paid"
    check("every callback answered 'paid'", {paid_word: n}, outcomes)
    check("payments recorded", n, len(payments))
    check("receipts written", n, len(receipts))
    check("receipts done", n, len(done))
    check("receipts per payment: distinct payment ids", n, len({r.payment_id for r in receipts}))
    check("distinct external ids", n, len({r.external_id for r in receipts}))
    check("receipts on their first attempt (no resubmission)", n,
          sum(1 for r in receipts if r.attempt == 1))
    check("distinct (FN, FD) pairs among done receipts", len(done),
          len({(r.fn_number, r.fiscal_document_number) for r in done
               if r.fiscal_document_number is not None}))
    check("register: documents", n, len(state.get("documents", [])))
    check("register: external ids with more than one document", 0,
          sum(1 for c in counts.values() if c != 1))
    check("register: documents done", n,
          sum(1 for d in state.get("documents", []) if d["status"] == "done"))
    check("register: every Kassa receipt is a register document", n,
          sum(1 for r in receipts if r.external_id in docs))
    check("fiscal data stored = the register's (FN, FD)", n, fiscal_match)
    for name in FISCAL_JOBS:
        c = job_names.get(name, Counter())
        want = n if name != "fiscal.poll" else c["jobs"]
        check(f"{name}: jobs done", want, c["done"])
        check(f"{name}: jobs run more than once (attempts != 1)", 0, c["attempts_not_1"])
    check("fiscal.sell jobs", n, job_names.get("fiscal.sell", Counter())["jobs"])
    check("fiscal.submit jobs", n, job_names.get("fiscal.submit", Counter())["jobs"])
    check("dead jobs", 0, sum(c["dead"] for c in job_names.values()))
    check("jobs queued or running after the run", 0, jobs_left)
    logs = _log_stats(run_dir)
    check("lease warnings in worker logs", 0,
          sum(v for k, v in logs["worker_warnings"].items() if "lease" in k))

    report_polls = requests.get("atol.report", 0)
    return {
        "finished": finished,
        "clock": "from the first payment recorded (min payments.created_at) to the last "
                 "receipt done (max receipts.done_at)",
        "wall_seconds": wall,
        "wall_seconds_from_last_payment": (
            round((last_done - last_paid).total_seconds(), 3) if finished else None),
        "payments_recorded_within_seconds": since_first(last_paid),
        "receipts_per_second": round(n / wall, 2) if wall else None,
        "first_receipt_done_seconds": since_first(first_done),
        "all_jobs_of_a_kind_done_seconds": {name: since_first(last_finished.get(name))
                                            for name in FISCAL_JOBS},
        "receipt_latency_seconds": _seconds(
            [(r.done_at - r[8]).total_seconds() for r in done]),
        "payment_to_register_seconds": _seconds(to_register),
        "at_register_seconds": _seconds(at_register),
        "register_done_to_kassa_done_seconds": _seconds(notice_lag),
        "register_requests": requests,
        "report_polls": report_polls,
        "report_polls_per_receipt": round(report_polls / n, 2) if n else None,
        "poll_jobs": poll_schedule,
        "polls": _poll_stats(run_dir, docs),
        "registrations_beyond_first": sum(registrations.values()) - len(registrations),
        "atol_callback_deliveries": {
            "documents_with_callback": len(callbacks),
            "delivered": sum(1 for c in callbacks if c["delivered"]),
            "attempts": len(attempts),
            "failed_attempts": sum(1 for a in attempts if "error" in a
                                   or a.get("status_code") != 200),
        },
        "jobs": {name: dict(c) for name, c in sorted(job_names.items())},
        "payment_outcomes": outcomes,
        **logs,
        "checks": checks,
        "correct": finished and all(c["ok"] for c in checks),
    }


# -- report ----------------------------------------------------------------------------------


MEDIAN_KEYS = ("wall_seconds", "wall_seconds_from_last_payment", "receipts_per_second",
               "latency_p50", "latency_p99", "payments_recorded_within_seconds",
               "report_polls_per_receipt")


def medians(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (ATOL callbacks, workers): the median of each figure over the repetitions that
    finished (a median of one is the run itself)."""
    groups: dict[tuple[bool, int], list[dict[str, Any]]] = defaultdict(list)
    for r in runs:
        if r.get("finished"):
            groups[(r["atol_callbacks"], r["workers"])].append(r)
    out = []
    for (mode, workers), same in sorted(groups.items(), key=lambda kv: (not kv[0][0], kv[0][1])):
        values = {key: [] for key in MEDIAN_KEYS}
        for r in same:
            lat = r["receipt_latency_seconds"]
            figures = {**r, "latency_p50": lat["p50"], "latency_p99": lat["p99"]}
            for key in MEDIAN_KEYS:
                values[key].append(figures[key])
        out.append({"atol_callbacks": mode, "workers": workers, "runs": len(same),
                    **{k: round(statistics.median(v), 3) for k, v in values.items()},
                    "wall_seconds_all": [r["wall_seconds"] for r in same]})
    return out


def compare(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """More workers vs the fewest, per ATOL-callback setting, on the medians."""
    out = []
    for mode in (True, False):
        same = sorted((r for r in rows if r["atol_callbacks"] == mode),
                      key=lambda r: r["workers"])
        for other in same[1:]:
            base = same[0]
            out.append({
                "atol_callbacks": mode,
                "workers": f"{other['workers']} vs {base['workers']}",
                "wall_ratio": round(other["wall_seconds"] / base["wall_seconds"], 3),
                "throughput_ratio": round(base["wall_seconds"] / other["wall_seconds"], 3),
                "wall_from_last_payment_ratio": round(
                    other["wall_seconds_from_last_payment"]
                    / base["wall_seconds_from_last_payment"], 3),
                "p50_ratio": round(other["latency_p50"] / base["latency_p50"], 3),
                "p99_ratio": round(other["latency_p99"] / base["latency_p99"], 3),
            })
    return out


def _fmt(value, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def print_report(report: dict[str, Any]) -> None:
    st = report["settings"]
    print(f"\n== Receipts benchmark: {st['n']} payments paid at once -> {st['n']} receipts "
          f"through the sandbox (ATOL v5), processing {st['processing']}s, "
          f"{'SQLite' if st['sqlite'] else 'PostgreSQL'}, pay via {st['pay']}, "
          f"{report['machine']['cores']} cores; code {report['code']['commit']} "
          f"({report['code']['uncommitted_files_in_app']} uncommitted files in app/)")
    print(f"  clock: {report['runs'][0]['clock'] if report['runs'] else ''}")
    if len(report.get("code_fingerprints", [])) > 1:
        print(f"  WARNING: app/ changed between runs (fingerprints "
              f"{report['code_fingerprints']}): the runs measured different code")
    width = max([18] + [len(r["label"]) + 2 for r in report["runs"]])
    header = (f"  {'run':<{width}}{'wall s':>8}{'rcpt/s':>8}{'p50 s':>8}{'p90 s':>8}{'p99 s':>8}"
              f"{'max s':>8}{'paid s':>8}{'last->':>8}{'polls':>7}{'/rcpt':>6}  correct")
    print(header)
    for r in report["runs"]:
        lat = r.get("receipt_latency_seconds") or {}
        label = r["label"] + ("*" if r.get("contaminated") else "")
        print(f"  {label:<{width}}{_fmt(r.get('wall_seconds')):>8}"
              f"{_fmt(r.get('receipts_per_second'), '.1f'):>8}{_fmt(lat.get('p50')):>8}"
              f"{_fmt(lat.get('p90')):>8}{_fmt(lat.get('p99')):>8}{_fmt(lat.get('max')):>8}"
              f"{_fmt(r.get('payments_recorded_within_seconds')):>8}"
              f"{_fmt(r.get('wall_seconds_from_last_payment')):>8}"
              f"{r.get('report_polls', 0):>7}{_fmt(r.get('report_polls_per_receipt')):>6}"
              f"  {'yes' if r.get('correct') else 'NO'}")
    print("  (wall: first payment -> last receipt done; paid s: first -> last payment "
          "recorded; last->: last payment -> last receipt done; p50..max: per receipt, "
          "its payment -> its receipt done; polls: GET report at the register; * disturbed by "
          "other processes)")
    for r in report["runs"]:
        phases = r.get("all_jobs_of_a_kind_done_seconds", {})
        lag = r.get("register_done_to_kassa_done_seconds") or {}
        reg = r.get("payment_to_register_seconds") or {}
        cpu = r.get("cpu", {})
        print(f"\n  {r['label']}: all sells done {_fmt(phases.get('fiscal.sell'))}s, all "
              f"submits {_fmt(phases.get('fiscal.submit'))}s, last poll "
              f"{_fmt(phases.get('fiscal.poll'))}s; first receipt done "
              f"{_fmt(r.get('first_receipt_done_seconds'))}s")
        print(f"    payment -> at the register: p50 {_fmt(reg.get('p50'))}s p99 "
              f"{_fmt(reg.get('p99'))}s; register done -> Kassa done: p50 "
              f"{_fmt(lag.get('p50'))}s p99 {_fmt(lag.get('p99'))}s max {_fmt(lag.get('max'))}s")
        ps = r.get("poll_jobs", {})
        sched = ps.get("run_at_minus_created_seconds") or {}
        queued = ps.get("finished_minus_run_at_seconds") or {}
        print(f"    poll jobs: run_at - created p50 {_fmt(sched.get('p50'))}s p99 "
              f"{_fmt(sched.get('p99'))}s; done - run_at (queueing) p50 {_fmt(queued.get('p50'))}s"
              f" p99 {_fmt(queued.get('p99'))}s")
        pl = r.get("polls", {})
        gap = pl.get("gap_between_polls_seconds") or {}
        over = pl.get("repolled_receipts_register_done_to_deciding_poll_seconds") or {}
        print(f"    receipts by number of polls {pl.get('receipts_by_number_of_polls')}; "
              f"between polls p50 {_fmt(gap.get('p50'))}s max {_fmt(gap.get('max'))}s; "
              f"re-polled: register done -> deciding poll p50 {_fmt(over.get('p50'))}s "
              f"max {_fmt(over.get('max'))}s")
        print(f"    register requests {r.get('register_requests')}; ATOL callbacks "
              f"{r.get('atol_callback_deliveries')}")
        print(f"    jobs {r.get('jobs')}")
        print(f"    per worker {r.get('jobs_done_per_worker')}")
        hs = r.get("handler_seconds", {})
        print("    handler time, s: " + "; ".join(
            f"{k} p50 {v.get('p50')} p99 {v.get('p99')} max {v.get('max')} sum {v.get('sum')}"
            for k, v in hs.items() if k in FISCAL_JOBS))
        print(f"    calibration loop {r.get('calibration_seconds_before')}s before, "
              f"{r.get('calibration_seconds_after')}s after (same code, same machine: a "
              "bigger number is a slower CPU)")
        print(f"    CPU s {cpu.get('cpu_seconds')} machine busy {cpu.get('machine_busy_percent')}%"
              f"; other processes {cpu.get('top_other_processes')}")
        if r.get("contaminated"):
            print(f"    WARNING: other processes used {100 * r['other_processes_cpu_share']:.0f}%"
                  " of the machine during this run: its figures are disturbed")
        quiet = r.get("machine_before_run", {})
        if not quiet.get("quiet", True):
            print(f"    WARNING: the machine was {quiet['machine_busy_percent_before_run']}% busy "
                  f"before the run ({quiet['busiest_then']}): figures are contaminated")
        if r.get("worker_warnings"):
            print(f"    worker warnings {r['worker_warnings']}")
        failed = [c for c in r.get("checks", []) if not c["ok"]]
        print(f"    correctness: {len(r.get('checks', [])) - len(failed)}/"
              f"{len(r.get('checks', []))} checks passed"
              f"{'' if r.get('finished') else ' - DID NOT FINISH'}")
        for c in failed:
            print(f"      FAILED {c['check']}: expected {c['expected']}, got {c['actual']}")
    if report.get("medians") and report["settings"]["repeat"] > 1:
        print("\n  medians over the repetitions:")
        print(f"  {'run':<18}{'wall s':>8}{'rcpt/s':>8}{'p50 s':>8}{'p99 s':>8}{'last->':>8}"
              f"   all walls")
        for m in report["medians"]:
            label = f"{m['workers']}w-callbacks-{'on' if m['atol_callbacks'] else 'off'}"
            print(f"  {label:<18}{m['wall_seconds']:>8.2f}{m['receipts_per_second']:>8.1f}"
                  f"{m['latency_p50']:>8.2f}{m['latency_p99']:>8.2f}"
                  f"{m['wall_seconds_from_last_payment']:>8.2f}   {m['wall_seconds_all']}")
    if report["comparison"]:
        print("\n  more workers vs fewer (medians):")
        for c in report["comparison"]:
            print(f"    ATOL callbacks {'on ' if c['atol_callbacks'] else 'off'} {c['workers']}: "
                  f"wall x{c['wall_ratio']:.3f} (throughput x{c['throughput_ratio']:.3f}); "
                  f"last payment -> all done x{c['wall_from_last_payment_ratio']:.3f}; "
                  f"p50 x{c['p50_ratio']:.3f}; p99 x{c['p99_ratio']:.3f}")


# -- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1000, help="payments, hence receipts [1000]")
    p.add_argument("--workers", default=None,
                   help='job worker processes per run, comma-separated ["1,2"; "1" with --sqlite]')
    p.add_argument("--processing", type=float, default=3.0,
                   help="seconds the sandbox's ATOL documents stay 'wait' [3.0]")
    p.add_argument("--atol-callbacks", choices=("on", "off", "both"), default="both",
                   help="Kassa's web reachable for ATOL callbacks, not, or a run of each [both]")
    p.add_argument("--pay", choices=("http", "direct"), default="http",
                   help="http: signed callbacks to /sbp/callback; direct: handle_callback() "
                        "in this process [http]")
    p.add_argument("--concurrency", type=int, default=32, help="callback clients [32]")
    p.add_argument("--web-workers", type=int, default=2, help="gunicorn workers [2]")
    p.add_argument("--sqlite", action="store_true", help="SQLite instead of PostgreSQL")
    p.add_argument("--quick", action="store_true", help="--n 100")
    p.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432")
    p.add_argument("--db-name", default="kassa_bench_receipts")
    p.add_argument("--request-timeout", type=float, default=60.0)
    p.add_argument("--run-timeout", type=float, default=600.0,
                   help="seconds a run may take from the first callback [600]")
    p.add_argument("--deadline", type=int, default=3600,
                   help="the whole benchmark is aborted after this many seconds [3600]")
    p.add_argument("--quiet-percent", type=float, default=25.0,
                   help="wait before each run until the machine is less busy than this [25]")
    p.add_argument("--quiet-timeout", type=float, default=600.0,
                   help="...but at most this many seconds, then run anyway [600]")
    p.add_argument("--max-other-share", type=float, default=0.10,
                   help="a run during which other processes used more than this share of "
                        "all cores is disturbed [0.10]")
    p.add_argument("--retries", type=int, default=2,
                   help="times a disturbed run is repeated; the least disturbed is kept [2]")
    p.add_argument("--profile-worker", action="store_true",
                   help="run worker-1 under cProfile (wall clock): <run logs>/worker-1.prof and "
                        "worker-1-profile.txt; it slows that worker down")
    p.add_argument("--repeat", type=int, default=1,
                   help="runs of each configuration; medians are compared [1]")
    p.add_argument("--seed", type=int, default=20240601, help="random seed for the data")
    args = p.parse_args(argv)
    if args.quick:
        args.n = 100
    if args.workers is None:
        args.workers = "1" if args.sqlite else "1,2"
    try:
        args.worker_counts = [int(w) for w in args.workers.split(",")]
    except ValueError:
        p.error("--workers: comma-separated integers, e.g. 1,2")
    if not all(1 <= w <= 16 for w in args.worker_counts):
        p.error("--workers: 1..16 each")
    if not re.fullmatch(r"postgresql://[\w.-]+@(127\.0\.0\.1|localhost)(:\d+)?", args.pg_url):
        p.error("--pg-url must be postgresql://USER@127.0.0.1[:PORT]")
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", args.db_name):
        p.error("--db-name: lowercase letters, digits and _ only")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stamp = utc_stamp()
    log_root = RESULTS / f"logs-receipts-{stamp}"
    log_root.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"receipts-{stamp}.json"

    stop_on_signals(args.deadline, "the benchmark")
    modes = {"on": [True], "off": [False], "both": [True, False]}[args.atol_callbacks]
    report: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": {k: v for k, v in vars(args).items() if k not in ("pg_url", "worker_counts")},
        "machine": {"cores": os.cpu_count(), "python": sys.version.split()[0]},
        "code": code_version(),
        "logs": str(log_root.relative_to(ROOT)),
        "runs": [],
        "medians": [],
        "comparison": [],
    }
    try:
        for rep in range(args.repeat):
            for callbacks_on in modes:
                for workers in args.worker_counts:
                    report["runs"].append(run_clean(args, workers=workers, rep=rep,
                                                    callbacks_on=callbacks_on, log_root=log_root))
                    report["medians"] = medians(report["runs"])
                    report["comparison"] = compare(report["medians"])
                    out.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str)
                                   + "\n")
    finally:
        signal.alarm(0)
        report["correct"] = bool(report["runs"]) and all(r["correct"] for r in report["runs"])
        report["code_fingerprints"] = sorted({r["code"]["fingerprint"] for r in report["runs"]})
        out.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n")
    print_report(report)
    print(f"\nreport: {out.relative_to(ROOT)}   logs: {report['logs']}/")
    return 0 if report["correct"] else 1


if __name__ == "__main__":
    sys.exit(main())
