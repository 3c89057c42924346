"""Order services: each public function commits once or rolls back."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from app.errors import NotFoundError, ValidationError
from app.extensions import db
from app.fiscal import check_line
from app.fiscal.builder import ReceiptError, check_sale_lines
from app.fiscal.receipt import ReceiptLine
from app.formatting import MOSCOW
from app.models import Order, OrderChannel, OrderItem, Product, utcnow
from app.money import format_rubles
from app.receipt_lines import MAX_LINES, MAX_PRICE_KOPECKS, MAX_QUANTITY_MILLI, line_amount

logger = logging.getLogger(__name__)
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
PHONE = re.compile(r"^\+?\d{10,15}$")


@dataclass(frozen=True)
class Line:
    """A cart line as a channel sends it: a catalog product or a free line (API, CLI)."""

    name: str
    price_kopecks: int
    quantity_milli: int = 1000
    product_id: int | None = None
    vat: str = "none"
    payment_object: str = "commodity"
    measure: str = "piece"


def catalog_lines(cart: list[tuple[int, int]]) -> list[Line]:
    """Price `[(product_id, quantity_milli), ...]` from the catalog, as it is now.

    :raises ValidationError: an unknown or inactive product, or a bad quantity.
    """
    ids = {product_id for product_id, _ in cart}
    products = {
        p.id: p for p in db.session.scalars(sa.select(Product).where(Product.id.in_(ids)))
    }
    lines = []
    for product_id, quantity_milli in cart:
        product = products.get(product_id)
        if product is None or not product.is_active:
            raise ValidationError(_l("Товар %(id)s не найден в каталоге", id=product_id),
                                  code="unknown_product")
        lines.append(Line(
            name=product.name, price_kopecks=product.price_kopecks,
            quantity_milli=quantity_milli, product_id=product.id, vat=product.vat,
            payment_object=product.payment_object, measure=product.measure,
        ))
    return lines


def _validate(lines: list[Line], email: str | None, phone: str | None) -> None:
    if not lines:
        raise ValidationError(_l("В заказе нет ни одной позиции"), code="empty_order")
    if len(lines) > MAX_LINES:
        raise ValidationError(_l("Не больше 100 позиций в одном чеке"), code="too_many_lines")
    for line in lines:
        if not line.name or not line.name.strip():
            raise ValidationError(_l("У позиции нет названия"), code="invalid_item")
        if line.price_kopecks <= 0:
            raise ValidationError(_l("Цена должна быть больше нуля"), code="invalid_amount")
        if line.price_kopecks > MAX_PRICE_KOPECKS:
            raise ValidationError(_l("Цена — не больше %(max)s",
                                     max=format_rubles(MAX_PRICE_KOPECKS)),
                                  code="invalid_amount")
        if not 0 < line.quantity_milli <= MAX_QUANTITY_MILLI:
            raise ValidationError(_l("Количество должно быть больше нуля"),
                                  code="invalid_quantity")
        check_line(vat=line.vat, payment_object=line.payment_object, measure=line.measure)
    _check_receipt(lines)
    if email and not EMAIL.match(email):
        raise ValidationError(_l("Неверный адрес электронной почты"), code="invalid_email")
    if phone and not PHONE.match(phone):
        raise ValidationError(_l("Неверный номер телефона"), code="invalid_phone")


def _check_receipt(lines: list[Line]) -> None:
    """The cart must make a receipt the register accepts, or the customer would pay for a
    sale that cannot be fiscalized: refused here, before the QR code is made."""
    try:
        check_sale_lines([
            ReceiptLine(name=line.name, price_kopecks=line.price_kopecks,
                        quantity_milli=line.quantity_milli,
                        amount_kopecks=line_amount(line.price_kopecks, line.quantity_milli),
                        vat=line.vat, payment_object=line.payment_object, measure=line.measure)
            for line in lines
        ])
    except ReceiptError as exc:
        logger.info("cart refused for its receipt: %s", exc)
        if exc.code == "too_large":
            raise ValidationError(_l("Сумма заказа больше, чем можно пробить в одном чеке"),
                                  code="invalid_amount") from exc
        raise ValidationError(_l("Позицию нельзя пробить в чеке: проверьте цену и количество"),
                              code="invalid_item") from exc


def create_order(
    *,
    channel: OrderChannel,
    lines: list[Line],
    description: str | None = None,
    customer_email: str | None = None,
    customer_phone: str | None = None,
    cashier_id: int | None = None,
    till_id: int | None = None,
) -> Order:
    """Create an order from priced lines and commit it.

    :param cashier_id: the staff member who made it (the Mini App's orders).
    :param till_id: the cash link of the till it was sold at, if the cashier has one.
    :raises ValidationError: empty cart, a bad price, quantity, VAT rate, email or phone.
    """
    order = add_order(channel=channel, lines=lines, description=description,
                      customer_email=customer_email, customer_phone=customer_phone,
                      cashier_id=cashier_id, till_id=till_id)
    db.session.commit()
    logger.info("order %s created: %s kopecks via %s", order.id, order.total_kopecks,
                channel.value)
    return order


def add_order(
    *,
    channel: OrderChannel,
    lines: list[Line],
    description: str | None = None,
    customer_email: str | None = None,
    customer_phone: str | None = None,
    cashier_id: int | None = None,
    till_id: int | None = None,
) -> Order:
    """Validate an order and add it to the session without committing: for a service that
    writes more in the same transaction (the constructor API: its ids and a job).

    :raises ValidationError: as create_order.
    """
    phone = re.sub(r"[\s()-]", "", customer_phone) if customer_phone else None
    _validate(lines, customer_email, phone)
    order = Order(
        channel=channel,
        description=(description or "").strip()[:140] or None,
        customer_email=customer_email or None,
        customer_phone=phone,
        cashier_id=cashier_id,
        till_id=till_id,
        total_kopecks=0,
    )
    for position, line in enumerate(lines):
        order.items.append(OrderItem(
            position=position, product_id=line.product_id, name=line.name.strip()[:128],
            price_kopecks=line.price_kopecks, quantity_milli=line.quantity_milli,
            amount_kopecks=line_amount(line.price_kopecks, line.quantity_milli),
            vat=line.vat, payment_object=line.payment_object, measure=line.measure,
        ))
    order.total_kopecks = sum(item.amount_kopecks for item in order.items)
    if order.total_kopecks <= 0:
        raise ValidationError(_l("Сумма заказа должна быть больше нуля"), code="invalid_amount")
    db.session.add(order)
    return order


def create_amount_order(
    *, channel: OrderChannel, amount_kopecks: int, description: str | None = None,
    customer_email: str | None = None, customer_phone: str | None = None,
) -> Order:
    """An order of one free line for a sum (the API's `amount`, `flask qr create`)."""
    name = (description or "").strip() or str(_l("Оплата заказа"))
    return create_order(
        channel=channel,
        lines=[Line(name=name[:128], price_kopecks=amount_kopecks)],
        description=description, customer_email=customer_email, customer_phone=customer_phone,
    )


def get_order(order_id: int) -> Order:
    order = db.session.get(Order, order_id)
    if order is None:
        raise NotFoundError(_l("Заказ не найден"))
    return order


def shop_day_start(now: datetime | None = None) -> datetime:
    """When the shop's day began, in UTC: the last midnight in Moscow, as the receipts
    and the screens count days."""
    local = (now or utcnow()).astimezone(MOSCOW)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


def cashier_orders_today(cashier_id: int, *, limit: int = 200) -> list[Order]:
    """The orders a cashier made since the shop's day began, newest first."""
    return list(db.session.scalars(
        sa.select(Order)
        .where(Order.cashier_id == cashier_id, Order.created_at >= shop_day_start())
        .order_by(Order.created_at.desc(), Order.id.desc())
        .limit(limit)
    ))
