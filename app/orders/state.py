"""An order's state as the screens show it (the till, the storefront, the pay page): a QR
waiting, paid with its receipt, expired, in review... read from our records, which the bank's
news updates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from app.extensions import db
from app.fiscal.views import receipt_url
from app.models import (
    CashLinkActivation,
    Order,
    OrderStatus,
    Payment,
    PaymentStatus,
    QrCode,
    QrKind,
    Receipt,
    ReceiptKind,
)
from app.sbp.common import open_payable

# What the screens call an order's state (data-status).
PENDING, PAID, EXPIRED, CANCELLED, REVIEW, NEW = (
    "pending", "paid", "expired", "cancelled", "review", "new")
FINAL = frozenset({PAID, CANCELLED, REVIEW})
PAID_ORDER = (OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED)


@dataclass(frozen=True)
class OrderView:
    """An order as its screen shows it."""

    order: Order
    state: str
    payload: str | None = None       # the QR to show (pending)
    expires_at: datetime | None = None
    cash_link: bool = False
    receipt_href: str | None = None  # paid: the customer's receipt, once written

    @property
    def final(self) -> bool:
        return self.state in FINAL


def _in_review(order_id: int) -> bool:
    flagged_payment = db.session.scalar(sa.select(sa.func.count()).select_from(Payment).where(
        Payment.order_id == order_id, Payment.status == PaymentStatus.REVIEW))
    flagged_qr = db.session.scalar(sa.select(sa.func.count()).select_from(QrCode).where(
        QrCode.order_id == order_id, QrCode.needs_review.is_(True)))
    return bool(flagged_payment or flagged_qr)


def _receipt_href(order_id: int) -> str | None:
    receipt = db.session.scalars(
        sa.select(Receipt).join(Payment, Receipt.payment_id == Payment.id)
        .where(Payment.order_id == order_id, Receipt.kind == ReceiptKind.SELL)
        .order_by(Receipt.id)
    ).first()
    return receipt_url(receipt) if receipt is not None else None


def used_cash_link(order_id: int) -> bool:
    """Was the order last put up on a cash link (rather than a dynamic QR)?"""
    last_qr = db.session.scalar(sa.select(sa.func.max(QrCode.created_at)).where(
        QrCode.order_id == order_id, QrCode.kind == QrKind.DYNAMIC))
    last_sale = db.session.scalar(sa.select(sa.func.max(CashLinkActivation.created_at)).where(
        CashLinkActivation.order_id == order_id))
    return last_sale is not None and (last_qr is None or last_sale >= last_qr)


def order_view(order: Order) -> OrderView:
    """The order's state for its screen, from our records (the bank's news updates them)."""
    if order.status in PAID_ORDER:
        return OrderView(order, PAID, receipt_href=_receipt_href(order.id))
    if _in_review(order.id):
        return OrderView(order, REVIEW)
    if order.status == OrderStatus.CANCELLED:
        return OrderView(order, CANCELLED)
    waiting = open_payable(order.id)
    if isinstance(waiting, QrCode):
        return OrderView(order, PENDING, payload=waiting.payload, expires_at=waiting.expires_at)
    if isinstance(waiting, CashLinkActivation):
        return OrderView(order, PENDING, payload=waiting.qr_code.payload,
                         expires_at=waiting.expires_at, cash_link=True)
    if order.status == OrderStatus.NEW:
        return OrderView(order, NEW)
    return OrderView(order, EXPIRED)  # expired, or its QR ran out before the bank said so
