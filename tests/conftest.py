"""Shared fixtures: the app on SQLite (or TEST_DATABASE_URL), the sandbox bank over real
HTTP, the app served on loopback for the bank's callbacks, and a worker thread."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field

import pytest

from app import create_app
from app.config import SANDBOX_MERCHANT_ID, SANDBOX_SECRET_KEY
from app.extensions import db
from app.jobs.worker import Worker
from app.sandbox import SandboxSettings, start_sandbox
from tests.helpers import TEST_DATABASE_URL, LiveServer, empty_tables


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    if TEST_DATABASE_URL:
        return TEST_DATABASE_URL
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'kassa-test.db'}"


@pytest.fixture(scope="session")
def _schema(database_url):
    """Create the tables once per run; each test then starts from empty tables."""
    app = create_app({"APP_ENV": "testing", "SQLALCHEMY_DATABASE_URI": database_url})
    with app.app_context():
        db.drop_all()
        db.create_all()
    yield
    with app.app_context():
        db.drop_all()
        db.engine.dispose()


@pytest.fixture
def make_app(database_url, _schema):
    """Build an app on the test database with config overrides."""
    built = []

    def factory(**overrides):
        config = {
            "APP_ENV": "testing",
            "SQLALCHEMY_DATABASE_URI": database_url,
            "SECRET_KEY": "test-secret",
            "RAIFFEISEN_API_URL": "http://127.0.0.1:9",  # nothing listens there
            "HTTP_TIMEOUT": (2, 5),
            "WORKER_IDLE_SLEEP": 0.05,
            "LOG_LEVEL": "WARNING",
        }
        config.update(overrides)
        app = create_app(config)
        built.append(app)
        return app

    yield factory
    for app in built:
        with app.app_context():
            db.session.remove()
    if built:
        empty_tables(built[0])
    for app in built:  # each app has its own engine and pool
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def app(make_app):
    app = make_app()
    with app.app_context():
        yield app


@dataclass
class Stack:
    """Kassa + the sandbox bank, both on loopback, wired to each other."""

    app: object
    sandbox: object
    web: LiveServer
    workers: list[Worker] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)

    @property
    def bank_url(self) -> str:
        return self.sandbox.url

    def start_worker(self, **kwargs) -> Worker:
        worker = Worker(self.app, **kwargs)
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        self.workers.append(worker)
        self.threads.append(thread)
        return worker

    def stop_workers(self):
        for worker in self.workers:
            worker.stop.set()
        for thread in self.threads:
            thread.join(timeout=10)
        self.workers.clear()
        self.threads.clear()

    def pay(self, qr_id: str, status: str = "SUCCESS", amount: str | None = None) -> dict:
        """Pay as a customer would, through the sandbox's control endpoint."""
        import requests

        body = {"status": status}
        if amount is not None:
            body["amount"] = amount
        response = requests.post(f"{self.bank_url}/sandbox/qrs/{qr_id}/pay", json=body,
                                 timeout=5)
        assert response.status_code == 200, response.text
        return response.json()

    def callback_raw(self, body: dict, expect: int = 200) -> dict:
        """POST a notification to Kassa signed as the bank signs it (`body` values as
        JSON text: amounts as strings of their number, e.g. "100.00")."""
        import requests

        from app.sbp.raiffeisen import SIGNATURE_HEADER, SIGNED_FIELDS, notification_signature

        fields = {name: str(body[name]) for name in SIGNED_FIELDS}
        text = json.dumps({**body, "amount": "@"}).replace('"@"', str(body["amount"]))
        response = requests.post(f"{self.web.url}/sbp/callback", data=text, timeout=10,
                                 headers={"Content-Type": "application/json",
                                          SIGNATURE_HEADER: notification_signature(
                                              SANDBOX_SECRET_KEY, fields)})
        assert response.status_code == expect, response.text
        return response.json()

    def bank_state(self) -> dict:
        import requests

        return requests.get(f"{self.bank_url}/sandbox/state", timeout=5).json()


@pytest.fixture
def make_stack(make_app):
    """Build the sandbox (bank and cash registers) and Kassa over real HTTP, wired together."""
    stacks: list[Stack] = []

    def factory(sandbox_settings: dict | None = None, **overrides) -> Stack:
        settings = {
            "callback_retry_delays": (0.1, 0.2, 0.5),
            "refund_processing_seconds": 0.3,
            "fiscal_processing_seconds": 0.3,
            **(sandbox_settings or {}),
        }
        sandbox = start_sandbox(SandboxSettings(
            merchant_id=SANDBOX_MERCHANT_ID, secret_key=SANDBOX_SECRET_KEY, callback_url=None,
            **settings,
        ))
        holder: dict = {}

        def wsgi(environ, start_response):
            return holder["app"].wsgi_app(environ, start_response)

        web = LiveServer(wsgi)
        config = {
            "RAIFFEISEN_API_URL": sandbox.url,
            "ATOL_API_URL": f"{sandbox.url}/possystem/v5",
            "PUBLIC_URL": web.url,
            "RECONCILE_INTERVAL_SECONDS": 1,
            "RECONCILE_QR_AFTER_SECONDS": 60,
            "JOB_BACKOFF_SECONDS": 0.2,
        }
        config.update(overrides)
        app = make_app(**config)
        holder["app"] = app
        with app.app_context():
            from app.sbp.bank_events import set_callback_url

            set_callback_url()
        built = Stack(app=app, sandbox=sandbox, web=web)
        stacks.append(built)
        return built

    yield factory
    for built in stacks:
        built.stop_workers()
        built.web.stop()
        built.sandbox.shutdown()


@pytest.fixture
def stack(make_stack) -> Stack:
    """The sandbox and Kassa over real HTTP; the bank calls Kassa back."""
    return make_stack()
