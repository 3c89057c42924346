"""Refunds: asked for here, sent by the `sbp.send_refund` job, followed until final."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from app import audit
from app.errors import InvalidStateError, ValidationError
from app.extensions import db
from app.fiscal import refund_builder
from app.fiscal.builder import ReceiptError
from app.fiscal.receipt import ReceiptLine
from app.httpclient import ProviderError
from app.jobs import enqueue, publish
from app.models import (
    CashLinkActivation,
    Order,
    OrderStatus,
    Payment,
    PaymentStatus,
    QrKind,
    Receipt,
    ReceiptKind,
    Refund,
    RefundStatus,
    utcnow,
)
from app.sbp import get_bank
from app.sbp.common import lock
from app.sbp.provider import REFUND_COMPLETED, REFUND_DECLINED, REFUND_IN_PROGRESS

logger = logging.getLogger(__name__)


def request_refund(payment_id: int, amount_kopecks: int | None = None, *,
                   reason: str | None = None,
                   lines: list[tuple[int, int]] | None = None) -> Refund:
    """Ask for a full (no amount) or partial refund; commit it with the job that sends it.

    A refund by lines (`lines` = [(sale line index, quantity in thousandths)], see
    `refundable_lines`) returns goods: its sum is what those goods are worth on the sale's
    receipt, and its refund receipt lists them. A refund of a sum is spread over the lines.

    The refunds of a payment never add up to more than was paid: the payment row is
    locked while the sum is checked.

    :raises ValidationError: a sum that is not positive or more than is left to refund;
        lines that are not on the sale or are returned already.
    :raises InvalidStateError: the payment is already fully refunded.
    """
    payment = lock(Payment, payment_id)
    if payment.status == PaymentStatus.REFUNDED:
        raise InvalidStateError(_l("Платёж уже полностью возвращён"), code="already_refunded")
    left = payment.refundable_kopecks
    selection = None
    if lines is not None:
        if amount_kopecks is not None:
            raise ValidationError(_l("Укажите либо строки, либо сумму"), code="invalid_amount")
        selection = _normalized_selection(lines)
        amount_kopecks = _lines_worth(payment, selection)
    amount = left if amount_kopecks is None else amount_kopecks
    if amount <= 0:
        raise ValidationError(
            _l("Сумма возврата должна быть больше нуля") if left > 0
            else _l("Вся сумма уже возвращается"),
            code="invalid_amount",
        )
    if amount > left:
        raise ValidationError(
            _l("Вернуть можно не больше %(left)s коп.", left=left), code="over_refund"
        )
    refund = Refund(
        payment_id=payment.id, refund_id=f"rf{payment.id}-{uuid.uuid4().hex[:20]}",
        amount_kopecks=amount, status=RefundStatus.PENDING,
        reason=(reason or "").strip()[:140] or None, lines=selection,
    )
    db.session.add(refund)
    db.session.flush()
    enqueue("sbp.send_refund", {"refund_id": refund.id}, key=f"sbp.send_refund:{refund.id}")
    audit.record("refund.create", target_type="payment", target_id=payment.id,
                 refund_id=refund.id, amount_kopecks=amount, lines=selection,
                 reason=refund.reason)
    db.session.commit()
    logger.info("refund %s of payment %s for %s kopecks requested", refund.id, payment.id, amount)
    return refund


# -- refunds by lines ---------------------------------------------------------------------

@dataclass(frozen=True)
class RefundableLine:
    """A line of the sale and what is still left of it to return."""

    index: int
    line: ReceiptLine
    quantity_left: int
    amount_left: int


def sale_lines(payment: Payment) -> list[ReceiptLine] | None:
    """The lines a refund by lines chooses from: the sale receipt's, else the order's items
    when the payment paid the order's total; None when there are none to choose (a static
    QR, a sum accepted after review): such a payment is refunded by a sum."""
    sale = db.session.scalars(sa.select(Receipt).where(
        Receipt.payment_id == payment.id, Receipt.kind == ReceiptKind.SELL,
        Receipt.refund_id == 0)).first()
    if sale is not None and sale.lines:
        return [ReceiptLine(**line) for line in sale.lines]
    order = payment.order
    if order is None or not order.items or payment.amount_kopecks != order.total_kopecks:
        return None
    return [ReceiptLine(name=item.name, price_kopecks=item.price_kopecks,
                        quantity_milli=item.quantity_milli, amount_kopecks=item.amount_kopecks,
                        vat=item.vat, payment_object=item.payment_object, measure=item.measure)
            for item in order.items]


def _refunded_lines(payment: Payment, sale: list[ReceiptLine]) -> list[ReceiptLine]:
    """The goods the payment's refunds (done or under way) give back, in their order, as
    their refund receipts list them."""
    company = _company()
    given: list[ReceiptLine] = []
    for refund in payment.refunds:
        if refund.status == RefundStatus.DECLINED:
            continue
        if refund.lines:
            draft = refund_builder.refund_by_lines(sale, [tuple(pair) for pair in refund.lines],
                                                   company=company, already_refunded=given)
        else:
            draft = refund_builder.refund_by_amount(sale, refund.amount_kopecks, company=company,
                                                    already_refunded=given)
        given.extend(draft.lines)
    return given


def refundable_lines(payment_id: int) -> list[RefundableLine] | None:
    """Each sale line of a payment with what is left of it to return; None when the
    payment has no lines to choose (refund it by a sum)."""
    payment = db.session.get(Payment, payment_id)
    sale = sale_lines(payment) if payment is not None else None
    if sale is None:
        return None
    try:
        left = refund_builder.left_to_refund(sale, _refunded_lines(payment, sale))
    except ReceiptError:
        return None  # refunds that do not fit the lines: only a sum can be refunded
    return [RefundableLine(index, line, quantity, amount)
            for index, (line, (amount, quantity)) in enumerate(zip(sale, left, strict=True))]


def _normalized_selection(lines) -> list[list[int]]:
    selection = [[int(index), int(quantity)] for index, quantity in lines if quantity]
    if not selection:
        raise ValidationError(_l("Выберите, что вернуть"), code="nothing_selected")
    return selection


def _lines_worth(payment: Payment, selection: list[list[int]]) -> int:
    """What the chosen goods are worth on the sale, after the refunds made before."""
    sale = sale_lines(payment)
    if sale is None:
        raise ValidationError(_l("У этого платежа нет строк: верните сумму"), code="no_lines")
    try:
        draft = refund_builder.refund_by_lines(sale, [tuple(pair) for pair in selection],
                                               company=_company(),
                                        already_refunded=_refunded_lines(payment, sale))
    except ReceiptError as exc:
        if exc.code == "over_refund":
            raise ValidationError(_l("Столько этого товара уже не вернуть: %(why)s",
                                     why=str(exc)), code="over_refund") from exc
        raise ValidationError(_l("Эти строки вернуть нельзя: %(why)s", why=str(exc)),
                              code="bad_selection") from exc
    return draft.total_kopecks


def _company():
    from app.fiscal.writing import company

    return company()


def send_refund(refund_id: int) -> str:
    """Send a pending refund to the bank (the `sbp.send_refund` job). Safe to repeat.

    A QR payment is refunded through the SBP refund, a cash-link sale through the refund
    of its order, as the bank's SDK does.

    :raises ProviderError: the bank could not be reached; the job retries later.
    """
    refund = db.session.get(Refund, refund_id)
    if refund is None or refund.status != RefundStatus.PENDING:
        db.session.rollback()
        return "skipped"
    payment, qr = refund.payment, refund.payment.qr_code
    cash_order = _cash_order(payment)
    common = {"refund_id": refund.refund_id, "amount_kopecks": refund.amount_kopecks,
              "purpose": refund.reason}
    qr_refund = {
        "order": qr.bank_order,
        # One static QR carries many payments: name the one to refund.
        "transaction_id": payment.transaction_id if qr.kind == QrKind.STATIC else None,
    }
    db.session.rollback()
    bank = get_bank()
    try:
        if cash_order is not None:
            result = bank.refund_cash_link_order(order_id=cash_order, **common)
        else:
            result = bank.refund(**common, **qr_refund)
    except ProviderError as exc:
        if exc.retryable:
            raise  # the job sends it again under the same refund id: the bank refunds once
        # A refusal, or an answer that does not say (a repeat of a request whose reply was
        # lost may be refused as a duplicate): the money may be on its way all the same.
        # Only the bank's own refund status may decline it.
        return _apply_refund_status(refund_id, _refund_status_after(refund_id, exc),
                                    error=f"{exc.code}: {exc.message}")
    return _apply_refund_status(refund_id, result.status)


def _cash_order(payment: Payment) -> str | None:
    """The bank order of the cash-link sale a payment paid, or None for a QR payment."""
    if payment.activation_id is None:
        return None
    return db.session.get(CashLinkActivation, payment.activation_id).bank_order_id


def _bank_refund(refund_id: int):
    """The bank's view of a refund (RefundInfo), asked where it was sent."""
    refund = db.session.get(Refund, refund_id)
    external, cash_order = refund.refund_id, _cash_order(refund.payment)
    db.session.rollback()
    if cash_order is not None:
        return get_bank().get_cash_link_refund(cash_order, external)
    return get_bank().get_refund(external)


def _refund_status_after(refund_id: int, refused: ProviderError) -> str:
    """The bank's status of a refund whose request it refused; declined only if the bank
    declined it or has no such refund.

    :raises ProviderError: the bank's refund status cannot be had now; the job retries.
    """
    try:
        status = _bank_refund(refund_id).status
    except ProviderError as exc:
        if exc.code != "ERROR.REFUND_NOT_FOUND":
            raise ProviderError(exc.code, f"refund refused ({refused.code}), and its status "
                                f"is unknown: {exc.message}", provider=exc.provider,
                                retryable=True) from exc
        return REFUND_DECLINED
    logger.warning("refund %s refused (%s: %s); the bank's status says %s", refund_id,
                   refused.code, refused.message, status)
    return status


def poll_refund(refund_id: int) -> str:
    """Ask the bank how a refund is going and record the answer."""
    refund = db.session.get(Refund, refund_id)
    if refund is None or refund.status not in (RefundStatus.PENDING, RefundStatus.IN_PROGRESS):
        db.session.rollback()
        return "skipped"
    return _apply_refund_status(refund_id, _bank_refund(refund_id).status)


def _apply_refund_status(refund_id: int, bank_status: str, *, error: str | None = None) -> str:
    refund = lock(Refund, refund_id)
    refund.last_checked_at = utcnow()
    if bank_status == REFUND_IN_PROGRESS:
        if refund.status == RefundStatus.PENDING:
            refund.set_status(RefundStatus.IN_PROGRESS)
            enqueue("sbp.poll_refund", {"refund_id": refund.id},
                    key=f"sbp.poll_refund:{refund.id}", run_at=utcnow() + timedelta(seconds=1))
    elif bank_status == REFUND_COMPLETED:
        if refund.status != RefundStatus.COMPLETED:
            _complete_refund(refund)
    elif bank_status == REFUND_DECLINED:
        if refund.status != RefundStatus.DECLINED:
            refund.set_status(RefundStatus.DECLINED)
            refund.error = (error or "declined by the bank")[:255]
            publish("refund.declined", {"refund_id": refund.id}, key=f"refund-{refund.id}")
            logger.warning("refund %s declined: %s", refund.id, refund.error)
    else:
        logger.warning("refund %s: unknown bank status %r", refund.id, bank_status)
    status = refund.status.value
    db.session.commit()
    return status


def _complete_refund(refund: Refund) -> None:
    payment = lock(Payment, refund.payment_id)
    refund.set_status(RefundStatus.COMPLETED)
    refund.completed_at = utcnow()
    payment.refunded_kopecks += refund.amount_kopecks
    full = payment.refunded_kopecks >= payment.amount_kopecks
    in_review = payment.status == PaymentStatus.REVIEW
    if not in_review or full:
        payment.set_status(PaymentStatus.REFUNDED if full else PaymentStatus.PARTIALLY_REFUNDED)
    # Money under review never paid the order (another payment did, or none): the order
    # stays as it is when that money goes back.
    if payment.order_id is not None and not in_review:
        order = lock(Order, payment.order_id)
        target = OrderStatus.REFUNDED if full else OrderStatus.PARTIALLY_REFUNDED
        if order.status != target and order.status in (OrderStatus.PAID,
                                                       OrderStatus.PARTIALLY_REFUNDED):
            order.set_status(target)
    publish("refund.completed", {"refund_id": refund.id}, key=f"refund-{refund.id}")
    logger.info("refund %s completed: payment %s refunded %s of %s", refund.id, payment.id,
                payment.refunded_kopecks, payment.amount_kopecks)
