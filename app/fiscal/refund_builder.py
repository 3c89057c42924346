"""Pure 54-ФЗ refund receipt drafts, from the sale's lines and what was refunded before.

No Flask, no database; the line rules, rounding and checks are the sale builder's
(:mod:`app.fiscal.builder`), whose helpers this module uses.

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
"""

from __future__ import annotations

from collections.abc import Sequence

from app.fiscal.builder import (
    ReceiptError,
    capacity,
    check_count,
    check_positive,
    clean_line,
    is_int,
    largest_remainder,
    make_draft,
    min_quantity,
    price_for,
    priced,
    quantity_at,
)
from app.fiscal.receipt import SELL_REFUND, Company, ReceiptDraft, ReceiptLine
from app.receipt_lines import MAX_PRICE_KOPECKS, UNIT, line_amount


def _key(line: ReceiptLine) -> tuple[str, str, str, str, str]:
    return (line.name, line.vat, line.payment_object, line.measure, line.payment_method)


def _sale_lines(sale_lines: Sequence[ReceiptLine]) -> list[ReceiptLine]:
    check_count(sale_lines)
    return [clean_line(line, f"sale line {number}")
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
        clean = clean_line(line, f"refunded line {number}", code="bad_history")
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
    low = min_quantity(share)
    high = left_quantity if share == left else left_quantity - min_quantity(left - share)
    if low > high:  # the rest of this line's quantity cannot be divided any more
        high = target = min(source.quantity_milli, UNIT)
    else:
        target = min(max(left_quantity * share // left, low), high)
    price = price_for(share, target, source.price_kopecks)
    if price is not None:
        return priced(source, price, target)
    quantity = quantity_at(share, source.price_kopecks, low, high, target)
    if quantity is not None:
        return priced(source, source.price_kopecks, quantity)
    quantity = min(target, UNIT)
    price = price_for(share, quantity, source.price_kopecks)
    if price is None:  # cannot happen: quantity >= need(share) and <= 1000
        raise ReceiptError(f"cannot write {share} kopecks of {source.name!r} on a line",
                           "bad_line")
    return priced(source, price, quantity)


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
    check_positive(amount_kopecks)
    sale = _sale_lines(sale_lines)
    left = left_to_refund(sale, already_refunded)
    refundable = sum(amount for amount, _ in left)
    if amount_kopecks > refundable:
        raise ReceiptError(f"cannot refund {amount_kopecks} kopecks: only {refundable} "
                           "are left to refund", "over_refund")
    shares = largest_remainder(amount_kopecks, [amount for amount, _ in left])
    lines = [_share_line(source, share, amount, quantity)
             for source, share, (amount, quantity) in zip(sale, shares, left, strict=True)
             if share]
    return make_draft(SELL_REFUND, lines, company, customer_email, customer_phone)


def _selection(selection: Sequence[tuple[int, int]], size: int) -> dict[int, int]:
    if not selection:
        raise ReceiptError("nothing selected to refund", "empty")
    wanted: dict[int, int] = {}
    for item in selection:
        try:
            index, quantity = item
        except (TypeError, ValueError):
            raise ReceiptError(f"bad selection item {item!r}", "bad_selection") from None
        if not (is_int(index) and 0 <= index < size):
            raise ReceiptError(f"no sale line {index!r}", "bad_selection")
        if not (is_int(quantity) and quantity > 0):
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
    return [priced(source, price, head), priced(source, amount - first, UNIT)]


def _part_lines(source: ReceiptLine, amount: int, quantity: int) -> list[ReceiptLine]:
    """Refund lines worth exactly `amount` for `quantity` of a sale line."""
    price = price_for(amount, quantity, source.price_kopecks)
    if price is not None:
        return [priced(source, price, quantity)]
    if quantity > UNIT:
        split = _split(source, amount, quantity)
        if split is not None:
            return split
    quantity = min(quantity, UNIT)
    price = price_for(amount, quantity, source.price_kopecks)
    if price is None:
        raise ReceiptError(f"cannot write {amount} kopecks of {source.name!r} on a line",
                           "bad_line")
    return [priced(source, price, quantity)]


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
                         amount_left - capacity(quantity_left - quantity))
            if amount < 1:
                raise ReceiptError(f"sale line {index}: only {amount_left} kopeck is left; "
                                   "return all that is left of the line", "over_refund")
            if amount > capacity(quantity):
                raise ReceiptError(f"sale line {index}: {quantity} thousandths cannot carry "
                                   f"{amount} kopecks within the price limit; return more",
                                   "bad_selection")
        lines.extend(_part_lines(source, amount, quantity))
    check_count(lines)
    return make_draft(SELL_REFUND, lines, company, customer_email, customer_phone)
