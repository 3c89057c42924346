"""Who is calling the Mini App: the `Authorization: tma <initData>` header, checked against
the bot token, must name an active cashier. Each refusal has a code and a Russian message
that the Mini App shows as a screen (with the caller's Telegram ID where it is known)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from flask_babel import lazy_gettext as _l

from app.models import StaffMember
from app.people.services import active_cashier
from app.telegram import initdata

SCHEME = "tma"

MESSAGES = {
    initdata.MISSING: _l("Откройте кассу из Telegram: кнопка «Касса» в чате с ботом."),
    initdata.MALFORMED: _l("Telegram прислал непонятные данные входа. Откройте кассу заново."),
    initdata.BAD_HASH: _l("Данные входа не подписаны нашим ботом. "
                          "Откройте кассу из чата с ботом."),
    initdata.EXPIRED: _l("Вход устарел. Закройте кассу и откройте её заново."),
    initdata.FUTURE: _l("Часы телефона спешат: проверьте время и откройте кассу заново."),
    initdata.BAD_USER: _l("Telegram не сообщил, кто вы. Откройте кассу заново."),
    "not_cashier": _l("Ваш Telegram ID %(id)s не подключён к кассе. "
                      "Попросите менеджера дать доступ."),
    "bot_off": _l("Бот не настроен: в настройках магазина нет TELEGRAM_BOT_TOKEN."),
}


@dataclass(frozen=True)
class SignInRefused(Exception):
    """The caller may not use the till; `telegram_id` is set when Telegram vouched for it."""

    code: str
    telegram_id: int | None = None

    @property
    def message(self) -> str:
        return str(MESSAGES[self.code] % {"id": self.telegram_id})


def init_data_from_header(authorization: str | None) -> initdata.InitData:
    """The Telegram user the request's `Authorization: tma <initData>` header names, checked
    against our bot token and TELEGRAM_INIT_DATA_MAX_AGE (the till and the storefront).

    :raises SignInRefused: no bot token, or no, bad or stale initData.
    """
    config = current_app.config
    token = config.get("TELEGRAM_BOT_TOKEN")
    if not token:
        raise SignInRefused("bot_off")
    scheme, _, raw = (authorization or "").partition(" ")
    if scheme.lower() != SCHEME:
        raise SignInRefused(initdata.MISSING)
    try:
        return initdata.parse_init_data(
            raw.strip(), bot_token=token,
            max_age_seconds=config["TELEGRAM_INIT_DATA_MAX_AGE"])
    except initdata.InitDataError as exc:
        raise SignInRefused(exc.code) from exc


def cashier_from_header(authorization: str | None) -> StaffMember:
    """The active cashier the request's `Authorization: tma <initData>` header names.

    :raises SignInRefused: no or bad initData, or the Telegram user is not an active cashier.
    """
    data = init_data_from_header(authorization)
    cashier = active_cashier(data.user_id)
    if cashier is None:
        raise SignInRefused("not_cashier", data.user_id)
    return cashier
