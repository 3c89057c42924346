"""What the cashier sees: screens rendered into the Mini App's `#screen`, and the order's
state read for its screen (QR waiting, paid with its receipt, expired, review...)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from flask import g, render_template
from markupsafe import Markup

from app.extensions import db
from app.fiscal import fiscal_enabled
from app.fiscal.views import receipt_url
from app.models import (
    CashLinkActivation,
    Order,
    OrderStatus,
    Payment,
    PaymentStatus,
    QrCode,
    QrKind,
    QrStatus,
    Receipt,
    ReceiptKind,
    utcnow,
)
from app.qrimage import render_svg
from app.sbp.common import open_payable

# What the cashier's screens call an order's state (data-status).
PENDING, PAID, EXPIRED, CANCELLED, REVIEW, NEW = (
    "pending", "paid", "expired", "cancelled", "review", "new")
FINAL = frozenset({PAID, CANCELLED, REVIEW})
PAID_ORDER = (OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED)


def render_screen(template: str, status: int = 200, **context):
    """A screen for `#screen`; `demo` tells it to show the demo banner."""
    from app.miniapp.auth import demo_mode

    return render_template(f"miniapp/{template}", demo=demo_mode(),
                           cashier=g.get("cashier"), **context), status


def refused_screen(refused):
    """403: who may not use the till, and why (the Telegram ID where Telegram said it)."""
    return render_screen("refused.html", 403, code=refused.code, message=refused.message,
                         telegram_id=refused.telegram_id)


def error_screen(message: str, status: int, *, retry_url: str | None = None,
                 order: Order | None = None):
    return render_screen("error.html", status, message=message, retry_url=retry_url,
                         order=order)


def qr_svg(payload: str) -> Markup:
    """The QR as inline SVG sized by CSS (black on white, quiet zone included)."""
    svg = render_svg(payload).decode()
    svg = re.sub(r"^<\?xml[^>]*\?>\s*", "", svg)
    svg = re.sub(r'\swidth="[^"]*"\sheight="[^"]*"', ' class="qr-svg" role="img" '
                 'shape-rendering="crispEdges" aria-label="QR"', svg, count=1)
    return Markup(svg)  # noqa: S704 - our own renderer's SVG of a bank payload


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


def order_screen(order: Order, *, view: OrderView | None = None, status: int = 200,
                 message: str | None = None, clear_cart: bool = False):
    return render_screen("order.html", status, view=view or order_view(order), order=order,
                         message=message, clear_cart=clear_cart, now=utcnow(), qr_svg=qr_svg,
                         fiscal=fiscal_enabled())


def till_link(cashier) -> QrCode | None:
    """The cashier's till cash link, if it can take a sale."""
    if cashier is None or cashier.till_id is None:
        return None
    link = db.session.get(QrCode, cashier.till_id)
    if link is None or link.kind != QrKind.CASH_LINK or link.status == QrStatus.CANCELLED:
        return None
    return link
