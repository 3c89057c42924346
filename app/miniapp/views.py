"""The Mini App's routes: each reads the request, calls the services and renders a screen.

Every route but the shell needs the cashier (`cashier_required`). A domain refusal
(ValidationError, InvalidStateError, BankError...) becomes a Russian message on a screen,
never a traceback.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import Blueprint, abort, g, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from app.catalog.services import create_product, update_product
from app.errors import BankError, KassaError, ValidationError, screen_error_handlers
from app.extensions import db
from app.fiscal import fiscal_enabled
from app.formatting import search_key
from app.miniapp.auth import cashier_required
from app.miniapp.forms import ProductForm, unit_label
from app.miniapp.screens import (
    error_screen,
    order_screen,
    order_view,
    render_screen,
    till_link,
)
from app.models import Order, OrderChannel, Product
from app.orders.cart import input_quantity, read_cart
from app.orders.services import cashier_orders_today, create_order
from app.orders.state import used_cash_link
from app.sbp.cancelling import cancel_order
from app.sbp.qrcodes import activate_cash_link, create_dynamic_qr

logger = logging.getLogger(__name__)

bp = Blueprint("miniapp", __name__)

# htmx stops polling on this status (its documented "stop polling" answer).
STOP_POLLING = 286


screen_error_handlers(bp, error_screen,
                      unexpected=_l("Что-то пошло не так. Попробуйте ещё раз; если не выйдет — "
                               "сообщите менеджеру."))


# -- the shell and the catalog -------------------------------------------------------------


@bp.get("/")
def shell():
    """The page Telegram opens: scripts and an empty `#screen`, no data, no sign-in."""
    return render_template("miniapp/shell.html")


def _search(q: str) -> list[Product]:
    """Active products whose name contains `q`, any case (Cyrillic too, so in Python:
    SQLite's lower() knows only ASCII), е and ё alike, by name."""
    products = db.session.scalars(sa.select(Product).where(Product.is_active.is_(True)))
    key = search_key(q)
    found = [p for p in products if key in search_key(p.name)]
    return sorted(found, key=lambda p: (p.name.casefold(), p.id))


@bp.get("/catalog")
@cashier_required
def catalog():
    q = request.args.get("q", "").strip()[:128]
    return render_screen("catalog.html", q=q, products=_search(q), unit_label=unit_label)


# -- products --------------------------------------------------------------------------------


def _editor_only():
    if not g.cashier.can_edit_catalog:
        return error_screen(_("Менять каталог может только сотрудник с правом редактирования. "
                              "Попросите менеджера."), 403)
    return None


def _product(product_id: int) -> Product:
    product = db.session.get(Product, product_id)
    if product is None:
        abort(404)
    return product


def _product_form(form: ProductForm, product: Product | None, status: int = 200):
    return render_screen("product_form.html", status, form=form, product=product)


@bp.get("/products/new")
@cashier_required
def new_product():
    refused = _editor_only()
    if refused:
        return refused
    form = ProductForm(formdata=None)
    form.fill_choices()
    form.vat.data, form.measure.data, form.payment_object.data = "none", "piece", "commodity"
    return _product_form(form, None)


@bp.get("/products/<int:product_id>/edit")
@cashier_required
def edit_product(product_id: int):
    refused = _editor_only()
    if refused:
        return refused
    product = _product(product_id)
    form = ProductForm(formdata=None)
    form.fill_choices(product)
    form.fill_from(product)
    return _product_form(form, product)


def _save_product(product: Product | None):
    form = ProductForm()
    form.fill_choices(product)
    price = form.price_kopecks()
    if price is None:
        return _product_form(form, product, 422)
    try:
        if product is None:
            saved = create_product(**form.values(price))
        else:
            saved = update_product(product.id, **form.values(price))
    except ValidationError as exc:
        form.show_refusal(exc)
        return _product_form(form, product, 422)
    return render_screen("catalog.html", q="", products=_search(""), unit_label=unit_label,
                         saved=saved)


@bp.post("/products")
@cashier_required
def create_product_view():
    return _editor_only() or _save_product(None)


@bp.post("/products/<int:product_id>")
@cashier_required
def update_product_view(product_id: int):
    return _editor_only() or _save_product(_product(product_id))


# -- the cart and orders -------------------------------------------------------------------


def _posted_cart():
    return read_cart(request.form.getlist("product_id"), request.form.getlist("qty"))


def _cart_screen(cart, status: int = 200, *, error: str | None = None):
    link = till_link(g.cashier)
    return render_screen(
        "cart.html", status, cart=cart, errors=[*cart.errors, *([error] if error else [])],
        contact=request.form.get("contact", "").strip(), cash_link=link is not None,
        method=request.form.get("method", "qr"), unit_label=unit_label,
        input_quantity=input_quantity,
    )


@bp.post("/cart")
@cashier_required
def cart():
    return _cart_screen(_posted_cart())


def _contact(value: str) -> dict:
    value = value.strip()
    if not value:
        return {}
    return {"customer_email": value} if "@" in value else {"customer_phone": value}


def _put_up(order: Order, *, cash_link: bool) -> None:
    """Show the order's QR: the till's cash link when asked and there is one, else a
    dynamic QR. Raises the services' errors."""
    link = till_link(g.cashier) if cash_link else None
    if link is not None:
        activate_cash_link(link.id, order.id)
    else:
        create_dynamic_qr(order.id)


@bp.post("/orders")
@cashier_required
def create_order_view():
    cart = _posted_cart()
    if cart.errors or not cart.lines:
        return _cart_screen(cart, 422, error=None if cart.lines else _("Корзина пуста"))
    try:
        order = create_order(channel=OrderChannel.MINIAPP, lines=cart.order_lines(),
                             cashier_id=g.cashier.id, till_id=g.cashier.till_id,
                             **_contact(request.form.get("contact", "")))
    except ValidationError as exc:
        return _cart_screen(cart, 422, error=exc.message)
    return _show_qr(order, cash_link=request.form.get("method") == "cash_link",
                    clear_cart=True)


def _show_qr(order: Order, *, cash_link: bool, clear_cart: bool = False):
    order_id = order.id
    try:
        _put_up(order, cash_link=cash_link)
    except KassaError as exc:
        db.session.rollback()
        status = 502 if isinstance(exc, BankError) else exc.status
        return order_screen(_my_order(order_id), status=status, message=exc.message,
                            clear_cart=clear_cart)
    return order_screen(_my_order(order_id), clear_cart=clear_cart)


def _my_order(order_id: int) -> Order:
    """The order if this cashier made it; 404 for anyone else's (or none)."""
    order = db.session.get(Order, order_id)
    if order is None or order.cashier_id != g.cashier.id:
        abort(404)
    return order


@bp.get("/orders/<int:order_id>")
@cashier_required
def order(order_id: int):
    return order_screen(_my_order(order_id))


@bp.get("/orders/<int:order_id>/status")
@cashier_required
def order_status(order_id: int):
    """Polled by the QR screen; 286 stops htmx's polling once the state is final."""
    found = _my_order(order_id)
    view = order_view(found)
    # A paid order keeps its screen polling until the receipt link can be shown.
    done = view.final and not (view.state == "paid" and view.receipt_href is None
                               and fiscal_enabled())
    return order_screen(found, view=view, status=STOP_POLLING if done else 200)


@bp.post("/orders/<int:order_id>/cancel")
@cashier_required
def cancel(order_id: int):
    found = _my_order(order_id)
    try:
        cancel_order(found.id)
    except KassaError as exc:
        db.session.rollback()
        return order_screen(_my_order(order_id), status=exc.status, message=exc.message)
    return order_screen(_my_order(order_id))


@bp.post("/orders/<int:order_id>/qr")
@cashier_required
def new_qr(order_id: int):
    found = _my_order(order_id)
    method = request.form.get("method")
    cash_link = method == "cash_link" if method else used_cash_link(found.id)
    return _show_qr(found, cash_link=cash_link)


@bp.get("/today")
@cashier_required
def today():
    rows = [order_view(o) for o in cashier_orders_today(g.cashier.id)]
    return render_screen("today.html", rows=rows, total_paid=sum(
        row.order.total_kopecks for row in rows if row.state == "paid"))
