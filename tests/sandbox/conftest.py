"""Fixtures for the bank emulator tests (app/sandbox)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from app.sandbox import SandboxServer, SandboxSettings, clock, create_sandbox_app, get_sandbox
from app.sandbox import start_sandbox as _start_sandbox
from tests.sandbox.helpers import FAST_RETRIES, MERCHANT_ID, SECRET_KEY, Bank, FakeClock, Receiver


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(clock, "now", fake.now)
    return fake


@pytest.fixture
def settings() -> SandboxSettings:
    return SandboxSettings(
        merchant_id=MERCHANT_ID,
        secret_key=SECRET_KEY,
        callback_url=None,
        callback_retry_delays=FAST_RETRIES,
        refund_processing_seconds=0.2,
    )


@pytest.fixture
def sandbox_app(settings: SandboxSettings) -> Iterator[Any]:
    app = create_sandbox_app(settings)
    app.testing = True
    yield app
    get_sandbox(app).stop()


@pytest.fixture
def bank(sandbox_app: Any) -> Bank:
    return Bank(sandbox_app.test_client())


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    yield rec
    rec.close()


@pytest.fixture
def start_sandbox() -> Iterator[Callable[..., SandboxServer]]:
    """Factory starting real sandbox servers; all are shut down after the test."""
    servers: list[SandboxServer] = []

    def start(**overrides: Any) -> SandboxServer:
        fields: dict[str, Any] = {
            "merchant_id": MERCHANT_ID,
            "secret_key": SECRET_KEY,
            "callback_url": None,
            "callback_retry_delays": FAST_RETRIES,
            "refund_processing_seconds": 0.2,
        }
        fields.update(overrides)
        server = _start_sandbox(SandboxSettings(**fields))
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
