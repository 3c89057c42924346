"""Orders: what a customer buys, from any channel (Mini App, API, admin, CLI)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import TimestampMixin, UTCDateTime, move, str_enum
from app.models.storefront import (
    DELIVERY_TYPE,
    FULFILMENT_TRANSITIONS,
    FULFILMENT_TYPE,
    Delivery,
    Fulfilment,
)


class OrderStatus(enum.Enum):
    NEW = "new"                      # created, no QR at the bank yet (or the bank was down)
    PENDING = "pending"              # a QR / cash link is waiting for the customer
    PAID = "paid"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


ORDER_TRANSITIONS = {
    OrderStatus.NEW: frozenset({OrderStatus.PENDING, OrderStatus.CANCELLED}),
    OrderStatus.PENDING: frozenset({OrderStatus.PAID, OrderStatus.EXPIRED, OrderStatus.CANCELLED}),
    # A new QR may be shown for an expired order; money that arrives late is still money.
    OrderStatus.EXPIRED: frozenset({OrderStatus.PENDING, OrderStatus.PAID, OrderStatus.CANCELLED}),
    OrderStatus.CANCELLED: frozenset({OrderStatus.PAID}),
    OrderStatus.PAID: frozenset({OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED}),
    OrderStatus.PARTIALLY_REFUNDED: frozenset({OrderStatus.REFUNDED}),
    OrderStatus.REFUNDED: frozenset(),
}
OPEN_ORDER_STATUSES = (OrderStatus.NEW, OrderStatus.PENDING, OrderStatus.EXPIRED)
# Orders that have no payment (yet): the admin's list shows them as their own rows.
OPEN_ORDERS_SQL = "status IN ('new', 'pending', 'expired', 'cancelled')"
OPEN_ORDER_INDEXES = {
    "ix_orders_open_created": ("created_at", "id"),
    "ix_orders_open_total": ("total_kopecks", "id"),
    "ix_orders_open_status": ("status", "created_at", "id"),
}


class OrderChannel(enum.Enum):
    MINIAPP = "miniapp"
    API = "api"
    ADMIN = "admin"
    CLI = "cli"
    STOREFRONT = "storefront"  # a customer in the shop's bot, no cashier


def _public_id() -> str:
    return uuid.uuid4().hex


class Order(TimestampMixin, db.Model):
    __tablename__ = "orders"
    __table_args__ = (
        sa.CheckConstraint("total_kopecks > 0", name="total_positive"),
        sa.Index("ix_orders_status_created", "status", "created_at"),
        sa.UniqueConstraint("api_client_id", "external_id", name="uq_orders_api_client_external"),
        # The admin's list of orders without a payment, by date, sum or status
        # (app/admin/queries.py): small partial indexes, as many rows as unpaid orders.
        *(sa.Index(name, *columns, postgresql_where=sa.text(OPEN_ORDERS_SQL),
                   sqlite_where=sa.text(OPEN_ORDERS_SQL))
          for name, columns in OPEN_ORDER_INDEXES.items()),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(sa.String(32), unique=True, default=_public_id)
    status: Mapped[OrderStatus] = mapped_column(
        str_enum(OrderStatus, "order_status"), default=OrderStatus.NEW
    )
    channel: Mapped[OrderChannel] = mapped_column(str_enum(OrderChannel, "order_channel"))
    total_kopecks: Mapped[int] = mapped_column(sa.BigInteger)
    description: Mapped[str | None] = mapped_column(sa.String(140))
    customer_email: Mapped[str | None] = mapped_column(sa.String(64))
    customer_phone: Mapped[str | None] = mapped_column(sa.String(20))
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The cashier who made the order (Telegram room); none for the other channels.
    cashier_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff.id"), index=True)
    # The till (its cash link) the cashier sold at, whichever QR the customer paid with.
    # Added after both tables exist (use_alter): qr_codes refers to orders too.
    till_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("qr_codes.id", use_alter=True, ondelete="SET NULL"), index=True
    )

    # The constructor API's orders: the client that made it, the caller's own order id
    # (unique per client: a repeat returns the same payment), the end user's id in the
    # constructor (sent back in callbacks), and the token of the public pay page.
    api_client_id: Mapped[int | None] = mapped_column(sa.ForeignKey("api_clients.id"),
                                                      index=True)
    external_id: Mapped[str | None] = mapped_column(sa.String(64))
    client_ref: Mapped[str | None] = mapped_column(sa.String(128))
    checkout_token: Mapped[str | None] = mapped_column(sa.String(43), unique=True)

    # The storefront's orders: the customer, pickup or delivery (with the address and the
    # customer's comment), the shop's progress with it, and whether its paid lines have
    # been taken off the stock (once: app/storefront/stock.py).
    customer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("customers.id"), index=True)
    delivery: Mapped[Delivery | None] = mapped_column(DELIVERY_TYPE)
    delivery_address: Mapped[str | None] = mapped_column(sa.String(255))
    customer_comment: Mapped[str | None] = mapped_column(sa.String(500))
    fulfilment: Mapped[Fulfilment | None] = mapped_column(FULFILMENT_TYPE)
    stock_deducted: Mapped[bool] = mapped_column(default=False)

    items: Mapped[list[OrderItem]] = relationship(
        back_populates="order", order_by="OrderItem.position", cascade="all, delete-orphan"
    )

    def set_status(self, to: OrderStatus) -> bool:
        """The only way an order's status changes (see ORDER_TRANSITIONS)."""
        return move(self, to, ORDER_TRANSITIONS, "order")

    def set_fulfilment(self, to: Fulfilment) -> bool:
        """The only way a storefront order's fulfilment changes (FULFILMENT_TRANSITIONS)."""
        if self.fulfilment is None:
            self.fulfilment = to
            return True
        return move(self, to, FULFILMENT_TRANSITIONS, "fulfilment", attribute="fulfilment")

    def __repr__(self) -> str:
        return f"<Order {self.id} {self.status.value} {self.total_kopecks}>"


class OrderItem(db.Model):
    """A line copied from the catalog at the time of sale; later catalog edits don't touch it."""

    __tablename__ = "order_items"
    __table_args__ = (
        sa.CheckConstraint("price_kopecks >= 0", name="price_not_negative"),
        sa.CheckConstraint("quantity_milli > 0", name="quantity_positive"),
        sa.CheckConstraint("amount_kopecks >= 0", name="amount_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(
        sa.ForeignKey("orders.id", ondelete="CASCADE"), index=True
    )
    product_id: Mapped[int | None] = mapped_column(sa.ForeignKey("products.id"))
    position: Mapped[int] = mapped_column(default=0)
    name: Mapped[str] = mapped_column(sa.String(128))
    price_kopecks: Mapped[int] = mapped_column(sa.BigInteger)
    # Quantity in thousandths (54-FZ allows 3 decimals): 1.5 kg is 1500.
    quantity_milli: Mapped[int] = mapped_column(sa.Integer, default=1000)
    amount_kopecks: Mapped[int] = mapped_column(sa.BigInteger)
    vat: Mapped[str] = mapped_column(sa.String(8), default="none")
    payment_object: Mapped[str] = mapped_column(sa.String(32), default="commodity")
    # Our measure names (app/receipt_lines.py MEASURES): "square_centimeter" has 17 letters.
    measure: Mapped[str] = mapped_column(sa.String(24), default="piece")

    order: Mapped[Order] = relationship(back_populates="items")
