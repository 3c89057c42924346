"""Helpers for the ops tests: an app whose log lines are kept, and a signed bank callback."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime, timedelta

from app.config import SANDBOX_MERCHANT_ID, SANDBOX_SECRET_KEY
from app.extensions import db
from app.models import QrCode, QrKind, QrStatus, utcnow
from app.sbp.raiffeisen import SIGNATURE_HEADER, notification_signature


class LogLines:
    """What the app's log handler wrote, as text and as parsed JSON lines."""

    def __init__(self) -> None:
        self.stream = io.StringIO()
        for handler in logging.getLogger().handlers:
            handler.setStream(self.stream)

    def text(self) -> str:
        return self.stream.getvalue()

    def records(self) -> list[dict]:
        """Every line parsed as JSON (a line that is not JSON fails the test)."""
        return [json.loads(line) for line in self.text().splitlines() if line.strip()]


def open_qr(amount_kopecks: int = 12550) -> tuple[str, str]:
    """A dynamic QR for a sum (no order: its receipt is the one line for a QR payment),
    committed. :returns: (qr_id, the bank's order)."""
    qr = QrCode(kind=QrKind.DYNAMIC, status=QrStatus.ACTIVE, qr_id="AD" + "0" * 30,
                bank_order="bank-order-ops", amount_kopecks=amount_kopecks,
                payload="https://qr.nspk.ru/AD" + "0" * 30, description="ops",
                expires_at=utcnow() + timedelta(minutes=10))
    db.session.add(qr)
    db.session.commit()
    return qr.qr_id, qr.bank_order


def bank_callback(client, qr_id: str, bank_order: str, amount: str, *, headers=None,
                  secret_key: str = SANDBOX_SECRET_KEY):
    """POST what the bank sends for a paid QR, signed with `secret_key`."""
    at = datetime(2026, 11, 27, 12, 4, 5, tzinfo=UTC).isoformat()
    fields = {"amount": amount, "sbpMerchantId": SANDBOX_MERCHANT_ID, "order": bank_order,
              "paymentStatus": "SUCCESS", "transactionDate": at}
    body = json.dumps({
        "transactionId": 1, "qrId": qr_id, "sbpMerchantId": SANDBOX_MERCHANT_ID,
        "merchantId": 552, "amount": "@", "currency": "RUB", "transactionDate": at,
        "paymentStatus": "SUCCESS", "order": bank_order, "createDate": at,
    }).replace('"@"', amount)
    return client.post("/sbp/callback", data=body, headers={
        "Content-Type": "application/json",
        SIGNATURE_HEADER: notification_signature(secret_key, fields),
        **(headers or {}),
    })
