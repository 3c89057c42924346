"""What the bot does with a message or a pressed button. Runs in the worker (job
`telegram.update`) inside an app context; the work is done by the people and orders
services, the texts come from app/telegram/messages.py."""

from __future__ import annotations

import logging

from telebot import TeleBot, util
from telebot.apihelper import ApiTelegramException
from telebot.types import CallbackQuery, Message, User

from app.audit import Actor, act_as
from app.errors import InvalidStateError, KassaError
from app.extensions import db
from app.models import (
    AccessRequest,
    AccessStatus,
    Fulfilment,
    InvalidTransition,
    Order,
    StaffMember,
)
from app.orders.services import PHONE, cashier_orders_today
from app.people.links import START_PREFIX, link_telegram
from app.people.services import active_cashier, active_manager, decide_access, request_access
from app.storefront import messages as shop_messages
from app.storefront.settings import current_settings, storefront_enabled
from app.telegram import messages, notify, setup

logger = logging.getLogger(__name__)


def register(bot: TeleBot) -> None:
    bot.register_message_handler(start, commands=["start"], chat_types=["private"],
                                 pass_bot=True)
    bot.register_message_handler(help_command, commands=["help"], chat_types=["private"],
                                 pass_bot=True)
    bot.register_message_handler(today, commands=["today"], chat_types=["private"],
                                 pass_bot=True)
    bot.register_message_handler(staff, commands=["staff"], chat_types=["private"],
                                 pass_bot=True)
    bot.register_message_handler(orders, commands=["orders"], chat_types=["private"],
                                 pass_bot=True)
    bot.register_message_handler(shared_contact, content_types=["contact"],
                                 chat_types=["private"], pass_bot=True)
    bot.register_message_handler(unknown, chat_types=["private"], pass_bot=True)
    bot.register_callback_query_handler(
        ask_access, func=lambda call: call.data == messages.ASK_ACCESS, pass_bot=True)
    bot.register_callback_query_handler(
        orders_button, func=lambda call: call.data == shop_messages.CUSTOMER_ORDERS, pass_bot=True)
    bot.register_callback_query_handler(
        fulfil, pass_bot=True,
        func=lambda call: (call.data or "").startswith(f"{shop_messages.FULFIL}:"))
    bot.register_callback_query_handler(
        decide, pass_bot=True,
        func=lambda call: (call.data or "").startswith((messages.APPROVE, messages.REFUSE)))
    bot.register_callback_query_handler(
        stale_button, func=lambda call: True, pass_bot=True)


def _name(user: User) -> str | None:
    return " ".join(part for part in (user.first_name, user.last_name) if part) or None


def _reply(message: Message, reply: messages.Reply | str) -> None:
    """Answer a message through a `telegram.send` job keyed by the message, so a handler
    run again after a failure (a 429 on another call, a worker that died) never answers
    twice, and a slow Bot API is waited out like for any notification."""
    if isinstance(reply, str):
        reply = messages.Reply(reply)
    chat_id = message.chat.id
    notify.fan_out(f"telegram.reply:message-{chat_id}-{message.message_id}", [chat_id], reply)


# -- commands ------------------------------------------------------------------------------

def start(message: Message, bot: TeleBot) -> None:
    """/start: staff get the till as always (a cashier also gets the till as this chat's
    menu button, whatever the default); anyone else gets the shop while the storefront
    is on, else the way to ask for access."""
    user = message.from_user
    argument = util.extract_arguments(message.text or "") or ""
    if argument.startswith(START_PREFIX):
        _link_admin(message, bot, argument.removeprefix(START_PREFIX))
        return
    cashier = active_cashier(user.id)
    manager = active_manager(user.id) if cashier is None else None
    settings = current_settings()
    shop_on = settings.storefront_enabled
    if cashier is not None:
        reply = messages.start_cashier(cashier.name or user.first_name)
    elif manager is not None:
        reply = messages.start_manager()
    elif shop_on:
        reply = shop_messages.start_customer(settings.welcome_text)
    else:
        reply = messages.start_stranger(user.id)
    db.session.rollback()
    if cashier is not None:
        setup.set_chat_menu_button(bot, message.chat.id, till=True)
    elif manager is None:
        # Someone who was a cashier once keeps no till button of their own.
        setup.set_chat_menu_button(bot, message.chat.id, till=False)
    _reply(message, reply)


def staff(message: Message, bot: TeleBot) -> None:
    """/staff: the way to ask for access to the till (what /start gives a stranger while
    the storefront is off)."""
    user = message.from_user
    known = active_cashier(user.id) is not None or active_manager(user.id) is not None
    db.session.rollback()
    _reply(message, shop_messages.staff_already() if known else messages.start_stranger(user.id))


def _customer_orders_reply(telegram_id: int) -> messages.Reply:
    from app.storefront.customers import customer_by_telegram_id, customer_orders

    customer = customer_by_telegram_id(telegram_id)
    found = (customer_orders(customer.id, limit=shop_messages.CUSTOMER_ORDERS_MAX)
             if customer else [])
    reply = shop_messages.customer_orders(found, shop_on=storefront_enabled())
    db.session.rollback()
    return reply


def orders(message: Message, bot: TeleBot) -> None:
    """/orders: the customer's own storefront orders with their states."""
    _reply(message, _customer_orders_reply(message.from_user.id))


def shared_contact(message: Message, bot: TeleBot) -> None:
    """A contact shared in the chat (Telegram's requestContact in the shop, or the
    attachment menu): the sender's own number is kept on their customer row."""
    from app.storefront.customers import save_phone

    user, contact = message.from_user, message.contact
    phone = "+" + "".join(ch for ch in (contact.phone_number or "") if ch.isdigit())
    if contact.user_id != user.id or not PHONE.match(phone):
        _reply(message, shop_messages.contact_not_yours())
        return
    save_phone(user.id, phone, name=_name(user), username=user.username)
    _reply(message, shop_messages.contact_saved(phone))


def _link_admin(message: Message, bot: TeleBot, token: str) -> None:
    """`/start link-<token>` from the admin panel's deep link: this Telegram account gets
    the managers' alerts for the admin who made the link."""
    user = message.from_user
    try:
        admin = link_telegram(token, user.id, _name(user))
        text = messages.admin_linked(admin.email)
    except InvalidStateError:
        text = messages.admin_link_refused()
    db.session.rollback()
    _reply(message, text)


def help_command(message: Message, bot: TeleBot) -> None:
    _reply(message, messages.help_text())


def today(message: Message, bot: TeleBot) -> None:
    user = message.from_user
    cashier = active_cashier(user.id)
    if cashier is None:
        text = messages.not_a_cashier(user.id)
    else:
        text = messages.today(cashier_orders_today(cashier.id))
    db.session.rollback()
    _reply(message, text)


def unknown(message: Message, bot: TeleBot) -> None:
    _reply(message, messages.unknown_text())


# -- buttons -------------------------------------------------------------------------------

def ask_access(call: CallbackQuery, bot: TeleBot) -> None:
    """"Запросить доступ": the request is saved and each manager gets it (notify jobs)."""
    user = call.from_user
    try:
        access = request_access(user.id, _name(user), username=user.username)
    except InvalidStateError:
        _answer(bot, call, messages.access_already_staff())
        return
    notify.access_requested(access)
    _answer(bot, call, messages.access_asked())
    _edit(bot, call, messages.access_asked())


def _request_id(data: str) -> int | None:
    _, _, tail = data.rpartition(":")
    return int(tail) if tail.isdigit() else None


def decide(call: CallbackQuery, bot: TeleBot) -> None:
    """"Разрешить" / "Отказать" under a request: only an active manager may press them; the
    first decision stands, a later press is told so."""
    manager = active_manager(call.from_user.id)
    if manager is None:
        db.session.rollback()
        _answer(bot, call, messages.only_managers(), alert=True)
        return
    manager_id, manager_name = manager.id, manager.name or _name(call.from_user)
    act_as(Actor("manager", manager_id, manager_name, "telegram"))
    request_id = _request_id(call.data)
    access = db.session.get(AccessRequest, request_id) if request_id else None
    if access is None:
        db.session.rollback()
        _answer(bot, call, messages.unknown_request(), alert=True)
        return
    approve = call.data.startswith(messages.APPROVE)
    decided_here = False
    if access.status == AccessStatus.PENDING:
        try:
            access = decide_access(access.id, approve=approve,
                                   manager_telegram_id=call.from_user.id)
            decided_here = access.decided_by == manager_id
        except InvalidTransition:
            # Another manager decided the other way a moment ago.
            access = db.session.get(AccessRequest, request_id)
    if decided_here:
        notify.access_decided(access)
        access = db.session.get(AccessRequest, request_id)
    decider = db.session.get(StaffMember, access.decided_by) if access.decided_by else None
    if decider is not None and decider.id != manager_id:
        manager_name = decider.name or f"ID {decider.telegram_id}"
    text = messages.access_decided(access, manager_name)
    db.session.rollback()
    _answer(bot, call, messages.done() if decided_here else messages.already_decided(),
            alert=not decided_here)
    _edit(bot, call, text)


def orders_button(call: CallbackQuery, bot: TeleBot) -> None:
    """"Мои заказы" under the shop's welcome."""
    _answer(bot, call, None)
    chat_id = call.message.chat.id if call.message is not None else call.from_user.id
    notify.fan_out(f"telegram.reply:callback-{call.id}", [chat_id],
                   _customer_orders_reply(call.from_user.id))


def _fulfil_data(data: str) -> tuple[int, str] | None:
    parts = data.split(":")
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    return int(parts[1]), parts[2]


def fulfil(call: CallbackQuery, bot: TeleBot) -> None:
    """A manager's step under a storefront order ("ff:<order>:<step>"): only an active
    manager may press; a step taken already (a second press, another manager) changes
    nothing and says so. Cancelling asks first, then refunds the whole order."""
    from app.storefront import fulfilment

    manager = active_manager(call.from_user.id)
    parsed = _fulfil_data(call.data or "")
    if manager is None or parsed is None:
        db.session.rollback()
        _answer(bot, call, shop_messages.only_managers_orders() if manager is None else None,
                alert=manager is None)
        return
    act_as(Actor("manager", manager.id, manager.name or _name(call.from_user), "telegram"))
    order_id, step = parsed
    order = db.session.get(Order, order_id)
    if order is None:
        db.session.rollback()
        _answer(bot, call, shop_messages.unknown_order(), alert=True)
        return
    if step in (shop_messages.ASK_CANCEL, shop_messages.SHOW):
        asking = step == shop_messages.ASK_CANCEL and Fulfilment.CANCELLED in \
            fulfilment.next_steps(order)
        markup = (shop_messages.confirm_cancel_keyboard(order) if asking
                  else shop_messages.step_keyboard(order, fulfilment.next_steps(order)))
        db.session.rollback()
        _answer(bot, call, None)
        _edit_markup(bot, call, markup)
        return
    try:
        to = Fulfilment(step)
    except ValueError:
        db.session.rollback()
        _answer(bot, call, None)
        return
    db.session.rollback()
    try:
        if to == Fulfilment.CANCELLED:
            fulfilment.cancel_with_refund(order_id)
        else:
            fulfilment.advance(order_id, to)
    except KassaError as exc:
        db.session.rollback()
        text = shop_messages.step_already() if exc.code == "already" else exc.message
        _answer(bot, call, str(text), alert=True)
    else:
        _answer(bot, call, messages.done())
    # This manager's message shows where the order is now (the others' follow by a job).
    from app.storefront.notify import manager_reply

    reply = manager_reply(order_id)
    db.session.rollback()
    _edit(bot, call, reply.text, reply.markup)


def stale_button(call: CallbackQuery, bot: TeleBot) -> None:
    """A button the bot no longer knows: answered, so the phone stops spinning."""
    _answer(bot, call, None)


def _answer(bot: TeleBot, call: CallbackQuery, text: str | None, *, alert: bool = False):
    """Answer a pressed button. A query answered late (the worker was down) is refused by
    Telegram with 400: nothing to do about it, and no reason to run the update again."""
    try:
        bot.answer_callback_query(call.id, text, show_alert=alert)
    except ApiTelegramException as exc:
        if exc.error_code != 400:
            raise
        logger.info("callback %s not answered: %s", call.id, exc.description)


def _edit(bot: TeleBot, call: CallbackQuery, text: str, markup=None) -> None:
    """Replace the text (and buttons) of the message the button was under; the same text
    again ("message is not modified", a second press) is no error."""
    if call.message is None:
        return
    try:
        bot.edit_message_text(text, call.message.chat.id, call.message.message_id,
                              reply_markup=markup)
    except ApiTelegramException as exc:
        if exc.error_code != 400:
            raise
        logger.info("message %s not edited: %s", call.message.message_id, exc.description)


def _edit_markup(bot: TeleBot, call: CallbackQuery, markup) -> None:
    """Replace only the buttons under the message the button was under."""
    if call.message is None:
        return
    try:
        bot.edit_message_reply_markup(call.message.chat.id, call.message.message_id,
                                      reply_markup=markup)
    except ApiTelegramException as exc:
        if exc.error_code != 400:
            raise
        logger.info("buttons of %s not edited: %s", call.message.message_id, exc.description)
