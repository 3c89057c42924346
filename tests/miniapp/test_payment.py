"""Taking the money: the QR screen, polled until the sandbox bank says paid, cancelled,
expired or flagged; the till's cash link. Over real HTTP (the `stack`)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import Order, QrCode, utcnow
from app.people.services import active_cashier
from app.qrimage import inline_svg as qr_svg
from app.sbp import qrcodes
from tests.helpers import wait_for
from tests.miniapp.conftest import ANNA, Phone, cart_form
from tests.miniapp.screen import Screen

pytestmark = pytest.mark.slow


def _qr_of(app, order_id: str) -> QrCode:
    with app.app_context():
        qr = db.session.scalars(sa.select(QrCode).where(QrCode.order_id == int(order_id))
                                .order_by(QrCode.id.desc())).first()
        db.session.expunge(qr)
        db.session.rollback()
        return qr


def _sell(stack, *lines, **extra):
    screen = Phone(stack.app, ANNA).post("/miniapp/orders", cart_form(*lines, **extra))
    assert (screen.status, screen.name) == (200, "qr"), screen
    return screen


def _poll(phone, order_id: str, until: str):
    def look():
        response = phone.client.get(f"/miniapp/orders/{order_id}/status",
                                    headers=phone.headers)
        screen = Screen(response)
        return screen if screen.name == until else None
    return wait_for(look, timeout=15)


def test_a_paid_qr_turns_into_the_success_screen_with_the_receipt(bank_till):
    stack = bank_till
    stack.start_worker()
    screen = _sell(stack, (stack.app.products["cappuccino"], "2"), contact="anna@example.ru")
    order_id = screen.attrs["data-order-id"]
    assert screen.attrs["data-status"] == "pending"
    assert screen.text_of("sum") == "440,00\u00a0₽"
    assert screen.section.one(data_testid="qr").one("svg")
    countdown = screen.section.one(data_testid="countdown")
    assert countdown.text in ("10:00", "9:59")
    assert countdown.attrs["data-expires-at"].endswith("+00:00")
    assert screen.attrs["data-closing-confirmation"] == "true"
    assert "data-primary-text" not in screen.attrs
    assert screen.testid("cancel")

    phone = Phone(stack.app, ANNA)
    waiting = phone.client.get(f"/miniapp/orders/{order_id}/status", headers=phone.headers)
    assert waiting.status_code == 200     # htmx keeps polling

    stack.pay(_qr_of(stack.app, order_id).qr_id)
    paid = _poll(phone, order_id, "paid")
    assert paid.text_of("status") == "Оплачено"
    assert paid.text_of("sum") == "440,00\u00a0₽"
    assert paid.attrs["data-primary-text"] == "Новая продажа"

    def receipt_shown():
        response = phone.client.get(f"/miniapp/orders/{order_id}/status",
                                    headers=phone.headers)
        screen = Screen(response)
        return (response.status_code, screen) if screen.testid("receipt") else None

    status, final = wait_for(receipt_shown, timeout=20)
    assert status == 286                  # htmx stops polling
    assert final.section.one("a", data_testid="receipt").attrs["href"].startswith(
        f"{stack.web.url}/fiscal/r/")
    today = phone.get("/miniapp/today")
    assert [r.attrs["data-status"] for r in today.testid("order")] == ["paid"]
    assert "440,00\u00a0₽" in today.text_of("paid-total")


def test_a_cancelled_order_says_so_and_stops_polling(bank_till):
    stack = bank_till
    order_id = _sell(stack, (stack.app.products["croissant"], "1")).attrs["data-order-id"]
    phone = Phone(stack.app, ANNA)
    cancelled = phone.post(f"/miniapp/orders/{order_id}/cancel")
    assert (cancelled.status, cancelled.name) == (200, "cancelled")
    assert cancelled.text_of("status") == "Заказ отменён"
    response = phone.client.get(f"/miniapp/orders/{order_id}/status", headers=phone.headers)
    assert response.status_code == 286
    assert stack.bank_state()  # the sandbox is still up
    assert phone.post(f"/miniapp/orders/{order_id}/qr").name == "cancelled"


def test_an_expired_qr_is_replaced_in_one_tap(bank_till):
    stack = bank_till
    order_id = _sell(stack, (stack.app.products["croissant"], "1")).attrs["data-order-id"]
    first = _qr_of(stack.app, order_id)
    with stack.app.app_context():   # ten minutes pass
        db.session.get(QrCode, first.id).expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    phone = Phone(stack.app, ANNA)
    expired = phone.get(f"/miniapp/orders/{order_id}/status")
    assert (expired.status, expired.name) == (200, "expired")
    assert expired.text_of("status") == "QR-код истёк"
    assert expired.attrs["data-primary-text"] == "Новый QR-код"
    assert expired.attrs["data-primary-method"] == "post"

    fresh = phone.post(expired.attrs["data-primary-url"])
    assert (fresh.status, fresh.name) == (200, "qr")
    second = _qr_of(stack.app, order_id)
    assert second.id != first.id
    stack.pay(second.qr_id)
    assert _poll(phone, order_id, "paid").text_of("sum") == "185,00\u00a0₽"


def test_money_that_does_not_match_is_for_a_manager_to_check(bank_till):
    stack = bank_till
    order_id = _sell(stack, (stack.app.products["croissant"], "1")).attrs["data-order-id"]
    stack.pay(_qr_of(stack.app, order_id).qr_id, amount="1.00")
    phone = Phone(stack.app, ANNA)
    review = _poll(phone, order_id, "review")
    assert "менеджер" in review.text_of("review-text")
    assert "Оплачено" not in review.text
    response = phone.client.get(f"/miniapp/orders/{order_id}/status", headers=phone.headers)
    assert response.status_code == 286
    today = phone.get("/miniapp/today")
    assert [r.attrs["data-status"] for r in today.testid("order")] == ["review"]


def test_the_tills_cash_link_shows_its_own_qr_with_the_sum(bank_till):
    stack = bank_till
    with stack.app.app_context():
        link = qrcodes.register_cash_link(description="Касса 1")
        active_cashier(ANNA).till_id = link.id
        db.session.commit()
        link_payload, link_qr_id, link_id = link.payload, link.qr_id, link.id
    phone = Phone(stack.app, ANNA)
    form = cart_form((stack.app.products["cappuccino"], "1"))
    cart = phone.post("/miniapp/cart", form)
    methods = cart.section.all("input", name="method")
    assert [(m.attrs["value"], "checked" in m.attrs) for m in methods] == [
        ("qr", True), ("cash_link", False)]

    screen = _sell(stack, (stack.app.products["cappuccino"], "1"), method="cash_link")
    assert screen.text_of("sum") == "220,00\u00a0₽"
    assert "кассовая ссылка" in screen.text_of("status")
    assert str(qr_svg(link_payload)) in screen.html      # the till's own QR
    stack.pay(link_qr_id)
    assert _poll(phone, screen.attrs["data-order-id"], "paid").text_of("sum") == \
        "220,00\u00a0₽"
    with stack.app.app_context():  # the order remembers the till it was sold at
        assert db.session.get(Order, int(screen.attrs["data-order-id"])).till_id == link_id
