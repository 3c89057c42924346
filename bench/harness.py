"""What both benchmarks share: the stack's processes, the seed, the bank's signed callbacks,
a small HTTP client, CPU accounting and the report's small helpers.

bench/callbacks.py and bench/receipts.py hold only their scenario and their report; they
start and stop processes with :class:`Processes` (each child in its own process group, all
ended on exit, error or Ctrl-C), make a fresh database with :func:`recreate_database`, seed
open QR codes with :func:`insert_open_qrs` and pay them with :func:`callback_req`, and read
CPU from /proc (read-only) with the functions under "CPU accounting". Everything talks to
127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import http.client
import json
import math
import os
import random
import re
import signal
import socket
import string
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results"
HOST = "127.0.0.1"  # the only address the benchmarks send anything to
MSK = timezone(timedelta(hours=3))
SIGNATURE_HEADER = "X-Api-Signature-SHA256"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- the whole shop's settings ---------------------------------------------------------------


def shop_env(name: str, *, database_url: str, bank_port: int, public_url: str,
             bot_url: str, bot_token: str) -> dict[str, str]:
    """The environment of a whole-shop benchmark's processes (web, worker, sandbox): PostgreSQL,
    the sandbox bank and its ATOL register (receipts on), the fake Bot API, no periodic
    chatter. Every cashier, customer, constructor and the bank come from one address here, so
    the rate limits stay on (a hit costs what it costs in production) but above what is sent;
    each customer's own order limit is not what is measured either."""
    from app.config import SANDBOX_MERCHANT_ID, SANDBOX_SECRET_KEY

    unlimited = "1000000/minute"
    env = {
        **os.environ, "APP_ENV": "development", "SECRET_KEY": f"bench-secret-key-{name}",
        "DATABASE_URL": database_url.replace("postgresql://", "postgresql+psycopg://"),
        "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1",
        "RAIFFEISEN_SBP_MERCHANT_ID": SANDBOX_MERCHANT_ID,
        "RAIFFEISEN_SECRET_KEY": SANDBOX_SECRET_KEY,
        "RAIFFEISEN_API_URL": f"http://{HOST}:{bank_port}", "SANDBOX_PORT": str(bank_port),
        "PUBLIC_URL": public_url,
        "TELEGRAM_BOT_TOKEN": bot_token, "TELEGRAM_API_URL": bot_url,
        "FISCAL_PROVIDER": "atol",
        "NSPK_BANKS_REFRESH_HOURS": "0", "HEALTH_CHECK_INTERVAL_SECONDS": "0",
        "DAILY_SUMMARY_HOUR": "off",
        "STOREFRONT_ORDERS_PER_10_MIN": "100",
        "RATELIMIT_MINIAPP": unlimited, "RATELIMIT_SBP_CALLBACK": unlimited,
        "RATELIMIT_API": unlimited, "RATELIMIT_TELEGRAM_WEBHOOK": unlimited,
    }
    env.pop("FLASK_DEBUG", None)
    return env


# -- processes -------------------------------------------------------------------------------


class Processes:
    """Child processes, each in its own process group; stop() ends every group it started."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen] = {}
        self._logs: list[Any] = []

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = (self.log_dir / f"{name}.log").open("wb")
        self._logs.append(log)
        proc = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        self.procs[name] = proc
        return proc

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}; see "
                                   f"{self.log_dir / (name + '.log')}")

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        for log in self._logs:
            log.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_http(port: int, method: str, path: str, *, body: bytes | None, procs: Processes,
              timeout: float = 60) -> None:
    """Poll until the server answers `path` with 200."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        procs.check_alive()
        conn = http.client.HTTPConnection(HOST, port, timeout=5)
        try:
            conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                return
            last = response.status
        except OSError as exc:
            last = exc
        finally:
            conn.close()
        time.sleep(0.2)
    raise RuntimeError(f"127.0.0.1:{port}{path} not ready in {timeout}s: {last!r}")


def stop_on_signals(deadline: int, what: str) -> None:
    """SIGTERM and SIGINT end the run (so the finally blocks stop the children; a shell
    starts background jobs with SIGINT ignored, and the children must still be stopped);
    after `deadline` seconds SIGALRM raises TimeoutError. signal.alarm(0) cancels it."""
    def abort(signum, _frame):
        raise SystemExit(f"aborted by signal {signum}")

    def too_long(_signum, _frame):
        raise TimeoutError(f"{what} took longer than --deadline {deadline}s")

    signal.signal(signal.SIGTERM, abort)
    signal.signal(signal.SIGINT, abort)
    signal.signal(signal.SIGALRM, too_long)
    signal.alarm(deadline)


def utc_stamp() -> str:
    """The UTC time that names a run's report and log folder."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S")


# -- the database and the seed -----------------------------------------------------------------


def recreate_database(pg_url: str, name: str) -> None:
    import psycopg

    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise SystemExit(f"--db-name {name!r}: lowercase letters, digits and _ only")
    with psycopg.connect(f"{pg_url}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")


@dataclass(frozen=True)
class Seeded:
    qr_id: str
    bank_order: str
    amount_kopecks: int


def random_qr_ids(n: int, rng: random.Random) -> list[str]:
    alphabet = string.ascii_uppercase + string.digits
    ids: set[str] = set()
    while len(ids) < n:
        ids.add("AD" + "".join(rng.choices(alphabet, k=30)))
    return sorted(ids, key=lambda _: rng.random())


def insert_open_qrs(order_ids: list[int], publics: list[str], amounts: list[int],
                    rng: random.Random, *, expires_at: datetime) -> list[Seeded]:
    """One open dynamic QR per order (its sum, bank order `<public id>-1`), inserted in the
    current session's transaction; needs an app context."""
    import sqlalchemy as sa

    from app.extensions import db
    from app.models import QrCode, QrKind, QrStatus, utcnow

    now = utcnow()
    seeded = [Seeded(qr_id, f"{publics[i]}-1", amounts[i])
              for i, qr_id in enumerate(random_qr_ids(len(order_ids), rng))]
    db.session.execute(sa.insert(QrCode), [
        {"kind": QrKind.DYNAMIC, "status": QrStatus.ACTIVE, "qr_id": s.qr_id,
         "bank_order": s.bank_order, "amount_kopecks": s.amount_kopecks,
         "payload": f"https://qr.nspk.ru/{s.qr_id}?type=02&bank=100000000007"
                    f"&sum={s.amount_kopecks}&cur=RUB&crc=0000",
         "description": f"bench {i}", "order_id": order_ids[i],
         "expires_at": expires_at, "created_at": now, "updated_at": now}
        for i, s in enumerate(seeded)
    ])
    return seeded


# -- the bank's callbacks ----------------------------------------------------------------------


def amount_text(kopecks: int) -> str:
    return f"{kopecks // 100}.{kopecks % 100:02d}"


def sign(secret_key: str, *, amount: str, merchant: str, order: str, status: str,
         transaction_date: str) -> str:
    """What the bank sends in X-Api-Signature-SHA256 (the bank's callback docs), written here
    independently of app/sbp/raiffeisen.py so the bench does not check Kassa against itself."""
    message = "|".join((amount, merchant, order, status, transaction_date))
    return hmac.new(secret_key.encode(), message.encode(), hashlib.sha256).hexdigest()


def callback_req(qr: Seeded, transaction_id: int, merchant: str, secret_key: str) -> Req:
    now = datetime.now(MSK)
    transaction_date = now.isoformat(timespec="microseconds")
    amount = amount_text(qr.amount_kopecks)
    body = json.dumps({
        "transactionId": transaction_id,
        "qrId": qr.qr_id,
        "sbpMerchantId": merchant,
        "merchantId": 552,
        "amount": "__AMOUNT__",
        "currency": "RUB",
        "transactionDate": transaction_date,
        "paymentStatus": "SUCCESS",
        "additionalInfo": None,
        "order": qr.bank_order,
        "createDate": (now - timedelta(seconds=30)).isoformat(timespec="microseconds"),
    }, separators=(",", ":")).replace('"__AMOUNT__"', amount)  # a JSON number: 100.00
    signature = sign(secret_key, amount=amount, merchant=merchant, order=qr.bank_order,
                     status="SUCCESS", transaction_date=transaction_date)
    headers = (("Content-Type", "application/json"), (SIGNATURE_HEADER, signature))
    return Req(qr.qr_id, "POST", "/sbp/callback", body.encode(), headers)


# -- HTTP client -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Req:
    key: str
    method: str
    path: str
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()

    def render(self, port: int) -> bytes:
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {HOST}:{port}"]
        lines += [f"{k}: {v}" for k, v in self.headers]
        if self.method != "GET" or self.body:
            lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + self.body


class RawConnection:
    """A minimal HTTP/1.1 client over asyncio streams: one request at a time, keep-alive when
    the server allows it (gunicorn's sync worker closes after every response). It costs the
    generator far less CPU per request than a general client, which matters on 2 cores."""

    def __init__(self, port: int):
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.reconnects = 0
        self.last_head = b""  # the last answer's status line and headers, as received

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        for attempt in range(2):
            reused = self.writer is not None
            if not reused:
                self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
            try:
                self.writer.write(raw)
                head = await self.reader.readuntil(b"\r\n\r\n")
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                self.close()
                nothing_back = not getattr(exc, "partial", b"")
                if reused and attempt == 0 and nothing_back:
                    self.reconnects += 1  # the server closed an idle keep-alive connection
                    continue
                raise
            return await self._rest(head)
        raise AssertionError("unreachable")

    async def _rest(self, head: bytes) -> tuple[int, bytes]:
        self.last_head = head
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length, close = None, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection":
                close = value.strip().lower() == b"close"
            elif name == b"transfer-encoding":
                raise RuntimeError("chunked responses are not supported by the bench client")
        if length is None:
            body, close = await self.reader.read(), True
        else:
            body = await self.reader.readexactly(length)
        if close:
            self.close()
        return status, body


# -- CPU accounting (read-only /proc) -----------------------------------------------------------


class Proc(NamedTuple):
    comm: str    # the command; "postgres:<database>" for a PostgreSQL backend
    pgid: int    # process group (each child of Processes leads its own)
    start: int   # start time in ticks since boot: tells a reused pid apart
    cpu: float   # user + system CPU seconds so far


def process_table() -> dict[int, Proc]:
    """Every process on the machine, by pid (read from /proc/<pid>/stat)."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                raw = (entry / "stat").read_text()
                fields = raw[raw.rindex(")") + 2:].split()
                comm = raw[raw.index("(") + 1:raw.rindex(")")]
                if comm == "postgres":
                    comm = _pg_backend(entry)
                cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime
                table[int(entry.name)] = Proc(comm, int(fields[2]), int(fields[19]), cpu)
    return table


def _pg_backend(proc_dir: Path) -> str:
    """ "postgres: 15/main: USER DATABASE 127.0.0.1(PORT) idle" -> "postgres:DATABASE";
    background processes (checkpointer, walwriter, autovacuum ...) -> "postgres"."""
    title = proc_dir.joinpath("cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    words = title.split(": ", 2)[-1].split()
    if len(words) >= 3 and ("(" in words[2] or words[2] == "[local]"):
        return f"postgres:{words[1]}"
    return "postgres"


def cpu_used(before: dict[int, Proc], after: dict[int, Proc]) -> dict[int, float]:
    """CPU seconds each process of `after` used since `before` (all of it if it is new)."""
    return {pid: proc.cpu - (before[pid].cpu if pid in before
                             and before[pid].start == proc.start else 0.0)
            for pid, proc in after.items()}


def _children(pid: int) -> list[int]:
    found = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                found += [int(c) for c in (task / "children").read_text().split()]
    return found


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        todo += _children(current)
    return pids


STAT_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def machine_ticks() -> list[int]:
    """The machine's CPU ticks so far, one per STAT_FIELDS (the first line of /proc/stat)."""
    return [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]


def busy_seconds(ticks: list[int]) -> tuple[float, float]:
    """(busy, total) CPU seconds of machine_ticks() or of a difference of two."""
    total = sum(ticks)
    return (total - ticks[3] - ticks[4]) / CLK_TCK, total / CLK_TCK  # idle + iowait


def ticks_between(before: list[int], after: list[int]) -> list[int]:
    return [b - a for a, b in zip(before, after, strict=True)]


def calibrate() -> float:
    """Seconds a fixed pure-Python loop takes on one core (best of 3): a virtual machine's
    CPU can be slower from one minute to the next without any process here to blame."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for i in range(1_000_000):
            total += i * i % 7
        best = min(best, time.perf_counter() - started)
    return round(best, 4)


def background_load(seconds: float = 2.0) -> dict:
    """How busy the machine is before the run starts: other work skews every figure."""
    before, ticks0 = process_table(), machine_ticks()
    time.sleep(seconds)
    after, ticks1 = process_table(), machine_ticks()
    used: Counter[str] = Counter()
    for pid, delta in cpu_used(before, after).items():
        if delta > 0 and pid != os.getpid():
            used[after[pid].comm] += delta
    busy, total = busy_seconds(ticks_between(ticks0, ticks1))
    return {
        "machine_busy_percent": round(100 * busy / max(total, 1 / CLK_TCK), 1),
        "top_processes_cpu_seconds": {k: round(v, 2) for k, v in used.most_common(5)},
        "seconds": seconds,
    }


def wait_quiet(limit_percent: float, timeout: float, windows: int = 3) -> dict[str, Any]:
    """Wait until the machine is idle enough (busy < limit in `windows` 2-second windows in
    a row): another job on a small machine would be measured as Kassa's slowness. Gives up
    after `timeout` and says so."""
    started = time.monotonic()
    quiet_in_a_row = 0
    said = -60.0
    while True:
        before, ticks0 = process_table(), machine_ticks()
        time.sleep(2)
        busy, total = busy_seconds(ticks_between(ticks0, machine_ticks()))
        percent = 100 * busy / max(total, 1e-9)
        quiet_in_a_row = quiet_in_a_row + 1 if percent < limit_percent else 0
        waited = time.monotonic() - started
        if quiet_in_a_row >= windows or waited > timeout:
            after = process_table()
            busiest: Counter[str] = Counter()
            for pid, cpu in cpu_used(before, after).items():
                if pid in before:
                    busiest[after[pid].comm] += cpu
            return {"machine_busy_percent_before_run": round(percent, 1),
                    "waited_seconds": round(waited, 1), "quiet": quiet_in_a_row >= windows,
                    "busiest_then": {k: round(v, 2) for k, v in busiest.most_common(3)}}
        if percent >= limit_percent and waited - said >= 30:
            said = waited
            step("waiting", f"machine {percent:.0f}% busy (limit {limit_percent:.0f}%): "
                            "another job is running; waiting for it")


@dataclass
class CpuSnapshot:
    processes: dict[int, Proc]
    ticks: list[int]
    own: float  # this process's CPU seconds (the load generator's)


def cpu_snapshot() -> CpuSnapshot:
    return CpuSnapshot(process_table(), machine_ticks(), time.process_time())


def cpu_by_process_group(before: CpuSnapshot, after: CpuSnapshot, procs: Processes,
                         db_name: str | None) -> dict[str, Any]:
    """CPU seconds per child process group between two snapshots (each child runs in its own
    session, so its group id is its pid), PostgreSQL split into this run's database and its
    background processes. "other processes" is the machine's busy time minus all of ours, so
    it also counts processes that came and went in between."""
    t0, t1 = before.processes, after.processes
    ticks = ticks_between(before.ticks, after.ticks)
    busy, total = busy_seconds(ticks)
    used = cpu_used(t0, t1)
    groups: dict[str, float] = {}
    ours: set[int] = {os.getpid()}
    for name, proc in procs.procs.items():
        members = {pid for pid, p in t1.items() if p.pgid == proc.pid}
        ours |= members
        groups[name] = sum(used[p] for p in members)
    mine = {pid for pid, p in t1.items() if db_name and p.comm == f"postgres:{db_name}"}
    background = {pid for pid, p in t1.items() if p.comm == "postgres"}
    ours |= mine | background
    groups["postgres (this database)"] = sum(used[p] for p in mine)
    groups["postgres (background)"] = sum(used[p] for p in background)
    groups["bench (this process)"] = after.own - before.own
    others: Counter[str] = Counter()
    for pid, cpu in used.items():
        if pid not in ours and cpu > 0:
            others[t1[pid].comm] += cpu
    seen = sum(groups.values()) + sum(others.values())
    groups["other processes"] = max(0.0, busy - sum(groups.values()))
    return {"cpu_seconds": {k: round(v, 2) for k, v in groups.items()},
            "top_other_processes": {k: round(v, 2) for k, v in others.most_common(3)},
            # Busy time no live process accounts for: processes that came and went
            # (another job's), interrupts, and CPU time stolen by the hypervisor.
            "unattributed_seconds": round(max(0.0, busy - seen), 2),
            "exited_processes": sorted({t0[pid].comm for pid in t0.keys() - t1.keys()})[:10],
            "machine_seconds": {name: round(t / CLK_TCK, 2)
                                for name, t in zip(STAT_FIELDS, ticks, strict=True)},
            "machine_busy_percent": round(100 * busy / total, 1) if total else None,
            "cores": os.cpu_count()}


# -- the report --------------------------------------------------------------------------------


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def code_version() -> dict[str, Any]:
    """The commit measured, and how many files of app/ and migrations/ differ from it."""
    def git(*argv: str) -> str:
        done = subprocess.run(["git", *argv], cwd=ROOT, capture_output=True, text=True,
                              timeout=30, check=False)
        return done.stdout.strip()

    changed = git("status", "--porcelain", "--", "app", "migrations")
    return {"commit": git("rev-parse", "--short", "HEAD") or None,
            "uncommitted_files_in_app": len(changed.splitlines()) if changed else 0}


def step(name: str, text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {name:<10} {text}", flush=True)
