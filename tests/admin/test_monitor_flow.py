"""The monitor against the sandbox bank and register: the list, a payment's page and its
timeline, refunds by lines and by sum, cancel, accept, retries. Over real HTTP."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import (
    AuditEntry,
    Order,
    OrderChannel,
    OrderStatus,
    Payment,
    PaymentStatus,
    Receipt,
    ReceiptKind,
    ReceiptStatus,
    Refund,
    RefundStatus,
)
from app.orders.services import Line, create_order
from app.sbp import qrcodes
from tests.admin.conftest import logged_in, make_admin
from tests.helpers import wait_for

CART = [
    Line(name="Капучино 300 мл", price_kopecks=22000, quantity_milli=2000),
    Line(name="Круассан", price_kopecks=15000),
]
TOTAL = 59000


def _sale(stack, cart=CART) -> tuple[int, str]:
    """An order with a dynamic QR, not yet paid: (order id, bank qr id)."""
    with stack.app.app_context():
        order = create_order(channel=OrderChannel.MINIAPP, lines=cart)
        qr = qrcodes.create_dynamic_qr(order.id)
        return order.id, qr.qr_id


def _paid_sale(stack, cart=CART) -> int:
    order_id, qr_id = _sale(stack, cart)
    stack.pay(qr_id)
    return wait_for(lambda: _scalar(stack, sa.select(Payment.id).where(
        Payment.order_id == order_id)))


def _scalar(stack, query):
    with stack.app.app_context():
        value = db.session.scalar(query)
        db.session.rollback()
        return value


def _client(stack, role="admin"):
    from app.models import AdminRole

    with stack.app.app_context():
        user = make_admin(f"{role}@example.com", AdminRole(role))
        return logged_in(stack.app, user)


def _text(response) -> str:
    """The page as read: no-break spaces (in sums) as spaces."""
    return response.get_data(as_text=True).replace("\xa0", " ")


def _flash(response) -> str:
    found = re.findall(r'class="flash flash-(\w+)"[^>]*>([^<]*)<', _text(response))
    return " | ".join(f"{kind}: {message}" for kind, message in found)


def test_a_paid_sale_is_listed_and_its_page_tells_its_story(stack):
    stack.start_worker()
    payment_id = _paid_sale(stack)
    wait_for(lambda: _scalar(stack, sa.select(Receipt.status).where(
        Receipt.payment_id == payment_id)) == ReceiptStatus.DONE)
    client = _client(stack)
    page = _text(client.get("/admin/payments"))
    assert f'id="row-p-{payment_id}"' in page
    assert "590,00 ₽" in page and "Оплачен" in page

    detail = _text(client.get(f"/admin/payments/{payment_id}"))
    for told in ("Капучино 300 мл", "Круассан", "Уведомление банка", "Платёж получен",
                 "Чек прихода", "ФН ", "fiscal.submit"):
        assert told in detail, told


def test_refund_by_lines_returns_the_goods_and_its_receipt_lists_them(stack):
    stack.start_worker()
    payment_id = _paid_sale(stack)
    wait_for(lambda: _scalar(stack, sa.select(Receipt.status).where(
        Receipt.payment_id == payment_id)) == ReceiptStatus.DONE)
    client = _client(stack)
    # One of the two coffees: 220,00 ₽.
    response = client.post(f"/admin/payments/{payment_id}/refund",
                           data={"mode": "lines", "qty-0": "1", "qty-1": "", "reason": "Пролили"},
                           follow_redirects=True)
    assert "Возврат 220,00 ₽ отправлен в банк" in _flash(response)
    refund_receipt = wait_for(lambda: _scalar(stack, sa.select(Receipt.id).where(
        Receipt.kind == ReceiptKind.SELL_REFUND, Receipt.status == ReceiptStatus.DONE)))
    with stack.app.app_context():
        receipt = db.session.get(Receipt, refund_receipt)
        assert [(line["name"], line["quantity_milli"], line["amount_kopecks"])
                for line in receipt.lines] == [("Капучино 300 мл", 1000, 22000)]
        assert db.session.get(Payment, payment_id).status == PaymentStatus.PARTIALLY_REFUNDED
        entry = db.session.scalars(sa.select(AuditEntry).where(
            AuditEntry.action == "refund.create")).one()
        assert (entry.actor_kind, entry.actor_label, entry.details["amount_kopecks"]) == (
            "admin", "admin@example.com", 22000)
    detail = _text(client.get(f"/admin/payments/{payment_id}"))
    assert "Чек возврата прихода" in detail and "Пролили" in detail
    # Only one coffee is left to return: asking for two is refused with a message.
    response = client.post(f"/admin/payments/{payment_id}/refund",
                           data={"mode": "lines", "qty-0": "2"}, follow_redirects=True)
    assert "error: Столько этого товара уже не вернуть" in _flash(response)


def test_an_over_refund_by_sum_is_refused_with_a_message(stack):
    payment_id = _paid_sale(stack)
    client = _client(stack)
    response = client.post(f"/admin/payments/{payment_id}/refund",
                           data={"mode": "amount", "amount": "590,01"}, follow_redirects=True)
    assert "error: Вернуть можно не больше 59000 коп." in _flash(response)
    assert _scalar(stack, sa.select(sa.func.count()).select_from(Refund)) == 0
    response = client.post(f"/admin/payments/{payment_id}/refund",
                           data={"mode": "amount", "amount": "100"}, follow_redirects=True)
    assert "Возврат 100,00 ₽ отправлен в банк" in _flash(response)
    assert _scalar(stack, sa.select(Refund.amount_kopecks)) == 10000


def test_an_unpaid_qr_is_cancelled_at_the_bank(stack):
    order_id, qr_id = _sale(stack)
    client = _client(stack)
    page = _text(client.get("/admin/payments?status=pending"))
    assert f'id="row-o-{order_id}"' in page and "hx-trigger=\"every" in page
    response = client.post(f"/admin/orders/{order_id}/cancel", follow_redirects=True)
    assert "Заказ отменён" in _flash(response)
    assert _scalar(stack, sa.select(Order.status).where(Order.id == order_id)) \
        == OrderStatus.CANCELLED
    bank_qr = next(q for q in stack.bank_state()["qrs"] if q["qrId"] == qr_id)
    assert bank_qr["qrStatus"] == "CANCELLED"
    assert "order.cancel" in _text(client.get(f"/admin/orders/{order_id}"))


def test_a_pending_row_turns_into_its_payment_when_paid(stack):
    order_id, qr_id = _sale(stack)
    client = _client(stack)
    row = _text(client.get(f"/admin/payments/row/o/{order_id}"))
    assert "Ждёт оплаты" in row and "hx-get" in row
    stack.pay(qr_id)
    wait_for(lambda: _scalar(stack, sa.select(Payment.id).where(Payment.order_id == order_id)))
    row = _text(client.get(f"/admin/payments/row/o/{order_id}"))
    assert "Оплачен" in row and "id=\"row-p-" in row and "hx-get" not in row


def _flagged_payment(stack) -> int:
    """500 ₽ paid for a 590 ₽ sale: flagged for review."""
    stack.start_worker()
    order_id, qr_id = _sale(stack)
    stack.pay(qr_id, amount="500.00")
    return wait_for(lambda: _scalar(stack, sa.select(Payment.id).where(
        Payment.order_id == order_id)))


def test_a_payment_with_the_wrong_sum_is_accepted_after_review(stack):
    payment_id = _flagged_payment(stack)
    client = _client(stack)
    assert "На проверке" in _text(client.get("/admin/payments?status=review"))
    detail = _text(client.get(f"/admin/payments/{payment_id}"))
    assert "Принять платёж" in detail and "платежа на проверке" in detail
    response = client.post(f"/admin/payments/{payment_id}/accept", follow_redirects=True)
    assert "Платёж принят" in _flash(response)
    assert _scalar(stack, sa.select(Payment.status).where(Payment.id == payment_id)) \
        == PaymentStatus.PAID
    response = client.post(f"/admin/payments/{payment_id}/accept", follow_redirects=True)
    assert "error: Платёж не ждёт проверки" in _flash(response)


def test_a_flagged_payment_is_refunded_in_full(stack):
    payment_id = _flagged_payment(stack)
    client = _client(stack)
    response = client.post(f"/admin/payments/{payment_id}/refund", data={"mode": "amount"},
                           follow_redirects=True)
    assert "Возврат 500,00 ₽ отправлен в банк" in _flash(response)
    wait_for(lambda: _scalar(stack, sa.select(Refund.status)) == RefundStatus.COMPLETED)
    assert _scalar(stack, sa.select(Payment.status)) == PaymentStatus.REFUNDED


@pytest.mark.parametrize("path", ["/admin/payments/{p}/refund", "/admin/payments/{p}/accept",
                                  "/admin/orders/{o}/cancel", "/admin/receipts/1/retry",
                                  "/admin/jobs/1/retry", "/admin/jobs/1/resend"])
def test_a_viewer_sees_but_cannot_act(stack, path):
    payment_id = _paid_sale(stack)
    order_id = _scalar(stack, sa.select(Payment.order_id))
    viewer = _client(stack, "viewer")
    detail = _text(viewer.get(f"/admin/payments/{payment_id}"))
    assert "Платёж" in detail and 'id="refund"' not in detail
    response = viewer.post(path.format(p=payment_id, o=order_id), data={"mode": "amount"})
    assert response.status_code == 403
    assert _scalar(stack, sa.select(sa.func.count()).select_from(Refund)) == 0


def test_a_refund_long_after_the_login_asks_for_the_password_again(stack):
    from app.admin.auth import LOGIN_AT_KEY, REAUTH_WINDOW
    from tests.admin.conftest import PASSWORD

    payment_id = _paid_sale(stack)
    client = _client(stack)
    with client.session_transaction() as session:
        session[LOGIN_AT_KEY] -= int(REAUTH_WINDOW.total_seconds()) + 60
    page = client.get(f"/admin/payments/{payment_id}").get_data(as_text=True)
    assert 'name="password"' in page  # the refund form asks for it
    refund = {"mode": "amount", "amount": "100"}
    response = client.post(f"/admin/payments/{payment_id}/refund", data=refund,
                           follow_redirects=True)
    assert "error: Для возврата введите пароль ещё раз" in _flash(response)
    response = client.post(f"/admin/payments/{payment_id}/refund",
                           data={**refund, "password": "not the password"},
                           follow_redirects=True)
    assert "error: Неверный пароль." in _flash(response)
    assert _scalar(stack, sa.select(sa.func.count()).select_from(Refund)) == 0
    response = client.post(f"/admin/payments/{payment_id}/refund",
                           data={**refund, "password": PASSWORD}, follow_redirects=True)
    assert "Возврат 100,00 ₽ отправлен в банк" in _flash(response)
    # Typed again: the next quarter of an hour needs no password.
    page = client.get(f"/admin/payments/{payment_id}").get_data(as_text=True)
    assert 'name="password"' not in page
    response = client.post(f"/admin/payments/{payment_id}/refund", data=refund,
                           follow_redirects=True)
    assert "Возврат 100,00 ₽ отправлен в банк" in _flash(response)
    assert _scalar(stack, sa.select(sa.func.count()).select_from(Refund)) == 2
