"""The pay page: GET /checkout/<token> and the status it polls (thin: read the order's state,
render it). The token is the order's unguessable `checkout_token`; nothing else is public."""

from __future__ import annotations

import re

import sqlalchemy as sa
from flask import Blueprint, current_app, jsonify, render_template, request, url_for

from app.checkout.banks import sbp_banks
from app.extensions import db
from app.fiscal import fiscal_enabled
from app.formatting import MOSCOW
from app.models import Order, OrderStatus
from app.orders.state import OrderView, order_view
from app.qrimage import inline_svg as qr_svg

bp = Blueprint("checkout", __name__)

PHONE = re.compile(r"Android|iPhone|iPad|iPod|Mobile", re.IGNORECASE)
ANDROID = re.compile(r"Android", re.IGNORECASE)
# Telegram's in-app browser names itself in the user agent (Telegram-Android/…, Telegram).
TELEGRAM = re.compile(r"Telegram", re.IGNORECASE)
TOKEN = re.compile(r"[A-Za-z0-9_-]{16,43}")
# Pages that wait for something poll their state; the others are final.
WAITING = frozenset({"pending", "new", "paid:wait"})


def _order(token: str) -> Order | None:
    if not TOKEN.fullmatch(token):
        return None
    return db.session.scalar(sa.select(Order).where(Order.checkout_token == token))


def _state(order: Order, view: OrderView) -> str:
    """The page's state: what the customer is told (refunds and receipts included)."""
    if order.status in (OrderStatus.REFUNDED, OrderStatus.PARTIALLY_REFUNDED):
        return "refunded"
    if view.state == "paid":
        return "paid" if view.receipt_href or not fiscal_enabled() else "paid:wait"
    return view.state


def _browser_link(url: str, user_agent: str) -> str:
    """A link that asks the phone to open `url` in its own browser (from Telegram's)."""
    scheme, _, rest = url.partition("://")
    if ANDROID.search(user_agent):
        return f"intent://{rest}#Intent;scheme={scheme};end"
    return f"x-safari-{scheme}://{rest}"  # iOS 17+: Safari; elsewhere the plain link


def _private(response):
    """The page's token is its only key: keep it out of caches, referrers and indexes."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _not_found():
    return _private(current_app.make_response(
        (render_template("checkout/not_found.html"), 404)))


@bp.get("/<token>")
def page(token: str):
    order = _order(token)
    if order is None:
        return _not_found()
    view = order_view(order)
    state = _state(order, view)
    user_agent = request.headers.get("User-Agent", "")
    url = current_app.config["PUBLIC_URL"] + url_for("checkout.page", token=token)
    until = view.expires_at.astimezone(MOSCOW).strftime("%H:%M") if view.expires_at else None
    return _private(current_app.make_response(render_template(
        "checkout/page.html", order=order, view=view, state=state, url=url, until=until,
        poll=state in WAITING, phone=bool(PHONE.search(user_agent)),
        telegram=bool(TELEGRAM.search(user_agent)),
        browser_link=_browser_link(url, user_agent), banks=sbp_banks(), qr_svg=qr_svg,
        company=current_app.config.get("COMPANY_NAME"),
    )))


@bp.get("/<token>/status")
def status(token: str):
    order = _order(token)
    if order is None:
        return _private(current_app.make_response(
            (jsonify(ok=False, error="not_found"), 404)))
    return _private(jsonify(ok=True, state=_state(order, order_view(order))))
