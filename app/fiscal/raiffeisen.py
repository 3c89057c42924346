"""Raiffeisen fiscal API client (reference/fiscal.md §1): the bank talks to the register.

Save (POST, an upsert keyed by ``receiptNumber``) -> register (PUT) -> poll (GET). After the
PUT the receipt is frozen and both calls answer 409 RECEIPT_STATUS_CONFLICT, which here
means "already done before": the client reads the status instead of failing.
"""

from __future__ import annotations

import logging
from typing import Any

from app.fiscal.atol import parse_payload, quantity
from app.fiscal.receipt import (
    DONE,
    FAIL,
    SELL,
    SELL_REFUND,
    WAIT,
    FiscalData,
    ReceiptDraft,
    RegisterResult,
)
from app.httpclient import HttpClient, HttpResponse, ProviderError
from app.money import to_decimal

logger = logging.getLogger(__name__)

PROVIDER = "raiffeisen"
BASE_PATH = "/api/fiscal/v1/receipts"
RECEIPT_TYPES = {SELL: "sell", SELL_REFUND: "refund"}
STATUS_CONFLICT = "RECEIPT_STATUS_CONFLICT"
VALIDATION_FAILED = "RECEIPT_VALIDATION_FAILED"
#: NEW (saved, editable), AWAITING, IN_PROGRESS -> still waiting; DONE; FAILED (§1.5).
STATUSES = {"NEW": WAIT, "AWAITING": WAIT, "IN_PROGRESS": WAIT, "DONE": DONE, "FAILED": FAIL}
#: The sandbox's DONE answer adds fiscal requisites under this key (ATOL payload names).
FISCAL_KEY = "fiscalData"


def _upper(value: str) -> str:
    return value.upper()


class RaiffeisenReceiptsClient:
    """Speaks the Raiffeisen receipts API (and the sandbox, which speaks the same).

    :param base_url: ``https://pay.raif.ru`` in production, the sandbox in development.
    :param secret_key: the merchant's secret key (the same as for SBP), sent as Bearer.

    The body follows the SDK model of fiscal.md §1.4 (UPPERCASE enums, ``payments`` of type
    E_PAYMENT) with the 2021 ``client`` object. The API has no phone field, so a receipt
    with only a phone (or no contact at all) goes to the shop's e-mail. The bank sends no
    fiscal receipt callbacks, so :meth:`parse_callback` always raises ``not_supported``.
    The documented DONE answer has no fiscal identifiers: ``fiscal`` is None unless the
    answer carries a ``fiscalData`` object with ATOL's payload names (the sandbox adds one).
    """

    name = PROVIDER

    def __init__(
        self,
        base_url: str,
        secret_key: str,
        *,
        timeout: tuple[float, float] = (3.05, 15),
        http: HttpClient | None = None,
    ):
        self._secret_key = secret_key
        self.http = http or HttpClient(base_url, provider=PROVIDER, timeout=timeout)

    def __repr__(self) -> str:  # never show the key
        return f"RaiffeisenReceiptsClient({self.http.base_url!r})"

    # -- plumbing -------------------------------------------------------------------------

    def _call(
        self, method: str, path: str, body: dict | None = None, *, idempotent: bool | None = None
    ) -> tuple[HttpResponse, dict[str, Any] | None]:
        response = self.http.request(
            method, path, json_body=body,
            headers={"Authorization": f"Bearer {self._secret_key}"}, idempotent=idempotent,
        )
        try:
            data = response.json()
        except ValueError:
            data = None
        return response, data if isinstance(data, dict) else None

    @staticmethod
    def _error(response: HttpResponse, data: dict[str, Any] | None, what: str) -> ProviderError:
        code = str((data or {}).get("code") or f"http_{response.status}")
        return ProviderError(
            code, str((data or {}).get("message") or what), provider=PROVIDER,
            status=response.status, retryable=response.status >= 500,
        )

    @staticmethod
    def _type(operation: str) -> str:
        receipt_type = RECEIPT_TYPES.get(operation)
        if receipt_type is None:
            raise ProviderError("bad_draft", f"unknown operation {operation!r}", provider=PROVIDER)
        return receipt_type

    def receipt_body(self, draft: ReceiptDraft, *, external_id: str) -> dict[str, Any]:
        """The receipt as the bank wants it; money as exact Decimal numbers."""
        items = [
            {
                "name": line.name,
                "price": to_decimal(line.price_kopecks),
                "quantity": quantity(line.quantity_milli),
                "amount": to_decimal(line.amount_kopecks),
                "vatType": _upper(line.vat),
                "paymentObject": _upper(line.payment_object),
                "measurementUnit": _upper(line.measure),
                "paymentMode": _upper(line.payment_method),
            }
            for line in draft.lines
        ]
        return {
            "receiptNumber": external_id,
            "client": {"email": draft.customer_email or draft.company.email},
            "items": items,
            "payments": [{"type": "E_PAYMENT", "amount": to_decimal(draft.total_kopecks)}],
            "total": to_decimal(draft.total_kopecks),
        }

    # -- FiscalProvider -------------------------------------------------------------------

    def register(
        self, draft: ReceiptDraft, *, external_id: str, callback_url: str | None
    ) -> RegisterResult:
        """Save, then register. ``callback_url`` is ignored (no receipt callbacks).

        A 409 at either step means the receipt was registered before (a retry after a lost
        answer): its status is read instead. RECEIPT_VALIDATION_FAILED is FAIL (refused).
        """
        receipt_type = self._type(draft.operation)
        path = f"{BASE_PATH}/{receipt_type}"
        # Safe to repeat: POST updates the NEW receipt with this receiptNumber.
        response, data = self._call(
            "POST", path, self.receipt_body(draft, external_id=external_id), idempotent=True
        )
        code = (data or {}).get("code")
        if response.status == 409 and code == STATUS_CONFLICT:
            return self.status(external_id=external_id, provider_id=external_id,
                               operation=draft.operation)
        if response.status == 400 and code == VALIDATION_FAILED:
            return RegisterResult(FAIL, external_id, None,
                                  error=f"{code} {(data or {}).get('message') or ''}".strip(),
                                  raw=data or {})
        if response.status >= 300 or data is None:
            raise self._error(response, data, f"POST {path}")
        response, data = self._call("PUT", f"{path}/{external_id}")
        code = (data or {}).get("code")
        if response.status == 409 and code == STATUS_CONFLICT:
            return self.status(external_id=external_id, provider_id=external_id,
                               operation=draft.operation)
        if response.status >= 300 or data is None:
            raise self._error(response, data, f"PUT {path}/{external_id}")
        return self._result(data, external_id)

    def status(
        self, *, external_id: str, provider_id: str | None, operation: str
    ) -> RegisterResult:
        """GET the receipt by receiptNumber (= external_id); 404 raises RECEIPT_NOT_FOUND."""
        path = f"{BASE_PATH}/{self._type(operation)}/{provider_id or external_id}"
        response, data = self._call("GET", path)
        if response.status >= 300 or data is None:
            raise self._error(response, data, f"GET {path}")
        return self._result(data, external_id)

    def parse_callback(self, raw_body: bytes) -> RegisterResult:
        raise ProviderError("not_supported", "Raiffeisen sends no fiscal receipt callbacks",
                            provider=PROVIDER)

    @staticmethod
    def _result(data: dict[str, Any], external_id: str) -> RegisterResult:
        number = str(data.get("receiptNumber") or external_id)
        raw_status = str(data.get("status") or "").upper()
        status = STATUSES.get(raw_status)
        if status is None:
            raise ProviderError("bad_response", f"unknown receipt status {raw_status!r}",
                                provider=PROVIDER)
        if status == FAIL:
            reason = data.get("message") or data.get("error") or ""
            return RegisterResult(FAIL, external_id, number,
                                  error=f"FAILED {reason}".strip(), raw=data)
        fiscal: FiscalData | None = None
        if status == DONE and isinstance(data.get(FISCAL_KEY), dict):
            fiscal = parse_payload(data[FISCAL_KEY])
        return RegisterResult(status, external_id, number, fiscal=fiscal, raw=data)

