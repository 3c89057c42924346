"""The constructor API (bp "constructor", /api/v1): bots built in Salebot, PuzzleBot,
Leadteh, SmartBot Pro, Botmother, BotHelp (or any program) create SBP payments, read their
status, cancel them, and are called back when they are paid, expire or are refunded."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the API's blueprint and the callback jobs."""
    from app.constructor import callbacks
    from app.constructor.views import bp
    from app.extensions import csrf

    # API clients authenticate every request with their key (a header or ?token=), never
    # with a cookie, so a forged cross-site form gains nothing: no CSRF token.
    csrf.exempt(bp)
    app.register_blueprint(bp, url_prefix="/api/v1")
    callbacks.init_app(app)
