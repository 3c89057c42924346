"""The bank's news about payments, by callback or by poll: recorded once, applied once.

Also where the bank is told to send its news, and the review of money it brought that we
did not expect.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import logging
from collections.abc import Mapping
from datetime import UTC

import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy.dialects import postgresql, sqlite

from app import audit
from app.errors import InvalidStateError, NotFoundError
from app.extensions import db
from app.httpclient import ProviderError
from app.jobs import publish
from app.models import (
    ActivationStatus,
    BankEvent,
    CashLinkActivation,
    Order,
    OrderStatus,
    Payment,
    PaymentStatus,
    QrCode,
    QrKind,
    QrStatus,
    utcnow,
)
from app.sbp import get_bank
from app.sbp.common import SETTLEABLE_ORDER, bank_failure, close_activation, lock
from app.sbp.provider import PAY_SUCCESS, PaymentInfo

logger = logging.getLogger(__name__)


class Outcome(enum.StrEnum):
    """What a piece of bank news did. Every outcome but UNKNOWN_ORDER lets the bank stop
    resending: the news is on file, or it needs a person rather than another try."""

    PAID = "paid"
    AMOUNT_MISMATCH = "amount_mismatch"  # recorded for review: not the sum that was asked
    REVIEW = "review"                    # recorded for review: paid twice, or order closed
    BAD_AMOUNT = "bad_amount"            # a zero or negative sum: flagged, nothing recorded
    DUPLICATE = "duplicate"              # this very news is on file
    DUPLICATE_PAYMENT = "duplicate_payment"  # the payment is on file under other news
    IGNORED = "ignored"                  # not a success (declined, in progress): logged
    UNKNOWN_ORDER = "unknown_order"      # no QR or sale of ours has this order: not yet


def handle_callback(raw_body: bytes, headers: Mapping[str, str]) -> Outcome:
    """Verify and apply one bank notification (POST /sbp/callback): the provider checks
    the request's signature, wherever its bank puts it.

    :raises SignatureError: bad or missing signature; nothing is recorded.
    :raises ProviderError: a body that is not a notification, or one whose unsigned qrId
        is not the QR of its signed order; nothing is recorded.
    """
    info = get_bank().parse_request(headers, raw_body)
    return apply_bank_event(info, source="callback", raw=raw_body.decode("utf-8", "replace"))


def payment_key(info: PaymentInfo) -> str:
    """A payment's identity at the bank, from the fields the bank signs: order, sum, time.

    The bank signs `amount|sbpMerchantId|order|paymentStatus|transactionDate` and nothing
    else; `qrId` and `transactionId` are not covered, so they never tell payments apart.
    Values are normalized (kopecks, UTC) so that a callback and a poll of the same payment
    give the same key.
    """
    when = info.transaction_date.astimezone(UTC).isoformat() if info.transaction_date else ""
    key = f"{info.order}|{info.amount_kopecks}|{when}"
    return key if len(key) <= 100 else "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def apply_bank_event(info: PaymentInfo, *, source: str, raw: str) -> Outcome:
    """Record the bank's news about a payment once and move the state; commit.

    The QR code or cash-link sale is found by the signed `order` alone, and the news is
    recorded once per signed content: a repeat, or a replay with any unsigned field
    changed, records nothing. News for an order we do not know (yet) records nothing
    either, so the bank's resend or the reconciler's poll can still apply it. Money that
    arrived is never dropped: a wrong sum, a second payment, or a payment for an order
    that is closed already is recorded for review.

    :raises ProviderError: code "qr_mismatch": the unsigned qrId is not the QR of the
        signed order; nothing is recorded.
    """
    key = payment_key(info)
    outcome = _record(info, key, source=source, raw=raw)
    if outcome == Outcome.DUPLICATE and _maybe_twin(info, key):
        # Two payments with the same signed fields (a static QR paid the same sum twice
        # within the bank's clock tick): only the bank can tell a twin from a replay.
        outcome = _record(info, f"{key}#{info.transaction_id}", source=source, raw=raw)
    return outcome


def _lock_target(info: PaymentInfo) -> tuple[QrCode, CashLinkActivation | None] | None:
    """The QR code, and the cash-link sale, of the signed order, locked; None if unknown.

    :raises ProviderError: "qr_mismatch", the unsigned qrId names another QR.
    """
    qr = db.session.scalars(sa.select(QrCode).where(QrCode.bank_order == info.order)
                            .with_for_update()).one_or_none()
    activation = None
    if qr is None:
        link_id = db.session.scalar(sa.select(CashLinkActivation.qr_code_id).where(
            CashLinkActivation.bank_order_id == info.order))
        if link_id is None:
            return None
        qr = lock(QrCode, link_id)
        activation = db.session.scalars(
            sa.select(CashLinkActivation).where(CashLinkActivation.bank_order_id == info.order)
            .with_for_update()).one()
    elif qr.kind == QrKind.CASH_LINK:
        return None  # a cash link is paid through its sales' orders, never its own
    if info.qr_id and info.qr_id != qr.qr_id:
        logger.warning("bank news for order %r names QR %s, but that order is QR %s: refused",
                       info.order, info.qr_id, qr.qr_id)
        raise ProviderError("qr_mismatch", "qrId does not match the QR of this order",
                            provider=get_bank().name)
    return qr, activation


def _record(info: PaymentInfo, key: str, *, source: str, raw: str) -> Outcome:
    try:
        target = _lock_target(info)
    except ProviderError:
        db.session.rollback()
        raise
    if target is None:
        db.session.rollback()
        logger.warning("bank news for unknown order %r (QR %s): not recorded, the bank will "
                       "resend it", info.order, info.qr_id)
        return Outcome.UNKNOWN_ORDER
    qr, activation = target
    # INSERT ... ON CONFLICT DO NOTHING RETURNING id: no row back means this news was
    # recorded before (a concurrent repeat waits on the QR's lock above until the first
    # one commits).
    event_key = f"{key}|{info.status}"
    event_id = db.session.execute(_event_insert(db.session.get_bind().dialect.name), {
        "provider": get_bank().name, "event_key": event_key, "source": source,
        "qr_id": info.qr_id or None, "transaction_id": info.transaction_id,
        "payment_status": info.status, "payload": raw, "outcome": "received",
        "received_at": utcnow(),
    }).scalar()
    if event_id is None:
        db.session.rollback()
        logger.info("bank event %s repeated; nothing to do", event_key)
        return Outcome.DUPLICATE
    if info.status != PAY_SUCCESS:
        outcome = Outcome.IGNORED
        logger.info("QR %s: payment %s for order %s", qr.qr_id, info.status, info.order)
    else:
        with db.session.no_autoflush:
            outcome = _record_success(qr, activation, info, key)
    events = BankEvent.__table__
    db.session.execute(sa.update(events).where(events.c.id == event_id).values(outcome=outcome))
    db.session.commit()
    return outcome


def _maybe_twin(info: PaymentInfo, key: str) -> bool:
    """A static QR's success whose signed fields are on file under another transaction id,
    and which the bank's own API confirms: a second payment, not a replay."""
    qr = db.session.scalars(sa.select(QrCode).where(QrCode.bank_order == info.order)
                            ).one_or_none()
    recorded = db.session.scalar(sa.select(Payment.transaction_id).where(
        Payment.bank_key == key))
    db.session.rollback()
    if (qr is None or qr.kind != QrKind.STATIC or info.status != PAY_SUCCESS
            or not info.transaction_id or recorded is None or recorded == info.transaction_id):
        return False
    try:
        bank = get_bank().get_payment(qr.qr_id)
    except ProviderError as exc:
        if exc.retryable:
            raise  # the bank is asked again when it resends
        return False
    confirmed = (bank.status == PAY_SUCCESS and bank.transaction_id == info.transaction_id
                 and payment_key(bank) == key)
    logger.warning("static QR %s: news for transaction %s repeats the signed fields of %s; "
                   "the bank %s it", qr.qr_id, info.transaction_id, recorded,
                   "confirms" if confirmed else "does not confirm")
    return confirmed


@functools.cache
def _event_insert(dialect: str):
    module = {"postgresql": postgresql, "sqlite": sqlite}[dialect]
    events = BankEvent.__table__
    return (module.insert(events)
            .on_conflict_do_nothing(index_elements=["provider", "event_key"])
            .returning(events.c.id))


def _record_success(qr: QrCode, activation: CashLinkActivation | None, info: PaymentInfo,
                    key: str) -> Outcome:
    amount = info.amount_kopecks or 0
    if amount <= 0:
        qr.flag_for_review(f"bank reported a payment of {amount} kopecks")
        logger.error("QR %s: payment of %s kopecks reported; flagged", qr.qr_id, amount)
        return Outcome.BAD_AMOUNT
    expected = activation.amount_kopecks if activation else qr.amount_kopecks
    order_id = activation.order_id if activation else qr.order_id
    already_paid = (activation.status == ActivationStatus.PAID if activation
                    else qr.status == QrStatus.PAID)
    if (qr.kind != QrKind.STATIC and (already_paid or qr.needs_review)
            and info.transaction_id and _same_payment(qr, activation, info.transaction_id,
                                                      amount)):
        return Outcome.DUPLICATE_PAYMENT
    order = lock(Order, order_id) if order_id is not None else None

    outcome, reason = Outcome.PAID, None
    if expected is not None and amount != expected:
        outcome, reason = (Outcome.AMOUNT_MISMATCH,
                           f"bank reported {amount} kopecks, QR asked for {expected}")
    elif already_paid:
        outcome, reason = Outcome.REVIEW, "paid again after it was paid"
    elif order is not None and order.status not in SETTLEABLE_ORDER:
        outcome, reason = Outcome.REVIEW, f"order was already {order.status.value}"
    payment = Payment(
        qr_code_id=qr.id, activation_id=activation.id if activation else None,
        order_id=order_id, bank_key=key, transaction_id=info.transaction_id,
        amount_kopecks=amount, status=PaymentStatus.REVIEW if reason else PaymentStatus.PAID,
        review_reason=reason, paid_at=info.transaction_date or utcnow(),
    )
    db.session.add(payment)
    if reason:
        qr.flag_for_review(reason)
        db.session.flush()
        publish("payment.review", {"payment_id": payment.id}, key=f"payment-{payment.id}")
        logger.error("QR %s: payment %s: %s; flagged for review", qr.qr_id, payment.id, reason)
        return outcome
    _settle(qr, activation, order, payment)
    logger.info("QR %s paid: payment %s, %s kopecks", qr.qr_id, payment.id, amount)
    return Outcome.PAID


def _same_payment(qr: QrCode, activation: CashLinkActivation | None, transaction_id: str,
                  amount: int) -> bool:
    """A QR or sale that takes one payment has this one on file under other news (the
    same transaction and sum reported in another form). Only ever merges, never creates."""
    where = (Payment.activation_id == activation.id if activation
             else Payment.qr_code_id == qr.id)
    return db.session.scalar(sa.select(sa.func.count()).select_from(Payment).where(
        where, Payment.transaction_id == transaction_id, Payment.amount_kopecks == amount)) > 0


def _settle(qr: QrCode, activation: CashLinkActivation | None, order: Order | None,
            payment: Payment) -> None:
    """Mark what the payment paid as paid and publish "payment.paid" (rows locked)."""
    if qr.kind == QrKind.DYNAMIC and qr.status != QrStatus.PAID:
        qr.set_status(QrStatus.PAID)
    if activation is not None:
        if activation.status != ActivationStatus.PAID:
            activation.set_status(ActivationStatus.PAID)
        close_activation(activation, ActivationStatus.PAID)
    if order is not None and order.status in SETTLEABLE_ORDER:
        if order.status != OrderStatus.PENDING:
            logger.warning("order %s was %s but the bank took the money: marking paid",
                           order.id, order.status.value)
        order.set_status(OrderStatus.PAID)
        order.paid_at = payment.paid_at
    db.session.flush()
    publish("payment.paid", {"payment_id": payment.id}, key=f"payment-{payment.id}")


def accept_payment(payment_id: int) -> Payment:
    """Accept a payment that was flagged for review: it counts as paid and is fiscalized.

    Its QR code, cash-link sale and order are marked paid if they are not already.

    :raises InvalidStateError: the payment is not waiting for review.
    """
    payment = db.session.get(Payment, payment_id)
    if payment is None:
        raise NotFoundError(_l("Платёж не найден"))
    ids = payment.qr_code_id, payment.activation_id, payment.order_id
    db.session.rollback()
    qr = lock(QrCode, ids[0])
    activation = lock(CashLinkActivation, ids[1]) if ids[1] else None
    order = lock(Order, ids[2]) if ids[2] else None
    payment = lock(Payment, payment_id)
    if payment.status != PaymentStatus.REVIEW:
        db.session.rollback()
        raise InvalidStateError(_l("Платёж не ждёт проверки"), code="payment_not_in_review")
    payment.set_status(PaymentStatus.PAID)
    logger.warning("payment %s accepted after review (%s)", payment.id, payment.review_reason)
    audit.record("payment.accept", target_type="payment", target_id=payment.id,
                 amount_kopecks=payment.amount_kopecks, review_reason=payment.review_reason)
    payment.review_reason = None
    _settle(qr, activation, order, payment)
    db.session.flush()
    if not db.session.scalar(sa.select(sa.func.count()).select_from(Payment).where(
            Payment.qr_code_id == qr.id, Payment.status == PaymentStatus.REVIEW)):
        qr.needs_review, qr.review_reason = False, None
    db.session.commit()
    return payment


def set_callback_url(url: str | None = None) -> str:
    """Tell the bank where to send notifications (PUBLIC_URL/sbp/callback by default)."""
    url = url or current_app.config["PUBLIC_URL"] + "/sbp/callback"
    try:
        get_bank().set_callback_url(url)
    except ProviderError as exc:
        raise bank_failure(exc) from exc
    return url
