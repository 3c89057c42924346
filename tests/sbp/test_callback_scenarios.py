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
from tests.helpers import empty_tables

PAID_AT = datetime(2026, 11, 27, 15, 4, 5, 123456, tzinfo=MOSCOW)


@dataclass
class Shop:
    """Rows for one scenario: QR codes by name, most with an order of their own."""

    qr_ids: dict[str, str]

    @classmethod
    def open(cls) -> Shop:
        now = utcnow()
        rows = {
            # name: (QR kind, QR status, QR sum, order status, or None for no order, or
            #        the name of another row whose order this QR also shows)
            "active": (QrKind.DYNAMIC, QrStatus.ACTIVE, 12550, OrderStatus.PENDING),
            "expired": (QrKind.DYNAMIC, QrStatus.EXPIRED, 3000, OrderStatus.EXPIRED),
            "cancelled": (QrKind.DYNAMIC, QrStatus.CANCELLED, 4000, OrderStatus.CANCELLED),
            "no_order": (QrKind.DYNAMIC, QrStatus.ACTIVE, 5000, None),
            "static": (QrKind.STATIC, QrStatus.ACTIVE, 7000, None),
            # An earlier QR of the "active" order, expired before the customer paid it.
            "active_earlier": (QrKind.DYNAMIC, QrStatus.EXPIRED, 12550, "active"),
        }
        qr_ids, orders = {}, {}
        for index, (name, (kind, status, amount, order_status)) in enumerate(rows.items()):
            if isinstance(order_status, OrderStatus):
                order = Order(public_id=f"order{index:027d}", status=order_status,
                              channel=OrderChannel.API, total_kopecks=amount,
                              description=name)
                db.session.add(order)
                db.session.flush()
                orders[name] = order.id
            qr_ids[name] = f"AD{index:030d}"
            db.session.add(QrCode(
                kind=kind, status=status, qr_id=qr_ids[name], bank_order=f"bank-order-{index}",
                amount_kopecks=amount, payload=f"https://qr.nspk.ru/{qr_ids[name]}",
                description=name, order_id=orders.get(order_status, orders.get(name)),
                expires_at=now + timedelta(minutes=10),
            ))
        db.session.commit()
        return cls(qr_ids)

    def callback(self, client, qr: str, amount: str, *, transaction: int = 1,
                 status: str = "SUCCESS", at: datetime = PAID_AT, order_of: str | None = None,
                 answer: int = 200) -> str:
        """Send what the bank sends for a payment of `amount` (JSON number text) to `qr`,
        signed for the order of `order_of` (by default the QR's own)."""
        qr_id = self.qr_ids.get(qr, qr)
        order = db.session.scalar(sa.select(QrCode.bank_order).where(
            QrCode.qr_id == self.qr_ids.get(order_of or qr, qr_id)))
        db.session.rollback()
        fields = {"amount": amount, "sbpMerchantId": SANDBOX_MERCHANT_ID,
                  "order": order or "unknown-order", "paymentStatus": status,
                  "transactionDate": at.isoformat()}
        body = json.dumps({
            "transactionId": transaction, "qrId": qr_id, "sbpMerchantId": SANDBOX_MERCHANT_ID,
            "merchantId": 552, "amount": "@", "currency": "RUB",
            "transactionDate": fields["transactionDate"], "paymentStatus": status,
            "additionalInfo": None, "order": fields["order"],
            "createDate": (at - timedelta(seconds=30)).isoformat(),
        }).replace('"@"', amount)
        response = client.post("/sbp/callback", data=body, headers={
            "Content-Type": "application/json",
            SIGNATURE_HEADER: notification_signature(SANDBOX_SECRET_KEY, fields),
        })
        assert response.status_code == answer, response.get_data(as_text=True)
        data = response.get_json()
        return data["outcome"] if answer == 200 else data["error"]


LATER = PAID_AT + timedelta(minutes=1)

# name: (what is sent, what each callback answers, the payments left: (QR, kopecks, status))
SCENARIOS = {
    "paid": (lambda shop, c: [shop.callback(c, "active", "125.50")],
             ["paid"], [("active", 12550, "paid")]),
    "paid_after_expiry": (lambda shop, c: [shop.callback(c, "expired", "30.00")],
                          ["paid"], [("expired", 3000, "paid")]),
    "paid_after_cancel": (lambda shop, c: [shop.callback(c, "cancelled", "40")],
                          ["paid"], [("cancelled", 4000, "paid")]),
    "paid_without_order": (lambda shop, c: [shop.callback(c, "no_order", "50.00")],
                           ["paid"], [("no_order", 5000, "paid")]),
    "repeated": (lambda shop, c: [shop.callback(c, "active", "125.50"),
                                  shop.callback(c, "active", "125.50")],
                 ["paid", "duplicate"], [("active", 12550, "paid")]),
    # A captured callback replayed with another (unsigned) transactionId is the same news.
    "replayed_with_new_transaction_id": (
        lambda shop, c: [shop.callback(c, "active", "125.50", transaction=1),
                         shop.callback(c, "active", "125.50", transaction=2)],
        ["paid", "duplicate"], [("active", 12550, "paid")]),
    # ... and replayed onto another QR's (unsigned, public) qrId it is refused.
    "replayed_onto_another_qr": (
        lambda shop, c: [shop.callback(c, "active", "125.50"),
                         shop.callback(c, "no_order", "125.50", order_of="active",
                                       transaction=7, answer=400),
                         shop.callback(c, "expired", "125.50", order_of="active",
                                       transaction=8, answer=400)],
        ["paid", "qr_mismatch", "qr_mismatch"], [("active", 12550, "paid")]),
    "wrong_sum": (lambda shop, c: [shop.callback(c, "active", "125.00")],
                  ["amount_mismatch"], [("active", 12500, "review")]),
    # Money that arrived is never dropped: both payments are kept, the odd one for review.
    "wrong_sum_then_right_sum": (
        lambda shop, c: [shop.callback(c, "active", "125.00", transaction=1),
                         shop.callback(c, "active", "125.50", transaction=2, at=LATER)],
        ["amount_mismatch", "paid"], [("active", 12500, "review"), ("active", 12550, "paid")]),
    "paid_twice": (
        lambda shop, c: [shop.callback(c, "active", "125.50", transaction=1),
                         shop.callback(c, "active", "125.50", transaction=2, at=LATER)],
        ["paid", "review"], [("active", 12550, "paid"), ("active", 12550, "review")]),
    # A late payment through an expired QR of an order that another QR has paid.
    "late_payment_on_a_paid_order": (
        lambda shop, c: [shop.callback(c, "active", "125.50", transaction=1),
                         shop.callback(c, "active_earlier", "125.50", transaction=2)],
        ["paid", "review"],
        [("active", 12550, "paid"), ("active_earlier", 12550, "review")]),
    "static_qr": (lambda shop, c: [shop.callback(c, "static", "70.00", transaction=1),
                                   shop.callback(c, "static", "70.00", transaction=2,
                                                 at=LATER)],
                  ["paid", "paid"], [("static", 7000, "paid"), ("static", 7000, "paid")]),
    # A static QR's callback replayed with a new transactionId is not a new payment unless
    # the bank's API confirms that transaction; here the API cannot be reached, so the
    # news is answered 503 (the bank would send it again) and records nothing.
    "static_qr_replayed": (
        lambda shop, c: [shop.callback(c, "static", "70.00", transaction=1),
                         shop.callback(c, "static", "70.00", transaction=2, answer=503),
                         shop.callback(c, "static", "70.00", transaction=1)],
        ["paid", "network", "duplicate"], [("static", 7000, "paid")]),
    "declined": (lambda shop, c: [shop.callback(c, "active", "125.50", status="DECLINED")],
                 ["ignored"], []),
    # Unknown (yet) to us: answered so that the bank sends it again, and nothing kept.
    "unknown_order": (lambda shop, c: [shop.callback(c, "AD" + "9" * 30, "1.00", answer=404),
                                       shop.callback(c, "AD" + "9" * 30, "1.00", answer=404)],
                      ["unknown_order", "unknown_order"], []),
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


def _run(app, scenario: str) -> list[str]:
    """Run a scenario on empty tables; returns what each callback answered."""
    db.session.rollback()
    empty_tables(app)
    shop = Shop.open()
    outcomes = SCENARIOS[scenario][0](shop, app.test_client())
    db.session.rollback()
    return outcomes, shop


@pytest.fixture
def subscribed(app):
    jobs.registry(app).subscribe("payment.paid", "test.on_paid", lambda payload: None)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_each_callback_scenario_has_its_outcome_and_payments(app, subscribed, scenario):
    _send, expected_outcomes, expected_payments = SCENARIOS[scenario]
    outcomes, shop = _run(app, scenario)
    assert outcomes == expected_outcomes
    names = {qr_id: name for name, qr_id in shop.qr_ids.items()}
    payments = db.session.execute(
        sa.select(QrCode.qr_id, Payment.amount_kopecks, Payment.status)
        .join(QrCode, Payment.qr_code_id == QrCode.id).order_by(Payment.id)).all()
    assert [(names[q], a, s.value) for q, a, s in payments] == expected_payments
    paid = db.session.scalars(sa.select(Payment.id).where(Payment.status == PaymentStatus.PAID))
    # Every payment recorded as paid has exactly one "payment.paid" job, and no other has.
    on_paid = db.session.scalars(sa.select(Job).where(Job.name == "test.on_paid"))
    assert sorted(job.payload["payment_id"] for job in on_paid) == sorted(paid)


def test_a_refused_or_unknown_callback_changes_no_row(app):
    db.session.rollback()
    empty_tables(app)
    shop = Shop.open()
    client = app.test_client()
    shop.callback(client, "active", "125.50")
    before = _rows()
    shop.callback(client, "no_order", "125.50", order_of="active", transaction=9, answer=400)
    shop.callback(client, "AD" + "9" * 30, "1.00", answer=404)
    shop.callback(client, "active", "125.50", transaction=5)  # a replay: answered 200
    assert _rows() == before


def test_the_paid_order_is_not_changed_by_money_for_review(app):
    """A late payment on a paid order is recorded for review; the order stays paid by the
    payment that paid it, and its QR codes keep what they were."""
    db.session.rollback()
    empty_tables(app)
    shop = Shop.open()
    client = app.test_client()
    shop.callback(client, "active", "125.50", transaction=1)
    shop.callback(client, "active_earlier", "125.50", transaction=2)
    earlier = db.session.scalars(sa.select(QrCode).where(
        QrCode.qr_id == shop.qr_ids["active_earlier"])).one()
    assert earlier.status == QrStatus.EXPIRED and earlier.needs_review
    assert earlier.order.status == OrderStatus.PAID
    paying = db.session.scalars(sa.select(Payment).where(
        Payment.status == PaymentStatus.PAID)).one()
    assert earlier.order.paid_at == paying.paid_at


def test_many_callbacks_at_once_on_a_threaded_server_are_all_answered(stack):
    """Forty callbacks at once on a threaded server (as `flask run` or gthread serve them):
    each is answered and recorded; none waits forever for a database connection."""
    import concurrent.futures

    with stack.app.app_context():
        empty_tables(stack.app)
        bodies = []
        for index in range(40):
            order = Order(public_id=f"many{index:028d}", status=OrderStatus.PENDING,
                          channel=OrderChannel.API, total_kopecks=1000 + index)
            db.session.add(order)
            db.session.flush()
            qr_id = f"AD{index + 100:030d}"
            db.session.add(QrCode(
                kind=QrKind.DYNAMIC, status=QrStatus.ACTIVE, qr_id=qr_id,
                bank_order=f"many-{index}", amount_kopecks=1000 + index,
                payload=f"https://qr.nspk.ru/{qr_id}", order_id=order.id,
                expires_at=utcnow() + timedelta(minutes=10)))
            bodies.append({"transactionId": index, "qrId": qr_id,
                           "sbpMerchantId": SANDBOX_MERCHANT_ID,
                           "amount": f"{(1000 + index) / 100:.2f}", "order": f"many-{index}",
                           "paymentStatus": "SUCCESS", "transactionDate": PAID_AT.isoformat()})
        db.session.commit()
    with concurrent.futures.ThreadPoolExecutor(max_workers=40) as pool:
        answers = list(pool.map(lambda body: stack.callback_raw(body)["outcome"], bodies,
                                timeout=60))
    assert answers == ["paid"] * 40
    with stack.app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Payment).where(
            Payment.status == PaymentStatus.PAID)) == 40
