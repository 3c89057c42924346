"""Who is shopping: any Telegram user our bot's signed initData names (the same check as the
till's: app/telegram/signin.py), or the demo customer in demo mode. Each refusal is a 403
screen with its code and a Russian message."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from flask import current_app, g, request
from flask_babel import lazy_gettext as _l

from app.audit import Actor, act_as
from app.storefront.settings import storefront_enabled
from app.telegram import initdata
from app.telegram.signin import SignInRefused, init_data_from_header

DEMO_TELEGRAM_ID = -1
DEMO_NAME = _l("Демо-покупатель")

MESSAGES = {
    initdata.MISSING: _l("Откройте магазин из Telegram: кнопка «Магазин» в чате с ботом."),
    initdata.MALFORMED: _l("Telegram прислал непонятные данные входа. Откройте магазин заново."),
    initdata.BAD_HASH: _l("Данные входа не подписаны ботом магазина. "
                          "Откройте магазин из чата с ботом."),
    initdata.EXPIRED: _l("Вход устарел. Закройте магазин и откройте его заново."),
    initdata.FUTURE: _l("Часы телефона спешат: проверьте время и откройте магазин заново."),
    initdata.BAD_USER: _l("Telegram не сообщил, кто вы. Откройте магазин заново."),
    "bot_off": _l("Магазин не настроен: у него нет бота в Telegram."),
    "storefront_off": _l("Магазин сейчас не принимает заказы в Telegram. Загляните позже."),
}


@dataclass(frozen=True)
class CustomerUser:
    """The shopper as Telegram vouches for them (no database row until they order)."""

    telegram_id: int
    name: str
    username: str | None = None


class CustomerRefused(Exception):
    def __init__(self, code: str):
        super().__init__(code)
        self.code = code

    @property
    def message(self) -> str:
        return str(MESSAGES.get(self.code, MESSAGES[initdata.MALFORMED]))


def demo_mode() -> bool:
    """A development app without a bot token: the shop opens in a plain browser as the demo
    customer. Never in testing or production, whatever else is configured."""
    config = current_app.config
    return config["APP_ENV"] == "development" and not config.get("TELEGRAM_BOT_TOKEN")


def current_customer() -> CustomerUser:
    """The caller, checked on every request.

    :raises CustomerRefused: the storefront is off, no bot, or no, bad or stale initData.
    """
    if demo_mode():
        user = CustomerUser(DEMO_TELEGRAM_ID, str(DEMO_NAME))
    else:
        try:
            data = init_data_from_header(request.headers.get("Authorization"))
        except SignInRefused as refused:
            raise CustomerRefused(refused.code) from refused
        name = " ".join(part for part in (data.first_name, data.last_name) if part)
        user = CustomerUser(data.user_id, name[:128], data.username)
    if not storefront_enabled():
        raise CustomerRefused("storefront_off")
    return user


def customer_required(view):
    """Let the view run for a shopper (`g.customer_user`, also the audit actor); anyone
    else gets the 403 refusal screen."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        from app.storefront.views import refused_screen

        try:
            g.customer_user = current_customer()
        except CustomerRefused as refused:
            return refused_screen(refused)
        user = g.customer_user
        act_as(Actor("customer", user.telegram_id, user.name, request.remote_addr))
        return view(*args, **kwargs)

    return wrapper
