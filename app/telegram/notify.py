"""The staff's notifications, as jobs, so that nothing is lost while Telegram is slow.

An event's job (`telegram.paid`, `telegram.expired`, ...) works out who gets what and
enqueues one `telegram.send` job per recipient, keyed `telegram.send:<event job key>:<chat>`,
then commits; `telegram.send` sends it. A repeated event, a re-run event job or a pressed
button pressed twice never yields a second message: the keys are already taken.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta

from flask import Flask, current_app
from telebot.apihelper import ApiTelegramException

from app import jobs, reports
from app.extensions import db
from app.fiscal.views import receipt_url, sale_receipt_or_wait
from app.formatting import MOSCOW
from app.jobs import enqueue
from app.models import (
    AccessRequest,
    OrderStatus,
    Payment,
    QrCode,
    Receipt,
    ReceiptStatus,
    Refund,
    StaffMember,
    utcnow,
)
from app.people.services import managers
from app.telegram import messages
from app.telegram.bot import BotOff, get_bot, telegram_errors, undeliverable
from app.telegram.messages import Reply

logger = logging.getLogger(__name__)

SEND_JOB = "telegram.send"
# The managers' daily summary: a job per Moscow date (keyed by it, so once a day), enqueued
# by a periodic check once the configured hour has come.
DAILY_SUMMARY_JOB = "telegram.daily_summary"
DAILY_SUMMARY_CHECK = "telegram.daily_summary_check"
DAILY_SUMMARY_CHECK_SECONDS = 60


EVENTS = {  # event -> the job it causes
    "payment.paid": "telegram.paid",
    "qr.expired": "telegram.expired",
    "refund.completed": "telegram.refund",
    "payment.review": "telegram.review",
    "receipt.failed": "telegram.receipt_failed",
}


def init_app(app: Flask) -> None:
    """Handlers for the send job and the event jobs; the events are subscribed only while
    the bot is on (jobs left from before still find their handler)."""
    registry = jobs.registry(app)
    # Telegram cannot tell a repeated message from a new one: marked done as it is sent.
    registry.handler(SEND_JOB, send, repeatable=False)
    handlers = {"telegram.paid": paid, "telegram.expired": expired,
                "telegram.refund": refund_completed, "telegram.review": payment_review,
                "telegram.receipt_failed": receipt_failed}
    handlers[DAILY_SUMMARY_JOB] = daily_summary
    handlers[DAILY_SUMMARY_CHECK] = daily_summary_check
    for job_name, fn in handlers.items():
        registry.handler(job_name, fn)
    if app.config.get("TELEGRAM_BOT_TOKEN"):
        for event, job_name in EVENTS.items():
            registry.subscribe(event, job_name)
        if app.config.get("DAILY_SUMMARY_HOUR") is not None:
            registry.periodic(DAILY_SUMMARY_CHECK, DAILY_SUMMARY_CHECK_SECONDS)


# -- fan-out -------------------------------------------------------------------------------

def fan_out(event_key: str, chat_ids: list[int], reply: Reply) -> None:
    """Enqueue one `telegram.send` per recipient for the event `event_key`, and commit."""
    for chat_id in dict.fromkeys(chat_ids):
        enqueue(SEND_JOB, {"chat_id": chat_id, "text": reply.text,
                           "reply_markup": reply.markup_json},
                key=f"{SEND_JOB}:{event_key}:{chat_id}")
    db.session.commit()


def _manager_chats() -> list[int]:
    return [member.telegram_id for member in managers()]


def access_requested(access: AccessRequest) -> None:
    """Each active manager gets the request with the buttons to decide it."""
    fan_out(f"telegram.access:access-{access.id}", _manager_chats(),
            messages.access_request(access))


def access_decided(access: AccessRequest) -> None:
    """The person who asked is told the decision (once, however often it is pressed)."""
    fan_out(f"telegram.access_decided:access-{access.id}", [access.telegram_id],
            messages.access_answer(access))


# -- sending -------------------------------------------------------------------------------

def send(payload: dict) -> None:
    """Job `telegram.send`: one message to one chat (see `deliver`)."""
    deliver(payload["chat_id"], payload["text"], payload.get("reply_markup"))


def deliver(chat_id: int, text: str, reply_markup=None):
    """Send one message; the sent Message, or None when the bot is off or Telegram will
    never deliver it (a blocked bot, a chat that does not exist: logged and given up).

    A 429 waits Telegram's retry_after; a connection error or timeout raises, so that the
    job is retried with backoff.
    """
    try:
        bot = get_bot()
    except BotOff:
        logger.warning("message to %s dropped: the bot is off", chat_id)
        return None
    try:
        with telegram_errors(f"message to {chat_id}"):
            return bot.send_message(chat_id, text, reply_markup=reply_markup)
    except ApiTelegramException as exc:
        if undeliverable(exc):
            logger.warning("message to %s not delivered (%s %s); given up", chat_id,
                           exc.error_code, exc.description)
            return None
        raise


# -- event jobs ----------------------------------------------------------------------------

def _active_staff(staff_id: int | None) -> StaffMember | None:
    member = db.session.get(StaffMember, staff_id) if staff_id is not None else None
    return member if member is not None and member.active else None


def paid(payload: dict) -> None:
    """Job `telegram.paid` (event payment.paid): "Оплачено" to the order's cashier, with the
    receipt link once `fiscal.sell` has written the receipt (`sale_receipt_or_wait`)."""
    payment = db.session.get(Payment, payload["payment_id"])
    order = payment.order if payment is not None else None
    cashier = _active_staff(order.cashier_id) if order is not None else None
    if cashier is None:
        return  # API, static QR or a cashier since disabled: nobody to tell
    receipt = sale_receipt_or_wait(payment)
    link = receipt_url(receipt) if receipt and receipt.status != ReceiptStatus.FAILED else None
    fan_out(f"telegram.paid:payment-{payment.id}", [cashier.telegram_id],
            Reply(messages.paid(payment, order, link)))


def expired(payload: dict) -> None:
    """Job `telegram.expired` (event qr.expired): to the order's cashier, if the order is
    still unpaid and has no other QR."""
    qr = db.session.get(QrCode, payload["qr_code_id"])
    order = qr.order if qr is not None else None
    if order is None or order.status != OrderStatus.EXPIRED:
        return
    cashier = _active_staff(order.cashier_id)
    if cashier is not None:
        fan_out(f"telegram.expired:qr-{qr.id}", [cashier.telegram_id],
                Reply(messages.expired(order)))


def refund_completed(payload: dict) -> None:
    """Job `telegram.refund` (event refund.completed): to every active manager."""
    refund = db.session.get(Refund, payload["refund_id"])
    if refund is not None:
        fan_out(f"telegram.refund:refund-{refund.id}", _manager_chats(),
                Reply(messages.refund_completed(refund)))


def payment_review(payload: dict) -> None:
    """Job `telegram.review` (event payment.review): to every active manager."""
    payment = db.session.get(Payment, payload["payment_id"])
    if payment is not None:
        fan_out(f"telegram.review:payment-{payment.id}", _manager_chats(),
                Reply(messages.payment_review(payment)))


def receipt_failed(payload: dict) -> None:
    """Job `telegram.receipt_failed` (event receipt.failed): to every active manager, while
    the receipt is still failed (an admin may have sent it again meanwhile)."""
    receipt = db.session.get(Receipt, payload["receipt_id"])
    if receipt is None or receipt.status != ReceiptStatus.FAILED:
        return
    # The event's key is receipt-<id>-<attempt>; the attempt is the one that failed.
    fan_out(f"telegram.receipt_failed:receipt-{receipt.id}-{receipt.attempt}",
            _manager_chats(), Reply(messages.receipt_failed(receipt)))


# -- the daily summary ---------------------------------------------------------------------

def schedule_daily_summary(now: datetime | None = None) -> date | None:
    """Enqueue today's summary (Moscow date) once DAILY_SUMMARY_HOUR has come, and commit.
    The job is keyed by the date: asked again the same day, nothing is added.

    :returns: the date whose summary is due, or None before the hour (or when it is off).
    """
    hour = current_app.config.get("DAILY_SUMMARY_HOUR")
    local = (now or utcnow()).astimezone(MOSCOW)
    if hour is None or local.hour < hour:
        return None
    day = local.date()
    enqueue(DAILY_SUMMARY_JOB, {"date": day.isoformat()},
            key=f"{DAILY_SUMMARY_JOB}:{day.isoformat()}")
    db.session.commit()
    return day


def daily_summary_check(payload: dict) -> None:
    """Periodic job `telegram.daily_summary_check`: see `schedule_daily_summary`."""
    schedule_daily_summary()


def daily_summary(payload: dict) -> None:
    """Job `telegram.daily_summary`: the day's figures to every active manager."""
    day = date.fromisoformat(payload["date"])
    start = reports.moscow_day_start(day)
    text = messages.daily_summary(
        day, reports.figures(start, start + timedelta(days=1)),
        failed_receipts=reports.failed_receipts_count(),
        review_payments=reports.review_payments_count())
    fan_out(f"{DAILY_SUMMARY_JOB}:{day.isoformat()}", _manager_chats(), Reply(text))
