"""How Raiffeisen signs its callbacks: HMAC-SHA256 with the merchant's secret key over the
fields of the SBP notification, or of the ecom (orders) notification a cash-link sale brings."""

from __future__ import annotations

import hmac

# The SBP notification's header; the ecom (orders) notification writes it in lower case, and
# HTTP header names are case-insensitive, so one name serves both.
SIGNATURE_HEADER = "X-Api-Signature-SHA256"
SIGNED_FIELDS = ("amount", "sbpMerchantId", "order", "paymentStatus", "transactionDate")


def _hmac_hex(secret_key: str, message: str) -> str:
    return hmac.digest(secret_key.encode(), message.encode(), "sha256").hex()


def notification_signature(secret_key: str, fields: dict[str, str]) -> str:
    """HMAC-SHA256 (lowercase hex) over `amount|sbpMerchantId|order|paymentStatus|transactionDate`.

    Each value must be its text exactly as it stands in the JSON body (numbers unparsed).
    """
    return _hmac_hex(secret_key, "|".join(fields.get(name, "null") for name in SIGNED_FIELDS))


def ecom_notification_signature(
    secret_key: str, *, amount: str, public_id: str, order: str, status: str, status_date: str
) -> str:
    """HMAC-SHA256 (lowercase hex) of the ecom (orders) payment notification.

    Over `amount|publicId|order|transaction.status.value|transaction.status.date`, each
    value as its text in the body; a missing value signs as the empty string, as the
    bank's ecom SDKs (Java CheckSignatureService, .NET TransactionValidationAttribute) do.
    """
    return _hmac_hex(secret_key, "|".join((amount, public_id, order, status, status_date)))


def same_signature(expected: str, given: str) -> bool:
    """Constant-time comparison. As bytes: a header is any latin-1 text, and comparing
    str takes ASCII only."""
    return hmac.compare_digest(expected.encode(), given.encode())
