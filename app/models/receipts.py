"""54-FZ receipts: one per payment (sale) and one per completed refund."""

from __future__ import annotations

import enum
import secrets
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import TimestampMixin, UTCDateTime, move, str_enum
from app.models.sbp import Payment, Refund


class ReceiptKind(enum.Enum):
    SELL = "sell"                # чек прихода
    SELL_REFUND = "sell_refund"  # чек возврата прихода


class ReceiptStatus(enum.Enum):
    PENDING = "pending"  # written, to be sent to the register
    WAIT = "wait"        # the register accepted it and is processing
    DONE = "done"        # fiscalized: fiscal data stored
    FAILED = "failed"    # the register failed it (after one automatic resubmission)


RECEIPT_TRANSITIONS = {
    ReceiptStatus.PENDING: frozenset(
        {ReceiptStatus.WAIT, ReceiptStatus.DONE, ReceiptStatus.FAILED}
    ),
    # A confirmed `fail` is resubmitted once under a new external id: back to pending.
    ReceiptStatus.WAIT: frozenset(
        {ReceiptStatus.DONE, ReceiptStatus.FAILED, ReceiptStatus.PENDING}
    ),
    ReceiptStatus.FAILED: frozenset({ReceiptStatus.PENDING}),  # an admin retries it
    ReceiptStatus.DONE: frozenset(),
}


def _token() -> str:
    return secrets.token_urlsafe(24)


class Receipt(TimestampMixin, db.Model):
    __tablename__ = "receipts"
    __table_args__ = (
        sa.CheckConstraint("total_kopecks > 0", name="total_positive"),
        sa.CheckConstraint("attempt >= 1", name="attempt_positive"),
        sa.Index("ix_receipts_status_created", "status", "created_at"),
        # One sale receipt per payment, one refund receipt per refund.
        sa.UniqueConstraint("payment_id", "kind", "refund_id", name="uq_receipts_source"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # The customer's link to the receipt page: unguessable.
    token: Mapped[str] = mapped_column(sa.String(40), unique=True, default=_token)
    kind: Mapped[ReceiptKind] = mapped_column(str_enum(ReceiptKind, "receipt_kind"))
    status: Mapped[ReceiptStatus] = mapped_column(
        str_enum(ReceiptStatus, "receipt_status"), default=ReceiptStatus.PENDING
    )
    payment_id: Mapped[int] = mapped_column(sa.ForeignKey("payments.id"), index=True)
    # 0 for a sale receipt, so the unique constraint above works on every database.
    refund_id: Mapped[int] = mapped_column(sa.Integer, default=0)
    provider: Mapped[str] = mapped_column(sa.String(20))
    # Our idempotency key at the register: sell-<install id>-<payment id>,
    # refund-<install id>-<refund id> (see app/models/installation.py), plus
    # -r<attempt> after a confirmed failure.
    external_id: Mapped[str] = mapped_column(sa.String(128), unique=True)
    attempt: Mapped[int] = mapped_column(default=1)
    provider_id: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    total_kopecks: Mapped[int] = mapped_column(sa.BigInteger)
    lines: Mapped[list] = mapped_column(sa.JSON)
    customer_email: Mapped[str | None] = mapped_column(sa.String(64))
    customer_phone: Mapped[str | None] = mapped_column(sa.String(20))
    error: Mapped[str | None] = mapped_column(sa.String(500))
    # Fiscal data (ATOL report payload), once done.
    fn_number: Mapped[str | None] = mapped_column(sa.String(16))
    fiscal_document_number: Mapped[int | None] = mapped_column(sa.BigInteger)
    fiscal_document_attribute: Mapped[int | None] = mapped_column(sa.BigInteger)
    receipt_datetime: Mapped[datetime | None] = mapped_column(UTCDateTime)
    shift_number: Mapped[int | None] = mapped_column(sa.Integer)
    fiscal_receipt_number: Mapped[int | None] = mapped_column(sa.Integer)
    ecr_registration_number: Mapped[str | None] = mapped_column(sa.String(20))
    fns_site: Mapped[str | None] = mapped_column(sa.String(64))
    ofd_inn: Mapped[str | None] = mapped_column(sa.String(12))
    ofd_receipt_url: Mapped[str | None] = mapped_column(sa.String(500))
    # When the register accepted the current attempt (polls back off from here).
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    payment: Mapped[Payment] = relationship()

    @property
    def refund(self) -> Refund | None:
        return db.session.get(Refund, self.refund_id) if self.refund_id else None

    def set_status(self, to: ReceiptStatus) -> bool:
        """The only way a receipt's status changes (see RECEIPT_TRANSITIONS)."""
        return move(self, to, RECEIPT_TRANSITIONS, "receipt")

    def __repr__(self) -> str:
        return f"<Receipt {self.id} {self.kind.value} {self.status.value} {self.external_id}>"
