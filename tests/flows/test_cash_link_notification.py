"""A paid cash-link order: the bank announces it with its ecom notification, and Kassa's
callback route takes that notification (lower-case header, its own signature)."""

from __future__ import annotations

import json

import requests
import sqlalchemy as sa

from app.config import SANDBOX_SECRET_KEY
from app.extensions import db
from app.models import Order, OrderChannel, OrderStatus, Payment
from app.orders.services import create_amount_order
from app.sbp import qrcodes
from tests.helpers import LiveServer, wait_for


class _Hook:
    """Stands in for Kassa's callback URL and keeps what the bank sent, headers as sent."""

    def __init__(self):
        self.calls: list[tuple[bytes, dict[str, str]]] = []
        self.server = LiveServer(self._wsgi)

    def _wsgi(self, environ, start_response):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items()
                   if k.startswith("HTTP_")}
        self.calls.append((body, headers))
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b"{}"]


def test_paid_cash_link_order_arrives_as_the_ecom_notification_and_is_recorded(stack):
    hook = _Hook()
    try:
        response = requests.post(
            f"{stack.bank_url}/api/settings/v1/callback",
            json={"callbackUrl": hook.server.url + "/hook"},
            headers={"Authorization": f"Bearer {SANDBOX_SECRET_KEY}"}, timeout=5,
        )
        assert response.status_code == 200
        with stack.app.app_context():
            link = qrcodes.register_cash_link(description="Касса 2")
            order = create_amount_order(channel=OrderChannel.MINIAPP, amount_kopecks=31400)
            activation = qrcodes.activate_cash_link(link.id, order.id, ttl_minutes=5)
            qr_id, order_id, bank_order = link.qr_id, order.id, activation.bank_order_id
        stack.pay(qr_id)
        wait_for(lambda: hook.calls)
    finally:
        hook.server.stop()

    raw, headers = hook.calls[0]
    body = json.loads(raw, parse_float=str)
    assert body["event"] == "payment"
    assert body["transaction"]["orderId"] == bank_order
    assert body["transaction"]["paymentParams"] == {"qrId": qr_id}
    assert body["transaction"]["amount"] == "314.00"
    signature = headers["x-api-signature-sha256"]

    def post(data: bytes, value: str):
        return requests.post(f"{stack.web.url}/sbp/callback", data=data, timeout=10,
                             headers={"Content-Type": "application/json",
                                      "x-api-signature-sha256": value})

    tampered = raw.replace(b'"amount":314.00', b'"amount":3.14')
    assert tampered != raw
    refused = post(tampered, signature)
    assert (refused.status_code, refused.json()["error"]) == (400, "bad_signature")

    accepted = post(raw, signature)
    assert accepted.status_code == 200
    assert accepted.json()["outcome"] == "paid"
    with stack.app.app_context():
        payment = db.session.scalars(sa.select(Payment)).one()
        assert (payment.order_id, payment.amount_kopecks) == (order_id, 31400)
        assert payment.transaction_id == str(body["transaction"]["id"])
        assert db.session.get(Order, order_id).status == OrderStatus.PAID
