"""Plain-dict views of receipts, for the CLI and JSON APIs."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from app.extensions import db
from app.jobs import RetryJob
from app.models import Payment, Receipt, ReceiptKind, Refund, utcnow
from app.money import to_string


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def receipts_of(payment_id: int) -> list[Receipt]:
    return list(db.session.scalars(
        sa.select(Receipt).where(Receipt.payment_id == payment_id).order_by(Receipt.id)
    ))


def receipt_url(receipt: Receipt) -> str:
    return f"{current_app.config['PUBLIC_URL']}/fiscal/r/{receipt.token}"


def receipt_to_dict(receipt: Receipt) -> dict:
    return {
        "id": receipt.id,
        "payment_id": receipt.payment_id,
        "kind": receipt.kind.value,
        "status": receipt.status.value,
        "total": to_string(receipt.total_kopecks),
        "external_id": receipt.external_id,
        "url": receipt_url(receipt),
        "fn": receipt.fn_number,
        "fd": receipt.fiscal_document_number,
        "fp": receipt.fiscal_document_attribute,
        "receipt_datetime": _iso(receipt.receipt_datetime),
        "error": receipt.error,
    }


# A job that tells someone of a paid sale waits this long after the payment for its sale
# receipt (written by the `fiscal.sell` job of the same event), so it can carry the link.
RECEIPT_WAIT = timedelta(seconds=10)
RECEIPT_POLL_SECONDS = 0.3


def receipt_of(payment_id: int, refund_id: int = 0) -> Receipt | None:
    """The payment's sale receipt, or the receipt of one of its refunds."""
    kind = ReceiptKind.SELL_REFUND if refund_id else ReceiptKind.SELL
    return db.session.scalars(sa.select(Receipt).where(
        Receipt.payment_id == payment_id, Receipt.refund_id == refund_id,
        Receipt.kind == kind)).first()


def sale_receipt_or_wait(payment: Payment) -> Receipt | None:
    """The payment's sale receipt for a job that announces the sale (see receipt_or_wait)."""
    return receipt_or_wait(payment.id, since=payment.updated_at)


def refund_receipt_or_wait(refund: Refund) -> Receipt | None:
    """The refund's receipt for a job that announces the refund (see receipt_or_wait)."""
    return receipt_or_wait(refund.payment_id, refund.id,
                           since=refund.completed_at or refund.updated_at)


def receipt_or_wait(payment_id: int, refund_id: int = 0, *, since) -> Receipt | None:
    """The receipt for a job that announces a sale or a refund. While the register is on and
    the receipt is not written yet (for up to RECEIPT_WAIT after `since`), the job is asked to
    run again shortly.

    :raises RetryJob: not written yet; ask again in RECEIPT_POLL_SECONDS.
    """
    from app.fiscal import fiscal_enabled

    if not fiscal_enabled():
        return None
    receipt = receipt_of(payment_id, refund_id)
    if receipt is None and utcnow() - since < RECEIPT_WAIT:
        db.session.rollback()
        what = f"refund {refund_id}" if refund_id else f"payment {payment_id}"
        raise RetryJob(RECEIPT_POLL_SECONDS, f"{what}: no receipt yet")
    return receipt
