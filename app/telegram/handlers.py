"""What the bot does with a message or a pressed button. Runs in the worker (job
`telegram.update`) inside an app context; the work is done by the people and orders
services, the texts come from app/telegram/messages.py."""

from __future__ import annotations

import logging

from telebot import TeleBot, util
from telebot.apihelper import ApiTelegramException
from telebot.types import CallbackQuery, Message, User

from app.audit import Actor, act_as
from app.errors import InvalidStateError
from app.extensions import db
from app.models import AccessRequest, AccessStatus, InvalidTransition, StaffMember
from app.orders.services import cashier_orders_today
from app.people.links import START_PREFIX, link_telegram
from app.people.services import active_cashier, active_manager, decide_access, request_access
from app.telegram import messages, notify

logger = logging.getLogger(__name__)


def register(bot: TeleBot) -> None:
    bot.register_message_handler(start, commands=["start"], chat_types=["private"],
                                 pass_bot=True)
    bot.register_message_handler(help_command, commands=["help"], chat_types=["private"],
                                 pass_bot=True)
    bot.register_message_handler(today, commands=["today"], chat_types=["private"],
                                 pass_bot=True)
    bot.register_message_handler(unknown, chat_types=["private"], pass_bot=True)
    bot.register_callback_query_handler(
        ask_access, func=lambda call: call.data == messages.ASK_ACCESS, pass_bot=True)
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
    user = message.from_user
    argument = util.extract_arguments(message.text or "") or ""
    if argument.startswith(START_PREFIX):
        _link_admin(message, bot, argument.removeprefix(START_PREFIX))
        return
    cashier = active_cashier(user.id)
    if cashier is not None:
        reply = messages.start_cashier(cashier.name or user.first_name)
    elif active_manager(user.id) is not None:
        reply = messages.start_manager()
    else:
        reply = messages.start_stranger(user.id)
    db.session.rollback()
    _reply(message, reply)


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


def _edit(bot: TeleBot, call: CallbackQuery, text: str) -> None:
    """Replace the text (and buttons) of the message the button was under; the same text
    again ("message is not modified", a second press) is no error."""
    if call.message is None:
        return
    try:
        bot.edit_message_text(text, call.message.chat.id, call.message.message_id)
    except ApiTelegramException as exc:
        if exc.error_code != 400:
            raise
        logger.info("message %s not edited: %s", call.message.message_id, exc.description)
