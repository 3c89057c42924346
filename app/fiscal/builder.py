"""Pure 54-ФЗ receipt builder: sale and refund receipt drafts from plain lines.

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

Refund state. A sale line's *refundable amount* is its amount minus what ``already_refunded``
gave back on it, its *refundable quantity* likewise. Refund lines are matched to sale lines
by (normalized name, vat, payment_object, measure, payment_method); when several sale lines
share that key, the refunded sums and quantities of the key are attributed to them in
receipt order, each line filled up before the next (identical lines are indistinguishable
on a receipt, so the per-key totals are what the register sees). A refund line matching no
sale line, or refunds exceeding what a key sold, is ``bad_history``.

``refund_by_amount``: the sum is spread over the lines proportionally to each line's
refundable amount by the largest-remainder method (ties go to the earlier line), so
Σ shares == amount and no share exceeds what is left on its line. A share ``s`` of a line
with refundable amount ``r`` and quantity ``rq`` becomes ONE refund line (never split, so a
refund has at most as many lines as the sale):

1. quantity: the share's proportional part of the refundable quantity, ``rq·s // r``
   (everything left, ``rq``, when the share completes the line), clamped so that it is at
   least ``need(s)`` and leaves at least ``need(r − s)`` for the rest of the line. Rounding
   the quantity down keeps the quantity left per kopeck left from falling (except when a
   tiny share still needs its 0,001), so successive partial refunds keep the cumulative
   quantity within the sold quantity and a later ``refund_by_lines`` can still return the
   goods that are left, at their sale price.
2. that quantity at a valid price (see above); else the sale price with the quantity
   (within the same bounds) closest to the target; else quantity ``min(target, 1000)`` at
   a valid price (always possible).
3. fallback when the line's remaining quantity is too small to be divided (e.g. 0,001 kg
   left and only part of its money refunded): quantity ``min(sold quantity, 1000)`` (one
   unit, or the whole fractional quantity) at a valid price. The quantity per receipt
   still never exceeds the sold quantity, but the cumulative quantity may; such a line
   can then only be refunded by amount.

``refund_by_lines``: ``selection`` is ``[(index, quantity_milli)]`` (repeated indexes add
up). Returning all that is left of a line (``quantity == refundable quantity``) refunds
exactly its refundable amount, so the refunds of a line always add up to its sale amount.
A partial return refunds ``round_half_up(price × quantity / 1000)`` but at most the
refundable amount minus one kopeck, so the rest of the line can still be returned, and at
least what the rest of the quantity cannot carry at the price limit (matters only for
prices near 42 949 673 ₽); a part that rounds to 0 kopecks is refused (``bad_selection``)
because registers refuse zero sums, and so is a part that cannot carry its amount within
the price limit.
The refund line is (sale price, quantity) when that gives the amount; else the same
quantity at a valid price (see above); else, for quantities over one unit, two lines
(sale price × (quantity − 1), then 1 unit at whatever kopecks remain); else (only when the
money left is worth less than a kopeck per unit) fewer units at a valid price.

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


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _need(amount: int) -> int:
    """The smallest quantity (<= 1000) that can carry `amount` at a price within limits."""
    if amount <= 0:
        return 0
    return max(1, _ceil_div(UNIT * amount - UNIT // 2, MAX_PRICE_KOPECKS))


def _capacity(quantity: int) -> int:
    """The largest amount a line of `quantity` (or of one unit, if more) can carry."""
    return min(MAX_PRICE_KOPECKS, (quantity * MAX_PRICE_KOPECKS + UNIT // 2) // UNIT)


def _price_for(amount: int, quantity: int, sale_price: int) -> int | None:
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


def _quantity_at(amount: int, price: int, low: int, high: int, target: int) -> int | None:
    """The quantity in [low, high] closest to `target` with price × quantity == amount."""
    low = max(low, 1, _ceil_div(UNIT * amount - UNIT // 2, price))
    high = min(high, MAX_QUANTITY_MILLI, _ceil_div(UNIT * amount + UNIT // 2, price) - 1)
    if low > high:
        return None
    return min(max(target, low), high)


def _largest_remainder(amount: int, weights: Sequence[int]) -> list[int]:
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


def _clean_line(line: ReceiptLine, where: str, *, payment_method: str | None = None,
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
    if not (_is_int(price) and _is_int(quantity) and _is_int(amount)):
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


def _priced(source: ReceiptLine, price: int, quantity: int) -> ReceiptLine:
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


def _draft(operation: str, lines: Sequence[ReceiptLine], company: Company,
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


def _count(lines: Sequence[object]) -> None:
    if not lines:
        raise ReceiptError("a receipt needs at least one line", "empty")
    if len(lines) > MAX_LINES:
        raise ReceiptError(f"a receipt holds at most {MAX_LINES} lines, not {len(lines)}",
                           "too_many_lines")


def check_sale_lines(lines: Sequence[ReceiptLine]) -> None:
    """Raise ReceiptError unless :func:`sale_receipt` can build a receipt of `lines` (a
    cart is checked at checkout, before the customer is asked to pay)."""
    _count(lines)
    clean = [_clean_line(line, f"line {number}", payment_method=FULL_PAYMENT)
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
    _count(lines)
    clean = [_clean_line(line, f"line {number}", payment_method=FULL_PAYMENT)
             for number, line in enumerate(lines, 1)]
    return _draft(SELL, clean, company, customer_email, customer_phone)


def single_line_receipt(amount_kopecks: int, *, name: str, company: Company,
                        vat: str = "none", payment_object: str = "commodity",
                        operation: str = SELL, customer_email: str | None = None,
                        customer_phone: str | None = None) -> ReceiptDraft:
    """A payment without an order (static QR): one line, quantity 1, price = amount."""
    if operation not in (SELL, SELL_REFUND):
        raise ReceiptError(f"unknown operation {operation!r}", "bad_operation")
    _check_positive(amount_kopecks)
    if amount_kopecks > MAX_PRICE_KOPECKS:
        raise ReceiptError(f"one line holds at most {MAX_PRICE_KOPECKS} kopecks", "too_large")
    line = ReceiptLine(name=name, price_kopecks=amount_kopecks, quantity_milli=UNIT,
                       amount_kopecks=amount_kopecks, vat=vat, payment_object=payment_object)
    return _draft(operation, [_clean_line(line, "line 1", payment_method=FULL_PAYMENT)],
                  company, customer_email, customer_phone)


def _check_positive(amount_kopecks: int) -> None:
    if not _is_int(amount_kopecks):
        raise ReceiptError("the amount must be an integer number of kopecks", "bad_amount")
    if amount_kopecks <= 0:
        raise ReceiptError("the amount must be positive", "bad_amount")


# ---------------------------------------------------------------------------- refunds


def _key(line: ReceiptLine) -> tuple[str, str, str, str, str]:
    return (line.name, line.vat, line.payment_object, line.measure, line.payment_method)


def _sale_lines(sale_lines: Sequence[ReceiptLine]) -> list[ReceiptLine]:
    _count(sale_lines)
    return [_clean_line(line, f"sale line {number}")
            for number, line in enumerate(sale_lines, 1)]


def left_to_refund(sale: Sequence[ReceiptLine],
               already_refunded: Sequence[ReceiptLine]) -> list[tuple[int, int]]:
    """(refundable amount, refundable quantity) of each sale line."""
    groups: dict[tuple[str, str, str, str, str], list[int]] = {}
    for index, line in enumerate(sale):
        groups.setdefault(_key(line), []).append(index)
    amounts = dict.fromkeys(groups, 0)
    quantities = dict.fromkeys(groups, 0)
    for number, line in enumerate(already_refunded, 1):
        clean = _clean_line(line, f"refunded line {number}", code="bad_history")
        key = _key(clean)
        if key not in groups:
            raise ReceiptError(f"refunded line {number} ({clean.name!r}) matches no sale line",
                               "bad_history")
        amounts[key] += clean.amount_kopecks
        quantities[key] += clean.quantity_milli
    left = [(0, 0)] * len(sale)
    for key, indexes in groups.items():
        amount, quantity = amounts[key], quantities[key]
        for index in indexes:
            line = sale[index]
            take_amount = min(line.amount_kopecks, amount)
            take_quantity = min(line.quantity_milli, quantity)
            amount -= take_amount
            quantity -= take_quantity
            left[index] = (line.amount_kopecks - take_amount, line.quantity_milli - take_quantity)
        if amount:
            raise ReceiptError(f"{key[0]!r} was refunded {amount} kopecks more than it sold",
                               "bad_history")
    return left


def _share_line(source: ReceiptLine, share: int, left: int, left_quantity: int) -> ReceiptLine:
    """One refund line for `share` kopecks of a sale line (see the module docstring)."""
    low = _need(share)
    high = left_quantity if share == left else left_quantity - _need(left - share)
    if low > high:  # the rest of this line's quantity cannot be divided any more
        high = target = min(source.quantity_milli, UNIT)
    else:
        target = min(max(left_quantity * share // left, low), high)
    price = _price_for(share, target, source.price_kopecks)
    if price is not None:
        return _priced(source, price, target)
    quantity = _quantity_at(share, source.price_kopecks, low, high, target)
    if quantity is not None:
        return _priced(source, source.price_kopecks, quantity)
    quantity = min(target, UNIT)
    price = _price_for(share, quantity, source.price_kopecks)
    if price is None:  # cannot happen: quantity >= need(share) and <= 1000
        raise ReceiptError(f"cannot write {share} kopecks of {source.name!r} on a line",
                           "bad_line")
    return _priced(source, price, quantity)


def refund_by_amount(sale_lines: Sequence[ReceiptLine], amount_kopecks: int, *,
                     company: Company, already_refunded: Sequence[ReceiptLine] = (),
                     customer_email: str | None = None,
                     customer_phone: str | None = None) -> ReceiptDraft:
    """Чек возврата прихода for `amount_kopecks` spread over the sale's lines.

    Each line gets a share proportional to what is still refundable on it (largest
    remainder), so Σ == amount exactly and no line gets back more than it sold.

    :raises ReceiptError: ``bad_amount`` (amount <= 0), ``over_refund`` (more than is
        left), ``bad_history`` (``already_refunded`` does not fit the sale).
    """
    _check_positive(amount_kopecks)
    sale = _sale_lines(sale_lines)
    left = left_to_refund(sale, already_refunded)
    refundable = sum(amount for amount, _ in left)
    if amount_kopecks > refundable:
        raise ReceiptError(f"cannot refund {amount_kopecks} kopecks: only {refundable} "
                           "are left to refund", "over_refund")
    shares = _largest_remainder(amount_kopecks, [amount for amount, _ in left])
    lines = [_share_line(source, share, amount, quantity)
             for source, share, (amount, quantity) in zip(sale, shares, left, strict=True)
             if share]
    return _draft(SELL_REFUND, lines, company, customer_email, customer_phone)


def _selection(selection: Sequence[tuple[int, int]], size: int) -> dict[int, int]:
    if not selection:
        raise ReceiptError("nothing selected to refund", "empty")
    wanted: dict[int, int] = {}
    for item in selection:
        try:
            index, quantity = item
        except (TypeError, ValueError):
            raise ReceiptError(f"bad selection item {item!r}", "bad_selection") from None
        if not (_is_int(index) and 0 <= index < size):
            raise ReceiptError(f"no sale line {index!r}", "bad_selection")
        if not (_is_int(quantity) and quantity > 0):
            raise ReceiptError(f"bad quantity {quantity!r} for sale line {index}",
                               "bad_selection")
        wanted[index] = wanted.get(index, 0) + quantity
    return dict(sorted(wanted.items()))


def _split(source: ReceiptLine, amount: int, quantity: int) -> list[ReceiptLine] | None:
    """Two lines, (price × (quantity − 1 unit)) + (1 unit), worth exactly `amount`."""
    head = quantity - UNIT
    highest = min(MAX_PRICE_KOPECKS, (UNIT * amount - UNIT // 2 - 1) // head)
    if highest < 1:
        return None
    price = min(source.price_kopecks, highest)
    if line_amount(price, head) < 1:
        price = highest
    first = line_amount(price, head)
    if first < 1:
        return None
    return [_priced(source, price, head), _priced(source, amount - first, UNIT)]


def _part_lines(source: ReceiptLine, amount: int, quantity: int) -> list[ReceiptLine]:
    """Refund lines worth exactly `amount` for `quantity` of a sale line."""
    price = _price_for(amount, quantity, source.price_kopecks)
    if price is not None:
        return [_priced(source, price, quantity)]
    if quantity > UNIT:
        split = _split(source, amount, quantity)
        if split is not None:
            return split
    quantity = min(quantity, UNIT)
    price = _price_for(amount, quantity, source.price_kopecks)
    if price is None:
        raise ReceiptError(f"cannot write {amount} kopecks of {source.name!r} on a line",
                           "bad_line")
    return [_priced(source, price, quantity)]


def refund_by_lines(sale_lines: Sequence[ReceiptLine], selection: Sequence[tuple[int, int]],
                    *, company: Company, already_refunded: Sequence[ReceiptLine] = (),
                    customer_email: str | None = None,
                    customer_phone: str | None = None) -> ReceiptDraft:
    """Чек возврата прихода for returned goods: ``selection`` = [(sale line index, qty_milli)].

    :raises ReceiptError: ``over_refund`` (more than is left of a line, or its money is
        all refunded), ``bad_selection`` (bad index or quantity, or a part worth 0 kopecks),
        ``empty``, ``bad_history``.
    """
    sale = _sale_lines(sale_lines)
    wanted = _selection(selection, len(sale))
    left = left_to_refund(sale, already_refunded)
    lines: list[ReceiptLine] = []
    for index, quantity in wanted.items():
        source = sale[index]
        amount_left, quantity_left = left[index]
        if quantity > quantity_left or amount_left == 0:
            raise ReceiptError(f"sale line {index} ({source.name!r}): only {quantity_left} "
                               f"thousandths and {amount_left} kopecks are left to refund",
                               "over_refund")
        if quantity == quantity_left:
            amount = amount_left
        else:
            nominal = line_amount(source.price_kopecks, quantity)
            if nominal == 0:
                raise ReceiptError(f"sale line {index}: {quantity} thousandths are worth "
                                   "0 kopecks", "bad_selection")
            # Leave at least a kopeck, and no more than the rest of the quantity can carry.
            amount = max(min(nominal, amount_left - 1),
                         amount_left - _capacity(quantity_left - quantity))
            if amount < 1:
                raise ReceiptError(f"sale line {index}: only {amount_left} kopeck is left; "
                                   "return all that is left of the line", "over_refund")
            if amount > _capacity(quantity):
                raise ReceiptError(f"sale line {index}: {quantity} thousandths cannot carry "
                                   f"{amount} kopecks within the price limit; return more",
                                   "bad_selection")
        lines.extend(_part_lines(source, amount, quantity))
    _count(lines)
    return _draft(SELL_REFUND, lines, company, customer_email, customer_phone)
