"""Paying for a storefront order against the sandbox bank over real HTTP: bank buttons that
carry the payment link on a phone, the QR and a copy button on a desktop, paid within the
poll, an abandoned order's QR cancelled by the next order, an expired QR renewed in one
tap (unless the prices changed meanwhile)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.checkout.banks import sbp_banks
from app.extensions import db
from app.models import Order, OrderStatus, Product, QrCode, utcnow
from tests.helpers import wait_for
from tests.miniapp.screen import Screen
from tests.storefront.conftest import OLGA, Customer, cart_form

pytestmark = pytest.mark.slow


def _place(stack, customer: Customer, qty: str = "1"):
    tea = stack.app.products["tea"]
    screen = customer.post("/orders", cart_form(
        (tea, qty, 25000), expected_total=str(25000 * int(qty)), contact="+79001234567",
        delivery="pickup"))
    assert (screen.status, screen.name) == (200, "pay"), screen
    return screen


def _qr(app, public_id: str) -> QrCode:
    with app.app_context():
        qr = db.session.scalars(sa.select(QrCode).join(Order, QrCode.order_id == Order.id).where(
            Order.public_id == public_id).order_by(QrCode.id.desc())).first()
        db.session.expunge(qr)
        return qr


def _status(customer: Customer, public_id: str, seen: str | None = None):
    query = f"?seen={seen}" if seen else ""
    response = customer.client.get(f"/shop/orders/{public_id}/status{query}",
                                   headers=customer.headers)
    return response.status_code, Screen(response) if response.status_code != 204 else None


def test_on_a_phone_every_bank_button_carries_the_payment_link(bank_shop):
    screen = _place(bank_shop, Customer(bank_shop.app, OLGA, platform="android"))
    qr = _qr(bank_shop.app, screen.attrs["data-order"])
    assert qr.payload.startswith("https://qr.nspk.ru/")
    assert screen.attrs["data-device"] == "phone"
    assert screen.attrs["data-primary-link"] == qr.payload  # the MainButton opens it too
    banks = screen.testid("bank")
    assert [b.text for b in banks] == [bank.name for bank in sbp_banks()]
    for node, bank in zip(banks, sbp_banks(), strict=True):
        assert node.attrs["data-link"] == qr.payload
        assert node.attrs["href"] == bank.link(qr.payload)  # outside Telegram
    assert screen.section.one(data_testid="any-bank").attrs["data-link"] == qr.payload
    assert screen.section.one(data_testid="qr").one("svg")


def test_on_a_desktop_the_qr_and_a_copy_button(bank_shop):
    customer = Customer(bank_shop.app, OLGA, platform="tdesktop")
    screen = _place(bank_shop, customer)
    qr = _qr(bank_shop.app, screen.attrs["data-order"])
    assert screen.attrs["data-device"] == "desktop"
    assert not screen.testid("bank") and "data-primary-text" not in screen.attrs
    assert screen.section.one(data_testid="qr").one("svg")
    assert screen.section.one("input", id="pay-link").attrs["value"] == qr.payload
    assert screen.testid("copy-button")
    # Outside Telegram the user agent decides.
    phone = Customer(bank_shop.app, OLGA)
    phone.headers["User-Agent"] = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)"
    assert phone.get(f"/orders/{screen.attrs['data-order']}").attrs["data-device"] == "phone"


def test_a_paid_order_shows_paid_and_then_its_receipt(bank_shop):
    bank_shop.start_worker()
    customer = Customer(bank_shop.app, OLGA, platform="ios")
    public_id = _place(bank_shop, customer, qty="2").attrs["data-order"]
    status, waiting = _status(customer, public_id)
    assert (status, waiting.name) == (200, "pay")  # htmx keeps polling
    assert waiting.attrs["hx-get"].endswith("?seen=pending")
    # A poll that finds what the screen shows answers 204: the screen stays as it is.
    assert _status(customer, public_id, seen="pending") == (204, None)

    bank_shop.pay(_qr(bank_shop.app, public_id).qr_id)
    paid = wait_for(lambda: (s := _status(customer, public_id, seen="pending")[1])
                    and s.name == "paid" and s, timeout=3)
    assert paid.text_of("status") == "Оплачено"
    assert paid.text_of("sum") == "500,00\u00a0₽"
    assert paid.text_of("fulfilment") == "Ждёт подтверждения магазина"
    assert paid.attrs["data-clear-cart"] == "true"
    status, _final = wait_for(lambda: (r := _status(customer, public_id))[1].testid("receipt")
                             and r, timeout=20)
    assert status == 286  # htmx stops polling
    listed = customer.get("/orders").testid("order")
    assert [o.attrs["data-status"] for o in listed] == ["paid"]


def test_a_new_order_cancels_the_customers_earlier_unpaid_one(bank_shop):
    customer = Customer(bank_shop.app, OLGA)
    first = _place(bank_shop, customer).attrs["data-order"]
    first_qr = _qr(bank_shop.app, first)
    second = _place(bank_shop, customer, qty="2").attrs["data-order"]
    with bank_shop.app.app_context():
        statuses = {o.public_id: o.status for o in db.session.scalars(sa.select(Order))}
    assert statuses == {first: OrderStatus.CANCELLED, second: OrderStatus.PENDING}
    bank_qr = next(q for q in bank_shop.bank_state()["qrs"] if q["qrId"] == first_qr.qr_id)
    assert bank_qr["qrStatus"] == "CANCELLED"  # the abandoned cart's QR cannot be paid
    assert customer.get(f"/orders/{first}").name == "cancelled"


def _expire(app, public_id: str) -> None:
    with app.app_context():
        db.session.execute(sa.update(QrCode).where(QrCode.order_id == sa.select(Order.id).where(
            Order.public_id == public_id).scalar_subquery())
            .values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()


def test_an_expired_qr_is_renewed_in_one_tap(bank_shop):
    customer = Customer(bank_shop.app, OLGA)
    public_id = _place(bank_shop, customer).attrs["data-order"]
    old = _qr(bank_shop.app, public_id)
    _expire(bank_shop.app, public_id)
    expired = customer.get(f"/orders/{public_id}")
    assert expired.name == "expired" and expired.text_of("status") == "Время на оплату вышло"
    assert expired.attrs["data-primary-text"] == "Новый QR-код"
    renewed = customer.post(expired.attrs["data-primary-url"].removeprefix("/shop"))
    assert (renewed.status, renewed.name) == (200, "pay")
    new = _qr(bank_shop.app, public_id)
    assert new.qr_id != old.qr_id and new.payload != old.payload


def test_an_expired_order_whose_price_changed_is_not_renewed(bank_shop):
    customer = Customer(bank_shop.app, OLGA)
    public_id = _place(bank_shop, customer).attrs["data-order"]
    _expire(bank_shop.app, public_id)
    with bank_shop.app.app_context():
        db.session.execute(sa.update(Product).values(price_kopecks=30000))
        db.session.commit()
    screen = customer.post(f"/orders/{public_id}/qr")
    assert (screen.status, screen.name) == (409, "cancelled")
    assert "Соберите корзину заново" in screen.text_of("error")
