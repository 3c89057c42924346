"""Telling Telegram about the bot (`flask bot set-webhook`) and long polling for
development (`flask bot poll`). Both go through the same job as the webhook's updates."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import requests
from flask import current_app
from flask_babel import gettext as _
from telebot import TeleBot, apihelper
from telebot.apihelper import ApiTelegramException
from telebot.types import BotCommand, MenuButtonDefault, MenuButtonWebApp, WebAppInfo

from app.errors import KassaError
from app.logs import scrub
from app.telegram.bot import enqueue_update, get_bot
from app.telegram.messages import miniapp_url, shop_url

logger = logging.getLogger(__name__)

ALLOWED_UPDATES = ["message", "callback_query"]
POLL_SECONDS = 25
RETRY_SECONDS = 3


class TelegramRefused(KassaError):
    code = "telegram_refused"
    status = 502


@contextmanager
def _step(method: str) -> Iterator[None]:
    """A refusal or an unreachable Telegram as one KassaError line, without the token."""
    try:
        yield
    except ApiTelegramException as exc:
        raise TelegramRefused(f"Telegram refused {method}: {exc.error_code} "
                              f"{exc.description}") from None
    except requests.RequestException as exc:
        raise TelegramRefused(f"Telegram cannot be reached ({method}): "
                              f"{type(exc).__name__}: {scrub(str(exc))}") from None


def webhook_url() -> str:
    """PUBLIC_URL/telegram/webhook; production needs https (Telegram does too).

    :raises KassaError: PUBLIC_URL is not set, or is http:// in production.
    """
    public = current_app.config.get("PUBLIC_URL") or ""
    scheme = urlsplit(public).scheme.lower()
    if scheme not in ("http", "https"):
        raise KassaError(f"PUBLIC_URL must be an http(s) URL, not {public!r}",
                         code="bad_public_url")
    if current_app.config["APP_ENV"] == "production" and scheme != "https":
        raise KassaError(f"PUBLIC_URL must be https:// for Telegram, not {public!r}",
                         code="bad_public_url")
    return f"{public}/telegram/webhook"


def set_webhook(say: Callable[[str], None]) -> None:
    """setWebhook, the default menu button (the shop while the storefront is on, else the
    till) and the command list; `say` gets one line per step done.

    :raises KassaError: no token, a bad PUBLIC_URL, or Telegram refused or cannot be reached.
    """
    bot = get_bot()
    url = webhook_url()
    with _step("setWebhook"):
        bot.set_webhook(url=url, secret_token=current_app.config["TELEGRAM_WEBHOOK_SECRET"],
                        allowed_updates=ALLOWED_UPDATES, drop_pending_updates=False)
    say(f"webhook set: {url}")
    with _step("setChatMenuButton"):
        text, app_url = set_default_menu_button(bot)
    say(f"menu button set: {text} -> {app_url}")
    commands = [BotCommand("start", _("Открыть кассу или магазин")),
                BotCommand("help", _("Что умеет бот")),
                BotCommand("today", _("Мои заказы за сегодня")),
                BotCommand("orders", _("Мои покупки в магазине")),
                BotCommand("staff", _("Запросить доступ к кассе"))]
    with _step("setMyCommands"):
        bot.set_my_commands(commands)
    say("commands set: " + ", ".join(f"/{c.command}" for c in commands))


def set_default_menu_button(bot: TeleBot) -> tuple[str, str]:
    """The menu button of every chat without one of its own: the shop while the storefront
    is on, else the till.

    :returns: the button's text and URL.
    """
    from app.extensions import db
    from app.storefront.settings import storefront_enabled

    shop_on = storefront_enabled()
    db.session.rollback()
    text, url = (_("Магазин"), shop_url()) if shop_on else (_("Касса"), miniapp_url())
    bot.set_chat_menu_button(menu_button=MenuButtonWebApp(text=text, web_app=WebAppInfo(url)))
    return text, url


def set_chat_menu_button(bot: TeleBot, chat_id: int, *, till: bool) -> None:
    """One chat's own menu button: the till (a cashier's, whatever the default), or back
    to the default. A chat Telegram does not know (400) is logged, not retried."""
    button = (MenuButtonWebApp(text=_("Касса"), web_app=WebAppInfo(miniapp_url())) if till
              else MenuButtonDefault(type="default"))
    try:
        bot.set_chat_menu_button(chat_id=chat_id, menu_button=button)
    except ApiTelegramException as exc:
        if exc.error_code != 400:
            raise
        logger.info("menu button of chat %s not set: %s", chat_id, exc.description)


def poll(say: Callable[[str], None], *, delete_webhook: bool = False,
         once: bool = False) -> None:
    """Long-poll getUpdates and store each update as a `telegram.update` job (the worker
    runs them). Runs until interrupted; `once` stops after the first answer.

    :raises KassaError: no token, or Telegram refused (a webhook is set, say).
    """
    bot = get_bot()
    if delete_webhook:
        with _step("deleteWebhook"):
            bot.delete_webhook()
        say("webhook removed")
    say("polling Telegram for updates; `flask worker` must run to handle them")
    offset = None
    while True:
        try:
            with _step("getUpdates"):
                updates = apihelper.get_updates(
                    bot.token, offset=offset, timeout=POLL_SECONDS + 10,
                    allowed_updates=ALLOWED_UPDATES, long_polling_timeout=POLL_SECONDS)
        except TelegramRefused as exc:
            if "409" in exc.message:
                raise TelegramRefused(exc.message + " (a webhook is set: run with "
                                      "--delete-webhook)") from None
            if once or "cannot be reached" not in exc.message:
                raise
            logger.warning("%s; trying again in %s s", exc.message, RETRY_SECONDS)
            time.sleep(RETRY_SECONDS)
            continue
        for update in updates or []:
            if enqueue_update(update):
                offset = update["update_id"] + 1
        if updates:
            say(f"{len(updates)} update(s) queued")
        if once:
            return
