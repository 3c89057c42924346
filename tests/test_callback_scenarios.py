"""Bank callbacks through POST /sbp/callback, scenario by scenario: what each answers and
which rows it leaves."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from app import jobs
from app.config import SANDBOX_MERCHANT_ID, SANDBOX_SECRET_KEY
from app.extensions import db
from app.models import (
    BankEvent,
    Job,
    Order,
    OrderChannel,
    OrderStatus,
    Payment,
    PaymentStatus,
    QrCode,
    QrKind,
    QrStatus,
    utcnow,
)
from app.sbp.raiffeisen import MOSCOW, SIGNATURE_HEADER, notification_signature
from tests.conftest import _empty_tables

PAID_AT = datetime(2026, 11, 27, 15, 4, 5, 123456, tzinfo=MOSCOW)


@dataclass
class Shop:
    """Rows for one scenario, made the same way for both runs."""

    qr_ids: dict[str, str]

    @classmethod
    def open(cls) -> Shop:
        now = utcnow()
        rows = {
            # name: (QR kind, QR status, QR sum, order status or None for no order)
            "active": (QrKind.DYNAMIC, QrStatus.ACTIVE, 12550, OrderStatus.PENDING),
            "expired": (QrKind.DYNAMIC, QrStatus.EXPIRED, 3000, OrderStatus.EXPIRED),
            "cancelled": (QrKind.DYNAMIC, QrStatus.CANCELLED, 4000, OrderStatus.CANCELLED),
            "no_order": (QrKind.DYNAMIC, QrStatus.ACTIVE, 5000, None),
            "static": (QrKind.STATIC, QrStatus.ACTIVE, 7000, None),
        }
        qr_ids = {}
        for index, (name, (kind, status, amount, order_status)) in enumerate(rows.items()):
            order_id = None
            if order_status is not None:
                order = Order(public_id=f"order{index:027d}", status=order_status,
                              channel=OrderChannel.API, total_kopecks=amount,
                              description=name)
                db.session.add(order)
                db.session.flush()
                order_id = order.id
            qr_ids[name] = f"AD{index:030d}"
            db.session.add(QrCode(
                kind=kind, status=status, qr_id=qr_ids[name], bank_order=f"bank-order-{index}",
                amount_kopecks=amount, payload=f"https://qr.nspk.ru/{qr_ids[name]}",
                description=name, order_id=order_id, expires_at=now + timedelta(minutes=10),
            ))
        db.session.commit()
        return cls(qr_ids)

    def callback(self, client, qr: str, amount: str, *, transaction: int = 1,
                 status: str = "SUCCESS") -> str:
        """Send what the bank sends for a payment of `amount` (JSON number text)."""
        qr_id = self.qr_ids.get(qr, qr)
        order = db.session.scalar(sa.select(QrCode.bank_order).where(QrCode.qr_id == qr_id))
        db.session.rollback()
        fields = {"amount": amount, "sbpMerchantId": SANDBOX_MERCHANT_ID,
                  "order": order or "unknown-order", "paymentStatus": status,
                  "transactionDate": PAID_AT.isoformat()}
        body = json.dumps({
            "transactionId": transaction, "qrId": qr_id, "sbpMerchantId": SANDBOX_MERCHANT_ID,
            "merchantId": 552, "amount": "@", "currency": "RUB",
            "transactionDate": fields["transactionDate"], "paymentStatus": status,
            "additionalInfo": None, "order": fields["order"],
            "createDate": (PAID_AT - timedelta(seconds=30)).isoformat(),
        }).replace('"@"', amount)
        response = client.post("/sbp/callback", data=body, headers={
            "Content-Type": "application/json",
            SIGNATURE_HEADER: notification_signature(SANDBOX_SECRET_KEY, fields),
        })
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()["outcome"]


SCENARIOS = {
    "paid": (lambda shop, c: [shop.callback(c, "active", "125.50")], ["paid"]),
    "paid_after_expiry": (lambda shop, c: [shop.callback(c, "expired", "30.00")], ["paid"]),
    "paid_after_cancel": (lambda shop, c: [shop.callback(c, "cancelled", "40")], ["paid"]),
    "paid_without_order": (lambda shop, c: [shop.callback(c, "no_order", "50.00")], ["paid"]),
    "repeated": (lambda shop, c: [shop.callback(c, "active", "125.50"),
                                  shop.callback(c, "active", "125.50")],
                 ["paid", "duplicate"]),
    "second_transaction": (
        lambda shop, c: [shop.callback(c, "active", "125.50", transaction=1),
                         shop.callback(c, "active", "125.50", transaction=2)],
        ["paid", "duplicate_payment"]),
    "wrong_sum": (lambda shop, c: [shop.callback(c, "active", "125.00")],
                  ["amount_mismatch"]),
    "wrong_sum_then_right_sum": (
        lambda shop, c: [shop.callback(c, "active", "125.00", transaction=1),
                         shop.callback(c, "active", "125.50", transaction=2)],
        ["amount_mismatch", "duplicate_payment"]),
    "static_qr": (lambda shop, c: [shop.callback(c, "static", "70.00", transaction=1),
                                   shop.callback(c, "static", "70.00", transaction=2)],
                  ["paid", "paid"]),
    "declined": (lambda shop, c: [shop.callback(c, "active", "125.50", status="DECLINED")],
                 ["ignored_declined"]),
    "unknown_qr": (lambda shop, c: [shop.callback(c, "AD" + "9" * 30, "1.00")],
                   ["unknown_qr"]),
}


def _rows() -> dict[str, list[tuple]]:
    """Everything a callback may write, minus the clock of the run."""

    def dump(model, *skip):
        table = model.__table__
        columns = [c for c in table.c if c.name not in {"created_at", "updated_at", *skip}]
        return [tuple(row) for row in db.session.execute(
            sa.select(*columns).order_by(table.c.id))]

    rows = {
        "qr_codes": dump(QrCode, "expires_at"),
        "orders": dump(Order),
        "payments": dump(Payment),
        "bank_events": dump(BankEvent, "received_at"),
        "jobs": [(*row[:-1], json.loads(row[-1]) if isinstance(row[-1], str) else row[-1])
                 for row in db.session.execute(
                     sa.select(Job.id, Job.name, Job.key, Job.status, Job.attempts,
                               Job.max_attempts, Job.payload).order_by(Job.id))],
    }
    db.session.rollback()
    return rows


def _run(app, scenario: str) -> tuple[list[str], dict]:
    """Run a scenario on empty tables; returns the outcomes and the rows it left."""
    db.session.rollback()
    _empty_tables(app)
    shop = Shop.open()
    send, _expected = SCENARIOS[scenario]
    outcomes = send(shop, app.test_client())
    db.session.rollback()
    return outcomes, _rows()


@pytest.fixture
def subscribed():
    @jobs.handler("test.on_paid")
    def on_paid(payload):
        pass

    jobs.subscribe("payment.paid", "test.on_paid")


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_each_callback_scenario_has_its_outcome(app, subscribed, scenario):
    outcomes, _ = _run(app, scenario)
    assert outcomes == SCENARIOS[scenario][1]
    paid = db.session.scalars(sa.select(Payment.id).where(Payment.status == PaymentStatus.PAID))
    # Every payment recorded as paid has exactly one "payment.paid" job, and no other has.
    on_paid = db.session.scalars(sa.select(Job).where(Job.name == "test.on_paid"))
    assert sorted(job.payload["payment_id"] for job in on_paid) == sorted(paid)
