"""Placing an order: the cart re-priced from the catalog as it is now (never a stale price),
the stock, the contact for the receipt, pickup or delivery, the rate limit; two customers'
orders kept apart. The bank is unreachable here: an order it could not make a QR for waits
with a retry button."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import Customer as CustomerRow
from app.models import Order, OrderChannel, OrderStatus, Product
from app.models.storefront import Delivery, Fulfilment
from app.storefront.ordering import normalise_contact
from tests.storefront.conftest import OLGA, PETR, Customer, cart_form


def _orders(app) -> list[Order]:
    with app.app_context():
        found = list(db.session.scalars(sa.select(Order).order_by(Order.id)))
        for order in found:
            db.session.expunge(order)
        return found


def _set(app, product_id: int, **values) -> None:
    with app.app_context():
        db.session.execute(sa.update(Product).where(Product.id == product_id).values(**values))
        db.session.commit()


def _order_form(app, *lines, total: int, **extra) -> dict:
    return cart_form(*lines, **{"expected_total": str(total), "contact": "+7 900 123-45-67",
                                "delivery": "pickup", **extra})


def test_an_order_is_placed_with_the_customer_contact_and_delivery(shop):
    tea, honey = shop.products["tea"], shop.products["honey"]
    screen = Customer(shop, OLGA).post("/orders", _order_form(
        shop, (tea, "2", 25000), (honey, "0.5", 90000), total=95000, delivery="delivery",
        address="ул. Мира, 5, кв. 7", comment="Позвоните за час", contact="8 (900) 123-45-67"))
    # The bank is unreachable: the order is kept and the screen offers a retry.
    assert (screen.status, screen.name) == (502, "retry")
    assert screen.attrs["data-primary-text"] == "Попробовать ещё раз"
    (order,) = _orders(shop)
    assert screen.attrs["data-order"] == order.public_id
    assert order.channel == OrderChannel.STOREFRONT
    assert (order.status, order.fulfilment) == (OrderStatus.NEW, Fulfilment.NEW)
    assert order.total_kopecks == 95000
    assert order.customer_phone == "+79001234567" and order.customer_email is None
    assert (order.delivery, order.delivery_address, order.customer_comment) == (
        Delivery.DELIVERY, "ул. Мира, 5, кв. 7", "Позвоните за час")
    with shop.app_context():
        customer = db.session.get(CustomerRow, order.customer_id)
        assert (customer.telegram_id, customer.name, customer.username, customer.phone) == (
            OLGA, "Ольга", f"u{OLGA}", "+79001234567")


def test_the_next_checkout_is_prefilled_with_the_last_contact(shop):
    tea = shop.products["tea"]
    olga = Customer(shop, OLGA)
    form = olga.post("/checkout", cart_form((tea, "1")))
    assert (form.status, form.name) == (200, "checkout")
    assert form.section.one("input", data_testid="contact").attrs["value"] == ""
    olga.post("/orders", _order_form(shop, (tea, "1"), total=25000, contact="olga@example.ru"))
    form = olga.post("/checkout", cart_form((tea, "1")))
    assert form.section.one("input", data_testid="contact").attrs["value"] == "olga@example.ru"
    assert form.section.one("input", name="expected_total").attrs["value"] == "25000"


def test_a_price_changed_between_cart_and_payment_is_said_and_nothing_is_charged(shop):
    tea = shop.products["tea"]
    olga = Customer(shop, OLGA)
    form = olga.post("/checkout", cart_form((tea, "2", 25000)))
    assert form.text_of("total") == "500,00\u00a0₽"
    _set(shop, tea, price_kopecks=27000)  # the shop raises the price meanwhile
    screen = olga.post("/orders", _order_form(shop, (tea, "2", 25000), total=50000))
    assert (screen.status, screen.name) == (409, "cart")
    assert screen.text_of("notice") == "Цена «Чай улун» изменилась: было 250,00 ₽, стало " \
                                       "270,00 ₽".replace(" ₽", "\u00a0₽")
    assert screen.text_of("total") == "540,00\u00a0₽"
    assert screen.attrs["data-primary-text"] == "Оформить заказ · 540,00\u00a0₽"
    assert _orders(shop) == []
    # Without the prices seen, the total the customer saw decides.
    screen = olga.post("/orders", _order_form(shop, (tea, "2"), total=50000))
    assert screen.status == 409
    assert "было 500,00\u00a0₽, стало 540,00\u00a0₽" in screen.text_of("notice")
    assert _orders(shop) == []
    # With the new price seen, the order goes through at it.
    olga.post("/orders", _order_form(shop, (tea, "2", 27000), total=54000))
    assert [o.total_kopecks for o in _orders(shop)] == [54000]


def test_a_withdrawn_product_is_taken_out_and_said(shop):
    tea, honey = shop.products["tea"], shop.products["honey"]
    _set(shop, honey, is_published=False)
    olga = Customer(shop, OLGA)
    cart = olga.post("/cart", cart_form((tea, "1"), (honey, "1")))
    assert cart.text_of("notice") == "«Мёд гречишный» больше не продаётся и убран из корзины"
    assert [line.attrs["data-product-id"] for line in cart.testid("line")] == [str(tea)]
    screen = olga.post("/orders", _order_form(shop, (tea, "1"), (honey, "1"), total=115000))
    assert (screen.status, screen.name) == (409, "cart")
    assert _orders(shop) == []


def test_stock_is_checked_and_a_sold_out_product_cannot_be_bought(shop):
    tea, mug = shop.products["tea"], shop.products["mug"]
    olga = Customer(shop, OLGA)
    cart = olga.post("/cart", cart_form((tea, "5"), (mug, "1")))
    assert [n.text for n in cart.testid("notice")] == [
        "«Чай улун» осталось 3 шт: столько и положили",
        "«Кружка» закончился и убран из корзины"]
    line = cart.section.one(data_testid="line")
    assert line.one("input", data_testid="qty").attrs["value"] == "3"
    assert cart.text_of("total") == "750,00\u00a0₽"
    screen = olga.post("/orders", _order_form(shop, (tea, "4"), total=100000))
    assert screen.status == 409 and _orders(shop) == []
    screen = olga.post("/orders", _order_form(shop, (tea, "3"), total=75000))
    assert screen.name == "retry" and len(_orders(shop)) == 1


@pytest.mark.parametrize(("contact", "message"), [
    ("", "Укажите телефон или почту: туда придёт чек"),
    ("   ", "Укажите телефон или почту: туда придёт чек"),
    ("12345", "Неверный номер телефона: например +7 900 123-45-67"),
    ("olga@", "Неверный адрес электронной почты"),
])
def test_a_contact_is_required_before_payment(shop, contact, message):
    tea = shop.products["tea"]
    screen = Customer(shop, OLGA).post("/orders", _order_form(
        shop, (tea, "1"), total=25000, contact=contact))
    assert (screen.status, screen.name) == (422, "checkout")
    assert screen.text_of("contact-error") == message
    assert _orders(shop) == []


def test_phone_numbers_are_normalised():
    assert normalise_contact("8 900 123-45-67") == (None, "+79001234567")
    assert normalise_contact("79001234567") == (None, "+79001234567")  # Telegram's share
    assert normalise_contact("(900) 123 45 67") == (None, "+79001234567")
    assert normalise_contact("+44 20 7946 0958") == (None, "+442079460958")
    assert normalise_contact(" olga@example.ru ") == ("olga@example.ru", None)


def test_delivery_needs_an_address_and_a_method_the_shop_offers(shop):
    from app.storefront.settings import update_settings

    tea = shop.products["tea"]
    olga = Customer(shop, OLGA)
    screen = olga.post("/orders", _order_form(shop, (tea, "1"), total=25000,
                                              delivery="delivery", address=" "))
    assert (screen.status, screen.text_of("address-error")) == (422, "Укажите адрес доставки")
    with shop.app_context():
        update_settings(delivery_enabled=False)
    screen = olga.post("/orders", _order_form(shop, (tea, "1"), total=25000,
                                              delivery="delivery", address="ул. Мира, 5"))
    assert (screen.status, screen.text_of("delivery-error")) == (
        422, "Выберите самовывоз или доставку")
    assert _orders(shop) == []


def test_an_empty_cart_is_not_an_order(shop):
    screen = Customer(shop, OLGA).post("/orders", _order_form(shop, total=0))
    assert (screen.status, screen.name) == (422, "cart")
    assert screen.text_of("error") == "Корзина пуста"


def test_orders_per_customer_are_rate_limited(make_app):
    from tests.storefront.conftest import TOKEN, seed_shop

    app = make_app(TELEGRAM_BOT_TOKEN=TOKEN, STOREFRONT_ORDERS_PER_10_MIN=2)
    tea = seed_shop(app)["tea"]
    olga = Customer(app, OLGA)
    for _ in range(2):
        assert olga.post("/orders", _order_form(app, (tea, "1"), total=25000)).status == 502
    screen = olga.post("/orders", _order_form(app, (tea, "1"), total=25000))
    assert (screen.status, screen.name) == (429, "checkout")
    assert "Слишком много заказов" in screen.text_of("error")
    assert len(_orders(app)) == 2
    # Another customer is not held back by Olga's orders.
    assert Customer(app, PETR).post("/orders", _order_form(app, (tea, "1"),
                                                           total=25000)).status == 502


def test_two_customers_orders_are_kept_apart(shop):
    tea = shop.products["tea"]
    olga, petr = Customer(shop, OLGA), Customer(shop, PETR)
    mine = olga.post("/orders", _order_form(shop, (tea, "1"), total=25000)).attrs["data-order"]
    assert olga.get(f"/orders/{mine}").name == "retry"
    for screen in (petr.get(f"/orders/{mine}"), petr.get(f"/orders/{mine}/status"),
                   petr.post(f"/orders/{mine}/qr")):
        assert (screen.status, screen.name) == (404, "error")
    assert petr.get("/orders").testid("no-orders")
    listed = olga.get("/orders").testid("order")
    assert [o.attrs["data-order"] for o in listed] == [mine]
