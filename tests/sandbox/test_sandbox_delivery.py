"""Real HTTP: a started sandbox delivering signed callbacks to a tiny receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
from collections.abc import Callable
from typing import Any

import pytest
import requests

from app.sandbox import SandboxServer, SandboxSettings
from tests.helpers import wait_for

from .helpers import AUTH, MERCHANT_ID, SECRET_KEY, Receiver

pytestmark = pytest.mark.slow

CALLBACK_KEYS = [
    "transactionId", "qrId", "sbpMerchantId", "merchantId", "amount", "currency",
    "transactionDate", "paymentStatus", "additionalInfo", "order", "createDate",
]  # fmt: skip


def expected_signature(raw_body: bytes, key: str = SECRET_KEY) -> str:
    """Independent check: take each signed value as its JSON text."""
    data = json.loads(raw_body, parse_float=str)
    message = "|".join(
        str(data[name])
        for name in ("amount", "sbpMerchantId", "order", "paymentStatus", "transactionDate")
    )
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()


def register(server: SandboxServer, **fields: Any) -> dict[str, Any]:
    body = {"sbpMerchantId": MERCHANT_ID, **fields}
    response = requests.post(f"{server.url}/api/sbp/v2/qrs", json=body, headers=AUTH, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


def pay(server: SandboxServer, qr_id: str, status: str = "SUCCESS", **extra: Any) -> dict:
    response = requests.post(
        f"{server.url}/sandbox/qrs/{qr_id}/pay", json={"status": status, **extra}, timeout=5
    )
    assert response.status_code == 200, response.text
    return response.json()


def state(server: SandboxServer) -> dict[str, Any]:
    return requests.get(f"{server.url}/sandbox/state", timeout=5).json()


def test_start_sandbox_serves_the_bank_api(start_sandbox: Callable[..., SandboxServer]) -> None:
    settings = SandboxSettings(MERCHANT_ID, SECRET_KEY, None)
    server = start_sandbox()
    assert server.url.startswith("http://127.0.0.1:")
    assert server.settings.base_url == server.url
    assert settings.base_url == "http://127.0.0.1:8081"
    created = register(server, qrType="QRDynamic", order="o-1", amount="10.00", currency="RUB")
    assert created["qrUrl"] == f"{server.url}/api/sbp/v1/qr/{created['qrId']}/image"
    image = requests.get(created["qrUrl"], timeout=5)
    assert image.headers["Content-Type"] == "image/png"
    info = requests.get(f"{server.url}/api/sbp/v2/qrs/{created['qrId']}", headers=AUTH, timeout=5)
    assert info.json()["qrStatus"] == "NEW"


def test_signed_callback(start_sandbox: Callable[..., SandboxServer], receiver: Receiver) -> None:
    server = start_sandbox(callback_url=receiver.url)
    qr = register(server, qrType="QRDynamic", order="order-1", amount=100, currency="RUB",
                  additionalInfo="cart 1")  # fmt: skip
    paid = pay(server, qr["qrId"])
    wait_for(lambda: receiver.requests)
    request = receiver.requests[0]
    raw = request["body"]
    assert request["path"] == "/sbp/callback"
    assert request["headers"]["Content-Type"].startswith("application/json")
    assert b'"amount":100.00,' in raw
    assert [key for key, _ in json.loads(raw, object_pairs_hook=list)] == CALLBACK_KEYS
    body = json.loads(raw, parse_float=str)
    assert body["transactionId"] == paid["transactionId"]
    assert body["qrId"] == qr["qrId"]
    assert body["sbpMerchantId"] == MERCHANT_ID
    assert body["merchantId"] == 552
    assert body["amount"] == "100.00"
    assert body["currency"] == "RUB"
    assert body["paymentStatus"] == "SUCCESS"
    assert body["additionalInfo"] == "cart 1"
    assert body["order"] == "order-1"
    assert body["transactionDate"].endswith("+03:00")
    assert request["headers"]["X-Api-Signature-SHA256"] == expected_signature(raw)
    wait_for(lambda: state(server)["deliveries"][0]["delivered"])
    delivery = state(server)["deliveries"][0]
    assert delivery["transactionId"] == paid["transactionId"]
    assert [a["status_code"] for a in delivery["attempts"]] == [200]


def test_declined_and_overridden_amount_callbacks(
    start_sandbox: Callable[..., SandboxServer], receiver: Receiver
) -> None:
    server = start_sandbox(callback_url=receiver.url)
    qr = register(server, qrType="QRDynamic", order="order-1", amount="101.00", currency="RUB")
    pay(server, qr["qrId"], "DECLINED")
    pay(server, qr["qrId"], amount="101.01")
    wait_for(lambda: len(receiver.requests) == 2)
    bodies = [json.loads(r["body"], parse_float=str) for r in receiver.requests]
    assert sorted((b["paymentStatus"], b["amount"]) for b in bodies) == [
        ("DECLINED", "101.00"),
        ("SUCCESS", "101.01"),
    ]
    for request in receiver.requests:
        assert request["headers"]["X-Api-Signature-SHA256"] == expected_signature(request["body"])


def test_retries_until_200(start_sandbox: Callable[..., SandboxServer], receiver: Receiver) -> None:
    receiver.responses = [500, 500]
    server = start_sandbox(callback_url=receiver.url)
    qr = register(server, qrType="QRStatic", order="s-1", amount=5, currency="RUB")
    pay(server, qr["qrId"])
    wait_for(lambda: state(server)["deliveries"][0]["delivered"])
    delivery = state(server)["deliveries"][0]
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 500, 200]
    assert len(receiver.requests) == 3
    assert len({r["body"] for r in receiver.requests}) == 1  # the same notification each time
    assert len({r["headers"]["X-Api-Signature-SHA256"] for r in receiver.requests}) == 1


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_connection_errors_are_recorded_and_retries_stop(
    start_sandbox: Callable[..., SandboxServer],
) -> None:
    server = start_sandbox(
        callback_url=f"http://127.0.0.1:{_closed_port()}/sbp/callback",
        callback_retry_delays=(0.05, 0.1),
        callback_retry_window_seconds=0.4,
    )
    qr = register(server, qrType="QRDynamic", order="o-1", amount=1, currency="RUB")
    pay(server, qr["qrId"])
    wait_for(lambda: state(server)["deliveries"][0]["gaveUp"])
    delivery = state(server)["deliveries"][0]
    assert not delivery["delivered"]
    assert len(delivery["attempts"]) >= 3
    assert all("error" in attempt and "at" in attempt for attempt in delivery["attempts"])


def test_callback_url_set_through_the_api(
    start_sandbox: Callable[..., SandboxServer], receiver: Receiver
) -> None:
    server = start_sandbox()
    response = requests.post(
        f"{server.url}/api/settings/v1/callback",
        json={"callbackUrl": receiver.url},
        headers=AUTH,
        timeout=5,
    )
    assert response.json() == {"callbackUrl": receiver.url}
    bad = requests.post(
        f"{server.url}/api/settings/v1/callback", json={"callbackUrl": "ftp://x"}, headers=AUTH,
        timeout=5,
    )  # fmt: skip
    assert bad.status_code == 400
    link = register(server, qrType="QRVariable")
    order = requests.post(
        f"{server.url}/api/payment/v1/orders",
        json={"amount": "42.00", "qr": {"id": link["qrId"], "additionalInfo": "till 1"}},
        headers=AUTH,
        timeout=5,
    ).json()
    pay(server, link["qrId"])
    wait_for(lambda: receiver.requests)
    # A paid cash-link order brings the ecom notification, not the SBP one.
    body = json.loads(receiver.requests[0]["body"], parse_float=str)
    assert body["event"] == "payment"
    transaction = body["transaction"]
    assert transaction["paymentParams"] == {"qrId": link["qrId"]}
    assert transaction["orderId"] == order["id"]
    assert transaction["amount"] == "42.00"
    assert transaction["status"]["value"] == "SUCCESS"
    assert transaction["extra"] == {"additionalInfo": "till 1"}
    message = "|".join(
        ("42.00", MERCHANT_ID, order["id"], "SUCCESS", transaction["status"]["date"])
    )
    expected = hmac.new(SECRET_KEY.encode(), message.encode(), hashlib.sha256).hexdigest()
    headers = {name.lower(): value for name, value in receiver.requests[0]["headers"].items()}
    assert headers["x-api-signature-sha256"] == expected


def test_refund_completes_in_the_background(start_sandbox: Callable[..., SandboxServer]) -> None:
    server = start_sandbox(refund_processing_seconds=0.2)
    qr = register(server, qrType="QRDynamic", order="o-1", amount="50.00", currency="RUB")
    pay(server, qr["qrId"])
    response = requests.post(
        f"{server.url}/api/sbp/v1/refund",
        json={"amount": "50.00", "order": "o-1", "refundId": "r-1"},
        headers=AUTH,
        timeout=5,
    )
    assert response.json()["refundStatus"] == "IN_PROGRESS"
    # The background thread (not a read) completes it.
    refund = server.sandbox.state.refunds["r-1"]
    wait_for(lambda: refund.status == "COMPLETED")


def test_shutdown_stops_server_and_worker(
    start_sandbox: Callable[..., SandboxServer], receiver: Receiver
) -> None:
    server = start_sandbox(callback_url=receiver.url)
    qr = register(server, qrType="QRDynamic", order="o-1", amount=1, currency="RUB")
    pay(server, qr["qrId"])
    wait_for(lambda: receiver.requests)
    worker = server.sandbox.worker
    assert worker.running
    server.shutdown()
    assert not worker.running
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{server.url}/sandbox/state", timeout=2)
    server.shutdown()  # idempotent
