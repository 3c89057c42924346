"""The shop's side of a paid storefront order: accepted -> ready (pickup) or shipped
(delivery) -> handed over, or cancelled with the money returned. From the managers'
Telegram buttons or the admin panel; both call these services (each commits once).

Every step is written to the audit log and published as "order.fulfilment"
{"order_id", "to"} keyed "order-<id>-<to>": the customer hears of it and the managers'
messages follow (app/storefront/notify.py).
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from app import audit
from app.errors import InvalidStateError
from app.extensions import db
from app.jobs import publish
from app.models import (
    Delivery,
    Fulfilment,
    Order,
    OrderChannel,
    OrderStatus,
    Payment,
    PaymentStatus,
)
from app.models.storefront import FULFILMENT_TRANSITIONS
from app.sbp.common import lock
from app.sbp.refunds import request_refund
from app.storefront.stock import put_back_stock

logger = logging.getLogger(__name__)

EVENT = "order.fulfilment"
# A step forward needs the money in; a partly refunded order may still be handed over.
PAID_ORDER = (OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED)
FINAL = (Fulfilment.HANDED_OVER, Fulfilment.CANCELLED)


class FulfilmentRefused(InvalidStateError):
    """The step cannot be taken: the order is not a paid storefront order, it is there
    already (`code` "already"), or the step does not follow from where it is."""

    code = "fulfilment_refused"


def next_steps(order: Order) -> list[Fulfilment]:
    """The steps a manager may take now, in the order the buttons show them: forward while
    the order is paid, and cancelling until it is handed over (only cancelling once its
    money went back another way, by a refund in the panel)."""
    if order.channel != OrderChannel.STOREFRONT or order.fulfilment in FINAL:
        return []
    if order.status == OrderStatus.REFUNDED:
        return [Fulfilment.CANCELLED]
    if order.status not in PAID_ORDER:
        return []
    current = order.fulfilment or Fulfilment.NEW
    forward = [to for to in (Fulfilment.ACCEPTED, _ready_or_shipped(order),
                             Fulfilment.HANDED_OVER)
               if to in FULFILMENT_TRANSITIONS[current]]
    return [*forward, Fulfilment.CANCELLED]


def _ready_or_shipped(order: Order) -> Fulfilment:
    return Fulfilment.SHIPPED if order.delivery == Delivery.DELIVERY else Fulfilment.READY


def _storefront_order(order_id: int) -> Order:
    order = lock(Order, order_id)
    if order.channel != OrderChannel.STOREFRONT:
        db.session.rollback()
        raise FulfilmentRefused(_l("Это не заказ магазина"), code="not_storefront")
    return order


def _check_step(order: Order, to: Fulfilment) -> None:
    if order.fulfilment == to:
        raise FulfilmentRefused(_l("Заказ уже в этом состоянии"), code="already")
    if to not in next_steps(order):
        if order.status not in (*PAID_ORDER, OrderStatus.REFUNDED):
            raise FulfilmentRefused(_l("Заказ не оплачен"), code="not_paid")
        raise FulfilmentRefused(_l("Этот шаг сейчас невозможен"), code="bad_step")


def _move(order: Order, to: Fulfilment, **details) -> None:
    before = order.fulfilment
    order.set_fulfilment(to)
    audit.record("order.fulfilment", target_type="order", target_id=order.id,
                 before=before.value if before else None, to=to.value, **details)
    publish(EVENT, {"order_id": order.id, "to": to.value}, key=f"order-{order.id}-{to.value}")


def advance(order_id: int, to: Fulfilment) -> Order:
    """Move a paid storefront order one step on (not to cancelled: see
    `cancel_with_refund`); audit, publish, commit.

    :raises NotFoundError: no such order.
    :raises FulfilmentRefused: not a paid storefront order, there already, or not a next step.
    """
    if to == Fulfilment.CANCELLED:
        return cancel_with_refund(order_id)
    order = _storefront_order(order_id)
    try:
        _check_step(order, to)
    except FulfilmentRefused:
        db.session.rollback()
        raise
    _move(order, to)
    db.session.commit()
    logger.info("order %s: fulfilment -> %s", order.id, to.value)
    return order


def _paid_payment(order_id: int) -> Payment | None:
    """The payment that paid the order (the first one still holding money)."""
    return db.session.scalars(
        sa.select(Payment).where(Payment.order_id == order_id, Payment.status.in_(
            (PaymentStatus.PAID, PaymentStatus.PARTIALLY_REFUNDED)))
        .order_by(Payment.id)).first()


def cancel_with_refund(order_id: int, reason: str | None = None) -> Order:
    """Cancel a paid storefront order and give all its money back: the fulfilment becomes
    cancelled, its goods go back to the stock, and a full refund of what is left is asked
    for in the same commit
    (app.sbp.refunds.request_refund sends it; the refund receipt follows when the bank
    has done it). An order whose money went back already is just cancelled.

    :raises NotFoundError: no such order.
    :raises FulfilmentRefused: not a paid storefront order, handed over or cancelled.
    :raises KassaError: the refund was refused (nothing changed).
    """
    order = _storefront_order(order_id)
    try:
        _check_step(order, Fulfilment.CANCELLED)
    except FulfilmentRefused:
        db.session.rollback()
        raise
    payment = _paid_payment(order.id)
    refund_kopecks = payment.refundable_kopecks if payment is not None else 0
    _move(order, Fulfilment.CANCELLED, refund_kopecks=refund_kopecks)
    put_back_stock(order.id)  # the goods stay in the shop
    if refund_kopecks <= 0:
        db.session.commit()
        return order
    reason = reason or str(_l("Отмена заказа №%(id)s", id=order.id))
    try:
        # Locks the payment (after the order, as everywhere) and commits the cancel with it.
        request_refund(payment.id, reason=reason)
    except Exception:
        db.session.rollback()
        raise
    logger.info("order %s cancelled with a refund of %s kopecks", order_id, refund_kopecks)
    return db.session.get(Order, order_id)
