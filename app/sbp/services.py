"""Payment services: QR codes at the bank, cash links, bank events, refunds.

Each public function commits once or rolls back. No transaction is held open across a
call to the bank: read what is needed, call the bank, then lock, re-check and write.
Locks are always taken in the same order (QR code, activation, order, payment) so two
requests never wait on each other in a circle.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import logging
import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from app.errors import BankError, InvalidStateError, NotFoundError, ValidationError
from app.extensions import db
from app.httpclient import ProviderError
from app.jobs import enqueue, publish
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
    Refund,
    RefundStatus,
    utcnow,
)
from app.sbp import get_bank, limits
from app.sbp.provider import (
    PAY_SUCCESS,
    QR_CANCELLED,
    QR_EXPIRED,
    QR_IN_PROGRESS,
    QR_PAID,
    REFUND_COMPLETED,
    REFUND_DECLINED,
    REFUND_IN_PROGRESS,
    PaymentInfo,
)

logger = logging.getLogger(__name__)

PAYABLE_ORDER = (OrderStatus.NEW, OrderStatus.PENDING, OrderStatus.EXPIRED)
# Money that arrives for these is the order's payment (late money for a cancelled order
# too: the bank's word wins); for a paid or refunded order it is money to review.
SETTLEABLE_ORDER = (*PAYABLE_ORDER, OrderStatus.CANCELLED)


ORDER_KEPT = _l("Банк не отвечает. Заказ сохранён, попробуйте ещё раз.")


def _bank_failure(exc: ProviderError, unanswered=None) -> BankError:
    """The person's error for a bank call that failed; `unanswered` says what stays when
    the bank did not answer (by default: nothing changed, try again)."""
    if exc.retryable:
        message = unanswered or _l("Банк не отвечает, ничего не изменено. Попробуйте ещё раз.")
    else:
        message = _l("Банк отказал: %(code)s %(text)s", code=exc.code, text=exc.message)
    return BankError(str(message), bank_code=exc.code, retryable=exc.retryable)


def _lock(model, ident: int):
    obj = db.session.scalars(
        sa.select(model).where(model.id == ident).with_for_update()
    ).one_or_none()
    if obj is None:
        raise NotFoundError(_l("Не найдено"))
    return obj


def _next_bank_order(order: Order) -> str:
    """`<order public id>-<n>`: stable for a retry after a failure, new for each new QR."""
    used = db.session.scalar(
        sa.select(sa.func.count()).select_from(QrCode).where(QrCode.order_id == order.id)
    ) + db.session.scalar(
        sa.select(sa.func.count()).select_from(CashLinkActivation)
        .where(CashLinkActivation.order_id == order.id)
    )
    return f"{order.public_id}-{used + 1}"


def _open_payable(order_id: int) -> QrCode | CashLinkActivation | None:
    now = utcnow()
    qr = db.session.scalars(
        sa.select(QrCode).where(
            QrCode.order_id == order_id, QrCode.status == QrStatus.ACTIVE,
            QrCode.kind == QrKind.DYNAMIC,
        ).order_by(QrCode.id.desc())
    ).first()
    if qr is not None and not qr.is_expired(now):
        return qr
    activation = db.session.scalars(
        sa.select(CashLinkActivation).where(
            CashLinkActivation.order_id == order_id,
            CashLinkActivation.status == ActivationStatus.ACTIVE,
        )
    ).first()
    if activation is not None and activation.expires_at > now:
        return activation
    return None


def _check_payable(order: Order) -> None:
    if order.status not in PAYABLE_ORDER:
        raise InvalidStateError(
            _l("Заказ в статусе «%(status)s», оплатить его нельзя", status=order.status.value),
            code="order_not_payable",
        )


# -- dynamic QR -------------------------------------------------------------------------------


def create_dynamic_qr(order_id: int, *, ttl_minutes: int | None = None) -> QrCode:
    """Show a one-time QR for the order's total at the bank; commit it.

    Calling it again while the QR is still open returns the same QR. If the bank cannot
    be reached the order stays as it was and a retry registers the QR under the same bank
    order number, so the bank never ends up with two live QRs for one attempt.

    :raises InvalidStateError: the order is paid or cancelled, or waits on a cash link.
    :raises BankError: the bank refused or did not answer.
    """
    order = db.session.get(Order, order_id)
    if order is None:
        raise NotFoundError(_l("Заказ не найден"))
    _check_payable(order)
    open_payable = _open_payable(order.id)
    if isinstance(open_payable, QrCode):
        return open_payable
    if open_payable is not None:
        raise InvalidStateError(_l("Заказ уже ждёт оплаты по кассовой ссылке"),
                                code="order_busy")
    ttl = limits.ttl(ttl_minutes)
    bank_order, amount, purpose = _next_bank_order(order), order.total_kopecks, order.description
    expires_at = utcnow() + ttl
    db.session.rollback()  # no transaction stays open while the bank thinks

    try:
        reg = get_bank().register_dynamic_qr(
            order=bank_order, amount_kopecks=amount, expires_at=expires_at, purpose=purpose
        )
    except ProviderError as exc:
        logger.warning("order %s: dynamic QR not registered: %s", order_id, exc)
        raise _bank_failure(exc, ORDER_KEPT) from exc

    order = _lock(Order, order_id)
    _check_payable(order)
    qr = QrCode(
        kind=QrKind.DYNAMIC, status=QrStatus.ACTIVE, qr_id=reg.qr_id, bank_order=bank_order,
        amount_kopecks=amount, payload=reg.payload, description=purpose, order_id=order.id,
        expires_at=expires_at,
    )
    db.session.add(qr)
    if order.status != OrderStatus.PENDING:
        order.set_status(OrderStatus.PENDING)
    try:
        db.session.commit()
    except IntegrityError:
        # Another request registered the same bank order a moment ago: it is the same QR.
        db.session.rollback()
        qr = db.session.scalars(sa.select(QrCode).where(QrCode.bank_order == bank_order)).one()
    logger.info("order %s: dynamic QR %s until %s", order_id, qr.qr_id, expires_at.isoformat())
    return qr


# -- static QR and cash links --------------------------------------------------------------------


def create_static_qr(*, amount_kopecks: int | None = None, description: str | None = None
                     ) -> QrCode:
    """A reusable QR, with a fixed sum or one the payer types in.

    :raises ValidationError: a sum out of range, a description too long.
    :raises BankError: the bank refused or did not answer.
    """
    if amount_kopecks is not None:
        limits.check_amount(amount_kopecks)
    limits.check_purpose(description)
    bank_order = f"st-{uuid.uuid4().hex}"
    try:
        reg = get_bank().register_static_qr(
            order=bank_order, amount_kopecks=amount_kopecks, purpose=description
        )
    except ProviderError as exc:
        raise _bank_failure(exc) from exc
    qr = QrCode(
        kind=QrKind.STATIC, status=QrStatus.ACTIVE, qr_id=reg.qr_id, bank_order=bank_order,
        amount_kopecks=amount_kopecks, payload=reg.payload, description=description,
    )
    db.session.add(qr)
    db.session.commit()
    logger.info("static QR %s registered", qr.qr_id)
    return qr


def register_cash_link(*, description: str | None = None) -> QrCode:
    """Register a till's cash link (QRVariable) once; it is activated per sale.

    :raises ValidationError: a description longer than the bank takes.
    :raises BankError: the bank refused or did not answer.
    """
    limits.check_cash_link_description(description)
    bank_order = f"cl-{uuid.uuid4().hex}"
    try:
        reg = get_bank().register_cash_link(order=bank_order, description=description)
    except ProviderError as exc:
        raise _bank_failure(exc) from exc
    qr = QrCode(
        kind=QrKind.CASH_LINK, status=QrStatus.INACTIVE, qr_id=reg.qr_id,
        bank_order=bank_order, payload=reg.payload, description=description,
    )
    db.session.add(qr)
    db.session.commit()
    logger.info("cash link %s registered", qr.qr_id)
    return qr


def activate_cash_link(qr_code_id: int, order_id: int, *, ttl_minutes: int | None = None
                       ) -> CashLinkActivation:
    """Put the order's sum on the till's cash link for `ttl_minutes`.

    :raises InvalidStateError: the link is busy with another unpaid sale, or the order
        cannot be paid.
    :raises BankError: the bank refused or did not answer.
    """
    link = db.session.get(QrCode, qr_code_id)
    if link is None or link.kind != QrKind.CASH_LINK:
        raise NotFoundError(_l("Кассовая ссылка не найдена"))
    if link.status == QrStatus.CANCELLED:
        raise InvalidStateError(_l("Кассовая ссылка отключена"), code="cash_link_disabled")
    order = db.session.get(Order, order_id)
    if order is None:
        raise NotFoundError(_l("Заказ не найден"))
    _check_payable(order)
    open_payable = _open_payable(order.id)
    if isinstance(open_payable, CashLinkActivation) and open_payable.qr_code_id == link.id:
        return open_payable
    if open_payable is not None:
        raise InvalidStateError(_l("Заказ уже ждёт оплаты по другому QR-коду"),
                                code="order_busy")
    busy = _current_activation(link.id)
    if busy is not None:
        raise InvalidStateError(
            _l("На кассовой ссылке ждёт оплаты другой заказ; отмените его сначала"),
            code="cash_link_busy",
        )
    ttl = limits.ttl(ttl_minutes)
    bank_order, amount = _next_bank_order(order), order.total_kopecks
    qr_id, comment = link.qr_id, order.description
    expires_at = utcnow() + ttl
    db.session.rollback()

    try:
        bank = get_bank().activate_cash_link(
            qr_id=qr_id, order_id=bank_order, amount_kopecks=amount, expires_at=expires_at,
            comment=comment,
        )
    except ProviderError as exc:
        raise _bank_failure(exc, ORDER_KEPT) from exc

    link = _lock(QrCode, qr_code_id)
    order = _lock(Order, order_id)
    _check_payable(order)
    activation = CashLinkActivation(
        qr_code_id=link.id, order_id=order.id, bank_order_id=bank.order_id or bank_order,
        amount_kopecks=amount, expires_at=bank.expires_at or expires_at,
    )
    db.session.add(activation)
    if link.status == QrStatus.INACTIVE:
        link.set_status(QrStatus.ACTIVE)
    if order.status != OrderStatus.PENDING:
        order.set_status(OrderStatus.PENDING)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        activation = db.session.scalars(
            sa.select(CashLinkActivation).where(CashLinkActivation.bank_order_id == bank_order)
        ).one()
    logger.info("cash link %s activated for order %s", qr_id, order_id)
    return activation


def _current_activation(link_id: int) -> CashLinkActivation | None:
    activation = db.session.scalars(
        sa.select(CashLinkActivation).where(
            CashLinkActivation.qr_code_id == link_id,
            CashLinkActivation.status == ActivationStatus.ACTIVE,
        )
    ).first()
    if activation is not None and activation.expires_at > utcnow():
        return activation
    return None


# -- cancel ---------------------------------------------------------------------------------------


def cancel_order(order_id: int) -> Order:
    """Cancel an unpaid order and whatever QR or cash-link activation waits for it.

    :raises InvalidStateError: it is already paid (the bank says so, or we know).
    :raises BankError: the bank did not answer; nothing was changed.
    """
    order = db.session.get(Order, order_id)
    if order is None:
        raise NotFoundError(_l("Заказ не найден"))
    if order.status == OrderStatus.CANCELLED:
        return order
    if order.status not in PAYABLE_ORDER:
        raise InvalidStateError(_l("Оплаченный заказ нельзя отменить, только вернуть деньги"),
                                code="order_paid")
    qrs = [q.id for q in db.session.scalars(sa.select(QrCode).where(
        QrCode.order_id == order_id, QrCode.status == QrStatus.ACTIVE))]
    activations = [a.id for a in db.session.scalars(sa.select(CashLinkActivation).where(
        CashLinkActivation.order_id == order_id,
        CashLinkActivation.status == ActivationStatus.ACTIVE))]
    db.session.rollback()
    for qr_code_id in qrs:
        _cancel_dynamic_at_bank(qr_code_id)
    for activation_id in activations:
        _deactivate_at_bank(activation_id)

    order = _lock(Order, order_id)
    if order.status in PAYABLE_ORDER:
        order.set_status(OrderStatus.CANCELLED)
    db.session.commit()
    return order


def cancel_qr(qr_code_id: int) -> QrCode:
    """Cancel a QR code: a dynamic one cancels its order, a static one stops taking money.

    :raises InvalidStateError: already paid, or a cash link (deactivate its sale instead).
    """
    qr = db.session.get(QrCode, qr_code_id)
    if qr is None:
        raise NotFoundError(_l("QR-код не найден"))
    if qr.kind == QrKind.CASH_LINK:
        raise InvalidStateError(_l("Кассовую ссылку не отменяют: отмените продажу на ней"),
                                code="cash_link")
    if qr.kind == QrKind.DYNAMIC and qr.order_id is not None:
        order_id = qr.order_id
        db.session.rollback()
        cancel_order(order_id)
        return db.session.get(QrCode, qr_code_id)
    if qr.status == QrStatus.CANCELLED:
        return qr
    qr_id = qr.qr_id
    db.session.rollback()
    try:
        get_bank().cancel_qr(qr_id)
    except ProviderError as exc:
        raise _bank_failure(exc) from exc
    qr = _lock(QrCode, qr_code_id)
    if qr.status == QrStatus.ACTIVE:
        qr.set_status(QrStatus.CANCELLED)
    db.session.commit()
    return qr


def deactivate_cash_link(qr_code_id: int) -> QrCode:
    """Take the current sale off a cash link (its order is cancelled)."""
    link = db.session.get(QrCode, qr_code_id)
    if link is None or link.kind != QrKind.CASH_LINK:
        raise NotFoundError(_l("Кассовая ссылка не найдена"))
    activation = db.session.scalars(sa.select(CashLinkActivation).where(
        CashLinkActivation.qr_code_id == qr_code_id,
        CashLinkActivation.status == ActivationStatus.ACTIVE,
    )).first()
    if activation is None:
        if link.status == QrStatus.ACTIVE:
            link.set_status(QrStatus.INACTIVE)
            db.session.commit()
        return link
    order_id = activation.order_id
    db.session.rollback()
    cancel_order(order_id)
    return db.session.get(QrCode, qr_code_id)


def _cancel_dynamic_at_bank(qr_code_id: int) -> None:
    """Cancel at the bank and mark cancelled; if the bank says it is paid, record that."""
    qr_id = db.session.get(QrCode, qr_code_id).qr_id
    db.session.rollback()
    try:
        get_bank().cancel_qr(qr_id)
    except ProviderError as exc:
        _learn_why_not_cancelled(exc, poll_qr, QrCode, qr_code_id, QrStatus)
    qr = _lock(QrCode, qr_code_id)
    if qr.status == QrStatus.ACTIVE:
        qr.set_status(QrStatus.CANCELLED)
    db.session.commit()


def _deactivate_at_bank(activation_id: int) -> None:
    """Take a sale off its cash link at the bank; if the bank says it is paid, record that."""
    bank_order_id = db.session.get(CashLinkActivation, activation_id).bank_order_id
    db.session.rollback()
    try:
        get_bank().deactivate_cash_link(bank_order_id)
    except ProviderError as exc:
        _learn_why_not_cancelled(exc, poll_activation, CashLinkActivation, activation_id,
                                 ActivationStatus)
    activation = _lock(CashLinkActivation, activation_id)
    _close_activation(activation, ActivationStatus.CANCELLED)
    db.session.commit()


def _learn_why_not_cancelled(exc: ProviderError, poll, model, ident: int, statuses) -> None:
    """The bank refused a cancel. ORDER_HAS_FINAL_STATUS means paid, expired or cancelled
    already: ask the bank which (`poll` records a payment), and refuse only a paid one.

    :raises InvalidStateError: the customer has paid.
    :raises BankError: any other refusal, or the bank's answers disagree.
    """
    if exc.code != "ORDER_HAS_FINAL_STATUS":
        raise _bank_failure(exc) from exc
    poll(ident)
    status = db.session.get(model, ident).status
    db.session.rollback()
    if status == statuses.PAID:
        raise InvalidStateError(_l("Покупатель уже оплатил этот заказ"),
                                code="order_paid") from exc
    if status == statuses.ACTIVE:
        raise _bank_failure(exc) from exc


def _close_activation(activation: CashLinkActivation, to: ActivationStatus) -> None:
    if activation.status == ActivationStatus.ACTIVE:
        activation.set_status(to)
    db.session.flush()  # the query below must see this activation closed
    link = activation.qr_code
    if link.status == QrStatus.ACTIVE and _current_activation(link.id) is None:
        link.set_status(QrStatus.INACTIVE)


# -- bank events ---------------------------------------------------------------------------------


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


def handle_callback(raw_body: bytes, signature: str | None) -> Outcome:
    """Verify and apply one bank notification (POST /sbp/callback).

    :raises SignatureError: bad or missing signature; nothing is recorded.
    :raises ProviderError: a body that is not a notification, or one whose unsigned qrId
        is not the QR of its signed order; nothing is recorded.
    """
    info = get_bank().parse_notification(raw_body, signature)
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
        qr = _lock(QrCode, link_id)
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
    order = _lock(Order, order_id) if order_id is not None else None

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
        _close_activation(activation, ActivationStatus.PAID)
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
    qr = _lock(QrCode, ids[0])
    activation = _lock(CashLinkActivation, ids[1]) if ids[1] else None
    order = _lock(Order, ids[2]) if ids[2] else None
    payment = _lock(Payment, payment_id)
    if payment.status != PaymentStatus.REVIEW:
        db.session.rollback()
        raise InvalidStateError(_l("Платёж не ждёт проверки"), code="payment_not_in_review")
    payment.set_status(PaymentStatus.PAID)
    logger.warning("payment %s accepted after review (%s)", payment.id, payment.review_reason)
    payment.review_reason = None
    _settle(qr, activation, order, payment)
    db.session.flush()
    if not db.session.scalar(sa.select(sa.func.count()).select_from(Payment).where(
            Payment.qr_code_id == qr.id, Payment.status == PaymentStatus.REVIEW)):
        qr.needs_review, qr.review_reason = False, None
    db.session.commit()
    return payment


# -- reconciliation ------------------------------------------------------------------------------


def poll_qr(qr_code_id: int) -> str:
    """Ask the bank about an open dynamic QR and act on the answer; commit.

    A QR past its TTL is expired only after the bank confirms no payment is on its way:
    if the bank still shows it open, it is cancelled there first.
    """
    qr = db.session.get(QrCode, qr_code_id)
    if qr is None or qr.kind != QrKind.DYNAMIC or qr.status != QrStatus.ACTIVE:
        db.session.rollback()
        return "skipped"
    qr_id, past_ttl = qr.qr_id, qr.is_expired()
    db.session.rollback()
    bank = get_bank()
    status = bank.get_qr(qr_id).status
    if status == QR_PAID:
        info = bank.get_payment(qr_id)
        return apply_bank_event(info, source="poll", raw=_raw(info))
    if status == QR_IN_PROGRESS:
        _touch(QrCode, qr_code_id)
        return "in_progress"
    if status not in (QR_EXPIRED, QR_CANCELLED) and past_ttl:
        try:
            bank.cancel_qr(qr_id)
        except ProviderError as exc:
            if exc.code != "ORDER_HAS_FINAL_STATUS" or exc.retryable:
                raise
            # Paid in the last second: take the payment, not the expiry.
            info = bank.get_payment(qr_id)
            return apply_bank_event(info, source="poll", raw=_raw(info))
        status = QR_EXPIRED
    if status in (QR_EXPIRED, QR_CANCELLED):
        qr = _lock(QrCode, qr_code_id)
        if qr.status != QrStatus.ACTIVE:
            db.session.rollback()
            return qr.status.value
        qr.set_status(QrStatus.EXPIRED if status == QR_EXPIRED else QrStatus.CANCELLED)
        if qr.order_id is not None:
            order = _lock(Order, qr.order_id)
            if order.status == OrderStatus.PENDING and _open_payable(order.id) is None:
                order.set_status(
                    OrderStatus.EXPIRED if status == QR_EXPIRED else OrderStatus.CANCELLED
                )
        if status == QR_EXPIRED:
            publish("qr.expired", {"qr_code_id": qr.id}, key=f"qr-{qr.id}")
        db.session.commit()
        return qr.status.value
    _touch(QrCode, qr_code_id)
    return "open"


def poll_activation(activation_id: int) -> str:
    """Ask the bank about a cash-link sale; expire it past its TTL once the bank agrees."""
    activation = db.session.get(CashLinkActivation, activation_id)
    if activation is None or activation.status != ActivationStatus.ACTIVE:
        db.session.rollback()
        return "skipped"
    bank_order_id = activation.bank_order_id
    past_ttl = activation.expires_at <= utcnow()
    db.session.rollback()
    bank = get_bank()
    status = bank.get_cash_link_order(bank_order_id).status
    if status == QR_PAID:
        # This sale's own payment, asked by its own order: the link may have been paid
        # for later sales since, so "the link's latest payment" could be another's.
        info = bank.get_cash_link_payment(bank_order_id)
        if info.status == PAY_SUCCESS:
            return apply_bank_event(info, source="poll", raw=_raw(info))
        return "paid_awaiting_details"
    if status == "NEW" and past_ttl:
        try:
            bank.deactivate_cash_link(bank_order_id)
            status = QR_EXPIRED
        except ProviderError as exc:
            if exc.code != "ORDER_HAS_FINAL_STATUS":
                raise
            # Paid or closed in the meantime: the next pass reads the final status.
            return "final_at_bank"
    if status in (QR_EXPIRED, QR_CANCELLED):
        activation = _lock(CashLinkActivation, activation_id)
        if activation.status != ActivationStatus.ACTIVE:
            db.session.rollback()
            return activation.status.value
        _close_activation(
            activation,
            ActivationStatus.EXPIRED if status == QR_EXPIRED else ActivationStatus.CANCELLED,
        )
        order = _lock(Order, activation.order_id)
        if order.status == OrderStatus.PENDING and _open_payable(order.id) is None:
            order.set_status(
                OrderStatus.EXPIRED if status == QR_EXPIRED else OrderStatus.CANCELLED
            )
        db.session.commit()
        return activation.status.value
    _touch(CashLinkActivation, activation_id)
    return "open"


def _touch(model, ident: int) -> None:
    db.session.execute(sa.update(model).where(model.id == ident).values(last_checked_at=utcnow()))
    db.session.commit()


def _raw(info: PaymentInfo) -> str:
    from app.httpclient import dumps

    return dumps(info.raw)


def reconcile(now: datetime | None = None, *, limit: int = 100) -> dict[str, int]:
    """One pass over what the bank may have changed without telling us.

    Open dynamic QRs older than RECONCILE_QR_AFTER_SECONDS (or past their TTL), open
    cash-link sales, and refunds the bank has not finished. Each item is its own
    transaction: one failure is logged and the rest go on.
    """
    now = now or utcnow()
    after = timedelta(seconds=current_app.config["RECONCILE_QR_AFTER_SECONDS"])
    recheck = now - timedelta(seconds=30)

    def due(model, *where) -> list[int]:
        """Open, and past its TTL or quiet for too long and not asked about lately."""
        return db.session.scalars(
            sa.select(model.id).where(
                *where,
                sa.or_(
                    model.expires_at <= now,
                    sa.and_(model.created_at <= now - after,
                            sa.or_(model.last_checked_at.is_(None),
                                   model.last_checked_at <= recheck)),
                ),
            ).order_by(model.id).limit(limit)
        ).all()

    qr_ids = due(QrCode, QrCode.kind == QrKind.DYNAMIC, QrCode.status == QrStatus.ACTIVE,
                 QrCode.needs_review.is_(False))
    activation_ids = due(CashLinkActivation,
                         CashLinkActivation.status == ActivationStatus.ACTIVE)
    refund_ids = db.session.scalars(
        sa.select(Refund.id).where(
            Refund.status == RefundStatus.IN_PROGRESS,
            sa.or_(Refund.last_checked_at.is_(None), Refund.last_checked_at <= recheck),
            Refund.updated_at <= now - timedelta(seconds=30),
        ).order_by(Refund.id).limit(limit)
    ).all()
    db.session.rollback()
    counts = {"qrs": 0, "activations": 0, "refunds": 0, "errors": 0}
    for kind, ids, fn in (("qrs", qr_ids, poll_qr), ("activations", activation_ids,
                                                     poll_activation),
                          ("refunds", refund_ids, poll_refund)):
        for ident in ids:
            try:
                fn(ident)
                counts[kind] += 1
            except Exception:
                db.session.rollback()
                counts["errors"] += 1
                logger.exception("reconcile: %s %s failed", kind, ident)
    return counts


# -- refunds -------------------------------------------------------------------------------------


def request_refund(payment_id: int, amount_kopecks: int | None = None, *,
                   reason: str | None = None) -> Refund:
    """Ask for a full (no amount) or partial refund; commit it with the job that sends it.

    The refunds of a payment never add up to more than was paid: the payment row is
    locked while the sum is checked.

    :raises ValidationError: a sum that is not positive or more than is left to refund.
    :raises InvalidStateError: the payment is already fully refunded.
    """
    payment = _lock(Payment, payment_id)
    if payment.status == PaymentStatus.REFUNDED:
        raise InvalidStateError(_l("Платёж уже полностью возвращён"), code="already_refunded")
    left = payment.refundable_kopecks
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
        reason=(reason or "").strip()[:140] or None,
    )
    db.session.add(refund)
    db.session.flush()
    enqueue("sbp.send_refund", {"refund_id": refund.id}, key=f"sbp.send_refund:{refund.id}")
    db.session.commit()
    logger.info("refund %s of payment %s for %s kopecks requested", refund.id, payment.id, amount)
    return refund


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
    refund = _lock(Refund, refund_id)
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
    payment = _lock(Payment, refund.payment_id)
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
        order = _lock(Order, payment.order_id)
        target = OrderStatus.REFUNDED if full else OrderStatus.PARTIALLY_REFUNDED
        if order.status != target and order.status in (OrderStatus.PAID,
                                                       OrderStatus.PARTIALLY_REFUNDED):
            order.set_status(target)
    publish("refund.completed", {"refund_id": refund.id}, key=f"refund-{refund.id}")
    logger.info("refund %s completed: payment %s refunded %s of %s", refund.id, payment.id,
                payment.refunded_kopecks, payment.amount_kopecks)


def set_callback_url(url: str | None = None) -> str:
    """Tell the bank where to send notifications (PUBLIC_URL/sbp/callback by default)."""
    url = url or current_app.config["PUBLIC_URL"] + "/sbp/callback"
    try:
        get_bank().set_callback_url(url)
    except ProviderError as exc:
        raise _bank_failure(exc) from exc
    return url
