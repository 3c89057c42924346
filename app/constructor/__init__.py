"""The constructor API (bp "constructor", /api/v1): bots built in Salebot, PuzzleBot,
Leadteh, SmartBot Pro, Botmother, BotHelp (or any program) create SBP payments, read their
status, cancel them, and are called back when they are paid, expire or are refunded."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the API's blueprint and the callback jobs."""
    from app import ratelimit
    from app.constructor import callbacks
    from app.constructor.views import bp, rate_limit_key
    from app.extensions import csrf

    # API clients authenticate every request with their key (a header or ?token=), never
    # with a cookie, so a forged cross-site form gains nothing: no CSRF token.
    csrf.exempt(bp)
    app.register_blueprint(bp, url_prefix="/api/v1")
    # One count per API client over all of /api/v1 (per address without a known key).
    ratelimit.limit(app, bp, "RATELIMIT_API", scope="api", key_func=rate_limit_key)
    callbacks.init_app(app)
