"""The cart is priced by the server from the catalog; an order is made by its cashier."""

from __future__ import annotations

import sqlalchemy as sa

from app.extensions import db
from app.models import Order
from tests.miniapp.conftest import ANNA, BORIS, Phone, cart_form


def _orders(app) -> list[tuple[int, int | None]]:
    with app.app_context():
        rows = db.session.execute(sa.select(Order.total_kopecks, Order.cashier_id)).all()
        db.session.rollback()
        return [tuple(r) for r in rows]


def test_the_cart_is_priced_from_the_catalog_not_from_the_post(till):
    p = till.products
    screen = Phone(till, ANNA).post("/miniapp/cart", cart_form(
        (p["cappuccino"], "2"), (p["beans"], "0,25"),
        price=["1", "1"], amount="0.01", total="0.01"))
    assert (screen.status, screen.name) == (200, "cart")
    lines = {int(line.attrs["data-product-id"]): line for line in screen.testid("line")}
    assert "440,00\u00a0₽" in lines[p["cappuccino"]].text
    assert "800,00\u00a0₽" in lines[p["beans"]].text       # 0,25 kg × 3 200 ₽
    assert screen.text_of("total") == "1\u00a0240,00\u00a0₽"
    assert screen.attrs["data-primary-text"] == "Оплатить 1\u00a0240,00\u00a0₽"
    qty = {int(line.attrs["data-product-id"]): line.one("input", data_testid="qty")
           for line in screen.testid("line")}
    assert (qty[p["beans"]].attrs["step"], qty[p["beans"]].attrs["value"]) == ("0.001", "0.25")
    assert (qty[p["cappuccino"]].attrs["step"], qty[p["cappuccino"]].attrs["value"]) == ("1", "2")


def test_a_product_posted_twice_is_one_line_and_zero_takes_it_out(till):
    p = till.products
    screen = Phone(till, ANNA).post("/miniapp/cart", cart_form(
        (p["croissant"], "1"), (p["croissant"], "2"), (p["cappuccino"], "0")))
    assert [line.attrs["data-product-id"] for line in screen.testid("line")] == [
        str(p["croissant"])]
    assert screen.text_of("total") == "555,00\u00a0₽"


def test_a_product_no_longer_sold_leaves_the_cart_with_a_notice(till):
    from app.catalog.services import update_product

    with till.app_context():
        update_product(till.products["honey"], is_active=False)
    screen = Phone(till, ANNA).post("/miniapp/cart", cart_form(
        (till.products["honey"], "1"), (till.products["croissant"], "1")))
    assert len(screen.testid("line")) == 1
    assert "больше не продаётся" in screen.text


def test_fractional_pieces_and_nonsense_quantities_cannot_be_paid(till):
    p = till.products
    anna = Phone(till, ANNA)
    for qty, says in (("1.5", "продаётся поштучно"), ("два", "не число"),
                      ("0.0001", "трёх знаков")):
        form = cart_form((p["cappuccino"], qty), (p["croissant"], "1"))
        cart = anna.post("/miniapp/cart", form)
        assert [e.text for e in cart.testid("error") if says in e.text]
        assert cart.attrs.get("data-primary-disabled") == "true"
        refused = anna.post("/miniapp/orders", form)
        assert (refused.status, refused.name) == (422, "cart")
        assert says in refused.text
    assert anna.post("/miniapp/orders", {}).status == 422
    assert _orders(till) == []


def test_a_wrong_contact_is_said_on_the_cart_and_nothing_is_created(till):
    anna = Phone(till, ANNA)
    form = cart_form((till.products["croissant"], "1"))
    for contact, says in (("anna@", "Неверный адрес электронной почты"),
                          ("12-34", "Неверный номер телефона")):
        screen = anna.post("/miniapp/orders", {**form, "contact": contact})
        assert (screen.status, screen.name) == (422, "cart")
        assert says in screen.text_of("error")
        assert screen.section.one("input", data_testid="contact").attrs["value"] == contact
    assert _orders(till) == []


def test_an_order_is_its_cashiers_and_a_silent_bank_keeps_it_for_a_retry(till):
    anna, boris = Phone(till, ANNA), Phone(till, BORIS)
    form = cart_form((till.products["cappuccino"], "1"), (till.products["beans"], "0.5"),
                     contact="+7 (900) 123-45-67")
    screen = anna.post("/miniapp/orders", form)   # the bank's URL has no one listening
    assert (screen.status, screen.name) == (502, "retry")
    assert "Банк не отвечает. Заказ сохранён, попробуйте ещё раз." in screen.text_of("error")
    assert screen.text_of("sum") == "1\u00a0820,00\u00a0₽"
    assert screen.attrs["data-primary-text"] == "Новый QR-код"
    order_id = screen.attrs["data-order-id"]

    today = anna.get("/miniapp/today")
    rows = today.testid("order")
    assert [(r.attrs["data-order-id"], r.attrs["data-status"]) for r in rows] == [
        (order_id, "new")]
    assert "1\u00a0820,00\u00a0₽" in rows[0].text
    assert boris.get("/miniapp/today").testid("order") == []
    for url in (f"/miniapp/orders/{order_id}", f"/miniapp/orders/{order_id}/status"):
        assert (boris.get(url).status, boris.get(url).name) == (404, "error")
    assert boris.post(f"/miniapp/orders/{order_id}/cancel").status == 404
    assert boris.post(f"/miniapp/orders/{order_id}/qr").status == 404
    with till.app_context():
        from app.people.services import active_cashier

        assert _orders(till) == [(182000, active_cashier(ANNA).id)]
        assert db.session.get(Order, int(order_id)).customer_phone == "+79001234567"
