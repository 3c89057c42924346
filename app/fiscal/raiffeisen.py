"""Raiffeisen fiscal API client (the bank's receipts API): the bank talks to the register.

Save (POST, an upsert keyed by ``receiptNumber``) -> register (PUT) -> poll (GET). After the
PUT the receipt is frozen and both calls answer 409 RECEIPT_STATUS_CONFLICT, which here
means "already done before": the client reads the status instead of failing.
"""

from __future__ import annotations

import logging
from decimal import Decimal, InvalidOperation
from typing import Any

from app.fiscal.receipt import (
    DONE,
    FAIL,
    SELL,
    SELL_REFUND,
    WAIT,
    AnsweredLine,
    FiscalData,
    ReceiptDraft,
    RegisterResult,
)
from app.fiscal.wire import json_object, parse_payload, quantity
from app.httpclient import HttpClient, HttpResponse, ProviderError
from app.money import MoneyError, parse_rubles, to_decimal

logger = logging.getLogger(__name__)

PROVIDER = "raiffeisen"
BASE_PATH = "/api/fiscal/v1/receipts"
RECEIPT_TYPES = {SELL: "sell", SELL_REFUND: "refund"}
STATUS_CONFLICT = "RECEIPT_STATUS_CONFLICT"
VALIDATION_FAILED = "RECEIPT_VALIDATION_FAILED"
#: NEW (saved, editable), AWAITING, IN_PROGRESS -> still waiting; DONE; FAILED.
STATUSES = {"NEW": WAIT, "AWAITING": WAIT, "IN_PROGRESS": WAIT, "DONE": DONE, "FAILED": FAIL}
#: The sandbox's DONE answer adds fiscal requisites under this key (ATOL payload names).
FISCAL_KEY = "fiscalData"

# What fiscal.yml (Raiffeisen-DGTL/ecom-API, 06.10.2021) documents for an item. Its enums
# are lowercase, as our names are. The SDKs (ecom-sdk-java, ecom-sdk-net) disagree: they
# write UPPERCASE values, a `customer` object, `payments` and `paymentMode`, and the Java
# SDK adds VAT22/VAT122. Those models belong to the payment and refund APIs (receipts
# passed with an order), not to the standalone /fiscal/v1/receipts endpoints this client
# calls, which only fiscal.yml describes; so we follow fiscal.yml and send nothing else.
VAT_TYPES = frozenset({"none", "vat0", "vat10", "vat110", "vat20", "vat120"})
PAYMENT_OBJECT_TYPES = frozenset({"commodity", "excise", "job", "service", "payment",
                                  "another"})
#: `measurementUnit` is free text of at most 16 characters (as in the spec's "кг", "шт");
#: "other" has no name, so the field is left out (it is optional).
MAX_UNIT = 16
UNITS = {
    "piece": "шт", "gram": "г", "kilogram": "кг", "ton": "т", "centimeter": "см",
    "decimeter": "дм", "meter": "м", "square_centimeter": "кв. см",
    "square_decimeter": "кв. дм", "square_meter": "кв. м", "milliliter": "мл", "liter": "л",
    "cubic_meter": "куб. м", "kilowatt_hour": "кВт·ч", "gigacalorie": "Гкал", "day": "сут",
    "hour": "ч", "minute": "мин", "second": "с", "kilobyte": "Кбайт", "megabyte": "Мбайт",
    "gigabyte": "Гбайт", "terabyte": "Тбайт", "other": None,
}


def _kopecks(value: Any) -> int | None:
    try:
        return parse_rubles(value if isinstance(value, Decimal | int) else Decimal(str(value)))
    except (InvalidOperation, MoneyError, ValueError):
        return None


def _milli(value: Any) -> int | None:
    try:
        scaled = Decimal(str(value)).scaleb(3)
    except (InvalidOperation, ValueError):
        return None
    if isinstance(value, bool | float) or not scaled.is_finite() \
            or scaled != scaled.to_integral_value():
        return None
    return int(scaled)


def _answered_lines(items: Any) -> tuple[AnsweredLine, ...] | None:
    """The answer's items as lines (values that cannot be read are None)."""
    if not isinstance(items, list):
        return None
    lines = []
    for entry in items:
        item = entry if isinstance(entry, dict) else {}
        name, vat = item.get("name"), item.get("vatType")
        lines.append(AnsweredLine(
            name=name if isinstance(name, str) else None,
            price_kopecks=_kopecks(item.get("price")),
            quantity_milli=_milli(item.get("quantity")),
            amount_kopecks=_kopecks(item.get("amount")),
            vat=vat if isinstance(vat, str) else None,
        ))
    return tuple(lines)


class RaiffeisenReceiptsClient:
    """Speaks the Raiffeisen receipts API (and the sandbox, which speaks the same).

    :param base_url: ``https://pay.raif.ru`` in production, the sandbox in development.
    :param secret_key: the merchant's secret key (the same as for SBP), sent as Bearer.

    The body is fiscal.yml's ``Receipt``: ``receiptNumber``, one ``client`` object with the
    e-mail, ``items`` (lowercase ``vatType`` and ``paymentObject``, ``measurementUnit`` as
    a short Russian unit name) and ``total``. The API has no phone field, so a receipt
    with only a phone (or no contact at all) goes to the shop's e-mail. The bank sends no
    fiscal receipt callbacks, so :meth:`parse_callback` always raises ``not_supported``.
    The documented DONE answer has no fiscal identifiers: ``fiscal`` is None unless the
    answer carries a ``fiscalData`` object with ATOL's payload names (the sandbox adds one).
    Every answer echoes the receipt; its total and items are returned for comparison.
    """

    name = PROVIDER
    title = "Райффайзенбанк"
    vat_rates = VAT_TYPES
    measures = frozenset(UNITS)
    payment_objects = PAYMENT_OBJECT_TYPES

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
        return response, json_object(response)

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
        """The receipt as fiscal.yml defines it; money as exact Decimal numbers.

        :raises ProviderError: ``bad_draft`` for a VAT rate, payment object or measure the
            bank does not document (products are checked when saved; this is the last net).
        """
        items = []
        for line in draft.lines:
            for what, value, known in (("VAT rate", line.vat, self.vat_rates),
                                       ("payment object", line.payment_object,
                                        self.payment_objects),
                                       ("measure", line.measure, self.measures)):
                if value not in known:
                    raise ProviderError("bad_draft", f"{what} {value!r} is not documented "
                                        "by the Raiffeisen receipts API", provider=PROVIDER)
            item: dict[str, Any] = {
                "name": line.name,
                "price": to_decimal(line.price_kopecks),
                "quantity": quantity(line.quantity_milli),
                "amount": to_decimal(line.amount_kopecks),
                "paymentObject": line.payment_object,
                "vatType": line.vat,
            }
            unit = UNITS[line.measure]
            if unit is not None:
                item["measurementUnit"] = unit[:MAX_UNIT]
            items.append(item)
        return {
            "receiptNumber": external_id,
            "client": {"email": draft.customer_email or draft.company.email},
            "items": items,
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
            fiscal = parse_payload(data[FISCAL_KEY], provider=PROVIDER)
        return RegisterResult(status, external_id, number, fiscal=fiscal, raw=data,
                              total_kopecks=_kopecks(data.get("total")),
                              lines=_answered_lines(data.get("items")))
