"""Asking the bank about what it may have changed without telling us."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from app.extensions import db
from app.httpclient import ProviderError, dumps
from app.jobs import publish
from app.models import (
    ActivationStatus,
    CashLinkActivation,
    Order,
    OrderStatus,
    QrCode,
    QrKind,
    QrStatus,
    Refund,
    RefundStatus,
    utcnow,
)
from app.sbp import get_bank
from app.sbp.bank_events import apply_bank_event
from app.sbp.common import close_activation, lock, open_payable
from app.sbp.provider import (
    PAY_SUCCESS,
    QR_CANCELLED,
    QR_EXPIRED,
    QR_IN_PROGRESS,
    QR_PAID,
    PaymentInfo,
)
from app.sbp.refunds import poll_refund

logger = logging.getLogger(__name__)


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
        qr = lock(QrCode, qr_code_id)
        if qr.status != QrStatus.ACTIVE:
            db.session.rollback()
            return qr.status.value
        qr.set_status(QrStatus.EXPIRED if status == QR_EXPIRED else QrStatus.CANCELLED)
        if qr.order_id is not None:
            order = lock(Order, qr.order_id)
            if order.status == OrderStatus.PENDING and open_payable(order.id) is None:
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
        activation = lock(CashLinkActivation, activation_id)
        if activation.status != ActivationStatus.ACTIVE:
            db.session.rollback()
            return activation.status.value
        close_activation(
            activation,
            ActivationStatus.EXPIRED if status == QR_EXPIRED else ActivationStatus.CANCELLED,
        )
        order = lock(Order, activation.order_id)
        if order.status == OrderStatus.PENDING and open_payable(order.id) is None:
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
