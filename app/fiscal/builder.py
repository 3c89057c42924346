"""Pure 54-ФЗ receipt builder: sale receipt drafts from plain lines, and the line rules and
checks the refund builder (app/fiscal/refund_builder.py) shares.

No Flask, no database: functions over the dataclasses of :mod:`app.fiscal.receipt`.
Money is integer kopecks, quantities integer thousandths ("milli"); no floats anywhere.

Every draft returned satisfies (checked by :func:`_check`, which raises ReceiptError):

* 1..100 lines; Σ line amounts == ``total_kopecks`` == the one electronic payment
  (``payment_type`` 1); 0 < total <= 99 999 999,99 ₽ (Raiffeisen ``total`` is decimal(8,2));
* each line: 1 <= len(name) <= 128; 0 < price <= 4 294 967 300 (ATOL's schema);
  0 < quantity <= 99 999 999; 0 < amount <= 4 294 967 300; known vat / payment_object /
  measure / payment_method; and
  ``amount == round_half_up(price × quantity / 1000)`` exactly, because registers and
  Raiffeisen check price × quantity against the sum (ATOL Online v5, the Raiffeisen receipts API).

Names are normalized the same way everywhere: whitespace runs collapse to one space, the
result is cut to 128 characters and stripped. Refund lines copy the sale line's normalized
name, vat, payment_object, measure and payment_method.

Rounding and splitting rules
----------------------------
``round_half_up`` is ``(2·price·qty + 1000) // 2000``: :func:`app.receipt_lines.line_amount`,
which checkout uses too. For a line amount ``s`` and a quantity ``k`` the prices that
give exactly ``s`` are the integers in ``[ceil((1000s − 500)/k), ceil((1000s + 500)/k) − 1]``;
for ``k <= 1000`` that range is never empty, so any amount can be written on one line with
a quantity of at most one unit (the price is then capped by 4 294 967 300, which needs
``k >= need(s) ≈ 1000·s / 4.29e9``).
Among the valid prices the sale line's own price is taken when it is one of them, so a
refund line shows the original price whenever that is exact; otherwise the valid price
nearest the exact unit price ``1000·s / k``.

Refund receipts (by sum, by returned goods) are built in :mod:`app.fiscal.refund_builder`
with the helpers below.

Error codes (``ReceiptError.code``): ``empty``, ``too_many_lines``, ``bad_line``,
``bad_amount``, ``too_large``, ``over_refund``, ``bad_selection``, ``bad_history``,
``bad_customer``, ``bad_operation``, ``bad_receipt`` (no company, not one electronic payment).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from app.fiscal.receipt import (
    ELECTRONIC,
    SELL,
    SELL_REFUND,
    Company,
    ReceiptDraft,
    ReceiptLine,
)
from app.receipt_lines import (
    FULL_PAYMENT,
    MAX_LINES,
    MAX_NAME,
    MAX_PRICE_KOPECKS,
    MAX_QUANTITY_MILLI,
    MEASURES,
    PAYMENT_METHODS,
    PAYMENT_OBJECTS,
    UNIT,
    VAT_RATES,
    line_amount,
)

MAX_TOTAL_KOPECKS = 9_999_999_999  # Raiffeisen `total` decimal(8,2) (its receipts API)
MAX_CONTACT = 64                   # ATOL client.email / client.phone (ATOL Online v5)


class ReceiptError(ValueError):
    """A receipt that cannot be built; ``code`` says why (see the module docstring)."""

    def __init__(self, message: str, code: str = "bad_receipt") -> None:
        super().__init__(message)
        self.code = code


# --------------------------------------------------------------------------- arithmetic


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def min_quantity(amount: int) -> int:
    """The smallest quantity (<= 1000) that can carry `amount` at a price within limits."""
    if amount <= 0:
        return 0
    return max(1, _ceil_div(UNIT * amount - UNIT // 2, MAX_PRICE_KOPECKS))


def capacity(quantity: int) -> int:
    """The largest amount a line of `quantity` (or of one unit, if more) can carry."""
    return min(MAX_PRICE_KOPECKS, (quantity * MAX_PRICE_KOPECKS + UNIT // 2) // UNIT)


def price_for(amount: int, quantity: int, sale_price: int) -> int | None:
    """A price with round_half_up(price × quantity / 1000) == amount: the sale price if it
    fits, else the one nearest the exact unit price 1000 × amount / quantity."""
    low = max(1, _ceil_div(UNIT * amount - UNIT // 2, quantity))
    high = min(MAX_PRICE_KOPECKS, _ceil_div(UNIT * amount + UNIT // 2, quantity) - 1)
    if low > high:
        return None
    if low <= sale_price <= high:
        return sale_price
    unit_price = (2 * UNIT * amount + quantity) // (2 * quantity)  # half-up
    return min(max(unit_price, low), high)


def quantity_at(amount: int, price: int, low: int, high: int, target: int) -> int | None:
    """The quantity in [low, high] closest to `target` with price × quantity == amount."""
    low = max(low, 1, _ceil_div(UNIT * amount - UNIT // 2, price))
    high = min(high, MAX_QUANTITY_MILLI, _ceil_div(UNIT * amount + UNIT // 2, price) - 1)
    if low > high:
        return None
    return min(max(target, low), high)


def largest_remainder(amount: int, weights: Sequence[int]) -> list[int]:
    """Split `amount` proportionally to `weights`; Σ == amount; ties go to the earlier one."""
    total = sum(weights)
    shares = [amount * w // total for w in weights]
    rest = amount - sum(shares)
    order = sorted(range(len(weights)), key=lambda i: (-(amount * weights[i] % total), i))
    for i in order[:rest]:
        shares[i] += 1
    return shares


# ------------------------------------------------------------------------------ lines


def _normalize_name(name: str) -> str:
    return " ".join(name.split())[:MAX_NAME].rstrip()


def clean_line(line: ReceiptLine, where: str, *, payment_method: str | None = None,
                code: str = "bad_line") -> ReceiptLine:
    """A validated copy of `line` with a normalized name (and `payment_method` if given)."""
    if not isinstance(line, ReceiptLine):
        raise ReceiptError(f"{where}: not a ReceiptLine", code)
    if not isinstance(line.name, str) or not _normalize_name(line.name):
        raise ReceiptError(f"{where}: the name is empty", code)
    clean = replace(line, name=_normalize_name(line.name),
                    payment_method=payment_method or line.payment_method)
    _check_line(clean, where, code)
    return clean


def _check_line(line: ReceiptLine, where: str, code: str = "bad_line") -> None:
    if not isinstance(line.name, str) or not 1 <= len(line.name) <= MAX_NAME \
            or line.name != line.name.strip():
        raise ReceiptError(f"{where}: the name must be 1..{MAX_NAME} characters", code)
    price, quantity, amount = line.price_kopecks, line.quantity_milli, line.amount_kopecks
    if not (is_int(price) and is_int(quantity) and is_int(amount)):
        raise ReceiptError(f"{where}: price, quantity and amount must be integers", code)
    if price <= 0:
        # A zero price is refused by registers (KKT -3805).
        raise ReceiptError(f"{where}: the price must be positive", code)
    if price > MAX_PRICE_KOPECKS:
        raise ReceiptError(f"{where}: the price exceeds {MAX_PRICE_KOPECKS} kopecks", code)
    if not 0 < quantity <= MAX_QUANTITY_MILLI:
        raise ReceiptError(f"{where}: the quantity must be 1..{MAX_QUANTITY_MILLI} "
                           "thousandths", code)
    if amount != line_amount(price, quantity):
        raise ReceiptError(f"{where}: the amount {amount} is not price × quantity "
                           f"({line_amount(price, quantity)})", code)
    if not 0 < amount <= MAX_PRICE_KOPECKS:
        raise ReceiptError(f"{where}: the amount must be 1..{MAX_PRICE_KOPECKS} kopecks", code)
    if line.vat not in VAT_RATES:
        raise ReceiptError(f"{where}: unknown VAT rate {line.vat!r}", code)
    if line.payment_object not in PAYMENT_OBJECTS:
        raise ReceiptError(f"{where}: unknown payment object {line.payment_object!r}", code)
    if line.measure not in MEASURES:
        raise ReceiptError(f"{where}: unknown measure {line.measure!r}", code)
    if line.payment_method not in PAYMENT_METHODS:
        raise ReceiptError(f"{where}: unknown payment method {line.payment_method!r}", code)


def priced(source: ReceiptLine, price: int, quantity: int) -> ReceiptLine:
    return replace(source, price_kopecks=price, quantity_milli=quantity,
                   amount_kopecks=line_amount(price, quantity))


def _contact(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ReceiptError(f"the customer {what} must be a string", "bad_customer")
    value = value.strip()
    if len(value) > MAX_CONTACT:
        raise ReceiptError(f"the customer {what} is longer than {MAX_CONTACT} characters",
                           "bad_customer")
    return value or None


# ----------------------------------------------------------------------------- drafts


def _check(draft: ReceiptDraft) -> None:
    """Raise ReceiptError unless `draft` is a receipt a register accepts as is."""
    if draft.operation not in (SELL, SELL_REFUND):
        raise ReceiptError(f"unknown operation {draft.operation!r}", "bad_operation")
    if not isinstance(draft.company, Company):
        raise ReceiptError("the company is missing", "bad_receipt")
    if not draft.lines:
        raise ReceiptError("a receipt needs at least one line", "empty")
    if len(draft.lines) > MAX_LINES:
        raise ReceiptError(f"a receipt holds at most {MAX_LINES} lines, "
                           f"not {len(draft.lines)}", "too_many_lines")
    for number, line in enumerate(draft.lines, 1):
        _check_line(line, f"line {number}")
    total = sum(line.amount_kopecks for line in draft.lines)
    if draft.total_kopecks != total:
        raise ReceiptError(f"the total {draft.total_kopecks} is not the sum of the lines "
                           f"({total})", "bad_amount")
    if total > MAX_TOTAL_KOPECKS:
        raise ReceiptError(f"the total exceeds {MAX_TOTAL_KOPECKS} kopecks", "too_large")
    if draft.payment_type != ELECTRONIC:
        raise ReceiptError("the payment must be one electronic payment", "bad_receipt")
    for what, value in (("e-mail", draft.customer_email), ("phone", draft.customer_phone)):
        if value is not None and not 0 < len(value) <= MAX_CONTACT:
            raise ReceiptError(f"the customer {what} must be 1..{MAX_CONTACT} characters",
                               "bad_customer")


def check(draft: ReceiptDraft) -> None:
    """Raise ReceiptError unless `draft` is a receipt a register accepts as is (a stored
    receipt is checked again before it is sent)."""
    _check(draft)


def make_draft(operation: str, lines: Sequence[ReceiptLine], company: Company,
           customer_email: str | None, customer_phone: str | None) -> ReceiptDraft:
    draft = ReceiptDraft(
        operation=operation,
        lines=tuple(lines),
        total_kopecks=sum(line.amount_kopecks for line in lines),
        company=company,
        customer_email=_contact(customer_email, "e-mail"),
        customer_phone=_contact(customer_phone, "phone"),
        payment_type=ELECTRONIC,
    )
    _check(draft)
    return draft


def check_count(lines: Sequence[object]) -> None:
    if not lines:
        raise ReceiptError("a receipt needs at least one line", "empty")
    if len(lines) > MAX_LINES:
        raise ReceiptError(f"a receipt holds at most {MAX_LINES} lines, not {len(lines)}",
                           "too_many_lines")


def check_sale_lines(lines: Sequence[ReceiptLine]) -> None:
    """Raise ReceiptError unless :func:`sale_receipt` can build a receipt of `lines` (a
    cart is checked at checkout, before the customer is asked to pay)."""
    check_count(lines)
    clean = [clean_line(line, f"line {number}", payment_method=FULL_PAYMENT)
             for number, line in enumerate(lines, 1)]
    total = sum(line.amount_kopecks for line in clean)
    if total > MAX_TOTAL_KOPECKS:
        raise ReceiptError(f"the total exceeds {MAX_TOTAL_KOPECKS} kopecks", "too_large")


def sale_receipt(lines: Sequence[ReceiptLine], *, company: Company,
                 customer_email: str | None = None,
                 customer_phone: str | None = None) -> ReceiptDraft:
    """Чек прихода: the lines as sold, paid in full by one electronic payment.

    :raises ReceiptError: no lines, more than 100, or a line a register would refuse
        (zero price, amount != price × quantity, unknown VAT, ...).
    """
    check_count(lines)
    clean = [clean_line(line, f"line {number}", payment_method=FULL_PAYMENT)
             for number, line in enumerate(lines, 1)]
    return make_draft(SELL, clean, company, customer_email, customer_phone)


def single_line_receipt(amount_kopecks: int, *, name: str, company: Company,
                        vat: str = "none", payment_object: str = "commodity",
                        operation: str = SELL, customer_email: str | None = None,
                        customer_phone: str | None = None) -> ReceiptDraft:
    """A payment without an order (static QR): one line, quantity 1, price = amount."""
    if operation not in (SELL, SELL_REFUND):
        raise ReceiptError(f"unknown operation {operation!r}", "bad_operation")
    check_positive(amount_kopecks)
    if amount_kopecks > MAX_PRICE_KOPECKS:
        raise ReceiptError(f"one line holds at most {MAX_PRICE_KOPECKS} kopecks", "too_large")
    line = ReceiptLine(name=name, price_kopecks=amount_kopecks, quantity_milli=UNIT,
                       amount_kopecks=amount_kopecks, vat=vat, payment_object=payment_object)
    return make_draft(operation, [clean_line(line, "line 1", payment_method=FULL_PAYMENT)],
                  company, customer_email, customer_phone)


def check_positive(amount_kopecks: int) -> None:
    if not is_int(amount_kopecks):
        raise ReceiptError("the amount must be an integer number of kopecks", "bad_amount")
    if amount_kopecks <= 0:
        raise ReceiptError("the amount must be positive", "bad_amount")
