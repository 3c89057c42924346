"""Plain-dict views of receipts, for the CLI and JSON APIs."""

from __future__ import annotations

import sqlalchemy as sa
from flask import current_app

from app.extensions import db
from app.models import Receipt
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
