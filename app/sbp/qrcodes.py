"""QR codes at the bank: a dynamic QR per order, static QRs, cash links and their sales."""

from __future__ import annotations

import logging
import uuid

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import IntegrityError

from app import audit
from app.errors import InvalidStateError, NotFoundError
from app.extensions import db
from app.httpclient import ProviderError
from app.models import CashLinkActivation, Order, OrderStatus, QrCode, QrKind, QrStatus, utcnow
from app.sbp import get_bank, limits
from app.sbp.common import PAYABLE_ORDER, bank_failure, current_activation, lock, open_payable

logger = logging.getLogger(__name__)


ORDER_KEPT = _l("Банк не отвечает. Заказ сохранён, попробуйте ещё раз.")


def _next_bank_order(order: Order) -> str:
    """`<order public id>-<n>`: stable for a retry after a failure, new for each new QR."""
    used = db.session.scalar(
        sa.select(sa.func.count()).select_from(QrCode).where(QrCode.order_id == order.id)
    ) + db.session.scalar(
        sa.select(sa.func.count()).select_from(CashLinkActivation)
        .where(CashLinkActivation.order_id == order.id)
    )
    return f"{order.public_id}-{used + 1}"


def _commit_or_take(row, bank_order_column, bank_order: str):
    """Commit the new QR or sale `row`; if another request registered the same bank order a
    moment ago, it is the same one: take that."""
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return db.session.scalars(
            sa.select(bank_order_column.class_).where(bank_order_column == bank_order)
        ).one()
    return row


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
    waiting = open_payable(order.id)
    if isinstance(waiting, QrCode):
        return waiting
    if waiting is not None:
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
        raise bank_failure(exc, ORDER_KEPT) from exc

    order = lock(Order, order_id)
    _check_payable(order)
    qr = QrCode(
        kind=QrKind.DYNAMIC, status=QrStatus.ACTIVE, qr_id=reg.qr_id, bank_order=bank_order,
        amount_kopecks=amount, payload=reg.payload, description=purpose, order_id=order.id,
        expires_at=expires_at,
    )
    db.session.add(qr)
    if order.status != OrderStatus.PENDING:
        order.set_status(OrderStatus.PENDING)
    qr = _commit_or_take(qr, QrCode.bank_order, bank_order)
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
        raise bank_failure(exc) from exc
    qr = QrCode(
        kind=QrKind.STATIC, status=QrStatus.ACTIVE, qr_id=reg.qr_id, bank_order=bank_order,
        amount_kopecks=amount_kopecks, payload=reg.payload, description=description,
    )
    db.session.add(qr)
    db.session.flush()
    audit.record("static_qr.create", target_type="qr_code", target_id=qr.id, qr_id=qr.qr_id,
                 amount_kopecks=amount_kopecks, description=description)
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
        raise bank_failure(exc) from exc
    qr = QrCode(
        kind=QrKind.CASH_LINK, status=QrStatus.INACTIVE, qr_id=reg.qr_id,
        bank_order=bank_order, payload=reg.payload, description=description,
    )
    db.session.add(qr)
    db.session.flush()
    audit.record("cash_link.create", target_type="qr_code", target_id=qr.id, qr_id=qr.qr_id,
                 description=description)
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
    waiting = open_payable(order.id)
    if isinstance(waiting, CashLinkActivation) and waiting.qr_code_id == link.id:
        return waiting
    if waiting is not None:
        raise InvalidStateError(_l("Заказ уже ждёт оплаты по другому QR-коду"),
                                code="order_busy")
    busy = current_activation(link.id)
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
        raise bank_failure(exc, ORDER_KEPT) from exc

    link = lock(QrCode, qr_code_id)
    order = lock(Order, order_id)
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
    activation = _commit_or_take(activation, CashLinkActivation.bank_order_id, bank_order)
    logger.info("cash link %s activated for order %s", qr_id, order_id)
    return activation
