"""The storefront's messages and its other consequences of events, as jobs.

- payment.paid -> `storefront.stock` (any channel, bot or not): the order's product lines
  taken off the stock once (stock.py);
- payment.paid -> `storefront.paid` (a storefront order): the customer gets the order, its
  sum, delivery and the receipt link; each active manager gets the order with the customer's
  contact, lines, delivery and the buttons for the next step (`storefront.manager_message`);
- order.fulfilment -> `storefront.fulfilment`: the customer hears of the step, and every
  manager's message of the order is edited to where it is now (`storefront.manager_edit`);
- refund.completed -> `storefront.refunded`: the customer of a storefront order is told,
  with the refund receipt once it is written;
- storefront.switched -> `storefront.menu_button`: the bot's default menu button follows
  the switch.

One message per event and person: every job is keyed by its event and chat (as
app/telegram/notify.py does). A manager's message is sent by its own job, which keeps the
message id Telegram gave it (ManagerMessage), so that later steps can edit it.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import Flask
from telebot.apihelper import ApiTelegramException

from app import jobs
from app.extensions import db
from app.fiscal.views import receipt_url, refund_receipt_or_wait, sale_receipt_or_wait
from app.jobs import RetryJob, enqueue
from app.models import (
    Customer,
    Fulfilment,
    Job,
    JobStatus,
    ManagerMessage,
    Order,
    OrderChannel,
    Payment,
    ReceiptStatus,
    Refund,
)
from app.people.services import managers
from app.storefront import fulfilment
from app.storefront import messages as shop_messages
from app.storefront.settings import current_settings
from app.storefront.stock import take_stock
from app.telegram.bot import BotOff, get_bot, telegram_errors
from app.telegram.messages import Reply
from app.telegram.notify import deliver, fan_out

logger = logging.getLogger(__name__)

STOCK_JOB = "storefront.stock"
PAID_JOB = "storefront.paid"
FULFILMENT_JOB = "storefront.fulfilment"
REFUNDED_JOB = "storefront.refunded"
MENU_JOB = "storefront.menu_button"
MANAGER_MESSAGE_JOB = "storefront.manager_message"
MANAGER_EDIT_JOB = "storefront.manager_edit"
# How long an edit waits for its message while that is being sent.
EDIT_WAIT_SECONDS = 1.0


def init_app(app: Flask) -> None:
    """The stock job always; the messages and the menu button while the bot is on (the
    handlers always, so jobs left from before still find theirs)."""
    registry = jobs.registry(app)
    registry.subscribe("payment.paid", STOCK_JOB, stock)
    for name, fn in ((PAID_JOB, paid), (FULFILMENT_JOB, fulfilment_step),
                     (REFUNDED_JOB, refunded), (MENU_JOB, menu_button),
                     (MANAGER_EDIT_JOB, manager_edit)):
        registry.handler(name, fn)
    # A manager's message is a new Telegram message each time it runs: marked done as sent.
    registry.handler(MANAGER_MESSAGE_JOB, manager_message, repeatable=False)
    if app.config.get("TELEGRAM_BOT_TOKEN"):
        registry.subscribe("payment.paid", PAID_JOB)
        registry.subscribe(fulfilment.EVENT, FULFILMENT_JOB)
        registry.subscribe("refund.completed", REFUNDED_JOB)
        registry.subscribe("storefront.switched", MENU_JOB)


def _pickup_address() -> str | None:
    return current_settings().pickup_address


def _storefront_order(order: Order | None) -> bool:
    return order is not None and order.channel == OrderChannel.STOREFRONT


def manager_reply(order_id: int) -> Reply:
    """A manager's message of the order as it is now, with the buttons for what is next."""
    order = db.session.get(Order, order_id)
    customer = db.session.get(Customer, order.customer_id) if order.customer_id else None
    return shop_messages.manager_order(order, customer, fulfilment.next_steps(order),
                                  _pickup_address())


# -- event jobs ----------------------------------------------------------------------------

def stock(payload: dict) -> None:
    """Job `storefront.stock` (payment.paid): the paid order's lines off the stock, once."""
    payment = db.session.get(Payment, payload["payment_id"])
    order_id = payment.order_id if payment is not None else None
    db.session.rollback()
    if order_id is not None:
        take_stock(order_id)


def paid(payload: dict) -> None:
    """Job `storefront.paid` (payment.paid): a storefront order's customer and managers are
    told, once per order (a second payment accepted for it tells nobody again)."""
    payment = db.session.get(Payment, payload["payment_id"])
    order = payment.order if payment is not None else None
    if not _storefront_order(order):
        db.session.rollback()
        return
    customer = db.session.get(Customer, order.customer_id) if order.customer_id else None
    receipt = sale_receipt_or_wait(payment)
    link = receipt_url(receipt) if receipt and receipt.status != ReceiptStatus.FAILED else None
    if customer is not None:
        fan_out(f"{PAID_JOB}:order-{order.id}", [customer.telegram_id],
                Reply(shop_messages.customer_paid(order, link, _pickup_address())))
    for manager in managers():
        enqueue(MANAGER_MESSAGE_JOB, {"order_id": order.id, "chat_id": manager.telegram_id},
                key=_message_job_key(order.id, manager.telegram_id))
    db.session.commit()


def fulfilment_step(payload: dict) -> None:
    """Job `storefront.fulfilment` (order.fulfilment): the customer hears of the step; each
    manager's message of the order is edited to where the order is now."""
    order = db.session.get(Order, payload["order_id"])
    if not _storefront_order(order):
        db.session.rollback()
        return
    to = Fulfilment(payload["to"])
    customer = db.session.get(Customer, order.customer_id) if order.customer_id else None
    text = shop_messages.customer_step(order, to, _pickup_address())
    if customer is not None and text:
        fan_out(f"{FULFILMENT_JOB}:order-{order.id}-{to.value}", [customer.telegram_id],
                Reply(text))
    # The managers who got the order's message, and those whose message is on its way
    # (it may have been drawn before this step: its edit waits for it).
    told = set(db.session.scalars(sa.select(ManagerMessage.chat_id)
                                  .where(ManagerMessage.order_id == order.id)))
    on_the_way = {job.payload["chat_id"] for job in db.session.scalars(sa.select(Job).where(
        Job.name == MANAGER_MESSAGE_JOB, Job.status.in_((JobStatus.QUEUED, JobStatus.RUNNING)),
        Job.key.like(f"{MANAGER_MESSAGE_JOB}:order-{order.id}:%")))}
    for chat_id in sorted(told | on_the_way):
        enqueue(MANAGER_EDIT_JOB, {"order_id": order.id, "chat_id": chat_id},
                key=f"{MANAGER_EDIT_JOB}:order-{order.id}-{to.value}:{chat_id}")
    db.session.commit()


def refunded(payload: dict) -> None:
    """Job `storefront.refunded` (refund.completed): a storefront order's customer is told,
    with the refund receipt's link once it is written (as for the sale)."""
    refund = db.session.get(Refund, payload["refund_id"])
    order = refund.payment.order if refund is not None else None
    if not _storefront_order(order) or order.customer_id is None:
        db.session.rollback()
        return
    customer = db.session.get(Customer, order.customer_id)
    receipt = refund_receipt_or_wait(refund)
    link = receipt_url(receipt) if receipt and receipt.status != ReceiptStatus.FAILED else None
    fan_out(f"{REFUNDED_JOB}:refund-{refund.id}", [customer.telegram_id],
            Reply(shop_messages.customer_refunded(order, refund, link)))


def menu_button(payload: dict) -> None:
    """Job `storefront.menu_button` (storefront.switched): the default menu button as the
    switch is now (so two switches in a row end where the switch is)."""
    from app.telegram.setup import set_default_menu_button

    try:
        bot = get_bot()
    except BotOff:
        return
    with telegram_errors("default menu button"):
        set_default_menu_button(bot)


# -- the managers' messages ----------------------------------------------------------------

def manager_message(payload: dict) -> None:
    """Job `storefront.manager_message`: the order to one manager, as it is when sent; the
    message's id is kept (ManagerMessage) for the edits of later steps."""
    chat_id = payload["chat_id"]
    reply = manager_reply(payload["order_id"])
    db.session.rollback()
    sent = deliver(chat_id, reply.text, reply.markup)
    if sent is None:
        return
    db.session.add(ManagerMessage(order_id=payload["order_id"], chat_id=chat_id,
                                  message_id=sent.message_id))
    db.session.commit()


def _message_job_key(order_id: int, chat_id: int) -> str:
    return f"{MANAGER_MESSAGE_JOB}:order-{order_id}:{chat_id}"


def manager_edit(payload: dict) -> None:
    """Job `storefront.manager_edit`: one manager's message of the order edited to where
    the order is now. A message not sent yet will show it when sent; one being sent is
    waited for; a message Telegram will not edit any more is left as it is."""
    order_id, chat_id = payload["order_id"], payload["chat_id"]
    message_id = db.session.scalar(sa.select(ManagerMessage.message_id).where(
        ManagerMessage.order_id == order_id, ManagerMessage.chat_id == chat_id))
    if message_id is None:
        job = db.session.scalars(sa.select(Job).where(
            Job.key == _message_job_key(order_id, chat_id))).first()
        db.session.rollback()
        if job is not None and job.status in (JobStatus.QUEUED, JobStatus.RUNNING):
            raise RetryJob(EDIT_WAIT_SECONDS, "the order's message is not sent yet")
        return  # never delivered
    reply = manager_reply(payload["order_id"])
    db.session.rollback()
    try:
        bot = get_bot()
    except BotOff:
        return
    try:
        with telegram_errors(f"order message {message_id} in {chat_id}"):
            bot.edit_message_text(reply.text, chat_id, message_id, reply_markup=reply.markup)
    except ApiTelegramException as exc:
        if exc.error_code in (400, 403):  # not modified, too old, deleted, blocked
            logger.info("order message %s in %s not edited: %s", message_id, chat_id,
                        exc.description)
            return
        raise



