"""Signed payment notifications (callbacks), written independently of Kassa's client.

As the bank documents it (its OpenAPI `sbp.yaml`, tag Callback; sbp-sdk-java `SbpUtil`):
header ``X-Api-Signature-SHA256`` = lowercase hex HMAC-SHA256 with key = the secret key
(UTF-8) over ``amount|sbpMerchantId|order|paymentStatus|transactionDate``, each value
taken as its text in the JSON body (strings without quotes).

A paid cash-link order (orders API) is announced by the ecom notification instead
(ecom_en.yaml ``paymentsNotification``): ``{"event": "payment", "transaction": {...}}``,
header ``x-api-signature-sha256``, signed over
``amount|publicId|order|transaction.status.value|transaction.status.date`` (the bank's ecom
SDKs take ``amount`` and ``order`` from ``transaction.amount`` / ``transaction.orderId``).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from . import clock
from .jsonio import Amount, dumps
from .money import format_amount

SIGNATURE_HEADER = "X-Api-Signature-SHA256"
ECOM_SIGNATURE_HEADER = "x-api-signature-sha256"


def sign(secret_key: str, message: str) -> str:
    """Lowercase hex HMAC-SHA256 of ``message`` (UTF-8) keyed with ``secret_key`` (UTF-8)."""
    return hmac.new(secret_key.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).hexdigest()


def signature_message(
    amount_text: str, sbp_merchant_id: str, order: str, payment_status: str, transaction_date: str
) -> str:
    return "|".join((amount_text, sbp_merchant_id, order, payment_status, transaction_date))


def build_notification(
    *,
    secret_key: str,
    transaction_id: int,
    qr_id: str,
    sbp_merchant_id: str,
    merchant_id: int,
    amount_kopecks: int,
    transaction_date: datetime,
    payment_status: str,
    additional_info: str | None,
    order: str,
    create_date: datetime,
) -> tuple[str, str]:
    """Return ``(body_text, signature_hex)`` of one notification.

    The body is rendered here (not by a JSON library) so the amount text is exactly
    ``100.00`` and the signed values are byte-for-byte what the body contains.
    """
    transaction_date_text = clock.iso(transaction_date)
    body = dumps(
        {
            "transactionId": transaction_id,
            "qrId": qr_id,
            "sbpMerchantId": sbp_merchant_id,
            "merchantId": merchant_id,
            "amount": Amount(amount_kopecks),
            "currency": "RUB",
            "transactionDate": transaction_date_text,
            "paymentStatus": payment_status,
            "additionalInfo": additional_info,
            "order": order,
            "createDate": clock.iso(create_date),
        }
    )
    message = signature_message(
        format_amount(amount_kopecks), sbp_merchant_id, order, payment_status, transaction_date_text
    )
    return body, sign(secret_key, message)


def build_ecom_notification(
    *,
    secret_key: str,
    public_id: str,
    transaction_id: int,
    order_id: str,
    qr_id: str,
    amount_kopecks: int,
    status: str,
    status_date: datetime,
    comment: str | None,
    additional_info: str | None,
) -> tuple[str, str]:
    """Return ``(body_text, signature_hex)`` of one ecom payment notification (SBP method)."""
    date_text = clock.iso(status_date)
    transaction: dict[str, object] = {
        "id": transaction_id,
        "orderId": order_id,
        "status": {"value": status, "date": date_text},
        "paymentMethod": "sbp",
        "paymentParams": {"qrId": qr_id},
        "amount": Amount(amount_kopecks),
    }
    if comment is not None:
        transaction["comment"] = comment
    transaction["extra"] = {} if additional_info is None else {"additionalInfo": additional_info}
    body = dumps({"event": "payment", "transaction": transaction})
    message = "|".join((format_amount(amount_kopecks), public_id, order_id, status, date_text))
    return body, sign(secret_key, message)
