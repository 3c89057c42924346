"""Benchmark of the bank's callback (POST /sbp/callback) on PostgreSQL under gunicorn.

One run, everything on 127.0.0.1, started and stopped by this script:

1. a fresh database (DROP/CREATE), the schema by `flask db upgrade`, and N open dynamic QR
   codes with their orders, seeded through the models in one transaction;
2. two gunicorn servers with the same command line: Kassa (bench/app_with_noop.py, which
   subscribes a no-op job to "payment.paid") and a bare Flask endpoint (bench/bare_app.py);
   plus the job workers (bench/worker.py);
3. warm-up, then the same N signed callbacks at the same concurrency against the bare
   endpoint and then against Kassa: throughput and latency of each, and their ratio;
4. after the jobs are done: counts that prove no payment or job was lost or doubled, the
   time from sending a callback to its job being done, then a resend of some callbacks
   (each twice, concurrently) and the same counts again.

    .venv/bin/python bench/callbacks.py            # the issue's numbers: 5000 at 32
    .venv/bin/python bench/callbacks.py --quick    # a 500-callback smoke run

See bench/README.md. Exit status 1 when a correctness check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` and `app` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (
    HOST,
    RESULTS,
    ROOT,
    CpuSnapshot,
    Processes,
    RawConnection,
    Req,
    Seeded,
    background_load,
    busy_seconds,
    calibrate,
    callback_req,
    code_version,
    cpu_used,
    free_port,
    insert_open_qrs,
    percentile,
    process_tree,
    recreate_database,
    step,
    stop_on_signals,
    ticks_between,
    utc_stamp,
    wait_http,
)
from bench.harness import cpu_snapshot as harness_cpu_snapshot

LAST_REPORT: list[Path] = []  # the report main() wrote last (for --repeat)
NOOP_JOB = "bench.noop"
GOAL_RATIO = 0.2  # Kassa's callbacks per second over a bare Flask endpoint's


# -- CPU of the servers under test (harness.py reads /proc) ----------------------------------


@dataclass
class GroupSnapshot:
    """The machine's processes, and the pids of each component (a server's whole tree)."""
    cpu: CpuSnapshot
    groups: dict[str, list[int]]


def cpu_snapshot(procs: Processes) -> GroupSnapshot:
    groups = {"kassa_web": ["kassa-web"], "bare_web": ["bare-web"],
              "job_workers": [n for n in procs.procs if n.startswith("job-worker")]}
    pids = {group: [p for n in names if n in procs.procs
                    for p in process_tree(procs.procs[n].pid)]
            for group, names in groups.items()}
    pids["generator"] = [os.getpid()]
    return GroupSnapshot(harness_cpu_snapshot(), pids)


def cpu_delta(before: GroupSnapshot, after: GroupSnapshot, wall: float, n: int) -> dict:
    """CPU seconds each component used between two snapshots. A process that ended in
    between is missed (its CPU shows only in machine_busy)."""
    used = cpu_used(before.cpu.processes, after.cpu.processes)
    groups: dict[str, float] = {}
    counted: set[int] = set()
    for group, pids in after.groups.items():
        members = set(pids) | set(before.groups.get(group, []))
        counted |= members
        groups[group] = sum(cpu for pid, cpu in used.items() if pid in members)
    groups["generator"] = after.cpu.own - before.cpu.own
    postgres = {pid for pid, proc in after.cpu.processes.items()
                if proc.comm.split(":")[0] == "postgres"}
    groups["postgres"] = sum(cpu for pid, cpu in used.items() if pid in postgres)
    counted |= postgres
    others: Counter[str] = Counter()
    for pid, cpu in used.items():
        if pid not in counted and cpu > 0:
            others[after.cpu.processes[pid].comm] += cpu
    busy, total = busy_seconds(ticks_between(before.cpu.ticks, after.cpu.ticks))
    return cpu_figures(groups, others, busy=busy, total=total, wall=wall, n=n)


def cpu_figures(groups: dict[str, float], others: Counter[str], *, busy: float, total: float,
                wall: float, n: int) -> dict:
    groups = {**groups, "other_processes": sum(others.values())}
    groups["unattributed"] = max(0.0, busy - sum(groups.values()))
    # Work that is not this benchmark's (another program, a test run): it takes CPU from
    # the servers under test. The kernel's writeback for PostgreSQL's fsyncs counts here
    # too, but it is small (a few % of the machine).
    foreign = groups["other_processes"] + groups["unattributed"]
    own = sum(groups[k] for k in ("generator", "kassa_web", "bare_web", "job_workers",
                                  "postgres"))
    return {
        # What the machine could do with nothing else on it: cores / own CPU per request.
        "cpu_bound_ceiling_rps": round(os.cpu_count() * n / own, 1) if own else None,
        "other_work_percent_of_machine": round(100 * foreign / total, 1) if total else None,
        "cpu_seconds": {k: round(v, 3) for k, v in groups.items()},
        "cpu_ms_per_request": {k: round(v * 1000 / n, 3) for k, v in groups.items()},
        "top_other_processes": {k: round(v, 3) for k, v in others.most_common(5)},
        "machine_busy_percent": round(100 * busy / total, 1) if total else None,
        "cores": os.cpu_count(),
        "wall_seconds": round(wall, 3),
        # Raw, for merging blocks (merge_results).
        "raw": {"groups": {k: v for k, v in groups.items()
                           if k not in ("other_processes", "unattributed")},
                "others": dict(others), "busy": busy, "total": total},
    }


# -- HTTP load generator -----------------------------------------------------------------------


@dataclass
class Sample:
    sent_at: float  # wall clock (time.time()) just before the request was sent
    latency: float  # seconds until the whole response was read
    status: int | None  # None: no HTTP answer (the error is in body)
    body: bytes


@dataclass
class LoadResult:
    name: str
    wall: float
    samples: list[Sample]
    keys: list[str]
    reconnects: int = 0
    cpu: dict = field(default_factory=dict)
    blocks: list[float] = field(default_factory=list)  # req/s of each block, when merged

    @property
    def n(self) -> int:
        return len(self.samples)

    def statuses(self) -> dict[str, int]:
        return dict(Counter(str(s.status) for s in self.samples))

    def errors(self) -> list[str]:
        return [s.body.decode("utf-8", "replace")[:200] for s in self.samples if s.status is None]


async def _load_raw(port: int, reqs: list[Req], concurrency: int, timeout: float
                    ) -> tuple[float, list[Sample], int]:
    rendered = [r.render(port) for r in reqs]
    samples: list[Sample | None] = [None] * len(reqs)
    todo = iter(range(len(reqs)))
    connections = [RawConnection(port) for _ in range(concurrency)]

    async def client(conn: RawConnection) -> None:
        for i in todo:  # one iterator shared by all clients: each request is sent once
            sent_at, started = time.time(), time.perf_counter()
            try:
                async with asyncio.timeout(timeout):
                    status, body = await conn.request(rendered[i])
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError,
                    RuntimeError) as exc:
                conn.close()
                status, body = None, repr(exc).encode()
            samples[i] = Sample(sent_at, time.perf_counter() - started, status, body)
        conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(c) for c in connections))
    wall = time.perf_counter() - started
    return wall, samples, sum(c.reconnects for c in connections)


async def _load_aiohttp(port: int, reqs: list[Req], concurrency: int, timeout: float
                        ) -> tuple[float, list[Sample], int]:
    import aiohttp  # optional: only for --client aiohttp

    samples: list[Sample | None] = [None] * len(reqs)
    todo = iter(range(len(reqs)))
    base = f"http://{HOST}:{port}"
    connector = aiohttp.TCPConnector(limit=concurrency)
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=client_timeout,
                                     skip_auto_headers=("User-Agent",)) as session:

        async def client() -> None:
            for i in todo:
                req = reqs[i]
                sent_at, started = time.time(), time.perf_counter()
                try:
                    async with session.request(req.method, base + req.path,
                                               data=req.body or None,
                                               headers=dict(req.headers)) as response:
                        body = await response.read()
                        status = response.status
                except (aiohttp.ClientError, TimeoutError) as exc:
                    status, body = None, repr(exc).encode()
                samples[i] = Sample(sent_at, time.perf_counter() - started, status, body)

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return wall, samples, 0


def run_load(name: str, port: int, reqs: list[Req], args: argparse.Namespace,
             procs: Processes) -> LoadResult:
    procs.check_alive()
    loader = _load_aiohttp if args.client == "aiohttp" else _load_raw
    before = cpu_snapshot(procs)
    wall, samples, reconnects = asyncio.run(loader(port, reqs, args.concurrency,
                                                   args.request_timeout))
    after = cpu_snapshot(procs)
    result = LoadResult(name, wall, samples, [r.key for r in reqs], reconnects)
    result.cpu = cpu_delta(before, after, wall, len(reqs))
    procs.check_alive()
    return result


def merge_results(name: str, parts: list[LoadResult]) -> LoadResult:
    """One phase measured in several blocks: requests, wall time and CPU added up."""
    merged = LoadResult(name, sum(p.wall for p in parts),
                        [s for p in parts for s in p.samples], [k for p in parts for k in p.keys],
                        sum(p.reconnects for p in parts))
    groups: Counter[str] = Counter()
    others: Counter[str] = Counter()
    for part in parts:
        groups.update(part.cpu["raw"]["groups"])
        others.update(part.cpu["raw"]["others"])
    merged.cpu = cpu_figures(dict(groups), others,
                             busy=sum(p.cpu["raw"]["busy"] for p in parts),
                             total=sum(p.cpu["raw"]["total"] for p in parts),
                             wall=merged.wall, n=merged.n)
    merged.blocks = [round(p.n / p.wall, 1) for p in parts]
    return merged


def run_alternating(bare_port: int, kassa_port: int, reqs: list[Req], args: argparse.Namespace,
                    procs: Processes, *, conn) -> tuple[LoadResult, LoadResult, float]:
    """The same callbacks to the bare endpoint and to Kassa in `--blocks` alternating blocks
    (bare first), so that a slow minute of this shared machine falls on both alike. Before
    each bare block Kassa's jobs so far are done: the bare endpoint never shares the
    machine with Kassa's worker. Kassa's wall time is the time of its own blocks.

    :returns: the bare and Kassa phases, each merged from its blocks, and the seconds the
        last block's jobs took to be done after its last answer.
    """
    size = math.ceil(len(reqs) / args.blocks)
    chunks = [reqs[i:i + size] for i in range(0, len(reqs), size)]
    bare_parts, kassa_parts, sent, waited = [], [], 0, 0.0
    for index, chunk in enumerate(chunks):
        bare_parts.append(run_load(f"bare-{index + 1}", bare_port, chunk, args, procs))
        kassa_parts.append(run_load(f"kassa-{index + 1}", kassa_port, chunk, args, procs))
        sent += len(chunk)
        waited = wait_jobs_done(conn, sent, args.jobs_timeout)
    return merge_results("bare", bare_parts), merge_results("kassa", kassa_parts), waited


# -- statistics ------------------------------------------------------------------------------


def summary_ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    out = {f"p{p}": round(percentile(ordered, p) * 1000, 2) for p in (50, 90, 95, 99)}
    out["max"] = round(ordered[-1] * 1000, 2) if ordered else float("nan")
    out["mean"] = round(sum(ordered) / len(ordered) * 1000, 2) if ordered else float("nan")
    return out


def load_summary(result: LoadResult) -> dict:
    ok = [s.latency for s in result.samples if s.status == 200]
    return {
        "requests": result.n,
        "wall_seconds": round(result.wall, 3),
        "throughput_rps": round(result.n / result.wall, 1),
        "latency_ms": summary_ms([s.latency for s in result.samples]),
        "latency_ms_of_200": summary_ms(ok) if ok else None,
        "statuses": result.statuses(),
        "errors": result.errors()[:5],
        "client_reconnects": result.reconnects,
        "cpu": result.cpu,
    }


# -- the callbacks ---------------------------------------------------------------------------


def seed(n: int, rng: random.Random) -> list[Seeded]:
    """N orders and N open dynamic QR codes, through the models, in one transaction."""
    import sqlalchemy as sa

    from app import create_app
    from app.extensions import db
    from app.models import Order, OrderChannel, OrderStatus, utcnow

    app = create_app({"LOG_LEVEL": "WARNING"})
    now = utcnow()
    amounts = [rng.randint(100, 500_000) for _ in range(n)]
    publics = [f"{rng.getrandbits(128):032x}" for _ in range(n)]
    with app.app_context():
        order_ids = db.session.scalars(
            sa.insert(Order).returning(Order.id, sort_by_parameter_order=True),
            [{"public_id": publics[i], "status": OrderStatus.PENDING,
              "channel": OrderChannel.API, "total_kopecks": amounts[i],
              "description": f"bench {i}", "created_at": now, "updated_at": now}
             for i in range(n)],
        ).all()
        seeded = insert_open_qrs(order_ids, publics, amounts, rng,
                                 expires_at=now + timedelta(hours=3))
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return seeded


# -- the database ----------------------------------------------------------------------------


COUNTS_SQL = {
    "payments": "SELECT count(*) FROM payments",
    "payments_paid": "SELECT count(*) FROM payments WHERE status = 'paid'",
    "distinct_transaction_ids": "SELECT count(DISTINCT transaction_id) FROM payments",
    "qr_codes_with_two_payments":
        "SELECT count(*) FROM (SELECT qr_code_id FROM payments GROUP BY 1 "
        "HAVING count(*) > 1) AS t",
    "paid_kopecks": "SELECT coalesce(sum(amount_kopecks), 0) FROM payments",
    "qr_codes_paid": "SELECT count(*) FROM qr_codes WHERE status = 'paid'",
    "qr_codes_active": "SELECT count(*) FROM qr_codes WHERE status = 'active'",
    "orders_paid": "SELECT count(*) FROM orders WHERE status = 'paid'",
    "bank_events": "SELECT count(*) FROM bank_events",
    "bank_events_paid": "SELECT count(*) FROM bank_events WHERE outcome = 'paid'",
    "noop_jobs": "SELECT count(*) FROM jobs WHERE name = 'bench.noop'",
    "noop_jobs_done": "SELECT count(*) FROM jobs WHERE name = 'bench.noop' "
                      "AND status = 'done'",
    "noop_jobs_attempts_not_1": "SELECT count(*) FROM jobs WHERE name = 'bench.noop' "
                                "AND attempts <> 1",
    "noop_jobs_distinct_payments": "SELECT count(DISTINCT payload->>'payment_id') FROM jobs "
                                   "WHERE name = 'bench.noop'",
    "payments_without_noop_job":
        "SELECT count(*) FROM payments p WHERE NOT EXISTS (SELECT 1 FROM jobs j "
        "WHERE j.name = 'bench.noop' AND (j.payload->>'payment_id')::bigint = p.id)",
    "noop_jobs_queued_or_running": "SELECT count(*) FROM jobs WHERE name = 'bench.noop' "
                                   "AND status IN ('queued', 'running')",
    "noop_jobs_dead": "SELECT count(*) FROM jobs WHERE name = 'bench.noop' AND status = 'dead'",
    "other_jobs": "SELECT count(*) FROM jobs WHERE name <> 'bench.noop'",
}


def counts(conn) -> dict[str, int]:
    return {name: int(conn.execute(sql).fetchone()[0]) for name, sql in COUNTS_SQL.items()}


def expected_counts(seeded: list[Seeded]) -> dict[str, int]:
    n = len(seeded)
    return {
        "payments": n, "payments_paid": n, "distinct_transaction_ids": n,
        "qr_codes_with_two_payments": 0, "paid_kopecks": sum(s.amount_kopecks for s in seeded),
        "qr_codes_paid": n, "qr_codes_active": 0, "orders_paid": n, "bank_events": n,
        "bank_events_paid": n, "noop_jobs": n, "noop_jobs_done": n, "noop_jobs_attempts_not_1": 0,
        "noop_jobs_distinct_payments": n, "payments_without_noop_job": 0,
        "noop_jobs_queued_or_running": 0, "noop_jobs_dead": 0,
    }


def wait_jobs_done(conn, n: int, timeout: float) -> float:
    """Wait until n no-op jobs are done and nothing is queued; returns the seconds waited."""
    started = time.monotonic()
    sql = ("SELECT count(*) FILTER (WHERE status = 'done'), "
           "count(*) FILTER (WHERE status IN ('queued', 'running')) FROM jobs "
           "WHERE name = 'bench.noop'")
    while True:
        done, pending = conn.execute(sql).fetchone()
        if done >= n and pending == 0:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{done} of {n} no-op jobs done, {pending} pending "
                               f"after {timeout}s")
        time.sleep(0.1)


def job_latencies(conn, sent_at: dict[str, float], answered_at: dict[str, float]) -> dict:
    """Callback sent -> its job done, joined job -> payment -> QR code -> qrId."""
    rows = conn.execute(
        "SELECT q.qr_id, extract(epoch FROM j.created_at)::float8, "
        "extract(epoch FROM j.finished_at)::float8 FROM jobs j "
        "JOIN payments p ON p.id = (j.payload->>'payment_id')::bigint "
        "JOIN qr_codes q ON q.id = p.qr_code_id WHERE j.name = 'bench.noop' "
        "AND j.status = 'done'"
    ).fetchall()
    from_send = [finished - sent_at[qr_id] for qr_id, _, finished in rows if qr_id in sent_at]
    from_answer = [finished - answered_at[qr_id] for qr_id, _, finished in rows
                   if qr_id in answered_at]
    in_queue = [finished - created for _, created, finished in rows]
    return {
        "jobs": len(rows),
        "sent_to_done_ms": summary_ms(from_send) if from_send else None,
        "answered_to_done_ms": summary_ms(from_answer) if from_answer else None,
        "enqueued_to_done_ms": summary_ms(in_queue) if in_queue else None,
    }


def jobs_per_worker(log_dir: Path) -> dict[str, int]:
    """Which worker process ran the no-op jobs, from the workers' INFO log lines."""
    per: Counter[str] = Counter()
    pattern = re.compile(rf"\[(\d+)\] job \d+ {re.escape(NOOP_JOB)} done")
    for path in sorted(log_dir.glob("job-worker-*.log")):
        for line in path.read_text(errors="replace").splitlines():
            match = pattern.search(line)
            if match:
                per[f"{path.stem} (pid {match.group(1)})"] += 1
    return dict(per)


# -- the run ---------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=5000, help="callbacks (and open QRs) [5000]")
    p.add_argument("--concurrency", type=int, default=32, help="concurrent clients [32]")
    p.add_argument("--blocks", type=int, default=5,
                   help="alternating blocks of bare and Kassa load (1: one phase each) [5]")
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers, both servers [2]")
    p.add_argument("--worker-class", default="sync", help="gunicorn worker class [sync]")
    p.add_argument("--threads", type=int, default=None,
                   help="gunicorn --threads (for --worker-class gthread)")
    p.add_argument("--job-workers", type=int, default=1,
                   help="job worker processes [1, as Kassa ships; 2 shows SKIP LOCKED at work]")
    p.add_argument("--worker-idle-sleep", type=float, default=0.2,
                   help="seconds a job worker waits after a claim that did not fill its "
                        "batch [0.2, WORKER_IDLE_SLEEP's default]")
    p.add_argument("--duplicates", type=int, default=500,
                   help="callbacks resent after the run, each twice concurrently [500]")
    p.add_argument("--warmup", type=int, default=200, help="warm-up requests per server [200]")
    p.add_argument("--client", choices=("raw", "aiohttp"), default="raw",
                   help="load generator: raw asyncio HTTP/1.1 or aiohttp [raw]")
    p.add_argument("--log-level", default="INFO", help="Kassa's LOG_LEVEL [INFO]")
    p.add_argument("--app-module", default="bench.app_with_noop",
                   help="module whose `app` gunicorn serves and the job workers run "
                        "[bench.app_with_noop]; for measuring a variant of the app")
    p.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432")
    p.add_argument("--db-name", default="kassa_bench")
    p.add_argument("--request-timeout", type=float, default=30.0)
    p.add_argument("--jobs-timeout", type=float, default=180.0,
                   help="seconds to wait for the jobs after the load [180]")
    p.add_argument("--deadline", type=int, default=1200,
                   help="the whole run is aborted after this many seconds [1200]")
    p.add_argument("--seed", type=int, default=20240601, help="random seed for the data")
    p.add_argument("--wait-quiet", type=float, default=120,
                   help="wait up to this many seconds for other work on the machine to stop "
                        "before starting (it skews every figure) [120]")
    p.add_argument("--quick", action="store_true", help="smoke run: --n 500 --duplicates 100")
    args = p.parse_args(argv)
    if args.quick:
        args.n, args.duplicates = 500, 100
    if not re.fullmatch(r"postgresql://[\w.-]+@(127\.0\.0\.1|localhost)(:\d+)?", args.pg_url):
        p.error("--pg-url must be postgresql://USER@127.0.0.1[:PORT]")
    args.duplicates = min(args.duplicates, args.n)
    return args


def gunicorn_argv(args: argparse.Namespace, module: str, port: int) -> list[str]:
    argv = [sys.executable, "-m", "gunicorn", "--workers", str(args.workers),
            "--worker-class", args.worker_class, "--bind", f"{HOST}:{port}",
            "--log-level", "warning", "--timeout", "60", "--graceful-timeout", "5"]
    if args.threads:
        argv += ["--threads", str(args.threads)]
    return [*argv, module]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stamp = utc_stamp()
    log_dir = RESULTS / f"logs-{stamp}"
    log_dir.mkdir(parents=True, exist_ok=True)
    stop_on_signals(args.deadline, "the run")

    from app.config import SANDBOX_MERCHANT_ID, SANDBOX_SECRET_KEY

    db_url = f"{args.pg_url.replace('postgresql://', 'postgresql+psycopg://')}/{args.db_name}"
    env = {
        **os.environ,
        "APP_ENV": "development",
        "DATABASE_URL": db_url,
        "SECRET_KEY": "bench-secret-key",
        "LOG_LEVEL": args.log_level,
        "RAIFFEISEN_SBP_MERCHANT_ID": SANDBOX_MERCHANT_ID,
        "RAIFFEISEN_SECRET_KEY": SANDBOX_SECRET_KEY,
        # Nothing listens there: the reconciler, should it run, reaches no bank.
        "RAIFFEISEN_API_URL": "http://127.0.0.1:9",
        "RECONCILE_INTERVAL_SECONDS": "86400",
        "RECONCILE_QR_AFTER_SECONDS": "86400",
        # No cash register here: only the bench's no-op job subscribes to "payment.paid".
        "FISCAL_PROVIDER": "none",
        # All the load comes from one address: the limit stays on (a hit costs what it
        # costs in production) but above what the bench sends.
        "RATELIMIT_SBP_CALLBACK": "1000000/minute",
        "BENCH_WORKER_IDLE_SLEEP": str(args.worker_idle_sleep),
        "BENCH_APP_MODULE": args.app_module,
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("FLASK_DEBUG", None)
    os.environ.update({k: env[k] for k in ("APP_ENV", "DATABASE_URL", "SECRET_KEY",
                                           "RAIFFEISEN_SBP_MERCHANT_ID", "FISCAL_PROVIDER",
                                           "RAIFFEISEN_SECRET_KEY", "RAIFFEISEN_API_URL")})
    rng = random.Random(args.seed)
    procs = Processes(log_dir)
    report: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": {k: v for k, v in vars(args).items() if k != "pg_url"},
        "logs": str(log_dir.relative_to(ROOT)),
    }
    try:
        import psycopg

        waited_quiet = time.monotonic()
        report["background_load"] = background_load()
        while (report["background_load"]["machine_busy_percent"] > 10
               and time.monotonic() - waited_quiet < args.wait_quiet):
            step("machine", f"{report['background_load']['machine_busy_percent']}% busy "
                            f"{report['background_load']['top_processes_cpu_seconds']}; "
                            "waiting for it to quieten (--wait-quiet)")
            time.sleep(3)
            report["background_load"] = background_load()
        busy = report["background_load"]["machine_busy_percent"]
        step("machine", f"{busy}% busy before the run"
             + (f" - WARNING: other work is running "
                f"{report['background_load']['top_processes_cpu_seconds']}; "
                "the figures will be low and noisy" if busy > 10 else ""))
        step("database", f"DROP/CREATE {args.db_name}, flask db upgrade")
        recreate_database(args.pg_url, args.db_name)
        subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
                       cwd=ROOT, env=env, check=True, timeout=120,
                       stdout=(log_dir / "migrate.log").open("wb"), stderr=subprocess.STDOUT)
        started = time.perf_counter()
        seeded = seed(args.n, rng)
        step("seed", f"{len(seeded)} orders + open dynamic QRs in "
                     f"{time.perf_counter() - started:.1f}s")
        import importlib

        from app import jobs

        module = importlib.import_module(args.app_module)  # what the servers run

        report["payment_paid_subscribers"] = jobs.registry(module.app).subscribers.get(
            "payment.paid", [])
        report["code"] = code_version()
        transaction_base = int(time.time() * 1000)
        callbacks = [callback_req(s, transaction_base + i, SANDBOX_MERCHANT_ID,
                                  SANDBOX_SECRET_KEY) for i, s in enumerate(seeded)]

        kassa_port, bare_port = free_port(), free_port()
        for i in range(args.job_workers):
            procs.start(f"job-worker-{i + 1}", [sys.executable, "-m", "bench.worker"], env)
        procs.start("kassa-web", gunicorn_argv(args, f"{args.app_module}:app", kassa_port), env)
        procs.start("bare-web", gunicorn_argv(args, "bench.bare_app:app", bare_port), env)
        wait_http(kassa_port, "GET", "/readyz", body=None, procs=procs)
        wait_http(bare_port, "POST", "/sbp/callback", body=b"{}", procs=procs)
        step("servers", f"kassa :{kassa_port}, bare :{bare_port}, "
                        f"{args.job_workers} job workers; gunicorn "
                        f"{' '.join(gunicorn_argv(args, '<app>', 0)[3:])}")

        warm = args.warmup
        run_load("warmup-bare", bare_port, callbacks[:warm], args, procs)
        run_load("warmup-kassa", kassa_port,
                 [Req(f"w{i}", "GET", "/readyz") for i in range(warm)], args, procs)
        step("warm-up", f"{warm} callbacks to bare, {warm} GET /readyz to Kassa")

        calibration = {"before": calibrate()}
        with psycopg.connect(f"{args.pg_url}/{args.db_name}", autocommit=True) as conn:
            bare, kassa, waited = run_alternating(bare_port, kassa_port, callbacks, args, procs,
                                                  conn=conn)
            step("bare", _line(bare) + f"; blocks {bare.blocks}")
            step("kassa", _line(kassa) + f"; blocks {kassa.blocks}")
            step("jobs", f"all done {waited:.2f}s after the last callback was answered")
            # The bare endpoint once more, in one piece, now that Kassa and its jobs are
            # quiet: how steady the machine was (and the ratio of the old, sequential kind).
            bare_after = run_load("bare-after", bare_port, callbacks, args, procs)
            step("bare again", _line(bare_after))
            calibration["after"] = calibrate()
            after_run = counts(conn)
            sent_at = {k: s.sent_at for k, s in zip(kassa.keys, kassa.samples, strict=True)}
            answered_at = {k: s.sent_at + s.latency
                           for k, s in zip(kassa.keys, kassa.samples, strict=True)}
            latency = job_latencies(conn, sent_at, answered_at)

            picks = rng.sample(range(len(callbacks)), args.duplicates)
            dup_reqs = [callbacks[i] for i in picks for _ in range(2)]
            rng.shuffle(dup_reqs)
            dups = run_load("duplicates", kassa_port, dup_reqs, args, procs)
            step("duplicates", _line(dups))
            time.sleep(1.0)  # anything a duplicate might have enqueued is now due
            wait_jobs_done(conn, len(seeded), args.jobs_timeout)
            after_dups = counts(conn)

        report["calibration_loop_seconds"] = calibration
        report.update(build_report(
            args, seeded=seeded, bare=bare, bare_after=bare_after, kassa=kassa, dups=dups,
            after_run=after_run, after_dups=after_dups, latency=latency, waited=waited,
            per_worker=jobs_per_worker(log_dir)))
    finally:
        signal.alarm(0)
        procs.stop()
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"callbacks-{stamp}.json"
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    LAST_REPORT[:] = [out]
    print_report(report)
    print(f"\nreport: {out.relative_to(ROOT)}   logs: {report['logs']}/")
    return 0 if report["correct"] else 1


def _line(result: LoadResult) -> str:
    s = load_summary(result)
    return (f"{s['requests']} requests in {s['wall_seconds']:.2f}s = "
            f"{s['throughput_rps']:.0f} req/s, p50 {s['latency_ms']['p50']:.1f} ms, "
            f"p99 {s['latency_ms']['p99']:.1f} ms, statuses {s['statuses']}")


def _outcomes(result: LoadResult) -> dict[str, int]:
    found: Counter[str] = Counter()
    for sample in result.samples:
        try:
            found[str(json.loads(sample.body).get("outcome"))] += 1
        except (ValueError, AttributeError):
            found["<not json>"] += 1
    return dict(found)


def build_report(args, *, seeded, bare, bare_after, kassa, dups, after_run, after_dups,
                 latency, waited, per_worker) -> dict:
    n = len(seeded)
    bare_s, kassa_s, dups_s = load_summary(bare), load_summary(kassa), load_summary(dups)
    after_s = load_summary(bare_after)
    ratio = kassa_s["throughput_rps"] / bare_s["throughput_rps"]
    expected = expected_counts(seeded)
    checks = []

    def check(name: str, want, got) -> None:
        checks.append({"check": name, "expected": want, "actual": got, "ok": want == got})

    check("bare: HTTP 200 for every request", {"200": n}, bare.statuses())
    check("bare (again): HTTP 200 for every request", {"200": n}, bare_after.statuses())
    check("kassa: HTTP 200 for every callback", {"200": n}, kassa.statuses())
    check("kassa: outcome 'paid' for every callback", {"paid": n}, _outcomes(kassa))
    for name, want in expected.items():
        check(f"after run: {name}", want, after_run[name])
    check("duplicates: HTTP 200 for every resend", {"200": dups.n}, dups.statuses())
    check("duplicates: outcome 'duplicate' for every resend", {"duplicate": dups.n},
          _outcomes(dups))
    for name, want in expected.items():
        check(f"after duplicates: {name}", want, after_dups[name])
    p99 = (latency["sent_to_done_ms"] or {}).get("p99", float("inf"))
    foreign = {name: summary["cpu"]["other_work_percent_of_machine"] or 0.0
               for name, summary in (("bare", bare_s), ("kassa", kassa_s),
                                     ("bare_after", after_s))}
    return {
        "other_work_percent_of_machine": foreign,
        "disturbed": any(v > 10 for v in foreign.values()),
        "machine": {"cores": os.cpu_count(), "python": sys.version.split()[0]},
        "bare": bare_s,
        "bare_after": after_s,
        "kassa": kassa_s,
        "ratio_kassa_to_bare": round(ratio, 3),
        "ratio_basis": "Kassa req/s over the bare endpoint's, in the same alternating blocks",
        "ratio_of_each_block_pair": [round(k / b, 3) for k, b in
                                     zip(kassa.blocks, bare.blocks, strict=True)],
        "blocks_req_per_s": {"bare": bare.blocks, "kassa": kassa.blocks},
        "ratio_of_cpu_bound_ceilings": round(
            kassa_s["cpu"]["cpu_bound_ceiling_rps"] / bare_s["cpu"]["cpu_bound_ceiling_rps"],
            3),
        "ratio_to_each_bare_run": [
            round(kassa_s["throughput_rps"] / bare_s["throughput_rps"], 3),
            round(kassa_s["throughput_rps"] / after_s["throughput_rps"], 3)],
        "goal_ratio_at_least": GOAL_RATIO,
        "goal_ratio_met": ratio >= GOAL_RATIO,
        "job_latency": latency,
        "goal_job_p99_under_500_ms": p99 < 500,
        "jobs_done_seconds_after_last_answer": round(waited, 3),
        "noop_jobs_per_worker": per_worker,
        "duplicates": {**dups_s, "distinct_callbacks": args.duplicates,
                       "outcomes": _outcomes(dups)},
        "counts_after_run": after_run,
        "counts_after_duplicates": after_dups,
        "checks": checks,
        "correct": all(c["ok"] for c in checks),
    }


def _fmt_row(name: str, s: dict) -> str:
    lat = s["latency_ms"]
    return (f"  {name:<11}{s['throughput_rps']:>9.1f}{lat['p50']:>9.1f}{lat['p90']:>9.1f}"
            f"{lat['p99']:>9.1f}{lat['max']:>9.1f}   {s['statuses']}")


def print_report(r: dict) -> None:
    st = r["settings"]
    print(f"\n== Callback benchmark: {st['n']} callbacks, concurrency {st['concurrency']}, "
          f"gunicorn {st['workers']} x {st['worker_class']}"
          f"{' --threads ' + str(st['threads']) if st['threads'] else ''}, "
          f"{st['job_workers']} job workers, client {st['client']}, "
          f"{r['machine']['cores']} cores")
    print(f"  code {r['code']['commit']} ({r['code']['uncommitted_files_in_app']} uncommitted "
          f"files in app/, migrations/); payment.paid -> {r['payment_paid_subscribers']}")
    print(f"  {'':<11}{'req/s':>9}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}   statuses")
    print(_fmt_row("bare Flask", r["bare"]))
    print(_fmt_row("Kassa", r["kassa"]))
    print(_fmt_row("bare again", r["bare_after"]))
    print(_fmt_row("duplicates", r["duplicates"]))
    goal = "MET" if r["goal_ratio_met"] else "MISSED"
    print(f"  ratio Kassa/bare: {r['ratio_kassa_to_bare']:.3f}  (goal >= {GOAL_RATIO}: {goal}; "
          f"{len(r['ratio_of_each_block_pair'])} alternating blocks each, block by block "
          f"{r['ratio_of_each_block_pair']}; to the bare run after them "
          f"{r['ratio_to_each_bare_run'][1]})")
    print(f"  CPU-bound ceilings (cores / own CPU per request): Kassa "
          f"{r['kassa']['cpu']['cpu_bound_ceiling_rps']} req/s, bare "
          f"{r['bare']['cpu']['cpu_bound_ceiling_rps']} / "
          f"{r['bare_after']['cpu']['cpu_bound_ceiling_rps']} req/s, ratio "
          f"{r['ratio_of_cpu_bound_ceilings']} (steadier than req/s when the machine is shared)")
    bg = r["background_load"]
    print(f"  machine before the run: {bg['machine_busy_percent']}% busy "
          f"{bg['top_processes_cpu_seconds']}")
    cal = r["calibration_loop_seconds"]
    print(f"  CPU speed: a fixed Python loop took {cal['before']}s before the phases and "
          f"{cal['after']}s after (bigger is slower; compare runs by it: this virtual "
          "machine's CPU slows down at times with no process here to blame)")
    jl = r["job_latency"]
    goal = "MET" if r["goal_job_p99_under_500_ms"] else "MISSED"
    print(f"\n  callback -> no-op job done ({jl['jobs']} jobs), ms:")
    for label, key in (("sent -> done", "sent_to_done_ms"),
                       ("answered -> done", "answered_to_done_ms"),
                       ("enqueued -> done", "enqueued_to_done_ms")):
        s = jl[key]
        if s:
            print(f"    {label:<17} p50 {s['p50']:>8.1f}  p95 {s['p95']:>8.1f}  "
                  f"p99 {s['p99']:>8.1f}  max {s['max']:>8.1f}")
    print(f"    goal p99 (sent -> done) < 500 ms: {goal}; all jobs done "
          f"{r['jobs_done_seconds_after_last_answer']:.2f}s after the last answer")
    print(f"    no-op jobs per worker: {r['noop_jobs_per_worker']}")
    print("\n  CPU ms per request (machine busy %):")
    for name in ("bare", "kassa", "bare_after"):
        cpu = r[name]["cpu"]
        parts = ", ".join(f"{k} {v:.2f}" for k, v in cpu["cpu_ms_per_request"].items() if v)
        print(f"    {name:<10} {parts}  ({cpu['machine_busy_percent']}% of "
              f"{cpu['cores']} cores)")
        other = cpu["other_work_percent_of_machine"]
        print(f"               other work on the machine: {other}% of it"
              + (" - DISTURBED: figures are low" if other and other > 10 else "")
              + (f"; top: {cpu['top_other_processes']}" if cpu["top_other_processes"] else ""))
    print("\n  counts                          after run   after duplicates")
    for name, value in r["counts_after_run"].items():
        print(f"    {name:<30}{value:>10}{r['counts_after_duplicates'][name]:>12}")
    if r["disturbed"]:
        print(f"\n  MEASUREMENT DISTURBED: other work took {r['other_work_percent_of_machine']} % "
              "of the machine during the phases; run again on a quiet machine")
    failed = [c for c in r["checks"] if not c["ok"]]
    print(f"\n  correctness: {len(r['checks']) - len(failed)}/{len(r['checks'])} checks passed"
          + ("" if not failed else " - FAILED:"))
    for c in failed:
        print(f"    {c['check']}: expected {c['expected']}, got {c['actual']}")


def repeat(times: int, argv: list[str]) -> int:
    """Run the whole benchmark `times` times and print each run's figures and the medians:
    one run on a shared 2-core machine moves by ±20 %."""
    reports = []
    for index in range(times):
        step("repeat", f"run {index + 1} of {times}")
        code = main(argv)
        reports.append((code, json.loads(LAST_REPORT[0].read_text())))
    rows = [(
        r["kassa"]["throughput_rps"], r["bare"]["throughput_rps"],
        r["ratio_kassa_to_bare"], r["ratio_of_cpu_bound_ceilings"],
        r["job_latency"]["sent_to_done_ms"]["p99"],
        max(r["calibration_loop_seconds"].values()), r["correct"], r["disturbed"],
    ) for _, r in reports]
    print(f"\n== {times} runs (commit {reports[0][1]['code']['commit']})")
    print("  run  kassa req/s  bare req/s  ratio  ceilings ratio  job p99 ms  loop s  correct")
    for i, row in enumerate(rows, 1):
        print(f"  {i:>3}  {row[0]:>11.1f}  {row[1]:>10.1f}  {row[2]:>5.3f}  {row[3]:>14.3f}"
              f"  {row[4]:>10.1f}  {row[5]:>6.3f}  {'yes' if row[6] else 'NO'}"
              + ("  DISTURBED" if row[7] else ""))
    median = [statistics.median(col) for col in list(zip(*rows, strict=True))[:6]]
    print(f"  med  {median[0]:>11.1f}  {median[1]:>10.1f}  {median[2]:>5.3f}"
          f"  {median[3]:>14.3f}  {median[4]:>10.1f}  {median[5]:>6.3f}"
          f"   goal ratio >= {GOAL_RATIO}: {'MET' if median[2] >= GOAL_RATIO else 'MISSED'};"
          f" goal job p99 < 500 ms: {'MET' if median[4] < 500 else 'MISSED'}")
    return max(code for code, _ in reports)


if __name__ == "__main__":
    if "--repeat" in sys.argv:
        at = sys.argv.index("--repeat")
        sys.exit(repeat(int(sys.argv[at + 1]), sys.argv[1:at] + sys.argv[at + 2:]))
    sys.exit(main())
