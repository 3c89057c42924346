"""The customer's pay page (bp "checkout", /checkout/<token>): the QR on a desktop, buttons
that open the customer's bank app on a phone. Used by the constructor API's `pay_url`
(and later by the storefront in the bot)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the pay page's blueprint."""
    from app.checkout.views import bp

    app.register_blueprint(bp, url_prefix="/checkout")
