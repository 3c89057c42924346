"""The customer's Mini App (bp "storefront", /shop/): each route reads the request, calls
one service and renders a screen for `#screen`.

Every route but the shell needs a shopper (`customer_required`: Telegram's signed initData
on each request, no cookie session). Orders are addressed by their public id and shown
only to the customer who placed them; anyone else's is a 404. A refusal is a Russian
message on a screen, never a traceback.
"""

from __future__ import annotations

import logging
import re

import sqlalchemy as sa
from flask import Blueprint, abort, g, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from app.checkout.banks import sbp_banks
from app.errors import BankError, KassaError, ValidationError, screen_error_handlers
from app.extensions import db
from app.fiscal import fiscal_enabled
from app.formatting import format_quantity, unit_label
from app.models import Order, OrderChannel, OrderStatus, utcnow
from app.models.storefront import Fulfilment
from app.orders.cart import input_quantity
from app.orders.state import order_view
from app.qrimage import inline_svg
from app.storefront import ordering, shelf
from app.storefront.auth import customer_required, demo_mode
from app.storefront.customers import customer_by_telegram_id, customer_orders
from app.storefront.photos import photo_url
from app.storefront.settings import current_settings

logger = logging.getLogger(__name__)

bp = Blueprint("storefront", __name__)


def init_app(app) -> None:
    """Register the customer's Mini App at /shop. Like the till it is not a cookie session:
    every call carries `Authorization: tma <initData>` signed by Telegram, which a forged
    cross-site form cannot send, so the blueprint is exempt from CSRF tokens."""
    from app import ratelimit
    from app.extensions import csrf

    csrf.exempt(bp)
    app.register_blueprint(bp, url_prefix="/shop")
    # What writes or prices (POST), per address; the screens' polls are reads and free.
    ratelimit.limit(app, bp, "RATELIMIT_MINIAPP", scope="storefront", methods=["POST"])

STOP_POLLING = 286  # htmx stops polling on this status
PHONE_UA = re.compile(r"Android|iPhone|iPad|iPod|Mobile", re.IGNORECASE)
PHONE_PLATFORMS = frozenset({"android", "android_x", "ios"})
# The fields of the delivery form that a refusal is shown next to, by its code.
FIELD_OF_CODE = {"contact_required": "contact", "invalid_email": "contact",
                 "invalid_phone": "contact", "invalid_delivery": "delivery",
                 "address_required": "address"}

PAYMENT_LABELS = {
    OrderStatus.NEW: _l("Ждёт QR-кода"), OrderStatus.PENDING: _l("Ждёт оплаты"),
    OrderStatus.EXPIRED: _l("Время оплаты вышло"), OrderStatus.CANCELLED: _l("Отменён"),
    OrderStatus.PAID: _l("Оплачен"), OrderStatus.PARTIALLY_REFUNDED: _l("Часть денег вернули"),
    OrderStatus.REFUNDED: _l("Деньги возвращены"),
}
FULFILMENT_LABELS = {
    Fulfilment.NEW: _l("Ждёт подтверждения магазина"),
    Fulfilment.ACCEPTED: _l("Магазин собирает заказ"),
    Fulfilment.READY: _l("Готов к выдаче"), Fulfilment.SHIPPED: _l("Передан в доставку"),
    Fulfilment.HANDED_OVER: _l("Получен"), Fulfilment.CANCELLED: _l("Отменён магазином"),
}
PAID = (OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED)


# -- screens ----------------------------------------------------------------------------------


def render_screen(template: str, status: int = 200, **context):
    """A screen for `#screen`; `demo` shows the demo banner."""
    return render_template(f"storefront/{template}", demo=demo_mode(), **context), status


def refused_screen(refused):
    """403: the shop is closed to this caller, and why."""
    return render_screen("refused.html", 403, code=refused.code, message=refused.message)


def error_screen(message: str, status: int):
    return render_screen("error.html", status, message=message)


def _labels(order: Order) -> tuple[str, str | None]:
    """The order's payment state and, once paid, the shop's progress, in Russian."""
    paid = order.status in PAID
    return (str(PAYMENT_LABELS[order.status]),
            str(FULFILMENT_LABELS[order.fulfilment]) if paid and order.fulfilment else None)


def _on_phone() -> bool:
    """Telegram's platform (sent by shop.js) or, outside Telegram, the user agent."""
    platform = request.headers.get("X-Telegram-Platform", "").strip().lower()
    if platform and platform != "unknown":
        return platform in PHONE_PLATFORMS
    return bool(PHONE_UA.search(request.headers.get("User-Agent", "")))


def screen_state(view) -> str:
    """What the order screen shows, as its `data-state`: a poll that finds the same answers
    204 and the screen stays (no re-rendered QR, a fraction of the work)."""
    if view.state == "paid":
        return "paid:receipt" if view.receipt_href else "paid:wait"
    return view.state


def order_screen(order: Order, *, status: int = 200, message: str | None = None, view=None):
    view = view or order_view(order)
    return render_screen(
        "order.html", status, order=order, view=view, message=message, now=utcnow(),
        screen_state=screen_state(view),
        qr_svg=inline_svg, phone=_on_phone(), banks=sbp_banks() if view.payload else (),
        fiscal=fiscal_enabled(), labels=_labels(order), settings=current_settings(),
        format_quantity=format_quantity, unit_label=unit_label)


def _cart_form():
    form = request.form
    return form.getlist("product_id"), form.getlist("qty"), form.getlist("price")


def _cart_screen(cart: ordering.ShopCart, status: int = 200, *, error: str | None = None):
    return render_screen("cart.html", status, cart=cart, error=error, unit_label=unit_label,
                         input_quantity=input_quantity)


# -- errors -----------------------------------------------------------------------------------


screen_error_handlers(bp, error_screen,
                      unexpected=_l("Что-то пошло не так. Попробуйте ещё раз чуть позже."))


# -- the shell, the catalog, a product --------------------------------------------------------


@bp.get("/")
def shell():
    """The page Telegram opens: scripts and an empty `#screen`, no data, no sign-in."""
    return render_template("storefront/shell.html")


@bp.get("/catalog")
@customer_required
def catalog():
    q = request.args.get("q", "").strip()[:128]
    raw = request.args.get("category", "")
    category = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 10 else None
    products = shelf.products(q, category)
    return render_screen(
        "catalog.html", q=q, category=category, categories=shelf.categories(),
        products=products, settings=current_settings(), sold_out=shelf.sold_out,
        photos=shelf.photo_urls(products, thumb=True), unit_label=unit_label)


@bp.get("/products/<int:product_id>")
@customer_required
def product(product_id: int):
    found = shelf.product(product_id)
    if found is None:
        abort(404)
    return render_screen("product.html", product=found, sold_out=shelf.sold_out(found),
                         photo=photo_url(found), unit_label=unit_label)


# -- the cart, the delivery form, placing the order ------------------------------------------


@bp.post("/cart")
@customer_required
def cart():
    return _cart_screen(ordering.price_cart(*_cart_form()))


def _checkout_screen(cart: ordering.ShopCart, status: int = 200, *, refusal=None):
    form = request.form
    customer = customer_by_telegram_id(g.customer_user.telegram_id)
    contact = form.get("contact")
    if contact is None and customer is not None:
        contact = customer.phone or customer.email or ""
    settings = current_settings()
    delivery = form.get("delivery") or ("pickup" if settings.pickup_enabled else "delivery")
    errors = {}
    if refusal is not None:
        errors[FIELD_OF_CODE.get(refusal.code, "form")] = refusal.message
    return render_screen(
        "checkout.html", status, cart=cart, settings=settings, contact=contact or "",
        delivery=delivery, address=form.get("address", ""), comment=form.get("comment", ""),
        errors=errors, input_quantity=input_quantity)


@bp.post("/checkout")
@customer_required
def checkout():
    cart = ordering.price_cart(*_cart_form())
    if not cart.payable:
        return _cart_screen(cart, 422, error=None if cart.lines else _("Корзина пуста"))
    return _checkout_screen(cart)


@bp.post("/orders")
@customer_required
def place():
    form = request.form
    user = g.customer_user
    product_ids, quantities, prices = _cart_form()
    try:
        placed = ordering.place_order(
            telegram_id=user.telegram_id, name=user.name, username=user.username,
            product_ids=product_ids, quantities=quantities, prices=prices,
            expected_total=form.get("expected_total"), contact=form.get("contact"),
            delivery=form.get("delivery"), address=form.get("address"),
            comment=form.get("comment"))
    except ordering.CartChanged as changed:
        return _cart_screen(changed.cart, 409, error=changed.message)
    except ordering.RateLimited as limited:
        return _checkout_screen(ordering.price_cart(product_ids, quantities), 429,
                                refusal=limited)
    except ValidationError as invalid:
        cart = ordering.price_cart(product_ids, quantities)
        if invalid.code in FIELD_OF_CODE:
            return _checkout_screen(cart, 422, refusal=invalid)
        return _cart_screen(cart, 422, error=invalid.message)
    status = 502 if placed.qr_error else 200
    return order_screen(_my_order(placed.public_id), status=status, message=placed.qr_error)


# -- the customer's orders ---------------------------------------------------------------------


def _my_order(public_id: str) -> Order:
    """The caller's storefront order; 404 for anyone else's (or none)."""
    customer = customer_by_telegram_id(g.customer_user.telegram_id)
    order = db.session.scalar(sa.select(Order).where(Order.public_id == public_id[:32])) \
        if customer is not None else None
    if order is None or order.customer_id != customer.id \
            or order.channel != OrderChannel.STOREFRONT:
        abort(404)
    return order


@bp.get("/orders")
@customer_required
def orders():
    customer = customer_by_telegram_id(g.customer_user.telegram_id)
    found = customer_orders(customer.id, limit=30) if customer is not None else []
    return render_screen("orders.html", orders=[(o, *_labels(o)) for o in found])


@bp.get("/orders/<public_id>")
@customer_required
def order(public_id: str):
    return order_screen(_my_order(public_id))


@bp.get("/orders/<public_id>/status")
@customer_required
def order_status(public_id: str):
    """Polled by the order screen with the state it shows (`seen`): 204 while that is still
    so, the new screen when it changed, 286 (htmx stops polling) once nothing more will come."""
    found = _my_order(public_id)
    view = order_view(found)
    done = view.final and not (view.state == "paid" and view.receipt_href is None
                               and fiscal_enabled())
    if not done and request.args.get("seen") == screen_state(view):
        return "", 204
    return order_screen(found, view=view, status=STOP_POLLING if done else 200)


@bp.post("/orders/<public_id>/qr")
@customer_required
def new_qr(public_id: str):
    found = _my_order(public_id)
    order_id = found.id
    try:
        ordering.renew_qr(order_id)
    except KassaError as exc:
        db.session.rollback()
        status = 502 if isinstance(exc, BankError) else exc.status
        return order_screen(db.session.get(Order, order_id), status=status, message=exc.message)
    return order_screen(db.session.get(Order, order_id))
