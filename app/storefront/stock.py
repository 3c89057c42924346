"""The stock: a paid order's product lines are taken off it exactly once, whatever the
channel (the till sells the same goods as the storefront).

`orders.stock_deducted` is the once: a conditional UPDATE flips it, and only the
transaction that flipped it decrements the products, so a repeated `payment.paid`, a
second payment accepted for the same order or two workers at once take nothing twice.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa

from app.extensions import db
from app.models import Fulfilment, Order, OrderItem, OrderStatus, Product

logger = logging.getLogger(__name__)

PAID_ORDER = (OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED)


def take_stock(order_id: int) -> bool:
    """Take a paid order's product lines off the stock of the products that count it
    (stock_milli not None), once; commit. A product sold beyond its stock (two customers
    paid for the last piece at once) stops at 0, and the log says so.

    :returns: True when this call took the stock off; False when it was taken before, or
        the order is not paid.
    """
    flipped = db.session.execute(
        sa.update(Order)
        .where(Order.id == order_id, Order.stock_deducted.is_(False),
               Order.status.in_(PAID_ORDER),
               # A storefront order cancelled before its stock was taken keeps the goods.
               sa.or_(Order.fulfilment.is_(None), Order.fulfilment != Fulfilment.CANCELLED))
        .values(stock_deducted=True)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not flipped:
        db.session.rollback()
        return False
    wanted = _quantities(order_id)
    for product_id in sorted(wanted):  # one order of row locks for every caller
        quantity = wanted[product_id]
        # FOR NO KEY UPDATE (key_share), not FOR UPDATE: an order being written that names
        # the product holds a KEY SHARE lock on it (its items' foreign key) until it commits,
        # in its cart's order; FOR UPDATE waited for that and deadlocked with it (the soak's
        # till order failed with a 500). Two stock takers still wait for each other.
        stock = db.session.scalar(
            sa.select(Product.stock_milli).where(Product.id == product_id)
            .with_for_update(key_share=True))
        if stock is None:
            continue  # not counted
        if stock < quantity:
            logger.warning("product %s sold beyond its stock: %s wanted, %s left (order %s)",
                           product_id, quantity, stock, order_id)
        db.session.execute(
            sa.update(Product).where(Product.id == product_id)
            .values(stock_milli=max(stock - quantity, 0))
            .execution_options(synchronize_session=False))
    db.session.commit()
    logger.info("order %s: stock taken off for %d product(s)", order_id, len(wanted))
    return True


def put_back_stock(order_id: int) -> bool:
    """Give a cancelled order's lines back to the stock, if they were taken off; left to
    the caller's transaction (the cancel commits it). Once, like take_stock.

    :returns: True when this call put the stock back.
    """
    flipped = db.session.execute(
        sa.update(Order).where(Order.id == order_id, Order.stock_deducted.is_(True))
        .values(stock_deducted=False).execution_options(synchronize_session=False)
    ).rowcount
    if not flipped:
        return False
    wanted = _quantities(order_id)
    for product_id in sorted(wanted):
        db.session.execute(
            sa.update(Product)
            .where(Product.id == product_id, Product.stock_milli.is_not(None))
            .values(stock_milli=Product.stock_milli + wanted[product_id])
            .execution_options(synchronize_session=False))
    logger.info("order %s: stock put back for %d product(s)", order_id, len(wanted))
    return True


def _quantities(order_id: int) -> dict[int, int]:
    """{product id: thousandths} of the order's catalog lines."""
    wanted: dict[int, int] = {}
    for product_id, quantity in db.session.execute(
            sa.select(OrderItem.product_id, OrderItem.quantity_milli)
            .where(OrderItem.order_id == order_id, OrderItem.product_id.is_not(None))):
        wanted[product_id] = wanted.get(product_id, 0) + quantity
    return wanted
