"""Placing a customer's order: the cart re-priced from the catalog as it is now, the stock,
the contact for the receipt, pickup or delivery, a rate limit per Telegram user; then the
customer's earlier unpaid orders are cancelled and the order gets its dynamic QR.

The cart is the browser's (product ids and quantities, and the prices the customer saw as a
hint); nothing it says about money is trusted. A cart that changed since the customer saw
it is refused with the new cart and what changed (CartChanged, 409): nobody is charged a
price they were not shown.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _l

from app.errors import InvalidStateError, KassaError, ValidationError
from app.extensions import db
from app.formatting import format_quantity, unit_label
from app.models import MAX_ROW_ID, Customer, Order, OrderChannel, Product, utcnow
from app.models.orders import OPEN_ORDER_STATUSES
from app.models.storefront import Delivery, Fulfilment
from app.money import format_rubles
from app.orders.cart import Cart, CartLine, read_cart
from app.orders.services import EMAIL, add_order
from app.receipt_lines import line_amount
from app.sbp.cancelling import cancel_order
from app.sbp.qrcodes import create_dynamic_qr
from app.storefront.customers import remember_customer
from app.storefront.settings import current_settings
from app.storefront.shelf import PIECE, UNIT, on_sale

logger = logging.getLogger(__name__)

RATE_WINDOW = timedelta(minutes=10)
PHONE = re.compile(r"\+\d{10,15}")


class CartChanged(KassaError):
    """The cart is not what the customer saw (a price, a withdrawn product, the stock):
    nothing was created; `cart` is the cart as it is now."""

    code = "cart_changed"
    status = 409

    def __init__(self, cart: ShopCart):
        super().__init__(str(_l("Корзина изменилась: проверьте её и оплатите снова.")))
        self.cart = cart


class RateLimited(KassaError):
    code = "rate_limited"
    status = 429


# -- the cart ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShopCart:
    """The posted cart priced from the catalog as it is now."""

    cart: Cart
    notices: list[str]  # what changed since the customer saw it, in Russian
    changed: bool       # a line was withdrawn, cut to the stock or re-priced

    @property
    def lines(self) -> list[CartLine]:
        return self.cart.lines

    @property
    def errors(self) -> list[str]:
        return self.cart.errors

    @property
    def total_kopecks(self) -> int:
        return self.cart.total_kopecks

    @property
    def payable(self) -> bool:
        return bool(self.cart.lines) and not self.cart.errors


def _id(raw: str) -> int | None:
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18) or int(raw) > MAX_ROW_ID:
        return None  # not a row id (beyond PostgreSQL's integer it was a 500)
    return int(raw)


def _seen_prices(product_ids: list[str], prices: list[str] | None) -> dict[int, int]:
    if not prices or len(prices) != len(product_ids):
        return {}
    seen = {}
    for raw_id, raw_price in zip(product_ids, prices, strict=True):
        pid, price = _id(raw_id), _id(raw_price.strip())
        if pid is not None and price is not None:
            seen[pid] = price
    return seen


def _in_stock(product: Product) -> int | None:
    """How much of it may be bought (thousandths; whole pieces), None when not counted."""
    if product.stock_milli is None:
        return None
    stock = max(product.stock_milli, 0)
    return stock - stock % UNIT if product.measure == PIECE else stock


def _short(product: Product, quantity_milli: int) -> bool:
    available = _in_stock(product)
    return available is not None and available < quantity_milli


def price_cart(product_ids: list[str], quantities: list[str],
               prices: list[str] | None = None) -> ShopCart:
    """Price the posted cart from what is on sale now (app.orders.cart.read_cart does the
    quantities and the pricing). A product no longer on sale is taken out, a quantity over
    the stock is cut to it, and each is said; a price other than the one the customer saw
    (`prices`, kopecks, aligned with `product_ids`) is said too."""
    if len(product_ids) != len(quantities):
        return ShopCart(read_cart(product_ids, quantities), [], True)
    wanted = {pid for pid in map(_id, product_ids) if pid is not None}
    products = {p.id: p for p in db.session.scalars(
        sa.select(Product).where(Product.id.in_(wanted)))} if wanted else {}
    selling = {pid for pid, p in products.items() if p.is_active and p.is_published}
    notices: list[str] = []
    withdrawn = [(raw_id, raw_qty) for raw_id, raw_qty in zip(product_ids, quantities,
                                                              strict=True)
                 if _id(raw_id) is not None and _id(raw_id) not in selling]
    for raw_id, _qty in withdrawn:
        product = products.get(_id(raw_id))
        notices.append(str(_l("«%(name)s» больше не продаётся и убран из корзины",
                              name=product.name)) if product else
                       str(_l("Товар из корзины больше не продаётся и убран из неё")))
    kept = [(raw_id, raw_qty) for raw_id, raw_qty in zip(product_ids, quantities, strict=True)
            if (raw_id, raw_qty) not in withdrawn]
    cart = read_cart([i for i, _ in kept], [q for _, q in kept])

    seen = _seen_prices(product_ids, prices)
    lines: list[CartLine] = []
    changed = bool(withdrawn) or cart.dropped > 0
    for item in cart.lines:
        line = item.line
        product = products[line.product_id]
        if line.product_id in seen and seen[line.product_id] != line.price_kopecks:
            notices.append(str(_l("Цена «%(name)s» изменилась: было %(old)s, стало %(new)s",
                                  name=line.name, old=format_rubles(seen[line.product_id]),
                                  new=format_rubles(line.price_kopecks))))
            changed = True
        available = _in_stock(product)
        if _short(product, line.quantity_milli):
            changed = True
            if available <= 0:
                notices.append(str(_l("«%(name)s» закончился и убран из корзины",
                                      name=line.name)))
                continue
            notices.append(str(_l("«%(name)s» осталось %(qty)s %(unit)s: столько и положили",
                                  name=line.name, qty=format_quantity(available),
                                  unit=unit_label(line.measure))))
            line = replace(line, quantity_milli=available)
        lines.append(CartLine(line, line_amount(line.price_kopecks, line.quantity_milli)))
    return ShopCart(Cart(lines, cart.errors, cart.dropped + len(withdrawn)), notices, changed)


# -- the customer's details ---------------------------------------------------------------------


def normalise_contact(raw: str | None) -> tuple[str | None, str | None]:
    """(email, phone) from what the customer typed or Telegram shared: an email as typed, a
    phone as +<digits> (8 900..., 7900..., 900... are Russian numbers).

    :raises ValidationError: nothing given, or neither an email nor a phone number.
    """
    value = (raw or "").strip()
    if not value:
        raise ValidationError(_l("Укажите телефон или почту: туда придёт чек"),
                              code="contact_required")
    if "@" in value:
        if len(value) > 64 or not EMAIL.match(value):
            raise ValidationError(_l("Неверный адрес электронной почты"), code="invalid_email")
        return value, None
    phone = re.sub(r"[\s().-]", "", value)
    digits = phone.removeprefix("+")
    if digits.isascii() and digits.isdigit():
        if not phone.startswith("+"):
            if len(digits) == 11 and digits[0] in "78":
                digits = "7" + digits[1:]
            elif len(digits) == 10 and digits[0] == "9":
                digits = "7" + digits
        phone = "+" + digits
    if not PHONE.fullmatch(phone):
        raise ValidationError(_l("Неверный номер телефона: например +7 900 123-45-67"),
                              code="invalid_phone")
    return None, phone


def _delivery(method: str | None, address: str | None) -> tuple[Delivery, str | None]:
    settings = current_settings()
    offered = [m for m, on in ((Delivery.PICKUP, settings.pickup_enabled),
                               (Delivery.DELIVERY, settings.delivery_enabled)) if on]
    try:
        chosen = Delivery(method) if method else (offered[0] if len(offered) == 1 else None)
    except ValueError:
        chosen = None
    if chosen not in offered:
        raise ValidationError(_l("Выберите самовывоз или доставку"), code="invalid_delivery")
    address = (address or "").strip()[:255] or None
    if chosen == Delivery.DELIVERY and not address:
        raise ValidationError(_l("Укажите адрес доставки"), code="address_required")
    return chosen, address if chosen == Delivery.DELIVERY else None


def _check_rate(customer_id: int) -> None:
    """At most STOREFRONT_ORDERS_PER_10_MIN orders per customer in 10 minutes, counted in
    the database (the customer's row locked) so that it holds across processes."""
    db.session.execute(sa.select(Customer.id).where(Customer.id == customer_id)
                       .with_for_update())
    made = db.session.scalar(sa.select(sa.func.count()).select_from(Order).where(
        Order.customer_id == customer_id, Order.channel == OrderChannel.STOREFRONT,
        Order.created_at >= utcnow() - RATE_WINDOW))
    if made >= current_app.config["STOREFRONT_ORDERS_PER_10_MIN"]:
        raise RateLimited(str(_l("Слишком много заказов подряд. Подождите несколько минут "
                                 "и попробуйте снова.")))


# -- placing the order ------------------------------------------------------------------------


@dataclass(frozen=True)
class Placed:
    order_id: int
    public_id: str
    qr_error: str | None = None  # the bank did not make the QR: the order waits for a retry


def place_order(*, telegram_id: int, name: str | None = None, username: str | None = None,
                product_ids: list[str], quantities: list[str], prices: list[str] | None = None,
                expected_total: str | int | None, contact: str | None,
                delivery: str | None = None, address: str | None = None,
                comment: str | None = None) -> Placed:
    """Create the customer's order (commit), cancel their earlier unpaid storefront orders,
    and ask the bank for its QR.

    :raises CartChanged: the cart differs from what the customer saw (409); nothing created.
    :raises ValidationError: an empty or broken cart, no contact, a bad delivery choice.
    :raises RateLimited: too many orders by this customer in 10 minutes.
    """
    cart = price_cart(product_ids, quantities, prices)
    if cart.errors:
        raise ValidationError(cart.errors[0], code="invalid_cart")
    expected = _id(str(expected_total or "").strip())
    if cart.changed or (cart.lines and expected != cart.total_kopecks):
        if not cart.changed:
            cart.notices.append(str(
                _l("Сумма заказа изменилась: было %(old)s, стало %(new)s",
                   old=format_rubles(expected), new=format_rubles(cart.total_kopecks))
                if expected is not None else _l("Проверьте сумму заказа и оплатите снова")))
        raise CartChanged(cart)
    if not cart.lines:
        raise ValidationError(_l("Корзина пуста"), code="empty_order")
    email, phone = normalise_contact(contact)
    method, address = _delivery(delivery, address)

    try:
        customer = remember_customer(telegram_id, name, username)
        _check_rate(customer.id)
        order = add_order(channel=OrderChannel.STOREFRONT, lines=cart.cart.order_lines(),
                          customer_email=email, customer_phone=phone)
        order.customer_id = customer.id
        order.delivery = method
        order.delivery_address = address
        order.customer_comment = (comment or "").strip()[:500] or None
        order.set_fulfilment(Fulfilment.NEW)
        if email:
            customer.email = email
        else:
            customer.phone = phone
        db.session.flush()
        placed = Placed(order.id, order.public_id)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    logger.info("storefront order %s placed by customer %s: %s kopecks", placed.order_id,
                customer.id, cart.total_kopecks)

    _cancel_earlier(customer.id, placed.order_id)
    try:
        create_dynamic_qr(placed.order_id)
    except KassaError as exc:
        db.session.rollback()
        logger.warning("storefront order %s: no QR yet: %s", placed.order_id, exc.message)
        return replace(placed, qr_error=exc.message)
    return placed


def _cancel_earlier(customer_id: int, order_id: int) -> None:
    """An abandoned cart's QR must never be paid: the customer's other unpaid storefront
    orders are cancelled (at the bank too). A bank that does not answer leaves the QR to
    run out; the reconciler closes it."""
    earlier = list(db.session.scalars(sa.select(Order.id).where(
        Order.customer_id == customer_id, Order.channel == OrderChannel.STOREFRONT,
        Order.status.in_(OPEN_ORDER_STATUSES), Order.id != order_id)))
    db.session.rollback()
    for found in earlier:
        try:
            cancel_order(found)
        except KassaError as exc:
            db.session.rollback()
            logger.warning("storefront order %s not cancelled: %s", found, exc.message)


def renew_qr(order_id: int) -> None:
    """A new QR for an unpaid order whose QR ran out, if its lines are still sold at the
    same prices and in stock; otherwise the order is cancelled and the customer told to
    order again.

    :raises InvalidStateError: the order is stale (and now cancelled), paid or cancelled.
    :raises BankError: the bank did not answer.
    """
    order = db.session.get(Order, order_id)
    if order is None:
        raise InvalidStateError(_l("Заказ не найден"))
    ids = [item.product_id for item in order.items if item.product_id is not None]
    products = {p.id: p for p in db.session.scalars(
        sa.select(Product).where(Product.id.in_(ids), on_sale()))} if ids else {}
    stale = any(
        item.product_id not in products
        or products[item.product_id].price_kopecks != item.price_kopecks
        or _short(products[item.product_id], item.quantity_milli)
        for item in order.items)
    if stale:
        db.session.rollback()
        cancel_order(order_id)
        raise InvalidStateError(_l("Цены или наличие изменились с момента заказа: он "
                                   "отменён. Соберите корзину заново."), code="order_stale")
    create_dynamic_qr(order_id)
