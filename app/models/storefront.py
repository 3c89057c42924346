"""The shop in the bot (storefront): its settings, categories, customers, product photos,
the SBP bank directory, and the remote order's way from paid to handed over."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import TimestampMixin, UTCDateTime, str_enum

SINGLETON = 1


class ShopSettings(TimestampMixin, db.Model):
    """The storefront's settings, one row (made on first need, see app/storefront/settings.py)."""

    __tablename__ = "shop_settings"
    __table_args__ = (sa.CheckConstraint(f"id = {SINGLETON}", name="single_row"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    storefront_enabled: Mapped[bool] = mapped_column(default=False)
    pickup_enabled: Mapped[bool] = mapped_column(default=True)
    pickup_address: Mapped[str | None] = mapped_column(sa.String(255))
    delivery_enabled: Mapped[bool] = mapped_column(default=False)
    # What the customer reads under "Доставка" (area, days, cost paid on delivery...).
    delivery_terms: Mapped[str | None] = mapped_column(sa.String(500))
    # Shown on top of the storefront's catalog.
    welcome_text: Mapped[str | None] = mapped_column(sa.String(500))


class Category(TimestampMixin, db.Model):
    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64), unique=True)
    position: Mapped[int] = mapped_column(default=0)

    def __repr__(self) -> str:
        return f"<Category {self.id} {self.name!r}>"


class Customer(TimestampMixin, db.Model):
    """A Telegram user who bought (or tried to) in the storefront; initData says who."""

    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    telegram_id: Mapped[int] = mapped_column(sa.BigInteger, unique=True)
    name: Mapped[str | None] = mapped_column(sa.String(128))
    username: Mapped[str | None] = mapped_column(sa.String(64))
    # The last contact the customer gave for receipts (prefills the next order).
    phone: Mapped[str | None] = mapped_column(sa.String(20))
    email: Mapped[str | None] = mapped_column(sa.String(64))

    def __repr__(self) -> str:
        return f"<Customer {self.id} tg={self.telegram_id}>"


class ProductPhoto(TimestampMixin, db.Model):
    """A product's photo, resized on upload and kept in the database (so every web process
    and a restored backup has it): `image` for the product card, `thumb` for the list."""

    __tablename__ = "product_photos"

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(
        sa.ForeignKey("products.id", ondelete="CASCADE"), unique=True)
    digest: Mapped[str] = mapped_column(sa.String(16))  # in the URL: a new photo, a new URL
    content_type: Mapped[str] = mapped_column(sa.String(32), default="image/jpeg")
    image: Mapped[bytes] = mapped_column(sa.LargeBinary)
    thumb: Mapped[bytes] = mapped_column(sa.LargeBinary)
    width: Mapped[int] = mapped_column(default=0)
    height: Mapped[int] = mapped_column(default=0)


class BankDirectory(TimestampMixin, db.Model):
    """NSPK's list of SBP member bank apps as last fetched (one row); until the first fetch
    the list shipped with Kassa is used."""

    __tablename__ = "bank_directory"
    __table_args__ = (sa.CheckConstraint(f"id = {SINGLETON}", name="single_row"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    banks: Mapped[list] = mapped_column(sa.JSON, default=list)  # [{"name", "schema"}, ...]
    source_url: Mapped[str] = mapped_column(sa.String(255))
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ManagerMessage(TimestampMixin, db.Model):
    """The message a manager got about a storefront order, edited as the order moves on."""

    __tablename__ = "order_manager_messages"
    __table_args__ = (sa.UniqueConstraint("order_id", "chat_id",
                                          name="uq_order_manager_messages_order_chat"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("orders.id", ondelete="CASCADE"))
    chat_id: Mapped[int] = mapped_column(sa.BigInteger)
    message_id: Mapped[int] = mapped_column(sa.BigInteger)


class Delivery(enum.Enum):
    PICKUP = "pickup"
    DELIVERY = "delivery"


class Fulfilment(enum.Enum):
    """A storefront order's way through the shop once it is paid."""

    NEW = "new"                  # paid (or not yet): the shop has not taken it up
    ACCEPTED = "accepted"
    READY = "ready"              # pickup: waiting for the customer
    SHIPPED = "shipped"          # delivery: on its way
    HANDED_OVER = "handed_over"
    CANCELLED = "cancelled"      # by the shop, with a refund


FULFILMENT_TRANSITIONS = {
    Fulfilment.NEW: frozenset({Fulfilment.ACCEPTED, Fulfilment.CANCELLED}),
    Fulfilment.ACCEPTED: frozenset({Fulfilment.READY, Fulfilment.SHIPPED,
                                    Fulfilment.CANCELLED}),
    Fulfilment.READY: frozenset({Fulfilment.HANDED_OVER, Fulfilment.CANCELLED}),
    Fulfilment.SHIPPED: frozenset({Fulfilment.HANDED_OVER, Fulfilment.CANCELLED}),
    Fulfilment.HANDED_OVER: frozenset(),
    Fulfilment.CANCELLED: frozenset(),
}

# Column types shared with app/models/orders.py.
DELIVERY_TYPE = str_enum(Delivery, "delivery_method")
FULFILMENT_TYPE = str_enum(Fulfilment, "fulfilment_status")
