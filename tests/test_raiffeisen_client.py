"""Kassa's Raiffeisen client against the sandbox: requests as the bank wants them, the
bank's refusals mapped to one ProviderError with the bank's code, retries only when safe."""

from __future__ import annotations

import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from app.config import SANDBOX_MERCHANT_ID, SANDBOX_SECRET_KEY
from app.httpclient import ProviderError
from app.models import utcnow
from app.sandbox import SandboxSettings, start_sandbox
from app.sbp.raiffeisen import RaiffeisenClient


@pytest.fixture(scope="module")
def bank():
    server = start_sandbox(SandboxSettings(SANDBOX_MERCHANT_ID, SANDBOX_SECRET_KEY, None,
                                           refund_processing_seconds=0.1))
    yield server
    server.shutdown()


@pytest.fixture
def client(bank):
    return RaiffeisenClient(bank.url, SANDBOX_MERCHANT_ID, SANDBOX_SECRET_KEY)


def _order(tag: str) -> str:
    return f"t-{tag}-{utcnow().timestamp():.6f}".replace(".", "")


def test_dynamic_qr_register_get_pay_refund(client, bank):
    import requests

    reg = client.register_dynamic_qr(order=_order("d"), amount_kopecks=123456,
                                     expires_at=utcnow() + timedelta(minutes=5), purpose="Чай")
    assert len(reg.qr_id) == 32
    assert "sum=123456" in reg.payload
    info = client.get_qr(reg.qr_id)
    assert info.status == "NEW"
    assert info.expires_at is not None
    assert client.get_payment(reg.qr_id).status == "NO_INFO"

    requests.post(f"{bank.url}/sandbox/qrs/{reg.qr_id}/pay", json={"status": "SUCCESS"},
                  timeout=5)
    payment = client.get_payment(reg.qr_id)
    assert (payment.status, payment.amount_kopecks) == ("SUCCESS", 123456)
    assert client.get_qr(reg.qr_id).status == "PAID"

    order = client.get_qr(reg.qr_id).raw["order"]
    first = client.refund(refund_id=_order("r1"), order=order, amount_kopecks=100000)
    assert (first.status, first.amount_kopecks) == ("IN_PROGRESS", 100000)
    with pytest.raises(ProviderError) as over:
        client.refund(refund_id=_order("r2"), order=order, amount_kopecks=23457)
    assert over.value.code == "ERROR.REFUND_INSUFFICIENT_FUNDS"
    assert over.value.retryable is False


def test_bank_refusals_carry_the_bank_code(client):
    order = _order("dup")
    reg = client.register_dynamic_qr(order=order, amount_kopecks=500,
                                     expires_at=utcnow() + timedelta(minutes=5), purpose=None)
    # Registering the same order again is safe: the same QR comes back.
    again = client.register_dynamic_qr(order=order, amount_kopecks=500,
                                       expires_at=utcnow() + timedelta(minutes=5), purpose=None)
    assert again.qr_id == reg.qr_id

    with pytest.raises(ProviderError) as past:
        client.register_dynamic_qr(order=_order("past"), amount_kopecks=500,
                                   expires_at=utcnow() - timedelta(minutes=5), purpose=None)
    assert past.value.code == "ERROR.QR_EXPIRATION_DATE_NOT_VALID"

    with pytest.raises(ProviderError) as missing:
        client.get_refund("no-such-refund")
    assert (missing.value.code, missing.value.status) == ("ERROR.REFUND_NOT_FOUND", 404)

    wrong_key = RaiffeisenClient(client.http.base_url, SANDBOX_MERCHANT_ID, "wrong")
    with pytest.raises(ProviderError) as unauthorized:
        wrong_key.get_qr(reg.qr_id)
    assert unauthorized.value.status == 401


def test_static_qr_without_sum_and_cash_link_order_cycle(client, bank):
    import requests

    static = client.register_static_qr(order=_order("s"), amount_kopecks=None, purpose=None)
    assert "sum=" not in static.payload

    link = client.register_cash_link(order=_order("cl"), description="Касса 1")
    assert client.get_qr(link.qr_id).status == "INACTIVE"
    sale = client.activate_cash_link(qr_id=link.qr_id, order_id=_order("sale"),
                                     amount_kopecks=9990,
                                     expires_at=utcnow() + timedelta(minutes=5), comment="x")
    assert (sale.status, sale.amount_kopecks) == ("NEW", 9990)
    requests.post(f"{bank.url}/sandbox/qrs/{link.qr_id}/pay", json={"status": "SUCCESS"},
                  timeout=5)
    assert client.get_cash_link_order(sale.order_id).status == "PAID"
    with pytest.raises(ProviderError) as final:
        client.deactivate_cash_link(sale.order_id)
    assert final.value.code == "ORDER_HAS_FINAL_STATUS"
    with pytest.raises(ProviderError) as unknown:
        client.get_cash_link_order("no-such-order")
    assert unknown.value.code == "ORDER_NOT_FOUND"


class _Flaky(BaseHTTPRequestHandler):
    """Answers 503 to everything and counts what it was sent."""

    hits: ClassVar[list[str]] = []

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        type(self).hits.append(self.command)
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"code":"ERROR.UNAVAILABLE","message":"try later"}')

    do_GET = do_POST = do_DELETE = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def flaky_bank():
    _Flaky.hits = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_retries_only_what_is_safe(flaky_bank):
    client = RaiffeisenClient(flaky_bank, SANDBOX_MERCHANT_ID, SANDBOX_SECRET_KEY)
    client.http.backoff = 0.01

    with pytest.raises(ProviderError) as get_error:
        client.get_qr("X")
    assert get_error.value.retryable is True
    assert _Flaky.hits == ["GET"] * 3  # a read is retried

    _Flaky.hits.clear()
    with pytest.raises(ProviderError):
        client.refund(refund_id="rf-1", order="o-1", amount_kopecks=100)
    assert _Flaky.hits == ["POST"] * 3  # keyed by our refundId: safe to repeat

    _Flaky.hits.clear()
    response = client.http.request("POST", "/api/something", json_body={})
    assert response.status == 503
    assert _Flaky.hits == ["POST"]  # an unkeyed POST is sent once


def test_unreachable_bank_is_a_retryable_network_error():
    client = RaiffeisenClient("http://127.0.0.1:9", SANDBOX_MERCHANT_ID, SANDBOX_SECRET_KEY)
    client.http.backoff = 0.01
    with pytest.raises(ProviderError) as down:
        client.get_qr("X")
    assert (down.value.code, down.value.retryable) == ("network", True)
