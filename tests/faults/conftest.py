"""The fault suite's machinery: a PostgreSQL cluster of its own (so restarting it disturbs
nobody else), the whole stack as real processes on loopback, and the steady load.

The suite needs PostgreSQL: it runs when TEST_DATABASE_URL is a postgresql URL (CI's second
pass; `pytest -m faults` runs it alone) and is deselected, with a one-line note, otherwise.
The cluster is made with the server's own initdb under a temporary directory (as the
`postgres` OS user when the suite runs as root, since PostgreSQL refuses root) and listens
on 127.0.0.1 only; it is stopped and removed when the module ends, also on failure.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from bench.callbacks import gunicorn_argv
from bench.harness import HOST, ROOT, Processes, free_port, wait_http
from tests.telegram.fakebot import FakeBotApi

FAULTS_DIR = Path(__file__).resolve().parent
BOT_TOKEN = "7000003:faults-suite-bot-token"
CASHIER_ID = 820_001  # the cashier's Telegram id: the chat their messages go to
PRODUCTS = [("Капучино 300 мл", 22000), ("Круассан с миндалём", 18500), ("Чай улун", 25000)]
# The job settings that make a fault suite finish in minutes: a dead worker's leases run out
# after a few seconds, retries start after one.
JOB_LEASE_SECONDS = 6
FAST_ENV = {
    "JOB_LEASE_SECONDS": str(JOB_LEASE_SECONDS),
    "JOB_BACKOFF_SECONDS": "1",
    "WORKER_IDLE_SLEEP": "0.1",
    "RECONCILE_INTERVAL_SECONDS": "5",
    "RECONCILE_QR_AFTER_SECONDS": "20",
    "NSPK_BANKS_REFRESH_HOURS": "0",
    "HEALTH_CHECK_INTERVAL_SECONDS": "0",
    "DAILY_SUMMARY_HOUR": "off",
}


# -- selection -----------------------------------------------------------------------------


def on_postgresql() -> bool:
    return os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if on_postgresql():
        return
    mine = [item for item in items if FAULTS_DIR in Path(str(item.path)).parents]
    if not mine:
        return
    ids = {id(item) for item in mine}
    items[:] = [item for item in items if id(item) not in ids]
    config.hook.pytest_deselected(items=mine)
    config.stash[_NOTE] = (f"tests/faults: {len(mine)} tests deselected: the fault suite needs "
                           "PostgreSQL (TEST_DATABASE_URL=postgresql+psycopg://...)")


_NOTE = pytest.StashKey[str]()


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    note = config.stash.get(_NOTE, None)
    if note:
        terminalreporter.write_line(note)


# -- the cluster ---------------------------------------------------------------------------


@dataclass
class Cluster:
    """A PostgreSQL server of the suite's own: data, socket and log under `root`."""

    bin_dir: Path
    root: Path
    port: int
    as_owner: list[str]  # the command prefix that runs a server tool as the cluster's owner

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@{HOST}:{self.port}/{database}"

    def ctl(self, *args: str, timeout: float = 60) -> None:
        argv = [*self.as_owner, str(self.bin_dir / "pg_ctl"), "-D", str(self.data),
                "-l", str(self.log), "-w", "-t", str(int(timeout)), *args]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 10,
                              check=False)
        if done.returncode:
            raise RuntimeError(f"pg_ctl {' '.join(args)} failed ({done.returncode}): "
                               f"{done.stderr.strip() or done.stdout.strip()}; see {self.log}")

    def start(self) -> None:
        options = (f"-p {self.port} -c listen_addresses={HOST} -k {self.root} "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                   "-c max_connections=80 -c shared_buffers=32MB")
        self.ctl("start", "-o", options)

    def restart(self, down_for: float = 0) -> None:
        """A real restart: every connection is dropped (fast shutdown), then it comes back,
        after `down_for` seconds down (so that the load meets the outage for certain)."""
        if not down_for:
            self.ctl("restart", "-m", "fast")
            return
        self.ctl("stop", "-m", "fast")
        time.sleep(down_for)
        self.start()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.ctl("stop", "-m", "immediate", timeout=30)


def _initdb() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    path = shutil.which("initdb")
    if found:
        return Path(found[-1])
    if path:
        return Path(path)
    pytest.fail("the fault suite needs PostgreSQL's server tools (initdb, pg_ctl) to run a "
                "cluster of its own: install the postgresql package "
                "(/usr/lib/postgresql/<version>/bin/initdb not found)", pytrace=False)
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def cluster() -> Any:
    initdb = _initdb()
    root = Path(tempfile.mkdtemp(prefix="kassa-faults-pg-"))
    as_owner: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: the postgres user owns it
        owner = pwd.getpwnam("postgres")
        os.chown(root, owner.pw_uid, owner.pw_gid)
        as_owner = ["runuser", "-u", "postgres", "--"]
    made = Cluster(initdb.parent, root, free_port(), as_owner)
    try:
        done = subprocess.run(
            [*as_owner, str(initdb), "-D", str(made.data), "-U", "postgres", "-A", "trust",
             "-E", "UTF8", "--locale=C", "--no-sync"],
            capture_output=True, text=True, timeout=120, check=False)
        if done.returncode:
            pytest.fail(f"initdb failed: {done.stderr.strip()}", pytrace=False)
        made.start()
        yield made
    finally:
        made.stop()
        shutil.rmtree(root, ignore_errors=True)


# -- the stack -----------------------------------------------------------------------------


@dataclass
class Stack:
    """Everything the suite talks to: URLs, the processes, the fake Bot API, the database."""

    cluster: Cluster
    procs: Processes
    env: dict[str, str]
    bot: FakeBotApi
    log_dir: Path
    bank_url: str
    web_urls: list[str]
    api_key: str
    product_ids: list[int]
    app: Any  # a Kassa app on the fault database, for the admin's refunds
    engine: sa.Engine
    worker_names: list[str] = field(default_factory=list)
    _spawned: int = 0

    # -- processes

    def start_worker(self) -> str:
        self._spawned += 1
        name = f"worker{self._spawned}"
        self.procs.start(name, [*_flask(), "worker"], self.env)
        self.worker_names.append(name)
        return name

    def kill_worker(self, name: str) -> int:
        """SIGKILL a `flask worker` (no chance to give its jobs back); returns its pid."""
        proc = self.procs.procs.pop(name)
        proc.kill()
        proc.wait(timeout=10)
        self.worker_names.remove(name)
        return proc.pid

    def pids(self) -> dict[str, int]:
        return {name: proc.pid for name, proc in self.procs.procs.items()}

    # -- the sandbox and the bot

    def bank(self, method: str, path: str, body: Any = None) -> Any:
        response = requests.request(method, f"{self.bank_url}{path}", json=body, timeout=10)
        response.raise_for_status()
        return response.json()

    # -- the database

    def rows(self, sql: str, **params: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.text(sql), params))

    def scalar(self, sql: str, **params: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()


def _flask() -> list[str]:
    return [sys.executable, "-m", "flask", "--app", "wsgi"]


SEED = """
import json, sys
from app import create_app
from app.catalog.services import create_product
from app.constructor.clients import create_client
from app.people.services import add_staff
app = create_app()
with app.app_context():
    add_staff(int(sys.argv[1]), name="Анна")
    ids = [create_product(name=n, price_kopecks=p).id for n, p in json.loads(sys.argv[2])]
    key = create_client("faults")[1]
print(json.dumps({"products": ids, "key": key}))
"""


@pytest.fixture(scope="module")
def stack(cluster: Cluster, request: pytest.FixtureRequest) -> Any:
    import psycopg

    from app import create_app
    from app.config import SANDBOX_MERCHANT_ID, SANDBOX_SECRET_KEY

    with psycopg.connect(f"host={HOST} port={cluster.port} user=postgres dbname=postgres",
                         autocommit=True) as conn:
        conn.execute("CREATE DATABASE kassa")
    database_url = cluster.url("kassa")
    # The processes' logs: removed after a clean run, kept (and named) after a failure.
    log_dir = Path(tempfile.mkdtemp(prefix="kassa-faults-logs-"))
    failed_before = request.session.testsfailed
    print(f"\nfault suite: PostgreSQL on :{cluster.port}, logs in {log_dir}")
    bot = FakeBotApi().start()
    bank_port, web_ports = free_port(), [free_port(), free_port()]
    web_urls = [f"http://{HOST}:{port}" for port in web_ports]
    env = {
        **os.environ, "APP_ENV": "development", "SECRET_KEY": "faults-suite-secret-key",
        "DATABASE_URL": database_url, "LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1",
        "RAIFFEISEN_SBP_MERCHANT_ID": SANDBOX_MERCHANT_ID,
        "RAIFFEISEN_SECRET_KEY": SANDBOX_SECRET_KEY,
        "RAIFFEISEN_API_URL": f"http://{HOST}:{bank_port}", "SANDBOX_PORT": str(bank_port),
        # The bank calls web 1 back; the register's callbacks go there too.
        "PUBLIC_URL": web_urls[0],
        "TELEGRAM_BOT_TOKEN": BOT_TOKEN, "TELEGRAM_API_URL": bot.url,
        "TELEGRAM_BOT_USERNAME": "kassa_faults_bot",
        "FISCAL_PROVIDER": "atol",
        **FAST_ENV,
    }
    for name in ("FLASK_DEBUG", "TEST_DATABASE_URL", "ATOL_API_URL"):
        env.pop(name, None)
    procs = Processes(log_dir)
    app = engine = None
    try:
        with (log_dir / "migrate.log").open("wb") as log:
            subprocess.run([*_flask(), "db", "upgrade"], cwd=ROOT, env=env, check=True,
                           timeout=180, stdout=log, stderr=subprocess.STDOUT)
        seeded = json.loads(subprocess.run(
            [sys.executable, "-c", SEED, str(CASHIER_ID), json.dumps(PRODUCTS)], cwd=ROOT,
            env=env, check=True, timeout=120, capture_output=True, text=True,
        ).stdout.strip().splitlines()[-1])
        procs.start("sandbox", [*_flask(), "sandbox", "run", "--port", str(bank_port)], env)
        web = argparse.Namespace(workers=2, worker_class="sync", threads=0)
        for number, port in enumerate(web_ports, 1):
            procs.start(f"web{number}", gunicorn_argv(web, "wsgi:app", port), env)
        made = Stack(cluster, procs, env, bot, log_dir, f"http://{HOST}:{bank_port}",
                     web_urls, seeded["key"], seeded["products"], None, None)
        made.start_worker()
        made.start_worker()
        for port in web_ports:
            wait_http(port, "GET", "/readyz", body=None, procs=procs, timeout=90)
        wait_http(bank_port, "GET", "/sandbox/state", body=None, procs=procs, timeout=60)
        app = create_app({
            "APP_ENV": "testing", "SQLALCHEMY_DATABASE_URI": database_url,
            "SECRET_KEY": env["SECRET_KEY"], "PUBLIC_URL": web_urls[0],
            "RAIFFEISEN_API_URL": made.bank_url, "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
            "LOG_LEVEL": "WARNING",
        })
        engine = sa.create_engine(database_url, pool_pre_ping=True)
        made.app, made.engine = app, engine
        yield made
    finally:
        procs.stop()
        bot.stop()
        if request.session.testsfailed == failed_before:
            shutil.rmtree(log_dir, ignore_errors=True)
        else:
            print(f"\nfault suite: the processes' logs are kept in {log_dir}")
        if engine is not None:
            engine.dispose()
        if app is not None:
            from app.extensions import db

            with app.app_context():
                db.engine.dispose()


def log_tail(stack: Stack, name: str, lines: int = 30) -> str:
    path = stack.log_dir / f"{name}.log"
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def wait_until(what: str, check, timeout: float, every: float = 0.5) -> Any:
    """Poll `check()` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except Exception as exc:  # the database may be restarting
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout:.0f}s (last: {last!r})")


QR_IN_PAYLOAD = re.compile(r"https://qr\.nspk\.ru/([A-Za-z0-9]+)")
