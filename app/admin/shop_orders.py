"""The storefront's orders in the admin panel: the list (paid first, filtered by the shop's
progress), an order's page, and the same steps the managers take from Telegram. Thin:
app/storefront/fulfilment.py does the work and writes the audit log."""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from app.admin.auth import admin_required, viewer_required
from app.admin.blueprint import bp
from app.admin.monitor_forms import ActionForm
from app.errors import KassaError
from app.extensions import db
from app.models import (
    Customer,
    Fulfilment,
    Order,
    OrderChannel,
    OrderStatus,
    Payment,
)
from app.storefront import fulfilment
from app.storefront.messages import FULFILMENT_LABELS, STEP_BUTTONS
from app.storefront.settings import current_settings
from app.telegram.messages import ORDER_STATUSES

PAGE_SIZE = 50
PAID = (OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED)
UNPAID = "unpaid"
# The shop's steps concern paid orders; the unpaid ones (a QR waiting, expired, cancelled)
# have a filter of their own.
FILTERS = {"": _l("Все"), **{f.value: FULFILMENT_LABELS[f] for f in Fulfilment},
           UNPAID: _l("Не оплачены")}
DONE_MESSAGES = {
    Fulfilment.ACCEPTED: _l("Заказ принят; покупатель получит сообщение"),
    Fulfilment.READY: _l("Заказ готов к выдаче; покупатель получит сообщение"),
    Fulfilment.SHIPPED: _l("Заказ отправлен; покупатель получит сообщение"),
    Fulfilment.HANDED_OVER: _l("Заказ выдан"),
}


def _labels() -> dict:
    return {"order_labels": ORDER_STATUSES, "fulfilment_labels": FULFILMENT_LABELS,
            "step_labels": STEP_BUTTONS}


@bp.get("/shop-orders")
@viewer_required
def shop_orders():
    chosen = request.args.get("fulfilment", "")
    if chosen not in FILTERS:
        chosen = ""
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    query = sa.select(Order).where(Order.channel == OrderChannel.STOREFRONT)
    if chosen == UNPAID:
        query = query.where(Order.status.not_in(PAID))
    elif chosen:
        query = query.where(Order.fulfilment == Fulfilment(chosen), Order.status.in_(PAID))
    paid_first = sa.case((Order.status.in_(PAID), 0), else_=1)
    rows = list(db.session.scalars(
        query.order_by(paid_first, Order.created_at.desc(), Order.id.desc())
        .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)))
    customers = _customers(rows)
    return render_template("admin/shop_orders/list.html", orders=rows[:PAGE_SIZE],
                           more=len(rows) > PAGE_SIZE, page=page, chosen=chosen,
                           filters=FILTERS, customers=customers, paid=PAID, **_labels())


def _customers(orders: list[Order]) -> dict[int, Customer]:
    ids = {order.customer_id for order in orders if order.customer_id}
    if not ids:
        return {}
    return {c.id: c for c in db.session.scalars(sa.select(Customer).where(Customer.id.in_(ids)))}


def _order(order_id: int) -> Order:
    order = db.session.get(Order, order_id)
    if order is None or order.channel != OrderChannel.STOREFRONT:
        abort(404)
    return order


@bp.get("/shop-orders/<int:order_id>")
@viewer_required
def shop_order(order_id: int):
    order = _order(order_id)
    customer = db.session.get(Customer, order.customer_id) if order.customer_id else None
    payments = list(db.session.scalars(
        sa.select(Payment).where(Payment.order_id == order.id).order_by(Payment.id)))
    return render_template("admin/shop_orders/detail.html", order=order, customer=customer,
                           payments=payments, steps=fulfilment.next_steps(order),
                           pickup_address=current_settings().pickup_address,
                           action_form=ActionForm(formdata=None), cancelled=Fulfilment.CANCELLED,
                           **_labels())


def _act(order_id: int, action, success: str):
    _order(order_id)
    db.session.rollback()
    if not ActionForm().validate():
        abort(400)
    try:
        action()
    except KassaError as exc:
        db.session.rollback()
        flash(str(exc.message), "error")
    else:
        flash(success, "success")
    return redirect(url_for("admin.shop_order", order_id=order_id))


@bp.post("/shop-orders/<int:order_id>/step")
@admin_required
def shop_order_step(order_id: int):
    try:
        to = Fulfilment(request.form.get("to", ""))
    except ValueError:
        abort(400)
    if to in (Fulfilment.CANCELLED, Fulfilment.NEW):
        abort(400)
    return _act(order_id, lambda: fulfilment.advance(order_id, to), str(DONE_MESSAGES[to]))


@bp.post("/shop-orders/<int:order_id>/cancel")
@admin_required
def shop_order_cancel(order_id: int):
    return _act(order_id, lambda: fulfilment.cancel_with_refund(order_id),
                _("Заказ отменён, возврат денег отправлен в банк"))
