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


class _Canned(BaseHTTPRequestHandler):
    """A bank that answers every call with `status` and the body `answer`, and keeps the
    method of each call it was sent."""

    status: ClassVar[int] = 200
    answer: ClassVar[bytes] = b""
    hits: ClassVar[list[str]] = []

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        type(self).hits.append(self.command)
        self.send_response(type(self).status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(type(self).answer)

    do_GET = do_POST = do_DELETE = _answer

    def log_message(self, *args):
        pass


def _serve_canned(status: int, answer: bytes):
    _Canned.status, _Canned.answer, _Canned.hits = status, answer, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Canned)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def flaky_bank():
    """503 to everything."""
    yield from _serve_canned(503, b'{"code":"ERROR.UNAVAILABLE","message":"try later"}')


@pytest.fixture
def canned_bank():
    """200 with whatever the test puts in `_Canned.answer`."""
    yield from _serve_canned(200, b"")


def test_retries_only_what_is_safe(flaky_bank):
    client = RaiffeisenClient(flaky_bank, SANDBOX_MERCHANT_ID, SANDBOX_SECRET_KEY)
    client.http.backoff = 0.01

    with pytest.raises(ProviderError) as get_error:
        client.get_qr("X")
    assert get_error.value.retryable is True
    assert _Canned.hits == ["GET"] * 3  # a read is retried

    _Canned.hits.clear()
    with pytest.raises(ProviderError):
        client.refund(refund_id="rf-1", order="o-1", amount_kopecks=100)
    assert _Canned.hits == ["POST"] * 3  # keyed by our refundId: safe to repeat

    _Canned.hits.clear()
    response = client.http.request("POST", "/api/something", json_body={})
    assert response.status == 503
    assert _Canned.hits == ["POST"]  # an unkeyed POST is sent once


def test_unreachable_bank_is_a_retryable_network_error():
    client = RaiffeisenClient("http://127.0.0.1:9", SANDBOX_MERCHANT_ID, SANDBOX_SECRET_KEY)
    client.http.backoff = 0.01
    with pytest.raises(ProviderError) as down:
        client.get_qr("X")
    assert (down.value.code, down.value.retryable) == ("network", True)


def test_http_200_whose_code_is_not_success_is_a_refusal(canned_bank):
    """sbp-sdk-java SbpClientTest: 200 {"code":"BAD_MESSAGE"} is not a success."""
    client = RaiffeisenClient(canned_bank, SANDBOX_MERCHANT_ID, SANDBOX_SECRET_KEY)
    _Canned.answer = b'{"code":"BAD_MESSAGE"}'
    calls = [
        lambda: client.cancel_qr("AS" + "0" * 30),
        lambda: client.deactivate_cash_link("order-1"),
        lambda: client.refund(refund_id="rf-1", order="o-1", amount_kopecks=100),
        lambda: client.refund_cash_link_order(order_id="o-1", refund_id="rf-2",
                                              amount_kopecks=100),
        lambda: client.set_callback_url("https://shop.example/sbp/callback"),
    ]
    for call in calls:
        with pytest.raises(ProviderError) as refused:
            call()
        assert (refused.value.code, refused.value.retryable) == ("BAD_MESSAGE", False)
    assert len(_Canned.hits) == len(calls)  # refused once each, never retried

    # The orders API answers with the order object and no code at all: that is a success.
    _Canned.answer = (b'{"id":"o-1","amount":10.50,"status":{"value":"NEW",'
                      b'"date":"2021-12-24T11:15:22.000Z"},"qr":{"id":"AS1"}}')
    assert client.get_cash_link_order("o-1").amount_kopecks == 1050
    _Canned.answer = b""
    client.deactivate_cash_link("o-1")  # an empty 200 is fine too


def _paid_cash_link_order(client, bank, amount_kopecks: int) -> tuple[str, str]:
    import requests

    link = client.register_cash_link(order=_order("cl"), description=None)
    sale = client.activate_cash_link(qr_id=link.qr_id, order_id=_order("sale"),
                                     amount_kopecks=amount_kopecks,
                                     expires_at=utcnow() + timedelta(minutes=5), comment=None)
    requests.post(f"{bank.url}/sandbox/qrs/{link.qr_id}/pay", json={"status": "SUCCESS"},
                  timeout=5)
    return link.qr_id, sale.order_id


def test_cash_link_payment_is_found_by_its_own_order(client, bank):
    qr_id, first = _paid_cash_link_order(client, bank, 12345)
    # The same link sells again; the first sale is still found by its own order.
    second = client.activate_cash_link(qr_id=qr_id, order_id=_order("next"),
                                       amount_kopecks=500,
                                       expires_at=utcnow() + timedelta(minutes=5), comment="x")
    paid = client.get_cash_link_payment(first)
    assert (paid.status, paid.amount_kopecks, paid.order, paid.qr_id) == (
        "SUCCESS", 12345, first, qr_id)
    assert paid.transaction_id and paid.transaction_date is not None
    assert client.get_payment(qr_id).order == first  # the link's latest payment

    waiting = client.get_cash_link_payment(second.order_id)
    assert (waiting.status, waiting.amount_kopecks, waiting.transaction_id) == (
        "NO_INFO", 500, None)
    with pytest.raises(ProviderError) as unknown:
        client.get_cash_link_payment("no-such-order")
    assert (unknown.value.code, unknown.value.retryable) == ("ERROR.NOT_FOUND", False)


def test_cash_link_refund_goes_through_the_orders_refund_path(client, bank):
    import time

    _qr_id, order_id = _paid_cash_link_order(client, bank, 10000)
    first = client.refund_cash_link_order(order_id=order_id, refund_id=_order("r1"),
                                          amount_kopecks=6000, purpose="Возврат")
    assert (first.status, first.amount_kopecks) == ("IN_PROGRESS", 6000)
    refund = bank.sandbox.state.refunds[first.refund_id]
    assert (refund.order, refund.payment_details) == (order_id, "Возврат")
    # Asking again with the same refundId is the same refund.
    again = client.refund_cash_link_order(order_id=order_id, refund_id=first.refund_id,
                                          amount_kopecks=6000, purpose="Возврат")
    assert again.amount_kopecks == 6000
    time.sleep(0.2)
    done = client.get_cash_link_refund(order_id, first.refund_id)
    assert (done.status, done.amount_kopecks) == ("COMPLETED", 6000)

    with pytest.raises(ProviderError) as over:
        client.refund_cash_link_order(order_id=order_id, refund_id=_order("r2"),
                                      amount_kopecks=4001)
    assert (over.value.code, over.value.retryable) == ("ERROR.REFUND_INSUFFICIENT_FUNDS", False)
    with pytest.raises(ProviderError) as elsewhere:
        client.get_cash_link_refund("another-order", first.refund_id)
    assert elsewhere.value.code == "ERROR.REFUND_NOT_FOUND"
    with pytest.raises(ProviderError) as unknown:
        client.refund_cash_link_order(order_id="no-such-order", refund_id=_order("r3"),
                                      amount_kopecks=100)
    assert unknown.value.code == "ERROR.NOT_FOUND"
