"""Kassa's requests and the sandbox's answers held against the bank's own schemas.

The schemas are restated in tests/specs/raiffeisen/ (sources in its README). Every request
RaiffeisenClient sends here is validated as it goes out, and every answer and notification
the sandbox gives is validated as it comes back: neither side can drift from the bank.
"""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests

from app.config import SANDBOX_MERCHANT_ID, SANDBOX_SECRET_KEY
from app.httpclient import dumps
from app.models import utcnow
from app.sandbox import SandboxSettings, start_sandbox
from app.sbp.raiffeisen import RaiffeisenClient

SPECS = Path(__file__).parent.parent / "specs" / "raiffeisen"
AUTH = {"Authorization": f"Bearer {SANDBOX_SECRET_KEY}"}


def _schema(file: str, name: str) -> jsonschema.Draft202012Validator:
    document = json.loads((SPECS / file).read_text(encoding="utf-8"))
    schema = {"$defs": document["$defs"], "$ref": f"#/$defs/{name}"}
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _conforms(file: str, name: str, instance: Any, what: str) -> None:
    errors = sorted(_schema(file, name).iter_errors(instance), key=lambda e: list(e.path))
    assert not errors, f"{what} breaks {file} {name}: " + "; ".join(
        f"{'/'.join(map(str, e.path)) or '(root)'}: {e.message}" for e in errors
    )


def _json(text: str | bytes) -> Any:
    # Decimal keeps money exact; it is a JSON Schema "number" all the same.
    return json.loads(text, parse_float=Decimal)


def test_schemas_catch_what_they_should():
    """The restated schemas are not vacuous: a null or a missing field is caught."""
    info = {"qrId": "AS1", "qrStatus": "NEW", "qrExpirationDate": "2026-01-01T00:00:00+03:00",
            "payload": "https://qr.nspk.ru/AS1", "qrUrl": "https://x/image"}
    _conforms("sbp.json", "qrInfov2", info, "a v2 QR info")
    without = {k: v for k, v in info.items() if k != "qrExpirationDate"}
    assert not _schema("sbp.json", "qrInfov2").is_valid(without)
    assert not _schema("orders.json", "order").is_valid(
        {"id": "o", "amount": 1, "comment": None, "status": {"value": "NEW", "date": "d"}})
    assert not _schema("ecom.json", "paymentsNotification").is_valid(
        {"event": "payment", "transaction": {"paymentMethod": "card"}})


@pytest.fixture(scope="module")
def bank():
    server = start_sandbox(SandboxSettings(
        SANDBOX_MERCHANT_ID, SANDBOX_SECRET_KEY, "http://127.0.0.1:9/nobody-listens",
        refund_processing_seconds=0.05, callback_retry_delays=(),
    ))
    yield server
    server.shutdown()


class _Recording:
    """Wraps the client's HttpClient.request; keeps each JSON body exactly as it is sent."""

    def __init__(self, client: RaiffeisenClient):
        self.sent: list[tuple[str, str, Any]] = []
        self._request = client.http.request
        client.http.request = self

    def __call__(self, method, path, *, json_body=None, **kwargs):
        body = None if json_body is None else _json(dumps(json_body))
        self.sent.append((method, path, body))
        return self._request(method, path, json_body=json_body, **kwargs)


def _order(tag: str) -> str:
    return f"spec-{tag}-{time.time_ns()}"


def _pay(bank, qr_id: str, **body: Any) -> dict:
    response = requests.post(f"{bank.url}/sandbox/qrs/{qr_id}/pay",
                             json={"status": "SUCCESS", **body}, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


REQUEST_SCHEMAS: list[tuple[str, str, str, str]] = [
    # method, path pattern, schema file, schema name (QR registration: by qrType, below)
    ("POST", r"/api/sbp/v1/refund", "sbp.json", "refundQR"),
    ("POST", r"/api/payments/v1/orders/[^/]+/refunds/[^/]+", "ecom.json", "reqRefund"),
    ("POST", r"/api/payment/v1/orders", "orders.json", "createOrder"),
    ("POST", r"/api/settings/v1/callback", "sbp.json", "callbackSettings"),
]
REGISTRATION = {"QRDynamic": ("sbp.json", "QRDynamic"), "QRStatic": ("sbp.json", "QRStatic"),
                "QRVariable": ("orders.json", "QRVariable")}


def test_every_request_kassa_sends_matches_the_bank_schemas(bank):
    client = RaiffeisenClient(bank.url, SANDBOX_MERCHANT_ID, SANDBOX_SECRET_KEY)
    sent = _Recording(client)
    soon = utcnow() + timedelta(minutes=5)

    dynamic = client.register_dynamic_qr(order=_order("d"), amount_kopecks=9_999_999_999,
                                         expires_at=soon, purpose="Я" * 300)
    client.register_static_qr(order=_order("s"), amount_kopecks=150, purpose=None)
    client.register_static_qr(order=_order("o"), amount_kopecks=None, purpose="Чай")
    link = client.register_cash_link(order=_order("l"), description="Касса у окна, левая, 2")
    sale = client.activate_cash_link(qr_id=link.qr_id, order_id=_order("sale"),
                                     amount_kopecks=25050, expires_at=soon, comment="Ж" * 300)
    _pay(bank, dynamic.qr_id)
    _pay(bank, link.qr_id)
    order = client.get_qr(dynamic.qr_id).raw["order"]
    client.refund(refund_id=_order("r"), order=order, amount_kopecks=100, purpose="П" * 300)
    client.refund(refund_id=_order("t"), order=order, amount_kopecks=100,
                  transaction_id=client.get_payment(dynamic.qr_id).transaction_id)
    client.refund_cash_link_order(order_id=sale.order_id, refund_id=_order("c"),
                                  amount_kopecks=50, purpose="В" * 300)
    client.refund_cash_link_order(order_id=sale.order_id, refund_id=_order("n"),
                                  amount_kopecks=50)
    client.set_callback_url("https://shop.example/sbp/callback")

    posts = [(path, body) for method, path, body in sent.sent if method == "POST"]
    assert len(posts) == 10
    for path, body in posts:
        if path == "/api/sbp/v2/qrs":
            file, name = REGISTRATION[body["qrType"]]
        else:
            file, name = next((file, name) for method, pattern, file, name in REQUEST_SCHEMAS
                              if re.fullmatch(pattern, path))
        _conforms(file, name, body, f"POST {path}")
    for method, path, body in sent.sent:
        if method != "POST":
            assert body is None, f"{method} {path} sends a body"


def _get(bank, path: str) -> Any:
    response = requests.get(f"{bank.url}{path}", headers=AUTH, timeout=5)
    assert response.status_code == 200, response.text
    return _json(response.content)


def _post(bank, path: str, body: dict) -> Any:
    response = requests.post(f"{bank.url}{path}", json=body, headers=AUTH, timeout=5)
    assert response.status_code == 200, response.text
    return _json(response.content)


def _register(bank, **body: Any) -> dict:
    return _post(bank, "/api/sbp/v2/qrs", {"sbpMerchantId": SANDBOX_MERCHANT_ID, **body})


def test_every_answer_of_the_sandbox_matches_the_bank_schemas(bank):
    checked: list[str] = []

    def check(file: str, name: str, instance: Any, what: str) -> None:
        _conforms(file, name, instance, what)
        checked.append(name)

    qrs = {
        "dynamic": _register(bank, qrType="QRDynamic", order=_order("d"),
                             amount="99999999.99", currency="RUB"),
        "static": _register(bank, qrType="QRStatic", order=_order("s"), amount=10,
                            currency="RUB"),
        "open": _register(bank, qrType="QRStatic", order=_order("o")),
        "link": _register(bank, qrType="QRVariable", qrDescription="Касса 1"),
    }
    for kind, answer in qrs.items():
        check("sbp.json", "qrStatus", answer, f"registration of a {kind} QR")
    ids = {kind: answer["qrId"] for kind, answer in qrs.items()}

    def qr_views(stage: str) -> None:
        for kind, qr_id in ids.items():
            check("sbp.json", "qrInfov2", _get(bank, f"/api/sbp/v2/qrs/{qr_id}"),
                  f"v2 info of the {kind} QR {stage}")
            check("sbp.json", "paymentInfo", _get(bank, f"/api/sbp/v1/qr/{qr_id}/payment-info"),
                  f"payment info of the {kind} QR {stage}")

    qr_views("before payment")
    created = _post(bank, "/api/payment/v1/orders",
                    {"amount": "12.50", "qr": {"id": ids["link"]}})
    check("orders.json", "order", created, "a new order (no comment, no qr details)")
    unpaid = _get(bank, f"/api/payments/v1/orders/{created['id']}/transaction")
    check("ecom.json", "resPayStatus", unpaid, "the transaction of an unpaid order")
    assert unpaid["transaction"]["status"]["value"] == "NOT_FOUND"
    qr_views("with an open order")

    _pay(bank, ids["dynamic"])
    _pay(bank, ids["static"])
    _pay(bank, ids["open"], amount="77.70")
    _pay(bank, ids["link"])
    qr_views("after payment")
    check("orders.json", "order", _get(bank, f"/api/payment/v1/orders/{created['id']}"),
          "a paid order")
    paid = _get(bank, f"/api/payments/v1/orders/{created['id']}/transaction")
    check("ecom.json", "resPayStatus", paid, "the transaction of a paid order")
    assert paid["transaction"]["status"]["value"] == "SUCCESS"

    full = _post(bank, "/api/sbp/v1/refund", {"amount": "99999999.99", "refundId": _order("r"),
                                              "order": qrs_order(bank, ids["dynamic"])})
    check("sbp.json", "responeRefund", full, "an SBP refund of the largest sum")
    refund_id = _order("c")
    path = f"/api/payments/v1/orders/{created['id']}/refunds/{refund_id}"
    check("ecom.json", "statusRefund", _post(bank, path, {"amount": 12.5}), "an order refund")
    time.sleep(0.1)
    done = _get(bank, path)
    check("ecom.json", "statusRefund", done, "a completed order refund")
    assert done["refundStatus"] == "COMPLETED"
    check("sbp.json", "callbackSettings",
          _post(bank, "/api/settings/v1/callback", {"callbackUrl": "http://127.0.0.1:9/cb"}),
          "the callback setting")

    # What the sandbox sent (or tried to) as the bank's notifications.
    bodies = [_json(d.body) for d in bank.sandbox.state.deliveries.values()]
    sbp = [b for b in bodies if "event" not in b]
    ecom = [b for b in bodies if "event" in b]
    assert len(sbp) >= 3 and ecom  # this test's payments, and any of the module's
    for body in sbp:
        check("sbp.json", "paymentNotification", body, "an SBP notification")
    for body in ecom:
        check("ecom.json", "paymentsNotification", body, "the ecom notification of an order")
    assert {"qrStatus", "qrInfov2", "paymentInfo", "order", "resPayStatus", "responeRefund",
            "statusRefund", "callbackSettings", "paymentNotification",
            "paymentsNotification"} <= set(checked)


def qrs_order(bank, qr_id: str) -> str:
    return _get(bank, f"/api/sbp/v2/qrs/{qr_id}")["order"]
