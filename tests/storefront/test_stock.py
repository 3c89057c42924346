"""The stock: a paid order's product lines come off it once, whatever sold them (the till
or the storefront), however often the payment is reported; products that do not count
their stock are left alone; an order that is not paid takes nothing."""

from __future__ import annotations

import logging
import threading

import sqlalchemy as sa

from app.extensions import db
from app.models import Order, OrderChannel, OrderItem, Product
from app.orders.services import Line, create_order
from app.sbp.qrcodes import create_dynamic_qr
from app.storefront.stock import take_stock
from tests.helpers import wait_for
from tests.storefront.shopbot_support import mark_paid, product, storefront_order


def _stock(product_id: int) -> int | None:
    db.session.expire_all()
    return db.session.get(Product, product_id).stock_milli


def test_a_paid_order_takes_its_lines_off_the_stock_once(app):
    honey = product("Мёд", 45000, stock_milli=5000)
    tea = product("Чай", 12050)  # not counted
    order_id = storefront_order(lines=[
        Line(name="Мёд", price_kopecks=45000, quantity_milli=2000, product_id=honey),
        Line(name="Чай", price_kopecks=12050, product_id=tea),
        Line(name="Мёд", price_kopecks=45000, product_id=honey),
        Line(name="Доставка", price_kopecks=30000),  # a free line
    ])
    assert take_stock(order_id) is False  # not paid yet
    assert _stock(honey) == 5000

    mark_paid(order_id)
    assert take_stock(order_id) is True
    assert take_stock(order_id) is False
    assert (_stock(honey), _stock(tea)) == (2000, None)
    assert db.session.get(Order, order_id).stock_deducted is True


def test_selling_beyond_the_stock_stops_at_zero_and_says_so(app, caplog):
    honey = product("Мёд", 45000, stock_milli=1000)
    first = storefront_order(lines=[Line(name="Мёд", price_kopecks=45000, product_id=honey)])
    second = storefront_order(lines=[Line(name="Мёд", price_kopecks=45000, product_id=honey,
                                          quantity_milli=2000)])
    mark_paid(first)
    mark_paid(second)
    with caplog.at_level(logging.WARNING, logger="app.storefront.stock"):
        assert take_stock(first) and take_stock(second)
    assert _stock(honey) == 0
    assert "sold beyond its stock" in caplog.text


def test_a_till_sale_paid_at_the_bank_takes_the_stock_once_even_if_reported_twice(stack):
    with stack.app.app_context():
        honey = product("Мёд", 45000, stock_milli=5000)
        order = create_order(channel=OrderChannel.MINIAPP, lines=[
            Line(name="Мёд", price_kopecks=45000, quantity_milli=1500, product_id=honey)])
        qr = create_dynamic_qr(order.id)
        qr_id, bank_order, order_id = qr.qr_id, qr.bank_order, order.id
    stack.start_worker()
    paid = stack.pay(qr_id)

    def taken():
        with stack.app.app_context():
            try:
                return db.session.get(Order, order_id).stock_deducted
            finally:
                db.session.rollback()

    wait_for(taken)
    # The bank's notification once more (the sandbox resends it as a bank would).
    from app.models import Payment

    with stack.app.app_context():
        payment = db.session.scalars(sa.select(Payment)).one()
        replay = {"transactionId": int(payment.transaction_id), "qrId": qr_id,
                  "sbpMerchantId": "MA0000000552", "amount": "675.00", "order": bank_order,
                  "paymentStatus": "SUCCESS", "transactionDate": payment.paid_at.isoformat()}
    assert paid
    assert stack.callback_raw(replay)["outcome"] == "duplicate"
    with stack.app.app_context():
        from app.storefront import notify

        notify.stock({"payment_id": payment.id})  # the job run again (a worker died)
        assert take_stock(order_id) is False
        assert _stock(honey) == 3500


def test_a_cancelled_order_gives_its_goods_back_once_and_takes_nothing_later(app):
    from app.models import Fulfilment
    from app.storefront.stock import put_back_stock

    honey = product("Мёд", 45000, stock_milli=5000)
    taken = storefront_order(lines=[Line(name="Мёд", price_kopecks=45000, quantity_milli=2000,
                                         product_id=honey)])
    mark_paid(taken)
    assert take_stock(taken) and _stock(honey) == 3000
    assert put_back_stock(taken) is True
    db.session.commit()
    assert put_back_stock(taken) is False
    db.session.commit()
    assert _stock(honey) == 5000

    # Cancelled by the shop before the stock job ran: the goods never leave.
    early = storefront_order(lines=[Line(name="Мёд", price_kopecks=45000, product_id=honey)])
    mark_paid(early)
    order = db.session.get(Order, early)
    order.set_fulfilment(Fulfilment.CANCELLED)
    db.session.commit()
    assert take_stock(early) is False
    assert _stock(honey) == 5000


def test_taking_the_stock_and_writing_an_order_of_the_same_products_both_go_through(app):
    """A paid order's stock is taken while a cashier's order of the same two products is
    being written, its lines in the other order: neither waits for the other to fail (on
    PostgreSQL the order's lines hold KEY SHARE locks on their products until it commits)."""
    honey = product("Мёд", 45000, stock_milli=5000)
    tea = product("Чай", 12050, stock_milli=5000)
    paid = storefront_order(lines=[
        Line(name="Мёд", price_kopecks=45000, product_id=honey),
        Line(name="Чай", price_kopecks=12050, product_id=tea)])
    mark_paid(paid)
    till = create_order(channel=OrderChannel.MINIAPP, lines=[
        Line(name="Хлеб", price_kopecks=6500)]).id
    db.session.rollback()  # this test's own session reads nothing while the two run
    taken: list[object] = []

    def take() -> None:
        with app.app_context():
            try:
                taken.append(take_stock(paid))
            except Exception as exc:  # the test reports what went wrong
                db.session.rollback()
                taken.append(exc)

    def item(product_id: int, position: int) -> dict:
        return {"order_id": till, "product_id": product_id, "position": position,
                "name": "товар", "price_kopecks": 100, "quantity_milli": 1000,
                "amount_kopecks": 100}

    with db.engine.connect() as other:
        other.execute(sa.insert(OrderItem), [item(max(honey, tea), 1)])
        thread = threading.Thread(target=take)
        thread.start()
        thread.join(timeout=1)  # the stock taker reaches its locks (or waits, on SQLite)
        other.execute(sa.insert(OrderItem), [item(min(honey, tea), 2)])
        other.commit()
    thread.join(timeout=15)
    assert taken == [True]
    assert (_stock(honey), _stock(tea)) == (4000, 4000)
    assert len(db.session.get(Order, till).items) == 3
