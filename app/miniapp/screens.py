"""What the cashier sees: screens rendered into the Mini App's `#screen` (an order's state is
read by app/orders/state.py)."""

from __future__ import annotations

from flask import g, render_template

from app.extensions import db
from app.fiscal import fiscal_enabled
from app.models import Order, QrCode, QrKind, QrStatus, utcnow
from app.orders.state import OrderView, order_view
from app.qrimage import inline_svg


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


def order_screen(order: Order, *, view: OrderView | None = None, status: int = 200,
                 message: str | None = None, clear_cart: bool = False):
    return render_screen("order.html", status, view=view or order_view(order), order=order,
                         message=message, clear_cart=clear_cart, now=utcnow(), qr_svg=inline_svg,
                         fiscal=fiscal_enabled())


def till_link(cashier) -> QrCode | None:
    """The cashier's till cash link, if it can take a sale."""
    if cashier is None or cashier.till_id is None:
        return None
    link = db.session.get(QrCode, cashier.till_id)
    if link is None or link.kind != QrKind.CASH_LINK or link.status == QrStatus.CANCELLED:
        return None
    return link
