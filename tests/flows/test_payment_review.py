"""Money that arrived is never dropped: review, accept, refund, and news that must wait.

End to end over real HTTP with the sandbox bank, Kassa's web app and a worker thread.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.httpclient import ProviderError
from app.models import (
    CashLinkActivation,
    Order,
    OrderChannel,
    OrderStatus,
    Payment,
    PaymentStatus,
    QrCode,
    QrKind,
    QrStatus,
    Receipt,
    Refund,
    RefundStatus,
    utcnow,
)
from app.orders.services import create_amount_order
from app.sbp import bank_events, get_bank, qrcodes, reconciliation, refunds
from app.sbp.raiffeisen import RaiffeisenClient
from tests.helpers import wait_for

pytestmark = pytest.mark.slow


def _order_with_qr(stack, amount: int) -> tuple[int, str, int]:
    with stack.app.app_context():
        order = create_amount_order(channel=OrderChannel.CLI, amount_kopecks=amount,
                                    description="Тест")
        qr = qrcodes.create_dynamic_qr(order.id)
        return qr.id, qr.qr_id, order.id


def _payments(stack) -> list[tuple[int, int, str]]:
    with stack.app.app_context():
        rows = db.session.execute(sa.select(Payment.id, Payment.amount_kopecks, Payment.status)
                                  .order_by(Payment.id)).all()
        db.session.rollback()
        return [(i, a, s.value) for i, a, s in rows]


def _status(stack, model, ident):
    with stack.app.app_context():
        value = db.session.get(model, ident).status
        db.session.rollback()
        return value


def _second_qr_for(stack, order_id: int, amount: int) -> str:
    """Another live QR at the bank that Kassa files under the same order (as an earlier QR
    of that order would be), so that the order can be paid twice."""
    with stack.app.app_context():
        order = db.session.get(Order, order_id)
        bank_order = f"{order.public_id}-9"
        registration = get_bank().register_dynamic_qr(
            order=bank_order, amount_kopecks=amount,
            expires_at=utcnow() + timedelta(minutes=10), purpose="Тест")
        db.session.add(QrCode(
            kind=QrKind.DYNAMIC, status=QrStatus.EXPIRED, qr_id=registration.qr_id,
            bank_order=bank_order, amount_kopecks=amount, payload=registration.payload,
            order_id=order_id, expires_at=utcnow()))
        db.session.commit()
        return registration.qr_id


def test_a_wrong_sum_then_the_right_one_keeps_both_and_the_order_is_paid(stack):
    stack.start_worker()
    qr_code_id, qr_id, order_id = _order_with_qr(stack, 10000)
    # The bank reports 99 ₽ for this QR, then (a second transaction) the right 100 ₽.
    stack.pay(qr_id, amount="99.00")
    wait_for(lambda: len(_payments(stack)) == 1)
    with stack.app.app_context():
        qr = db.session.get(QrCode, qr_code_id)
        payment = db.session.scalars(sa.select(Payment)).one()
        bank_order = qr.bank_order
        body = {"transactionId": 999, "qrId": qr_id, "sbpMerchantId": "MA0000000552",
                "amount": "100.00", "order": bank_order, "paymentStatus": "SUCCESS",
                "transactionDate": (payment.paid_at + timedelta(seconds=5)).isoformat()}
        db.session.rollback()
    stack.callback_raw(body)
    assert [(a, s) for _, a, s in _payments(stack)] == [(9900, "review"), (10000, "paid")]
    assert _status(stack, Order, order_id) == OrderStatus.PAID
    assert _status(stack, QrCode, qr_code_id) == QrStatus.PAID


def test_a_flagged_payment_accepted_on_the_command_line_is_paid_and_fiscalized(stack):
    stack.start_worker()
    qr_code_id, qr_id, order_id = _order_with_qr(stack, 10000)
    stack.pay(qr_id, amount="99.00")
    wait_for(lambda: len(_payments(stack)) == 1)
    payment_id = _payments(stack)[0][0]

    result = stack.app.test_cli_runner().invoke(args=["payment", "accept", str(payment_id)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["status"] == "paid"
    assert _status(stack, Order, order_id) == OrderStatus.PAID
    assert _status(stack, QrCode, qr_code_id) == QrStatus.PAID
    with stack.app.app_context():
        assert db.session.get(QrCode, qr_code_id).needs_review is False

    # The sale receipt follows, for the sum that was paid.
    def receipt_total():
        with stack.app.app_context():
            total = db.session.scalar(sa.select(Receipt.total_kopecks).where(
                Receipt.payment_id == payment_id))
            db.session.rollback()
            return total

    assert wait_for(receipt_total, timeout=20) == 9900

    again = stack.app.test_cli_runner().invoke(args=["payment", "accept", str(payment_id)])
    assert again.exit_code == 1
    assert "payment_not_in_review" in again.output


def test_a_late_payment_on_a_paid_order_is_kept_and_its_refund_leaves_the_order_paid(stack):
    stack.start_worker()
    _qr_code_id, qr_id, order_id = _order_with_qr(stack, 5000)
    stack.pay(qr_id)
    wait_for(lambda: _status(stack, Order, order_id) == OrderStatus.PAID)
    other = _second_qr_for(stack, order_id, 5000)

    stack.pay(other)  # the customer pays the same order again, through another QR

    wait_for(lambda: len(_payments(stack)) == 2)
    (paid_id, _, paid), (late_id, late_sum, late) = _payments(stack)
    assert (paid, late, late_sum) == ("paid", "review", 5000)
    with stack.app.app_context():
        refunds.request_refund(late_id, reason="Оплачено дважды")
    wait_for(lambda: _status(stack, Payment, late_id) == PaymentStatus.REFUNDED, timeout=15)
    assert _status(stack, Order, order_id) == OrderStatus.PAID
    assert _status(stack, Payment, paid_id) == PaymentStatus.PAID


def test_a_refund_refused_after_a_lost_reply_is_not_declined(stack, monkeypatch):
    """The bank took the refund, but its answer did not come back as a success (a lost
    reply, then a refusal of the repeat): the refund goes on, it is never declined."""
    stack.start_worker()
    _qr_code_id, qr_id, order_id = _order_with_qr(stack, 8000)
    stack.pay(qr_id)
    wait_for(lambda: _status(stack, Order, order_id) == OrderStatus.PAID)
    real_refund = RaiffeisenClient.refund

    def refund_then_garbled_answer(self, **kwargs):
        real_refund(self, **kwargs)  # the bank does it...
        raise ProviderError("ERROR.INVALID_REQUEST", "refundId is already used",
                            provider="raiffeisen", status=400)  # ...and this comes back

    monkeypatch.setattr(RaiffeisenClient, "refund", refund_then_garbled_answer)
    payment_id = _payments(stack)[0][0]
    with stack.app.app_context():
        refund_id = refunds.request_refund(payment_id).id
    wait_for(lambda: _status(stack, Refund, refund_id) == RefundStatus.COMPLETED, timeout=15)
    assert _status(stack, Payment, payment_id) == PaymentStatus.REFUNDED
    assert [r["amount"] for r in stack.bank_state()["refunds"]] == ["80.00"]


def test_a_refund_the_bank_really_refused_is_declined(stack, monkeypatch):
    stack.start_worker()
    _qr_code_id, qr_id, order_id = _order_with_qr(stack, 8000)
    stack.pay(qr_id)
    wait_for(lambda: _status(stack, Order, order_id) == OrderStatus.PAID)

    def refused(self, **kwargs):
        raise ProviderError("ERROR.REFUND_INSUFFICIENT_FUNDS", "not enough money",
                            provider="raiffeisen", status=400)

    monkeypatch.setattr(RaiffeisenClient, "refund", refused)
    payment_id = _payments(stack)[0][0]
    with stack.app.app_context():
        refund_id = refunds.request_refund(payment_id).id
    wait_for(lambda: _status(stack, Refund, refund_id) == RefundStatus.DECLINED, timeout=15)
    with stack.app.app_context():
        assert "ERROR.REFUND_INSUFFICIENT_FUNDS" in db.session.get(Refund, refund_id).error
    assert _status(stack, Payment, payment_id) == PaymentStatus.PAID


def test_news_for_an_order_not_yet_committed_is_applied_when_the_bank_resends(make_stack):
    """A cash link paid between the bank's activation and Kassa's commit: the first
    callback finds no sale and records nothing; the bank's resend finds it and pays it."""
    stack = make_stack({"callback_retry_delays": (1.0, 1.0, 1.0, 1.0)})
    with stack.app.app_context():
        link = qrcodes.register_cash_link(description="Касса 1")
        link_id, link_qr_id = link.id, link.qr_id
        order = create_amount_order(channel=OrderChannel.CLI, amount_kopecks=4500,
                                    description="Тест")
        order_id, bank_order = order.id, f"{order.public_id}-1"
        expires = utcnow() + timedelta(minutes=5)
        # The bank activates the link; Kassa has not committed its side yet.
        get_bank().activate_cash_link(qr_id=link_qr_id, order_id=bank_order,
                                      amount_kopecks=4500, expires_at=expires, comment=None)
    stack.pay(link_qr_id)

    def first_answer_was_404():
        return any(a.get("status_code") == 404 for d in stack.bank_state()["deliveries"]
                   for a in d["attempts"])

    wait_for(first_answer_was_404, timeout=5)
    with stack.app.app_context():
        db.session.add(CashLinkActivation(qr_code_id=link_id, order_id=order_id,
                                          bank_order_id=bank_order, amount_kopecks=4500,
                                          expires_at=expires))
        db.session.get(QrCode, link_id).set_status(QrStatus.ACTIVE)
        db.session.get(Order, order_id).set_status(OrderStatus.PENDING)
        db.session.commit()

    wait_for(lambda: _status(stack, Order, order_id) == OrderStatus.PAID, timeout=10)
    assert [(a, s) for _, a, s in _payments(stack)] == [(4500, "paid")]


def test_a_cash_link_sale_whose_callback_was_lost_is_found_by_its_own_order(stack):
    """Two sales on one link are paid and neither notification arrives. The reconciler asks
    the bank about each sale by its own order and records each sale's own payment, not the
    link's latest one for both."""
    with stack.app.app_context():
        link_id = qrcodes.register_cash_link(description="Касса 2").id
        link_qr_id = db.session.get(QrCode, link_id).qr_id
        bank_events.set_callback_url("http://127.0.0.1:9/lost")  # nobody hears the news

    def sell(amount: int) -> tuple[int, int]:
        with stack.app.app_context():
            order = create_amount_order(channel=OrderChannel.CLI, amount_kopecks=amount,
                                        description="Тест")
            return qrcodes.activate_cash_link(link_id, order.id).id, order.id

    first, first_order = sell(1500)
    stack.pay(link_qr_id)
    with stack.app.app_context():
        # Kassa still shows sale 1 open; its time runs out and the cashier sells again.
        db.session.get(CashLinkActivation, first).expires_at = utcnow()
        db.session.commit()
    second, second_order = sell(2700)
    stack.pay(link_qr_id)

    with stack.app.app_context():
        assert reconciliation.poll_activation(first) == "paid"
        assert reconciliation.poll_activation(second) == "paid"
    assert _status(stack, Order, first_order) == OrderStatus.PAID
    assert _status(stack, Order, second_order) == OrderStatus.PAID
    assert [(a, s) for _, a, s in _payments(stack)] == [(1500, "paid"), (2700, "paid")]


def test_a_cash_link_sale_is_refunded_through_its_order(stack, monkeypatch):
    stack.start_worker()
    sent = []
    real = RaiffeisenClient.refund_cash_link_order

    def spy(self, **kwargs):
        sent.append(kwargs["order_id"])
        return real(self, **kwargs)

    monkeypatch.setattr(RaiffeisenClient, "refund_cash_link_order", spy)
    monkeypatch.setattr(RaiffeisenClient, "refund", lambda self, **kw: pytest.fail(
        "a cash-link sale was refunded through the QR refund"))
    with stack.app.app_context():
        link = qrcodes.register_cash_link(description="Касса 3")
        link_qr_id = link.qr_id
        order = create_amount_order(channel=OrderChannel.CLI, amount_kopecks=3300,
                                    description="Тест")
        activation = qrcodes.activate_cash_link(link.id, order.id)
        bank_order = activation.bank_order_id
    stack.pay(link_qr_id)
    wait_for(lambda: len(_payments(stack)) == 1)
    payment_id = _payments(stack)[0][0]
    with stack.app.app_context():
        refund_id = refunds.request_refund(payment_id, 1000).id
    wait_for(lambda: _status(stack, Refund, refund_id) == RefundStatus.COMPLETED, timeout=15)
    assert sent == [bank_order]
    assert _status(stack, Payment, payment_id) == PaymentStatus.PARTIALLY_REFUNDED


def test_a_static_qr_paid_twice_within_the_banks_clock_tick_gives_two_payments(
        stack, monkeypatch):
    """Two payments of the same sum at the same instant carry the same signed fields;
    the bank's API confirms the second transaction, so both are kept. A replay of either
    with another transactionId is not confirmed and records nothing."""
    from app.sandbox import clock

    instant = clock.now()
    monkeypatch.setattr(clock, "now", lambda: instant)
    with stack.app.app_context():
        qr = qrcodes.create_static_qr(amount_kopecks=15000, description="Кофе")
        qr_id, bank_order = qr.qr_id, qr.bank_order
    stack.pay(qr_id)
    wait_for(lambda: len(_payments(stack)) == 1)
    stack.pay(qr_id)
    wait_for(lambda: len(_payments(stack)) == 2)
    with stack.app.app_context():
        transactions = db.session.scalars(sa.select(Payment.transaction_id)).all()
        db.session.rollback()
    assert len(set(transactions)) == 2

    replay = {"transactionId": 424242, "qrId": qr_id, "sbpMerchantId": "MA0000000552",
              "amount": "150.00", "order": bank_order, "paymentStatus": "SUCCESS",
              "transactionDate": clock.iso(instant)}
    assert stack.callback_raw(replay)["outcome"] == "duplicate"
    assert [(a, s) for _, a, s in _payments(stack)] == [(15000, "paid"), (15000, "paid")]
