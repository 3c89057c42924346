"""The emulated bank's fault switches (POST /sandbox/bank/faults): down, slow, and a QR paid
before its registration has answered."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import requests

from app.sandbox import SandboxServer
from tests.helpers import wait_for

from .helpers import AUTH, MERCHANT_ID, Bank, Receiver

DYNAMIC = {"qrType": "QRDynamic", "amount": "100.00", "currency": "RUB"}


def test_down_answers_503_and_changes_nothing(bank: Bank) -> None:
    qr_id = bank.dynamic("order-1")
    assert bank.client.post("/sandbox/bank/faults", json={"down": True}).get_json()["down"]
    refused = bank.register(order="order-2", **DYNAMIC)
    assert refused.status_code == 503
    assert refused.get_json()["code"] == "ERROR.SERVICE_UNAVAILABLE"
    assert bank.call("GET", f"/api/sbp/v2/qrs/{qr_id}").status_code == 503
    assert bank.call("DELETE", f"/api/sbp/v2/qrs/{qr_id}").status_code == 503
    # The sandbox's own endpoints still answer: a test can look and switch it back.
    orders = [qr["order"] for qr in bank.client.get("/sandbox/state").get_json()["qrs"]]
    assert orders == ["order-1"]
    bank.client.post("/sandbox/bank/faults", json={"down": False})
    assert bank.qr(qr_id)["qrStatus"] == "NEW"
    assert bank.register(order="order-2", **DYNAMIC).status_code == 200


def test_slow_holds_the_answer_after_the_work(bank: Bank) -> None:
    bank.client.post("/sandbox/bank/faults", json={"slow": 0.3})
    started = time.monotonic()
    qr_id = bank.dynamic("order-1")
    assert time.monotonic() - started >= 0.3
    assert bank.client.get("/sandbox/bank/faults").get_json() == {
        "down": False, "slow": 0.3, "pay_on_register": False}
    bank.client.post("/sandbox/bank/faults", json={"slow": 0})
    started = time.monotonic()
    assert bank.qr(qr_id)["qrStatus"] == "NEW"
    assert time.monotonic() - started < 0.3


def test_bad_faults_are_refused_and_reset_clears_them(bank: Bank) -> None:
    for bad in ({"nope": 1}, {"down": "yes"}, {"slow": -1}, {"slow": 61},
                {"pay_on_register": 1}, [1]):
        assert bank.client.post("/sandbox/bank/faults", json=bad).status_code == 400, bad
    bank.client.post("/sandbox/bank/faults", json={"down": True, "slow": 1,
                                                   "pay_on_register": True})
    bank.client.post("/sandbox/reset")
    assert bank.client.get("/sandbox/bank/faults").get_json() == {
        "down": False, "slow": 0.0, "pay_on_register": False}
    assert bank.register(order="order-1", **DYNAMIC).status_code == 200


def test_pay_on_register_calls_back_before_the_registration_answers(
    start_sandbox: Callable[..., SandboxServer], receiver: Receiver
) -> None:
    server = start_sandbox(callback_url=receiver.url)
    requests.post(f"{server.url}/sandbox/bank/faults", timeout=5,
                  json={"pay_on_register": True, "slow": 0.5})
    created = requests.post(f"{server.url}/api/sbp/v2/qrs", headers=AUTH, timeout=5,
                            json={"sbpMerchantId": MERCHANT_ID, "order": "early-1", **DYNAMIC})
    # The callback was delivered while the registration's answer was still held back.
    assert receiver.requests, "no callback before the registration answered"
    body: dict[str, Any] = json.loads(receiver.requests[0]["body"], parse_float=str)
    assert (body["qrId"], body["order"], body["paymentStatus"]) == (
        created.json()["qrId"], "early-1", "SUCCESS")
    info = requests.get(f"{server.url}/api/sbp/v2/qrs/{body['qrId']}", headers=AUTH, timeout=5)
    assert info.json()["qrStatus"] == "PAID"
    # A static QR is not paid by the switch; only a new QRDynamic is.
    requests.post(f"{server.url}/api/sbp/v2/qrs", headers=AUTH, timeout=5,
                  json={"sbpMerchantId": MERCHANT_ID, "order": "static-1", "qrType": "QRStatic"})
    wait_for(lambda: len(requests.get(f"{server.url}/sandbox/state", timeout=5)
                         .json()["qrs"]) == 2)
    assert len(receiver.requests) == 1
