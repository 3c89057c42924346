"""The bank side: QR codes, cash-link activations, payments, refunds and the bank event log."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import TimestampMixin, UTCDateTime, move, str_enum, utcnow
from app.models.orders import Order


class QrKind(enum.Enum):
    DYNAMIC = "dynamic"      # one sale, fixed sum, TTL (QRDynamic)
    STATIC = "static"        # reusable, optional fixed sum (QRStatic)
    CASH_LINK = "cash_link"  # кассовая ссылка: one per till, activated per sale (QRVariable)


class QrStatus(enum.Enum):
    ACTIVE = "active"        # can be paid now
    INACTIVE = "inactive"    # a cash link between sales
    PAID = "paid"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


QR_TRANSITIONS = {
    QrKind.DYNAMIC: {
        QrStatus.ACTIVE: frozenset({QrStatus.PAID, QrStatus.EXPIRED, QrStatus.CANCELLED}),
        # The bank's word wins: a payment made just before expiry or cancellation is kept.
        QrStatus.EXPIRED: frozenset({QrStatus.PAID}),
        QrStatus.CANCELLED: frozenset({QrStatus.PAID}),
        QrStatus.PAID: frozenset(),
    },
    # A static QR stays active however often it is paid.
    QrKind.STATIC: {
        QrStatus.ACTIVE: frozenset({QrStatus.CANCELLED}),
        QrStatus.CANCELLED: frozenset(),
    },
    QrKind.CASH_LINK: {
        QrStatus.INACTIVE: frozenset({QrStatus.ACTIVE, QrStatus.CANCELLED}),
        QrStatus.ACTIVE: frozenset({QrStatus.INACTIVE}),
        QrStatus.CANCELLED: frozenset(),
    },
}


class QrCode(TimestampMixin, db.Model):
    __tablename__ = "qr_codes"
    __table_args__ = (
        sa.CheckConstraint(
            "amount_kopecks IS NULL OR amount_kopecks > 0", name="amount_positive"
        ),
        sa.Index("ix_qr_codes_status_created", "status", "created_at"),
        sa.Index("ix_qr_codes_kind_status", "kind", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[QrKind] = mapped_column(str_enum(QrKind, "qr_kind"))
    status: Mapped[QrStatus] = mapped_column(str_enum(QrStatus, "qr_status"))
    # The bank's id (qrId) and the order number we registered the QR under.
    qr_id: Mapped[str] = mapped_column(sa.String(32), unique=True)
    bank_order: Mapped[str] = mapped_column(sa.String(40), unique=True)
    amount_kopecks: Mapped[int | None] = mapped_column(sa.BigInteger)
    payload: Mapped[str] = mapped_column(sa.Text)
    description: Mapped[str | None] = mapped_column(sa.String(140))
    order_id: Mapped[int | None] = mapped_column(sa.ForeignKey("orders.id"), index=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    needs_review: Mapped[bool] = mapped_column(default=False)
    review_reason: Mapped[str | None] = mapped_column(sa.String(255))
    last_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    order: Mapped[Order | None] = relationship(foreign_keys=[order_id])
    payments: Mapped[list[Payment]] = relationship(
        back_populates="qr_code", order_by="Payment.id"
    )
    activations: Mapped[list[CashLinkActivation]] = relationship(
        back_populates="qr_code", order_by="CashLinkActivation.id"
    )

    def set_status(self, to: QrStatus) -> bool:
        """The only way a QR code's status changes (see QR_TRANSITIONS)."""
        return move(self, to, QR_TRANSITIONS[self.kind], f"{self.kind.value} qr")

    def flag_for_review(self, reason: str) -> None:
        self.needs_review = True
        self.review_reason = reason[:255]

    def is_expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or utcnow())

    def __repr__(self) -> str:
        return f"<QrCode {self.id} {self.kind.value} {self.status.value} {self.qr_id}>"


class ActivationStatus(enum.Enum):
    ACTIVE = "active"
    PAID = "paid"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


ACTIVATION_TRANSITIONS = {
    ActivationStatus.ACTIVE: frozenset(
        {ActivationStatus.PAID, ActivationStatus.EXPIRED, ActivationStatus.CANCELLED}
    ),
    ActivationStatus.EXPIRED: frozenset({ActivationStatus.PAID}),
    ActivationStatus.CANCELLED: frozenset({ActivationStatus.PAID}),
    ActivationStatus.PAID: frozenset(),
}


class CashLinkActivation(TimestampMixin, db.Model):
    """One sale on a cash link: the bank's order that activates it with a sum and a TTL."""

    __tablename__ = "cash_link_activations"
    __table_args__ = (
        sa.CheckConstraint("amount_kopecks > 0", name="amount_positive"),
        sa.Index("ix_cash_link_activations_status_expires", "status", "expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    qr_code_id: Mapped[int] = mapped_column(sa.ForeignKey("qr_codes.id"), index=True)
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("orders.id"), index=True)
    bank_order_id: Mapped[str] = mapped_column(sa.String(40), unique=True)
    amount_kopecks: Mapped[int] = mapped_column(sa.BigInteger)
    status: Mapped[ActivationStatus] = mapped_column(
        str_enum(ActivationStatus, "activation_status"), default=ActivationStatus.ACTIVE
    )
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    qr_code: Mapped[QrCode] = relationship(back_populates="activations")
    order: Mapped[Order] = relationship()

    def set_status(self, to: ActivationStatus) -> bool:
        """The only way an activation's status changes (see ACTIVATION_TRANSITIONS)."""
        return move(self, to, ACTIVATION_TRANSITIONS, "cash-link activation")


class PaymentStatus(enum.Enum):
    PAID = "paid"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    # The bank reported money we did not expect (wrong sum): a person must look.
    REVIEW = "review"


PAYMENT_TRANSITIONS = {
    PaymentStatus.REVIEW: frozenset({PaymentStatus.PAID, PaymentStatus.REFUNDED}),
    PaymentStatus.PAID: frozenset({PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED}),
    PaymentStatus.PARTIALLY_REFUNDED: frozenset({PaymentStatus.REFUNDED}),
    PaymentStatus.REFUNDED: frozenset(),
}


class Payment(TimestampMixin, db.Model):
    """Money the bank says it received: usually one per dynamic QR or cash-link sale, many
    per static QR; a second one on a QR or sale that takes one is kept for review."""

    __tablename__ = "payments"
    __table_args__ = (
        sa.CheckConstraint("amount_kopecks > 0", name="amount_positive"),
        sa.CheckConstraint(
            "refunded_kopecks >= 0 AND refunded_kopecks <= amount_kopecks",
            name="refunded_within_amount",
        ),
        # The admin's list (app/admin/queries.py): by status, date or sum, keyset on id.
        sa.Index("ix_payments_status_created", "status", "created_at", "id"),
        sa.Index("ix_payments_created", "created_at", "id"),
        sa.Index("ix_payments_amount", "amount_kopecks", "id"),
        sa.Index("ix_payments_status_amount", "status", "amount_kopecks", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    qr_code_id: Mapped[int] = mapped_column(sa.ForeignKey("qr_codes.id"), index=True)
    activation_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("cash_link_activations.id"), index=True
    )
    order_id: Mapped[int | None] = mapped_column(sa.ForeignKey("orders.id"), index=True)
    # What the bank signed about this payment: order, sum and time (sbp.bank_events.payment_key).
    # The bank's transactionId is not signed: it is kept to show and to name the payment
    # in a refund, never to tell two payments apart.
    bank_key: Mapped[str] = mapped_column(sa.String(128), unique=True)
    transaction_id: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    amount_kopecks: Mapped[int] = mapped_column(sa.BigInteger)
    refunded_kopecks: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    status: Mapped[PaymentStatus] = mapped_column(str_enum(PaymentStatus, "payment_status"))
    review_reason: Mapped[str | None] = mapped_column(sa.String(255))
    paid_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    qr_code: Mapped[QrCode] = relationship(back_populates="payments")
    order: Mapped[Order | None] = relationship()
    refunds: Mapped[list[Refund]] = relationship(back_populates="payment", order_by="Refund.id")

    @property
    def refundable_kopecks(self) -> int:
        """What may still be refunded: paid minus refunds that are done or under way."""
        held = sum(r.amount_kopecks for r in self.refunds if r.status != RefundStatus.DECLINED)
        return self.amount_kopecks - held

    def set_status(self, to: PaymentStatus) -> bool:
        """The only way a payment's status changes (see PAYMENT_TRANSITIONS)."""
        return move(self, to, PAYMENT_TRANSITIONS, "payment")


class RefundStatus(enum.Enum):
    PENDING = "pending"          # written, not yet accepted by the bank
    IN_PROGRESS = "in_progress"  # the bank accepted it
    COMPLETED = "completed"
    DECLINED = "declined"


REFUND_TRANSITIONS = {
    RefundStatus.PENDING: frozenset(
        {RefundStatus.IN_PROGRESS, RefundStatus.COMPLETED, RefundStatus.DECLINED}
    ),
    RefundStatus.IN_PROGRESS: frozenset({RefundStatus.COMPLETED, RefundStatus.DECLINED}),
    RefundStatus.COMPLETED: frozenset(),
    RefundStatus.DECLINED: frozenset(),
}


class Refund(TimestampMixin, db.Model):
    __tablename__ = "refunds"
    __table_args__ = (
        sa.CheckConstraint("amount_kopecks > 0", name="amount_positive"),
        sa.Index("ix_refunds_status_created", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int] = mapped_column(sa.ForeignKey("payments.id"), index=True)
    # Our id at the bank: stable, so a retried request never refunds twice.
    refund_id: Mapped[str] = mapped_column(sa.String(40), unique=True)
    amount_kopecks: Mapped[int] = mapped_column(sa.BigInteger)
    status: Mapped[RefundStatus] = mapped_column(
        str_enum(RefundStatus, "refund_status"), default=RefundStatus.PENDING
    )
    reason: Mapped[str | None] = mapped_column(sa.String(140))
    # A refund of chosen lines: [[sale line index, quantity in thousandths], ...];
    # None for a refund of a sum, spread over the sale's lines.
    lines: Mapped[list | None] = mapped_column(sa.JSON)
    error: Mapped[str | None] = mapped_column(sa.String(255))
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    payment: Mapped[Payment] = relationship(back_populates="refunds")

    def set_status(self, to: RefundStatus) -> bool:
        """The only way a refund's status changes (see REFUND_TRANSITIONS)."""
        return move(self, to, REFUND_TRANSITIONS, "refund")


class BankEvent(db.Model):
    """Every notification or poll result from the bank, raw, recorded once."""

    __tablename__ = "bank_events"
    __table_args__ = (
        sa.UniqueConstraint("provider", "event_key", name="uq_bank_events_provider_key"),
        sa.Index("ix_bank_events_received", "received_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(sa.String(20))
    # The payment's signed fields + paymentStatus: a repeat of the same news, or a replay
    # with unsigned fields changed, is the same key.
    event_key: Mapped[str] = mapped_column(sa.String(128))
    source: Mapped[str] = mapped_column(sa.String(16))  # callback | poll
    qr_id: Mapped[str | None] = mapped_column(sa.String(32), index=True)
    transaction_id: Mapped[str | None] = mapped_column(sa.String(64))
    payment_status: Mapped[str | None] = mapped_column(sa.String(20))
    payload: Mapped[str] = mapped_column(sa.Text)
    outcome: Mapped[str] = mapped_column(sa.String(32), default="received")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
