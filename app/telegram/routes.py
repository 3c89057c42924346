"""Blueprint "telegram": the webhook. Thin: it checks the secret and the body, stores the
update as a job and answers 200 at once; the worker runs it (app/telegram/bot.py)."""

from __future__ import annotations

import hmac
import logging

from flask import Blueprint, current_app, jsonify, request

from app.extensions import csrf
from app.httpclient import loads_inbound
from app.telegram.bot import enqueue_update

logger = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name  # nosec B105
# An update is a few kilobytes; anything much bigger is not from Telegram.
MAX_UPDATE_BYTES = 256 * 1024

bp = Blueprint("telegram", __name__)
csrf.exempt(bp)


def _refuse(status: int, code: str, message: str):
    return jsonify(ok=False, error=code, message=message), status


@bp.post("/webhook")
def webhook():
    expected = current_app.config["TELEGRAM_WEBHOOK_SECRET"]
    given = request.headers.get(SECRET_HEADER, "")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        logger.warning("telegram webhook refused from %s: wrong secret", request.remote_addr)
        return _refuse(403, "bad_secret", "wrong secret token")
    if not current_app.config.get("TELEGRAM_BOT_TOKEN"):
        return _refuse(404, "bot_off", "the bot is off")
    if (request.content_length or 0) > MAX_UPDATE_BYTES:
        return _refuse(413, "too_large", "an update is not this big")
    raw = request.stream.read(MAX_UPDATE_BYTES + 1)
    if len(raw) > MAX_UPDATE_BYTES:
        return _refuse(413, "too_large", "an update is not this big")
    try:
        update = loads_inbound(raw)
    except ValueError:
        return _refuse(400, "not_json", "the body is not JSON")
    if not enqueue_update(update):
        return _refuse(400, "not_an_update", "no update_id")
    return jsonify(ok=True)
