"""The cart as the Mini App posts it: product ids and quantities, never prices.

The browser keeps the cart (localStorage) and posts `product_id` / `qty` pairs; the
server prices every line from the catalog as it is now (app.orders.services.catalog_lines).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from app.errors import ValidationError
from app.extensions import db
from app.models import MAX_ROW_ID, Product
from app.orders.services import Line, catalog_lines
from app.receipt_lines import MAX_LINES, MAX_QUANTITY_MILLI, UNIT, line_amount

PIECE = "piece"


@dataclass(frozen=True)
class CartLine:
    """A priced line of the cart screen."""

    line: Line
    amount_kopecks: int

    @property
    def weighed(self) -> bool:
        return self.line.measure != PIECE


@dataclass(frozen=True)
class Cart:
    lines: list[CartLine]
    errors: list[str]  # what must be fixed before the cart can be paid
    dropped: int  # posted products that are no longer sold

    @property
    def total_kopecks(self) -> int:
        return sum(line.amount_kopecks for line in self.lines)

    def order_lines(self) -> list[Line]:
        return [line.line for line in self.lines]


def parse_quantity(raw: str) -> int:
    """"1", "1.5", "0,25" -> thousandths (1000, 1500, 250); 0 means "take it out".

    :raises ValidationError: not a number, negative, more than 3 decimals, or too large.
    """
    text = (raw or "").strip().replace(",", ".")
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = None
    if value is not None and value.is_finite() and value > MAX_QUANTITY_MILLI:
        # 1e999999 would overflow the multiplication below (a 500 before fuzzing found it)
        raise ValidationError(_l("Слишком большое количество"), code="invalid_quantity")
    if value is None or not value.is_finite() or value < 0:
        raise ValidationError(_l("Количество «%(value)s» — не число", value=raw),
                              code="invalid_quantity")
    milli = value * UNIT
    if milli != milli.to_integral_value():
        raise ValidationError(_l("Количество — не больше трёх знаков после запятой"),
                              code="invalid_quantity")
    if milli > MAX_QUANTITY_MILLI:
        raise ValidationError(_l("Слишком большое количество"), code="invalid_quantity")
    return int(milli)


def input_quantity(quantity_milli: int) -> str:
    """1500 -> "1.5" as a number input takes it; 2000 -> "2"."""
    whole, frac = divmod(quantity_milli, UNIT)
    return f"{whole}.{frac:03d}".rstrip("0") if frac else str(whole)


def read_cart(product_ids: list[str], quantities: list[str]) -> Cart:
    """Price the posted `product_id` / `qty` pairs from the catalog as it is now.

    A line with a bad quantity is left out with an error; a product no longer sold is left
    out and counted; a piece product in a fractional quantity stays, with an error. Zero
    quantities take a product out; the same product twice is one line.
    """
    errors: list[str] = []
    if len(product_ids) != len(quantities):
        return Cart([], [str(_l("Корзина пришла повреждённой, соберите её заново"))], 0)
    merged: dict[int, int] = {}
    for raw_id, raw_qty in zip(product_ids, quantities, strict=True):
        if not (raw_id.isascii() and raw_id.isdigit()) or len(raw_id) > 18 \
                or int(raw_id) > MAX_ROW_ID:
            errors.append(str(_l("Корзина пришла повреждённой, соберите её заново")))
            continue
        try:
            quantity = parse_quantity(raw_qty)
        except ValidationError as exc:
            errors.append(str(exc.message))
            continue
        if quantity:
            merged[int(raw_id)] = merged.get(int(raw_id), 0) + quantity
    if len(merged) > MAX_LINES:
        errors.append(str(_l("Не больше 100 позиций в одном чеке")))
        merged = dict(list(merged.items())[:MAX_LINES])
    sold = set(db.session.scalars(sa.select(Product.id).where(
        Product.id.in_(merged), Product.is_active.is_(True)))) if merged else set()
    lines = catalog_lines([(pid, qty) for pid, qty in merged.items() if pid in sold])
    for line in lines:
        if line.measure == PIECE and line.quantity_milli % UNIT:
            errors.append(str(_l("«%(name)s» продаётся поштучно: укажите целое количество",
                                 name=line.name)))
    return Cart(
        lines=[CartLine(line, line_amount(line.price_kopecks, line.quantity_milli))
               for line in lines],
        errors=errors,
        dropped=len(merged) - len(sold),
    )
