"""The storefront's customers: Telegram users known by the id Telegram signed for them."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from app.extensions import db
from app.models import Customer, Order, OrderChannel, utcnow


def customer_by_telegram_id(telegram_id: int) -> Customer | None:
    return db.session.scalar(sa.select(Customer).where(Customer.telegram_id == telegram_id))


def remember_customer(telegram_id: int, name: str | None = None,
                      username: str | None = None) -> Customer:
    """The customer row for a Telegram user, made on first need and its name kept current;
    left to the caller's transaction. Race-safe (INSERT ... ON CONFLICT DO NOTHING)."""
    found = customer_by_telegram_id(telegram_id)
    if found is None:
        dialect = postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite
        db.session.execute(
            dialect.insert(Customer)
            .values(telegram_id=telegram_id, name=(name or "")[:128] or None,
                    username=(username or "")[:64] or None,
                    created_at=utcnow(), updated_at=utcnow())
            .on_conflict_do_nothing(index_elements=["telegram_id"])
        )
        return customer_by_telegram_id(telegram_id)
    if name and found.name != name[:128]:
        found.name = name[:128]
    if username and found.username != username[:64]:
        found.username = username[:64]
    return found


def save_phone(telegram_id: int, phone: str, *, name: str | None = None,
               username: str | None = None) -> Customer:
    """Keep the phone a customer shared (their own, as Telegram says) for the next order's
    receipt; commit."""
    customer = remember_customer(telegram_id, name, username)
    customer.phone = phone
    db.session.commit()
    return customer


def customer_orders(customer_id: int, *, limit: int = 20) -> list[Order]:
    """A customer's storefront orders, newest first."""
    return list(db.session.scalars(
        sa.select(Order)
        .where(Order.customer_id == customer_id, Order.channel == OrderChannel.STOREFRONT)
        .order_by(Order.created_at.desc(), Order.id.desc())
        .limit(limit)
    ))
