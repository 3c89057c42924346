"""Telegram room: the bot (webhook, commands, access requests) and the staff's notifications.

The cashier's Mini App is its own room, `app/miniapp`.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the webhook (/telegram/webhook), the job that runs stored updates and the
    notification jobs. The bot itself is built on first use (`bot.get_bot`)."""
    from app import jobs, ratelimit
    from app.telegram import notify
    from app.telegram.bot import UPDATE_JOB, process_update
    from app.telegram.routes import bp

    app.register_blueprint(bp, url_prefix="/telegram")
    ratelimit.limit(app, bp, "RATELIMIT_TELEGRAM_WEBHOOK", scope="telegram-webhook",
                    endpoints={"telegram.webhook"})
    jobs.registry(app).handler(UPDATE_JOB, process_update)
    notify.init_app(app)
