"""The emulated Raiffeisen fiscal API (the bank's ``fiscal.yml``), Bearer auth like the bank.

    POST /api/fiscal/v1/receipts/<sell|refund>            save (upsert by receiptNumber)
    PUT  /api/fiscal/v1/receipts/<sell|refund>/<number>   register: NEW -> IN_PROGRESS
    GET  /api/fiscal/v1/receipts/<sell|refund>/<number>   read: ... -> DONE | FAILED

Errors are ``{code, message}``: 400 RECEIPT_VALIDATION_FAILED / RECEIPT_TYPE_NOT_SUPPORTED,
404 RECEIPT_NOT_FOUND, 409 RECEIPT_STATUS_CONFLICT (saving or registering a receipt that is
no longer NEW), 401 ERROR.UNAUTHORIZED.

The body is fiscal.yml's ``Receipt`` (Raiffeisen-DGTL/ecom-API, 06.10.2021): a
``receiptNumber`` of 1..99 characters A-Za-z0-9_-, one ``client`` object with a required
e-mail (<= 64), 1..100 ``items`` (name <= 128, price and amount decimal(8,2), quantity
decimal(5,3), ``amount`` = price x quantity, lowercase ``vatType`` from the spec's six
values, optional lowercase ``paymentObject``, ``measurementUnit`` <= 16, ``nomenclatureCode``
<= 150) and ``total`` decimal(8,2). Values are held to the spec exactly: an UPPERCASE enum,
a ``customer`` object or an undocumented VAT rate is refused, so Kassa cannot drift from it.
Sandbox assumptions where the bank is undocumented (its docs do not say): ``total`` must equal
the sum of item amounts exactly; fields the spec does not name are kept and echoed; a DONE
answer carries ``fiscalData`` with ATOL's payload names (the real API documents no fiscal
identifiers). A FAILED answer carries nothing more than its status.
"""

from __future__ import annotations

import re
import time
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import Blueprint, Response, current_app, request

from .bank_api import _check_bearer
from .errors import BankError
from .fiscal_state import FiscalState, Item, render_response
from .jsonio import loads

bp = Blueprint("sandbox_fiscal_raif", __name__, url_prefix="/api/fiscal/v1/receipts")

RECEIPT_TYPES = ("sell", "refund")
NUMBER = re.compile(r"[A-Za-z0-9_\-]{1,99}")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
VAT_TYPES = frozenset({"none", "vat0", "vat10", "vat110", "vat20", "vat120"})
PAYMENT_OBJECTS = frozenset({"commodity", "excise", "job", "service", "payment", "another"})
MAX_AMOUNT = 9_999_999_999  # decimal(8,2) in kopecks
MAX_QUANTITY = 99_999_999  # decimal(5,3) in thousandths


def _fiscal() -> FiscalState:
    return current_app.extensions["kassa_sandbox"].state.fiscal


@bp.before_request
def _guard() -> Response | None:
    """Count the request and apply the ``down`` and ``slow`` faults."""
    endpoint = (request.endpoint or "").rsplit(".", 1)[-1]
    down, slow = _fiscal().enter(f"raif.{endpoint}")
    if slow > 0:
        time.sleep(slow)
    if down:
        return Response("Service Unavailable", 503, mimetype="text/plain")
    return None


def _invalid(message: str) -> BankError:
    return BankError(400, "RECEIPT_VALIDATION_FAILED", message)


def _receipt_type(value: str) -> str:
    if value not in RECEIPT_TYPES:
        raise BankError(400, "RECEIPT_TYPE_NOT_SUPPORTED", f"receipt type {value} is not supported")
    return value


def _enum(entry: dict[str, Any], key: str, allowed: frozenset[str], where: str,
          *, required: bool) -> None:
    value = entry.get(key)
    if value is None:
        if required:
            raise _invalid(f"{where}.{key} is required")
        return
    if not isinstance(value, str) or value not in allowed:
        raise _invalid(f"{where}.{key}: unknown value {value!r}")


def _scaled(value: Any, where: str, places: int, limit: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, Decimal, str)):
        raise _invalid(f"{where} must be a number")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise _invalid(f"{where} must be a number") from None
    if not number.is_finite() or number < 0:
        raise _invalid(f"{where} must be a non-negative number")
    scaled = number.scaleb(places)
    if scaled != scaled.to_integral_value():
        raise _invalid(f"{where}: at most {places} decimal places")
    result = int(scaled)
    if result > limit:
        raise _invalid(f"{where} is too large")
    return result


def _validate(body: dict[str, Any]) -> tuple[str, list[Item], int]:
    number = body.get("receiptNumber")
    if not isinstance(number, str) or not NUMBER.fullmatch(number):
        raise _invalid("receiptNumber: 1-99 characters of A-Z a-z 0-9 _ - .")
    client = body.get("client")
    email = client.get("email") if isinstance(client, dict) else None
    if not isinstance(email, str) or len(email) > 64 or not EMAIL.fullmatch(email):
        raise _invalid("client.email is required (at most 64 characters)")
    name = client.get("name")
    if name is not None and (not isinstance(name, str) or len(name) > 256):
        raise _invalid("client.name: at most 256 characters")
    raw_items = body.get("items")
    if not isinstance(raw_items, list) or not 1 <= len(raw_items) <= 100:
        raise _invalid("items: 1 to 100 positions")
    items = []
    for index, entry in enumerate(raw_items):
        where = f"items[{index}]"
        if not isinstance(entry, dict):
            raise _invalid(f"{where} must be an object")
        name = entry.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 128:
            raise _invalid(f"{where}.name: 1 to 128 characters")
        for key in ("price", "quantity", "amount"):
            if entry.get(key) is None:
                raise _invalid(f"{where}.{key} is required")
        price = _scaled(entry["price"], f"{where}.price", 2, MAX_AMOUNT)
        milli = _scaled(entry["quantity"], f"{where}.quantity", 3, MAX_QUANTITY)
        amount = _scaled(entry["amount"], f"{where}.amount", 2, MAX_AMOUNT)
        if milli == 0:
            raise _invalid(f"{where}.quantity must be greater than 0")
        if abs(amount - (price * milli + 500) // 1000) > 1:
            raise _invalid(f"{where}.amount must equal price * quantity")
        _enum(entry, "vatType", VAT_TYPES, where, required=True)
        _enum(entry, "paymentObject", PAYMENT_OBJECTS, where, required=False)
        for key, limit in (("measurementUnit", 16), ("nomenclatureCode", 150)):
            text = entry.get(key)
            if text is not None and (not isinstance(text, str) or len(text) > limit):
                raise _invalid(f"{where}.{key}: at most {limit} characters")
        items.append(Item(name=name, price=price, quantity_milli=milli, amount=amount))
    items_sum = sum(item.amount for item in items)
    if body.get("total") is None:
        raise _invalid("total is required")
    total = _scaled(body["total"], "total", 2, MAX_AMOUNT)
    if total != items_sum:
        raise _invalid("total must equal the sum of item amounts")
    return number, items, total


@bp.post("/<receipt_type>")
def save(receipt_type: str) -> Response:
    _check_bearer()
    receipt_type = _receipt_type(receipt_type)
    try:
        body = loads(request.get_data(cache=True))
    except ValueError:
        raise _invalid("malformed JSON body") from None
    if not isinstance(body, dict):
        raise _invalid("the JSON body must be an object")
    number, items, total = _validate(body)
    saved = {k: v for k, v in body.items() if k not in ("receiptType", "status")}
    return render_response(
        _fiscal().raif_save(
            receipt_type=receipt_type, number=number, body=saved, items=items, total=total
        )
    )


@bp.put("/<receipt_type>/<number>")
def register(receipt_type: str, number: str) -> Response:
    _check_bearer()
    answer, lose = _fiscal().raif_register(_receipt_type(receipt_type), number)
    if lose:
        return Response(b"", 502)  # registered, answer lost (fault "lose_answer_next")
    return render_response(answer)


@bp.get("/<receipt_type>/<number>")
def status(receipt_type: str, number: str) -> Response:
    _check_bearer()
    return render_response(_fiscal().raif_get(_receipt_type(receipt_type), number))
