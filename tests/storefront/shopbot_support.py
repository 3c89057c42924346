"""What the shop side's tests share (bot, fulfilment, stock, panel): storefront orders made
through the order services as the Mini App will make them, a customer, the sandbox stack
with the bot on, and reading what the fake Bot API received."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import Delivery, Fulfilment, Job, JobStatus, OrderChannel, OrderStatus, Product
from app.orders.services import Line, add_order
from app.people.services import add_staff
from app.storefront.customers import remember_customer
from app.storefront.settings import update_settings
from tests.telegram.conftest import BOT_CONFIG, CASHIER, MANAGER

CUSTOMER = 5001
OTHER_CUSTOMER = 5002
MANAGER2 = 2002
PICKUP_ADDRESS = "Москва, ул. Ленина, 1"


def product(name: str, price_kopecks: int, stock_milli: int | None = None) -> int:
    item = Product(name=name, price_kopecks=price_kopecks, stock_milli=stock_milli,
                   is_published=True)
    db.session.add(item)
    db.session.commit()
    return item.id


def storefront_order(telegram_id: int = CUSTOMER, *, lines: list[Line] | None = None,
                     delivery: Delivery = Delivery.PICKUP, address: str | None = None,
                     comment: str | None = None, phone: str | None = "+79990001122",
                     email: str | None = None, name: str = "Мария") -> int:
    """A storefront order as the Mini App makes one (fulfilment NEW, the customer's
    contact and delivery choice); committed, not yet paid."""
    customer = remember_customer(telegram_id, name, f"buyer{telegram_id}")
    order = add_order(channel=OrderChannel.STOREFRONT,
                      lines=lines or [Line(name="Мёд", price_kopecks=45000),
                                      Line(name="Чай", price_kopecks=12050,
                                           quantity_milli=2000)],
                      customer_phone=phone, customer_email=email)
    order.customer_id = customer.id
    order.delivery = delivery
    order.delivery_address = address
    order.customer_comment = comment
    order.set_fulfilment(Fulfilment.NEW)
    db.session.commit()
    return order.id


def mark_paid(order_id: int) -> None:
    """Paid without a bank (the panel's and the bot's pages only read the order)."""
    from app.models import Order, utcnow

    order = db.session.get(Order, order_id)
    order.set_status(OrderStatus.PENDING)
    order.set_status(OrderStatus.PAID)
    order.paid_at = utcnow()
    db.session.commit()


def markup(params: dict) -> list[list[dict]]:
    raw = params.get("reply_markup")
    return json.loads(raw)["inline_keyboard"] if raw else []


def button_data(params: dict) -> list[str]:
    return [button.get("callback_data", "") for row in markup(params) for button in row]


def texts(api, chat_id: int, method: str = "sendMessage") -> list[str]:
    return [call["text"] for call in api.sent(method) if int(call["chat_id"]) == chat_id]


def jobs_settled(app, prefix: str = "") -> bool:
    with app.app_context():
        try:
            return not db.session.scalar(sa.select(sa.func.count()).select_from(Job).where(
                Job.name.like(f"{prefix}%"),
                Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING])))
        finally:
            db.session.rollback()


@pytest.fixture
def shop(make_stack, fakebot):
    """Kassa + the sandbox bank and register, the bot on the fake Bot API; a cashier, two
    managers, the storefront on with pickup and delivery."""
    stack = make_stack(TELEGRAM_API_URL=fakebot.url, **BOT_CONFIG)
    with stack.app.app_context():
        add_staff(CASHIER, name="Ольга")
        add_staff(MANAGER, name="Пётр", cashier=False, manager=True)
        add_staff(MANAGER2, name="Ирина", cashier=False, manager=True)
        update_settings(storefront_enabled=True, pickup_address=PICKUP_ADDRESS,
                        delivery_enabled=True)
    return stack
