"""The cashier's Mini App: the till inside Telegram (bp "miniapp", /miniapp/)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the Mini App's blueprint."""
    from app import ratelimit
    from app.extensions import csrf
    from app.miniapp.views import bp

    # The Mini App is not a cookie session: every request carries `Authorization: tma
    # <initData>` signed by Telegram for our bot (checked on each request), which a forged
    # cross-site form cannot send. A CSRF token would add nothing, so the blueprint is exempt.
    csrf.exempt(bp)
    app.register_blueprint(bp, url_prefix="/miniapp")
    # What writes or prices (POST), per address; the screens' polls are reads and free.
    ratelimit.limit(app, bp, "RATELIMIT_MINIAPP", scope="miniapp", methods=["POST"])
