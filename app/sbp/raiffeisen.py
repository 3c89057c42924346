"""Raiffeisenbank SBP API client (reference/sbp.md §1): QR codes, payments, refunds, cash links."""

from __future__ import annotations

import hmac
import json
import logging
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from app.httpclient import HttpClient, HttpResponse, ProviderError
from app.money import MoneyError, parse_rubles, to_decimal
from app.sbp.provider import (
    CashLinkOrder,
    PaymentInfo,
    QrInfo,
    QrRegistration,
    RefundInfo,
    SignatureError,
)

logger = logging.getLogger(__name__)

PROVIDER = "raiffeisen"
SIGNATURE_HEADER = "X-Api-Signature-SHA256"
SIGNED_FIELDS = ("amount", "sbpMerchantId", "order", "paymentStatus", "transactionDate")
MOSCOW = timezone(timedelta(hours=3))


def notification_signature(secret_key: str, fields: dict[str, str]) -> str:
    """HMAC-SHA256 (lowercase hex) over `amount|sbpMerchantId|order|paymentStatus|transactionDate`.

    Each value must be its text exactly as it stands in the JSON body (numbers unparsed).
    """
    message = "|".join(fields.get(name, "null") for name in SIGNED_FIELDS)
    return hmac.digest(secret_key.encode(), message.encode(), "sha256").hex()


def bank_time(value: datetime) -> str:
    """ISO-8601 with an offset, in Moscow time as the bank writes it."""
    return value.astimezone(MOSCOW).isoformat(timespec="seconds")


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=MOSCOW)


def _kopecks(value: Any) -> int | None:
    if value is None:
        return None
    try:
        return parse_rubles(Decimal(str(value)))
    except (InvalidOperation, MoneyError) as exc:
        raise ProviderError("bad_response", f"bad amount {value!r}", provider=PROVIDER) from exc


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


class RaiffeisenClient:
    """Speaks the Raiffeisen SBP HTTP API (and the sandbox, which speaks the same).

    :param base_url: `https://pay.raif.ru` in production, the sandbox in development.
    :param merchant_id: sbpMerchantId, like "MA0000000552".
    :param secret_key: the merchant's secret key: Bearer token and callback signing key.
    :param account: optional 20-digit settlement account.
    """

    name = PROVIDER

    def __init__(
        self,
        base_url: str,
        merchant_id: str,
        secret_key: str,
        *,
        account: str | None = None,
        timeout: tuple[float, float] = (3.05, 15),
        http: HttpClient | None = None,
    ):
        self.merchant_id = merchant_id
        self._secret_key = secret_key
        self.account = account
        self.http = http or HttpClient(base_url, provider=PROVIDER, timeout=timeout)

    # -- plumbing -------------------------------------------------------------------------

    def _call(
        self, method: str, path: str, body: dict | None = None, *, idempotent: bool | None = None
    ) -> dict[str, Any]:
        response = self.http.request(
            method,
            path,
            json_body=body,
            headers={"Authorization": f"Bearer {self._secret_key}"},
            idempotent=idempotent,
        )
        return self._check(response, f"{method} {path}")

    @staticmethod
    def _check(response: HttpResponse, what: str) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            if 200 <= response.status < 300 and not response.text.strip():
                return {}
            raise ProviderError(
                f"http_{response.status}",
                f"{what}: unreadable answer",
                provider=PROVIDER,
                status=response.status,
                retryable=response.status >= 500,
            )
        code = str(data.get("code") or "")
        # The bank's SDK treats any code with "ERROR." or "ORDER_" as a refusal.
        if response.status >= 400 or "ERROR." in code or code.startswith("ORDER_"):
            raise ProviderError(
                code or f"http_{response.status}",
                str(data.get("message") or what),
                provider=PROVIDER,
                status=response.status,
                retryable=response.status >= 500,
            )
        return data

    def _registration(self, body: dict[str, Any]) -> QrRegistration:
        body = {k: v for k, v in body.items() if v is not None}
        body["sbpMerchantId"] = self.merchant_id
        if self.account:
            body["account"] = self.account
        # Safe to repeat: the bank keys a QR by `order`, so a retry cannot make a second one.
        data = self._call("POST", "/api/sbp/v2/qrs", body, idempotent=True)
        if not data.get("qrId") or not data.get("payload"):
            raise ProviderError("bad_response", "no qrId or payload", provider=PROVIDER)
        return QrRegistration(
            qr_id=str(data["qrId"]), payload=str(data["payload"]),
            image_url=_text(data.get("qrUrl")), raw=data,
        )

    # -- QR codes -------------------------------------------------------------------------

    def register_dynamic_qr(
        self, *, order: str, amount_kopecks: int, expires_at: datetime, purpose: str | None
    ) -> QrRegistration:
        return self._registration({
            "qrType": "QRDynamic",
            "order": order,
            "amount": to_decimal(amount_kopecks),
            "currency": "RUB",
            "paymentDetails": (purpose or None) and purpose[:185],
            "qrExpirationDate": bank_time(expires_at),
        })

    def register_static_qr(
        self, *, order: str, amount_kopecks: int | None, purpose: str | None
    ) -> QrRegistration:
        return self._registration({
            "qrType": "QRStatic",
            "order": order,
            "amount": None if amount_kopecks is None else to_decimal(amount_kopecks),
            "currency": None if amount_kopecks is None else "RUB",
            "paymentDetails": (purpose or None) and purpose[:185],
        })

    def register_cash_link(self, *, order: str, description: str | None) -> QrRegistration:
        return self._registration({
            "qrType": "QRVariable",
            "order": order,
            "qrDescription": (description or None) and description[:32],
        })

    def get_qr(self, qr_id: str) -> QrInfo:
        data = self._call("GET", f"/api/sbp/v2/qrs/{qr_id}")
        return QrInfo(
            qr_id=qr_id,
            status=str(data.get("qrStatus") or ""),
            expires_at=_parse_time(data.get("qrExpirationDate")),
            raw=data,
        )

    def cancel_qr(self, qr_id: str) -> None:
        self._call("DELETE", f"/api/sbp/v2/qrs/{qr_id}")

    def get_payment(self, qr_id: str) -> PaymentInfo:
        data = self._call("GET", f"/api/sbp/v1/qr/{qr_id}/payment-info")
        return self._payment_info(data)

    @staticmethod
    def _payment_info(data: dict[str, Any]) -> PaymentInfo:
        return PaymentInfo(
            qr_id=str(data.get("qrId") or ""),
            order=str(data.get("order") or ""),
            status=str(data.get("paymentStatus") or ""),
            amount_kopecks=_kopecks(data.get("amount")),
            transaction_id=_text(data.get("transactionId")),
            transaction_date=_parse_time(data.get("transactionDate")),
            raw=data,
        )

    # -- refunds ----------------------------------------------------------------------------

    def refund(
        self,
        *,
        refund_id: str,
        order: str,
        amount_kopecks: int,
        transaction_id: str | None = None,
        purpose: str | None = None,
    ) -> RefundInfo:
        body: dict[str, Any] = {
            "amount": to_decimal(amount_kopecks),
            "order": order,
            "refundId": refund_id,
        }
        if transaction_id is not None:
            # A static QR carries many payments: the bank needs to know which one.
            body["transactionId"] = int(transaction_id) if transaction_id.isdigit() else (
                transaction_id
            )
        if purpose:
            body["paymentDetails"] = purpose[:140]
        # Safe to repeat: the refundId is ours and stable.
        data = self._call("POST", "/api/sbp/v1/refund", body, idempotent=True)
        return RefundInfo(
            refund_id=refund_id, status=str(data.get("refundStatus") or ""),
            amount_kopecks=_kopecks(data.get("amount")), raw=data,
        )

    def get_refund(self, refund_id: str) -> RefundInfo:
        data = self._call("GET", f"/api/sbp/v1/refund/{refund_id}")
        return RefundInfo(
            refund_id=refund_id, status=str(data.get("refundStatus") or ""),
            amount_kopecks=_kopecks(data.get("amount")), raw=data,
        )

    # -- cash links (QRVariable activated by an order) ----------------------------------------

    def activate_cash_link(
        self,
        *,
        qr_id: str,
        order_id: str,
        amount_kopecks: int,
        expires_at: datetime,
        comment: str | None,
    ) -> CashLinkOrder:
        body = {
            "id": order_id,
            "amount": to_decimal(amount_kopecks),
            "comment": comment[:140] if comment else None,
            "expirationDate": bank_time(expires_at),
            "qr": {"id": qr_id},
        }
        body = {k: v for k, v in body.items() if v is not None}
        data = self._call("POST", "/api/payment/v1/orders", body, idempotent=True)
        return self._cash_link_order(data)

    def get_cash_link_order(self, order_id: str) -> CashLinkOrder:
        return self._cash_link_order(self._call("GET", f"/api/payment/v1/orders/{order_id}"))

    def deactivate_cash_link(self, order_id: str) -> None:
        self._call("DELETE", f"/api/payment/v1/orders/{order_id}")

    @staticmethod
    def _cash_link_order(data: dict[str, Any]) -> CashLinkOrder:
        status = data.get("status") or {}
        return CashLinkOrder(
            order_id=str(data.get("id") or ""),
            status=str(status.get("value") if isinstance(status, dict) else status),
            amount_kopecks=_kopecks(data.get("amount")) or 0,
            expires_at=_parse_time(data.get("expirationDate")),
            raw=data,
        )

    # -- notifications --------------------------------------------------------------------------

    def set_callback_url(self, url: str) -> None:
        self._call("POST", "/api/settings/v1/callback", {"callbackUrl": url}, idempotent=True)

    def parse_notification(self, raw_body: bytes, signature: str | None) -> PaymentInfo:
        """Verify `X-Api-Signature-SHA256` over the body as sent, then parse it."""
        if not signature:
            raise SignatureError("no X-Api-Signature-SHA256 header", provider=PROVIDER)
        try:
            # Numbers stay as their JSON text: the signature covers "101.01", not a float.
            data = json.loads(raw_body, parse_float=str, parse_int=str)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ProviderError("bad_payload", "body is not JSON", provider=PROVIDER) from exc
        if not isinstance(data, dict):
            raise ProviderError("bad_payload", "body is not a JSON object", provider=PROVIDER)
        fields = {name: "null" if data.get(name) is None else str(data[name])
                  for name in SIGNED_FIELDS}
        expected = notification_signature(self._secret_key, fields)
        # As bytes: a header is any latin-1 text, and str comparison takes ASCII only.
        if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
            raise SignatureError("signature does not match the body", provider=PROVIDER)
        if str(data.get("sbpMerchantId")) != self.merchant_id:
            raise ProviderError("bad_payload", "notification for another merchant",
                                provider=PROVIDER)
        for name in ("qrId", "paymentStatus", "amount"):
            if data.get(name) in (None, ""):
                raise ProviderError("bad_payload", f"{name} is missing", provider=PROVIDER)
        try:
            return self._payment_info(data)
        except ProviderError as exc:
            raise ProviderError("bad_payload", exc.message, provider=PROVIDER) from exc
