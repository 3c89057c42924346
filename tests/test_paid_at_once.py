"""The one-statement path for "dynamic QR paid in full" (app/sbp/paid_at_once.py).

On PostgreSQL the common callback is recorded by one statement; every other case falls
through to the general path. Each scenario below runs through POST /sbp/callback twice,
once with the one-statement path switched off and once with it on, and the rows left in
the database must be the same. SQLite always takes the general path; there the
scenarios still check their outcomes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

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
from app.sbp import paid_at_once
from app.sbp.raiffeisen import MOSCOW, SIGNATURE_HEADER, notification_signature
from tests.conftest import TEST_DATABASE_URL, _empty_tables

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
        # The request shares this app context's session: leave no transaction open in it
        # (the one-statement path is not taken inside someone else's transaction).
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


# Scenarios whose first callback is a dynamic QR paid its exact sum.
TAKEN_AT_ONCE = {"paid", "paid_after_expiry", "paid_after_cancel", "paid_without_order",
                 "repeated", "second_transaction"}


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


def _run(app, scenario: str, *, at_once: bool, monkeypatch=None
         ) -> tuple[list[str], dict, list[tuple[int, int]]]:
    """Run a scenario on empty tables; returns the outcomes, the rows, and for each
    callback how many times the one statement ran and how many other statements did."""
    db.session.rollback()  # TRUNCATE on PostgreSQL waits for every open transaction
    _empty_tables(app)
    app.config["SBP_PAID_AT_ONCE"] = at_once
    shop = Shop.open()
    counts: list[list[int]] = []
    send_one = shop.callback

    def counted(*args, **kwargs):
        counts.append([0, 0])
        return send_one(*args, **kwargs)

    def count_statement(*_args):
        counts[-1][1] += 1

    if monkeypatch is not None:
        execute = paid_at_once.execute

        def count_at_once(*args):
            counts[-1][0] += 1
            return execute(*args)

        monkeypatch.setattr(paid_at_once, "execute", count_at_once)
    shop.callback = counted
    send, _expected = SCENARIOS[scenario]
    sa.event.listen(db.engine, "before_cursor_execute", count_statement)
    try:
        outcomes = send(shop, app.test_client())
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count_statement)
    db.session.rollback()
    # Shop.callback's own lookup of the bank order is one statement; it is not the app's.
    return outcomes, _rows(), [(at_once_runs, other - 1) for at_once_runs, other in counts]


@pytest.fixture
def subscribed():
    @jobs.handler("test.on_paid")
    def on_paid(payload):
        pass

    jobs.subscribe("payment.paid", "test.on_paid")


only_postgresql = pytest.mark.skipif(
    not TEST_DATABASE_URL, reason="the one-statement path exists on PostgreSQL only")


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_each_callback_scenario_has_its_outcome(app, subscribed, scenario):
    outcomes, _, _ = _run(app, scenario, at_once=True)
    assert outcomes == SCENARIOS[scenario][1]
    paid = db.session.scalars(sa.select(Payment.id).where(Payment.status == PaymentStatus.PAID))
    # Every payment recorded as paid has exactly one "payment.paid" job, and no other has.
    on_paid = db.session.scalars(sa.select(Job).where(Job.name == "test.on_paid"))
    assert sorted(job.payload["payment_id"] for job in on_paid) == sorted(paid)


@only_postgresql
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_one_statement_path_leaves_the_same_rows_as_the_general_path(app, subscribed,
                                                                   scenario, monkeypatch):
    general_outcomes, general_rows, general = _run(app, scenario, at_once=False,
                                                   monkeypatch=monkeypatch)
    outcomes, rows, at_once = _run(app, scenario, at_once=True, monkeypatch=monkeypatch)
    assert outcomes == general_outcomes == SCENARIOS[scenario][1]
    assert rows == general_rows
    assert all(runs == 0 for runs, _ in general)
    if scenario in TAKEN_AT_ONCE:  # its first callback was the one statement, alone
        assert at_once[0] == (1, 0)


@only_postgresql
def test_a_paid_callback_and_its_repeat_are_one_statement_each(app, subscribed, monkeypatch):
    _, _, general = _run(app, "repeated", at_once=False, monkeypatch=monkeypatch)
    _, rows, at_once = _run(app, "repeated", at_once=True, monkeypatch=monkeypatch)
    # (runs of the one statement, other statements) for the payment and for its repeat
    assert at_once == [(1, 0), (1, 0)]
    assert general[0][0] == 0 and general[0][1] > 1
    # One job per subscriber: the receipt and this test's.
    assert sorted(job[1] for job in rows["jobs"]) == ["fiscal.sell", "test.on_paid"]


@only_postgresql
def test_a_statement_that_cannot_do_all_of_it_leaves_nothing(app):
    """The order changes under a concurrent transaction between the QR's check and its own
    update (here a trigger skips that update): the statement must write nothing at all."""
    db.session.rollback()
    _empty_tables(app)
    shop = Shop.open()
    skip_order_update = """
        CREATE FUNCTION test_skip_paid() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN IF NEW.status = 'paid' THEN RETURN NULL; END IF; RETURN NEW; END $$;
        CREATE TRIGGER test_skip_paid BEFORE UPDATE ON orders
        FOR EACH ROW EXECUTE FUNCTION test_skip_paid();
    """
    db.session.execute(sa.text(skip_order_update))
    db.session.commit()
    try:
        now = utcnow()
        values = {
            "qr_id": shop.qr_ids["active"], "amount": 12550, "provider": "raiffeisen",
            "event_key": "1:SUCCESS", "source": "callback", "transaction_id": "1",
            "payment_status": "SUCCESS", "payload": "{}", "paid_at": now, "now": now,
            "max_attempts": 12, "job_names": ["test.on_paid"],
        }
        connection = db.engine.raw_connection()
        try:
            assert paid_at_once.execute(connection.driver_connection, values) is None
        finally:
            connection.close()
        rows = _rows()
        assert {qr[2] for qr in rows["qr_codes"] if qr[3] == shop.qr_ids["active"]} == {
            QrStatus.ACTIVE}
        assert (rows["payments"], rows["bank_events"], rows["jobs"]) == ([], [], [])
    finally:
        db.session.rollback()
        db.session.execute(sa.text("DROP TRIGGER test_skip_paid ON orders;"
                                   "DROP FUNCTION test_skip_paid()"))
        db.session.commit()


def _kept_backend() -> int:
    return paid_at_once._kept.connection.driver_connection.info.backend_pid


@only_postgresql
def test_callbacks_share_a_kept_connection_and_a_broken_one_is_replaced(app, subscribed):
    """The one statement runs on a connection the process keeps, in autocommit. When the
    server drops it (a restart), the callback is still answered and recorded, through the
    general path, and the next callback opens a new connection."""
    shop = Shop.open()
    client = app.test_client()
    assert shop.callback(client, "active", "125.50") == "paid"
    first = _kept_backend()
    assert shop.callback(client, "no_order", "50.00", transaction=2) == "paid"
    assert _kept_backend() == first

    admin = sa.create_engine(db.engine.url, poolclass=NullPool)
    with admin.connect() as other:
        assert other.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": first}).scalar()
    admin.dispose()
    assert shop.callback(client, "expired", "30.00", transaction=3) == "paid"
    assert shop.callback(client, "cancelled", "40", transaction=4) == "paid"
    assert _kept_backend() != first
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Payment)) == 4
    assert db.session.scalars(sa.select(QrCode.status).where(QrCode.kind == QrKind.DYNAMIC)
                              ).all() == [QrStatus.PAID] * 4


@only_postgresql
def test_a_forked_process_leaves_the_parents_connection_alone(app, subscribed, monkeypatch):
    """gunicorn forks: a child must neither use nor close a connection its parent opened."""
    shop = Shop.open()
    client = app.test_client()
    assert shop.callback(client, "active", "125.50") == "paid"
    parents = paid_at_once._kept.connection
    monkeypatch.setattr(paid_at_once.os, "getpid", lambda: -1)  # this is the child now
    try:
        assert shop.callback(client, "no_order", "50.00", transaction=2) == "paid"
        assert paid_at_once._kept.connection is not parents
        assert not parents.driver_connection.closed
    finally:
        parents.invalidate()
        paid_at_once._close(paid_at_once._kept.connection)  # the "child's"
