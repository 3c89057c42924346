"""The bot: built from the app's config, fed updates by the `telegram.update` job.

Telegram's updates arrive at the webhook (or `flask bot poll`), which only stores each one
as a job keyed by its update_id; the worker then runs it through pyTelegramBotAPI's
handlers (app/telegram/handlers.py) inside an app context. One path handles every update,
and Telegram's retries of an update add nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import requests
from flask import Flask, current_app
from telebot import TeleBot, apihelper
from telebot.apihelper import ApiTelegramException
from telebot.types import Update

from app.audit import SYSTEM, act_as
from app.errors import KassaError
from app.extensions import unit_of_work
from app.jobs import RetryJob, enqueue
from app.logs import scrub

logger = logging.getLogger(__name__)

EXTENSION = "kassa.telegram.bot"
UPDATE_JOB = "telegram.update"


class BotOff(KassaError):
    """No TELEGRAM_BOT_TOKEN (or not a bot token): the bot is off."""

    code = "bot_off"
    status = 404


class TelegramUnreachable(Exception):
    """Telegram could not be asked (connection error or timeout); the message names no
    token, unlike the HTTP library's own."""


def get_bot(app: Flask | None = None) -> TeleBot:
    """The app's bot, built on first use with its handlers; points pyTelegramBotAPI at
    TELEGRAM_API_URL (a module-level setting of the library, so it is set on every call).

    :raises BotOff: TELEGRAM_BOT_TOKEN is not set or is not a bot token.
    """
    app = app or current_app._get_current_object()
    config = app.config
    token = config.get("TELEGRAM_BOT_TOKEN")
    if not token:
        raise BotOff("TELEGRAM_BOT_TOKEN is not set: the bot is off")
    apihelper.API_URL = f"{config['TELEGRAM_API_URL'].rstrip('/')}/bot{{0}}/{{1}}"
    apihelper.CONNECT_TIMEOUT, apihelper.READ_TIMEOUT = config["HTTP_TIMEOUT"]
    bot = app.extensions.get(EXTENSION)
    if bot is None or bot.token != token:
        from app.telegram.handlers import register

        try:
            bot = TeleBot(token, threaded=False)
        except ValueError:
            raise BotOff("TELEGRAM_BOT_TOKEN is not a bot token "
                         "(expected <digits>:<secret> from @BotFather)") from None
        register(bot)
        app.extensions[EXTENSION] = bot
    return bot


def undeliverable(exc: ApiTelegramException) -> bool:
    """Telegram will never deliver to this chat: the user blocked the bot (403) or the chat
    does not exist. Such a message is given up, not retried."""
    description = (exc.description or "").lower()
    return exc.error_code == 403 or (exc.error_code == 400 and "chat not found" in description)


@contextmanager
def telegram_errors(what: str) -> Iterator[None]:
    """Turn what talking to Telegram may raise into what a job should do.

    A 429 becomes `RetryJob(retry_after)`; a connection error or timeout becomes
    `TelegramUnreachable` (retried with backoff), with a warning when the request may
    have reached Telegram; other refusals pass through (`ApiTelegramException`).
    """
    try:
        yield
    except ApiTelegramException as exc:
        if exc.error_code == 429:
            retry_after = (exc.result_json or {}).get("parameters", {}).get("retry_after", 1)
            logger.info("%s: Telegram asks to wait %s s", what, retry_after)
            raise RetryJob(float(retry_after), f"{what}: 429, retry after {retry_after}s") \
                from None
        raise
    except requests.ReadTimeout:
        logger.warning("%s: Telegram did not answer in time; the request may have arrived, "
                       "so the retry may deliver a second copy", what)
        raise TelegramUnreachable(f"{what}: read timeout") from None
    except requests.RequestException as exc:
        raise TelegramUnreachable(f"{what}: {type(exc).__name__}: {scrub(str(exc))}") \
            from None


def enqueue_update(update: dict) -> bool:
    """Store a Telegram update as a `telegram.update` job and commit (a resent update adds
    nothing: the job is keyed by its update_id).

    :returns: False for something that is not an update (no integer update_id).
    """
    update_id = update.get("update_id") if isinstance(update, dict) else None
    if isinstance(update_id, bool) or not isinstance(update_id, int):
        return False
    with unit_of_work():
        enqueue(UPDATE_JOB, {"update": update}, key=f"tg-update-{update_id}")
    return True


def process_update(payload: dict) -> None:
    """Job `telegram.update`: run one stored update through the bot's handlers (a handler
    may act as a staff member for the audit log, until the update is done)."""
    bot = get_bot()
    update = Update.de_json(payload["update"])
    try:
        with telegram_errors(f"update {update.update_id}"):
            bot.process_new_updates([update])
    finally:
        # A handler acts as the manager who pressed; the worker's next job (same app
        # context) must not.
        act_as(SYSTEM)
