"""The bot with the storefront: who gets the shop and who the till on /start, asking for
access with /staff, a customer's /orders, a shared phone number, and the menu buttons
following the switch. Updates posted to the webhook, run by a real worker, answers read
from the fake Bot API."""

# ruff: noqa: F811 - the fixtures are imported from the shared modules
from __future__ import annotations

import json

import sqlalchemy as sa

from app.extensions import db
from app.models import AccessRequest, Customer, Fulfilment, Order
from app.storefront.customers import customer_by_telegram_id
from app.storefront.settings import set_storefront, update_settings
from tests.storefront.shopbot_support import (
    CUSTOMER,
    OTHER_CUSTOMER,
    mark_paid,
    storefront_order,
)
from tests.telegram.conftest import (  # noqa: F401 - fixtures
    CASHIER,
    MANAGER,
    PUBLIC_URL,
    STRANGER,
    fakebot,
    markup,
    telegram,
)

SHOP_URL = f"{PUBLIC_URL}/shop/"
TILL_URL = f"{PUBLIC_URL}/miniapp/"


def _menu_buttons(api, chat_id: int | None = None) -> list[dict]:
    """The menu buttons set, for one chat or (None) the default."""
    return [json.loads(call["menu_button"]) for call in api.sent("setChatMenuButton")
            if (int(call["chat_id"]) if "chat_id" in call else None) == chat_id]


def _storefront(on: bool, **settings) -> None:
    update_settings(storefront_enabled=on, **settings)


def test_with_the_storefront_off_a_stranger_gets_the_way_to_ask_for_access(telegram):
    telegram.text(STRANGER, "/start")
    telegram.run_jobs()
    (reply,) = telegram.messages(STRANGER)
    assert f"Ваш Telegram ID: {STRANGER}" in reply["text"]
    assert markup(reply) == [[{"text": "Запросить доступ", "callback_data": "access:ask"}]]
    assert _menu_buttons(telegram.api, STRANGER) == [{"type": "default"}]


def test_with_the_storefront_on_a_stranger_gets_the_shop_and_staff_keep_the_till(telegram):
    _storefront(True, welcome_text="Мёд с пасеки, доставка по Москве")
    telegram.text(STRANGER, "/start")
    telegram.text(CASHIER, "/start")
    telegram.text(MANAGER, "/start")
    telegram.run_jobs()

    (reply,) = telegram.messages(STRANGER)
    assert reply["text"].splitlines() == ["Мёд с пасеки, доставка по Москве",
                                          "Сотрудникам магазина: /staff"]
    assert markup(reply) == [
        [{"text": "Открыть магазин", "web_app": {"url": SHOP_URL}}],
        [{"text": "Мои заказы", "callback_data": "shop:orders"}],
    ]
    # Someone who once was a cashier gets the default (shop) button back.
    assert _menu_buttons(telegram.api, STRANGER) == [{"type": "default"}]

    (to_cashier,) = telegram.messages(CASHIER)
    assert markup(to_cashier)[0][0]["web_app"]["url"] == TILL_URL
    assert _menu_buttons(telegram.api, CASHIER) == [
        {"type": "web_app", "text": "Касса", "web_app": {"url": TILL_URL}}]
    (to_manager,) = telegram.messages(MANAGER)
    assert "менеджер" in to_manager["text"]
    # The default menu button followed the switch.
    assert _menu_buttons(telegram.api) == [
        {"type": "web_app", "text": "Магазин", "web_app": {"url": SHOP_URL}}]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AccessRequest)) == 0


def test_staff_asks_for_access_with_the_storefront_on_or_off(telegram):
    set_storefront(True)
    telegram.text(STRANGER, "/staff")
    telegram.text(CASHIER, "/staff")
    telegram.run_jobs()
    (reply,) = telegram.messages(STRANGER)
    assert f"Ваш Telegram ID: {STRANGER}" in reply["text"]
    assert markup(reply) == [[{"text": "Запросить доступ", "callback_data": "access:ask"}]]
    assert telegram.messages(CASHIER)[0]["text"] == "У вас уже есть доступ к кассе. Нажмите /start."

    query = telegram.press(STRANGER, "access:ask", first_name="Иван")
    telegram.run_jobs()
    assert telegram.answer(query)["text"].startswith("Запрос отправлен")
    (to_manager,) = telegram.messages(MANAGER)
    assert "Иван" in to_manager["text"]

    set_storefront(False)
    telegram.text(OTHER_CUSTOMER, "/staff")
    telegram.run_jobs()
    assert markup(telegram.messages(OTHER_CUSTOMER)[0]) == [
        [{"text": "Запросить доступ", "callback_data": "access:ask"}]]


def test_orders_shows_the_customers_own_orders_with_their_state(telegram):
    set_storefront(True)
    paid = storefront_order(CUSTOMER)
    mark_paid(paid)
    waiting = storefront_order(CUSTOMER)
    storefront_order(OTHER_CUSTOMER)
    order = db.session.get(Order, paid)
    order.set_fulfilment(Fulfilment.ACCEPTED)
    db.session.commit()

    telegram.text(CUSTOMER, "/orders")
    telegram.text(STRANGER, "/orders")
    telegram.run_jobs()
    (reply,) = telegram.messages(CUSTOMER)
    lines = reply["text"].splitlines()
    assert lines[0] == "Ваши заказы:"
    assert len(lines) == 3
    assert lines[1].startswith(f"№{waiting} от ")
    assert lines[1].endswith("— 691,00\u00a0₽ — новый")  # no QR yet
    assert lines[2].startswith(f"№{paid} от ") and lines[2].endswith(
        "— 691,00\u00a0₽ — оплачен, принят")
    assert markup(reply) == [[{"text": "Открыть магазин", "web_app": {"url": SHOP_URL}}]]
    (nothing,) = telegram.messages(STRANGER)
    assert nothing["text"] == "У вас пока нет заказов."

    # The same list under "Мои заказы" of the shop's welcome.
    telegram.press(CUSTOMER, "shop:orders")
    telegram.run_jobs()
    assert telegram.messages(CUSTOMER)[-1]["text"] == reply["text"]


def test_a_shared_contact_is_kept_only_when_it_is_the_senders_own(telegram):
    def share(user_id: int, contact_user_id: int, phone: str) -> None:
        update = {"update_id": next(telegram.update_ids), "message": {
            "message_id": next(telegram.update_ids), "date": 0,
            "chat": {"id": user_id, "type": "private"},
            "from": {"id": user_id, "is_bot": False, "first_name": "Мария"},
            "contact": {"phone_number": phone, "first_name": "Мария",
                        "user_id": contact_user_id}}}
        assert telegram.post(update).status_code == 200

    share(CUSTOMER, CUSTOMER, "79991234567")
    share(OTHER_CUSTOMER, CUSTOMER, "+79990000000")
    telegram.run_jobs()
    (saved,) = telegram.messages(CUSTOMER)
    assert saved["text"].startswith("Спасибо! Номер +79991234567 сохранён")
    assert customer_by_telegram_id(CUSTOMER).phone == "+79991234567"
    (refused,) = telegram.messages(OTHER_CUSTOMER)
    assert refused["text"].startswith("Сохраняю только ваш собственный номер")
    assert customer_by_telegram_id(OTHER_CUSTOMER) is None
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Customer)) == 1


def test_the_default_menu_button_follows_the_switch_and_set_webhook(telegram):
    set_storefront(True)
    telegram.run_jobs()
    set_storefront(False)
    telegram.run_jobs()
    assert _menu_buttons(telegram.api) == [
        {"type": "web_app", "text": "Магазин", "web_app": {"url": SHOP_URL}},
        {"type": "web_app", "text": "Касса", "web_app": {"url": TILL_URL}},
    ]
    set_storefront(True)
    result = telegram.app.test_cli_runner().invoke(args=["bot", "set-webhook"])
    assert result.exit_code == 0, result.output
    assert f"menu button set: Магазин -> {SHOP_URL}" in result.output.splitlines()
