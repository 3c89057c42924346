"""The FNS check QR code printed on every receipt (t=...&s=...&fn=...&i=...&fp=...&n=...)."""

from __future__ import annotations

from datetime import timedelta, timezone

from app.models import Receipt, ReceiptKind
from app.money import to_string

MOSCOW = timezone(timedelta(hours=3))
OPERATION = {ReceiptKind.SELL: 1, ReceiptKind.SELL_REFUND: 2}  # tag 1054


def check_qr_payload(receipt: Receipt) -> str | None:
    """The string the FNS "Проверка чеков" app reads; None until the fiscal data is known."""
    if not (receipt.fn_number and receipt.fiscal_document_number
            and receipt.fiscal_document_attribute and receipt.receipt_datetime):
        return None
    when = receipt.receipt_datetime.astimezone(MOSCOW).strftime("%Y%m%dT%H%M")
    return (
        f"t={when}&s={to_string(receipt.total_kopecks)}&fn={receipt.fn_number}"
        f"&i={receipt.fiscal_document_number}&fp={receipt.fiscal_document_attribute}"
        f"&n={OPERATION[receipt.kind]}"
    )
