"""Raiffeisenbank SBP API client (pay.raif.ru/doc/sbp.html): QR codes, payments, refunds,
cash links."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from app.httpclient import HttpClient, HttpResponse, ProviderError, loads_inbound
from app.money import MoneyError, parse_rubles, to_decimal
from app.sbp.provider import (
    PAY_NO_INFO,
    PAY_SUCCESS,
    CashLinkOrder,
    PaymentInfo,
    QrInfo,
    QrRegistration,
    RefundInfo,
    SignatureError,
)
from app.sbp.raiffeisen_signature import (
    SIGNATURE_HEADER,
    SIGNED_FIELDS,
    ecom_notification_signature,
    notification_signature,
    same_signature,
)

logger = logging.getLogger(__name__)

PROVIDER = "raiffeisen"
MOSCOW = timezone(timedelta(hours=3))
# The ecom API's transaction statuses (SUCCESS | NOT_FOUND) in the provider's words.
_ECOM_STATUSES = {"SUCCESS": PAY_SUCCESS, "NOT_FOUND": PAY_NO_INFO}


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
    :param public_id: the merchant id the ecom (orders) notifications are signed with
        (`publicId`); the sbpMerchantId unless the bank issued another.
    """

    name = PROVIDER

    def __init__(
        self,
        base_url: str,
        merchant_id: str,
        secret_key: str,
        *,
        account: str | None = None,
        public_id: str | None = None,
        timeout: tuple[float, float] = (3.05, 15),
        http: HttpClient | None = None,
    ):
        self.merchant_id = merchant_id
        self.public_id = public_id or merchant_id
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
        code = data.get("code")
        code = None if code is None else str(code)
        # As the bank's own Java SDK does: a code with "ERROR." or "ORDER_" is a refusal
        # whatever the HTTP status; an HTTP 200 whose code is anything but SUCCESS is not a
        # success either. Answers without a code (the orders API's order objects, an empty
        # DELETE answer) are judged by their HTTP status alone.
        refused = code is not None and ("ERROR." in code or "ORDER_" in code)
        if response.status >= 400 or refused:
            raise ProviderError(
                code or f"http_{response.status}",
                str(data.get("message") or what),
                provider=PROVIDER,
                status=response.status,
                retryable=response.status >= 500,
            )
        if code is not None and code != "SUCCESS":
            raise ProviderError(
                code, f"{what}: answered code {code!r}, not SUCCESS",
                provider=PROVIDER, status=response.status, retryable=False,
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
        return self._refund_info(refund_id, data)

    def get_refund(self, refund_id: str) -> RefundInfo:
        return self._refund_info(refund_id, self._call("GET", f"/api/sbp/v1/refund/{refund_id}"))

    @staticmethod
    def _refund_info(refund_id: str, data: dict[str, Any]) -> RefundInfo:
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

    def get_cash_link_payment(self, order_id: str) -> PaymentInfo:
        """The payment of one cash-link order, found by that order's own id.

        GET /api/payments/v1/orders/{orderId}/transaction (ecom API; the bank's ecom SDKs
        call the same path). Status SUCCESS when paid, NO_INFO when the bank has no
        successful payment for the order (its NOT_FOUND).
        """
        data = self._call("GET", f"/api/payments/v1/orders/{order_id}/transaction")
        transaction = data.get("transaction")
        if not isinstance(transaction, dict):
            raise ProviderError("bad_response", "no transaction in the answer", provider=PROVIDER)
        return self._transaction_info(transaction, data)

    def refund_cash_link_order(
        self, *, order_id: str, refund_id: str, amount_kopecks: int, purpose: str | None = None
    ) -> RefundInfo:
        """Refund (part of) a cash-link order's payment through the orders refund path."""
        body: dict[str, Any] = {"amount": to_decimal(amount_kopecks)}
        if purpose:
            body["paymentDetails"] = purpose[:140]
        # Safe to repeat: the refundId is ours and stable.
        data = self._call("POST", self._order_refund_path(order_id, refund_id), body,
                          idempotent=True)
        return self._refund_info(refund_id, data)

    def get_cash_link_refund(self, order_id: str, refund_id: str) -> RefundInfo:
        return self._refund_info(
            refund_id, self._call("GET", self._order_refund_path(order_id, refund_id))
        )

    @staticmethod
    def _order_refund_path(order_id: str, refund_id: str) -> str:
        return f"/api/payments/v1/orders/{order_id}/refunds/{refund_id}"

    @staticmethod
    def _transaction_info(transaction: dict[str, Any], raw: dict[str, Any]) -> PaymentInfo:
        """An ecom `transaction` object as a PaymentInfo."""
        status = transaction.get("status")
        status = status if isinstance(status, dict) else {}
        params = transaction.get("paymentParams")
        params = params if isinstance(params, dict) else {}
        value = str(status.get("value") or "")
        return PaymentInfo(
            qr_id=str(params.get("qrId") or ""),
            order=str(transaction.get("orderId") or ""),
            status=_ECOM_STATUSES.get(value, value),
            amount_kopecks=_kopecks(transaction.get("amount")),
            transaction_id=_text(transaction.get("id")),
            transaction_date=_parse_time(status.get("date")),
            raw=raw,
        )

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

    def probe_notification(self, order: str) -> tuple[dict[str, str], bytes]:
        """A one-kopeck DECLINED notification for `order`, signed with the secret key, in
        the bank's format (the amount as "0.01", the date as the bank writes it)."""
        fields = {"amount": "0.01", "sbpMerchantId": self.merchant_id, "order": order,
                  "paymentStatus": "DECLINED",
                  "transactionDate": bank_time(datetime.now(UTC))}
        body = ('{"transactionId": 0, "qrId": "KASSADOCTOR", '
                f'"sbpMerchantId": {json.dumps(self.merchant_id)}, '
                f'"amount": 0.01, "currency": "RUB", '
                f'"transactionDate": {json.dumps(fields["transactionDate"])}, '
                '"paymentStatus": "DECLINED", "additionalInfo": null, '
                f'"order": {json.dumps(order)}}}')
        signature = notification_signature(self._secret_key, fields)
        return ({"Content-Type": "application/json", SIGNATURE_HEADER: signature},
                body.encode())

    def parse_request(self, headers: Mapping[str, str], raw_body: bytes) -> PaymentInfo:
        """Verify a callback by its `X-Api-Signature-SHA256` header over the body as sent, then
        parse it: the SBP QR notification, or the ecom (orders) one that a paid cash-link
        order brings (see `notification_signature`, `ecom_notification_signature`)."""
        return self.parse_notification(raw_body, headers.get(SIGNATURE_HEADER))

    def parse_notification(self, raw_body: bytes, signature: str | None) -> PaymentInfo:
        """`parse_request` with the signature header's value given."""
        if not signature:
            raise SignatureError("no X-Api-Signature-SHA256 header", provider=PROVIDER)
        try:
            # Numbers stay as their JSON text: the signature covers "101.01", not a float.
            data = loads_inbound(raw_body, parse_float=str, parse_int=str)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ProviderError("bad_payload", "body is not JSON", provider=PROVIDER) from exc
        if not isinstance(data, dict):
            raise ProviderError("bad_payload", "body is not a JSON object", provider=PROVIDER)
        given = signature.strip().lower()
        if "transaction" in data or "event" in data:
            return self._parse_ecom_notification(data, given)
        fields = {name: "null" if data.get(name) is None else str(data[name])
                  for name in SIGNED_FIELDS}
        expected = notification_signature(self._secret_key, fields)
        if not same_signature(expected, given):
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

    def _parse_ecom_notification(self, data: dict[str, Any], signature: str) -> PaymentInfo:
        transaction = data.get("transaction")
        status = transaction.get("status") if isinstance(transaction, dict) else None
        if not isinstance(status, dict):
            raise ProviderError("bad_payload", "transaction.status is missing", provider=PROVIDER)

        def text(value: Any) -> str:
            return "" if value is None or isinstance(value, dict | list) else str(value)

        expected = ecom_notification_signature(
            self._secret_key, amount=text(transaction.get("amount")), public_id=self.public_id,
            order=text(transaction.get("orderId")), status=text(status.get("value")),
            status_date=text(status.get("date")),
        )
        if not same_signature(expected, signature):
            raise SignatureError("signature does not match the body", provider=PROVIDER)
        if data.get("event") != "payment":
            raise ProviderError("bad_payload", f"event {data.get('event')!r} is not a payment",
                                provider=PROVIDER)
        for name, value in (("transaction.orderId", transaction.get("orderId")),
                            ("transaction.status.value", status.get("value")),
                            ("transaction.amount", transaction.get("amount"))):
            if value in (None, ""):
                raise ProviderError("bad_payload", f"{name} is missing", provider=PROVIDER)
        try:
            return self._transaction_info(transaction, data)
        except ProviderError as exc:
            raise ProviderError("bad_payload", exc.message, provider=PROVIDER) from exc
