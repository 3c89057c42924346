"""Cancelling: an unpaid order, a QR code, the sale on a cash link.

When the bank refuses a cancel because the order is final there, the bank is asked what
happened (the reconciler's polls) and a payment it reports is recorded, not cancelled.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from app import audit
from app.errors import InvalidStateError, NotFoundError
from app.extensions import db
from app.httpclient import ProviderError
from app.models import (
    ActivationStatus,
    CashLinkActivation,
    Order,
    OrderStatus,
    QrCode,
    QrKind,
    QrStatus,
)
from app.sbp import get_bank
from app.sbp.common import PAYABLE_ORDER, bank_failure, close_activation, lock
from app.sbp.reconciliation import poll_activation, poll_qr

logger = logging.getLogger(__name__)


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

    order = lock(Order, order_id)
    if order.status in PAYABLE_ORDER:
        order.set_status(OrderStatus.CANCELLED)
        audit.record("order.cancel", target_type="order", target_id=order.id,
                     total_kopecks=order.total_kopecks)
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
        raise bank_failure(exc) from exc
    qr = lock(QrCode, qr_code_id)
    if qr.status == QrStatus.ACTIVE:
        qr.set_status(QrStatus.CANCELLED)
        audit.record("qr.cancel", target_type="qr_code", target_id=qr.id, qr_id=qr.qr_id)
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
    qr = lock(QrCode, qr_code_id)
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
    activation = lock(CashLinkActivation, activation_id)
    close_activation(activation, ActivationStatus.CANCELLED)
    db.session.commit()


def _learn_why_not_cancelled(exc: ProviderError, poll, model, ident: int, statuses) -> None:
    """The bank refused a cancel. ORDER_HAS_FINAL_STATUS means paid, expired or cancelled
    already: ask the bank which (`poll` records a payment), and refuse only a paid one.

    :raises InvalidStateError: the customer has paid.
    :raises BankError: any other refusal, or the bank's answers disagree.
    """
    if exc.code != "ORDER_HAS_FINAL_STATUS":
        raise bank_failure(exc) from exc
    poll(ident)
    status = db.session.get(model, ident).status
    db.session.rollback()
    if status == statuses.PAID:
        raise InvalidStateError(_l("Покупатель уже оплатил этот заказ"),
                                code="order_paid") from exc
    if status == statuses.ACTIVE:
        raise bank_failure(exc) from exc
