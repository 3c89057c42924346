"""What a constructor sends, read into one flat dict and checked.

Constructors send what their request blocks can: JSON, a form (urlencoded or multipart),
a bare query string, or Leadteh's `{"variables": [{"name": ..., "value": ...}]}`. Every
value may come as a string ("1250.50", "2", '[{"name": ...}]'). Anything that is not
understood is refused with a stable code and a Russian sentence, never a 500.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

from flask import Request
from flask_babel import lazy_gettext as _l

from app.errors import ValidationError
from app.money import MoneyError, parse_rubles
from app.orders.services import Line
from app.receipt_lines import MAX_LINES, MAX_NAME, MAX_QUANTITY_MILLI, line_amount
from app.sbp import limits

MAX_ORDER_ID = 64       # Order.external_id
MAX_CLIENT_ID = 128     # Order.client_ref
MAX_EMAIL = 64          # Order.customer_email
MAX_PHONE_TEXT = 32     # before spaces, dashes and brackets are taken out
# Where a key may come in the request itself rather than a header.
TOKEN_FIELD = "token"  # noqa: S105 - a field name  # nosec B105


def _invalid(message, code: str) -> ValidationError:
    return ValidationError(str(message), code=code)


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number")


def _json(text: bytes | str) -> Any:
    """JSON with every non-integer number as Decimal (money keeps its digits); NaN,
    Infinity, absurd nesting and 5000-digit integers are broken JSON here."""
    try:
        return json.loads(text, parse_float=Decimal, parse_constant=_refuse_constant)
    except (ValueError, RecursionError, UnicodeDecodeError):
        raise _invalid(_l("Тело запроса — не JSON: проверьте кавычки и скобки"),
                       "invalid_json") from None


def read_fields(request: Request) -> dict[str, Any]:
    """The request's fields: the query string, then the body over it (JSON, form,
    multipart), Leadteh's `variables` unwrapped (a `token` field too: the caller drops it).

    :raises ValidationError: broken JSON (`invalid_json`), a body that is not an object
        (`invalid_body`).
    """
    fields: dict[str, Any] = dict(request.args.items())
    mimetype = request.mimetype
    if mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        fields.update(request.form.items())
    else:
        raw = request.get_data(cache=True)
        if raw.strip():
            if mimetype == "application/json" or mimetype.endswith("+json") or (
                    raw.lstrip()[:1] in (b"{", b"[")):
                body = _json(raw)
                if not isinstance(body, dict):
                    raise _invalid(_l("Ждём JSON-объект с полями платежа: {\"amount\": "
                                      "\"1250.50\", ...}"), "invalid_body")
                fields.update(body)
            else:
                # A constructor that sends a form without saying so (text/plain).
                try:
                    fields.update(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
                except (UnicodeDecodeError, ValueError):
                    raise _invalid(_l("Тело запроса не прочитать: пришлите JSON или форму"),
                                   "invalid_body") from None
    _unwrap_variables(fields)
    return fields


def _unwrap_variables(fields: dict[str, Any]) -> None:
    """Leadteh's wrapper: `variables` as a list of {name, value} (or a plain object, or
    either as a JSON string in a form)."""
    variables = fields.get("variables")
    if variables is None:
        return
    if isinstance(variables, str):
        variables = _json(variables) if variables.strip() else []
    if isinstance(variables, dict):
        pairs = list(variables.items())
    elif isinstance(variables, list):
        pairs = []
        for entry in variables:
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                raise _invalid(_l("variables — список объектов {\"name\": ..., \"value\": "
                                  "...}"), "invalid_body")
            pairs.append((entry["name"], entry.get("value")))
    else:
        raise _invalid(_l("variables — список объектов {\"name\": ..., \"value\": ...}"),
                       "invalid_body")
    del fields["variables"]
    for name, value in pairs:
        fields[name] = value


@dataclass(frozen=True)
class PaymentRequest:
    """A checked create request. `lines` are what the order will hold; `by_items` says
    whether the caller listed them (a repeat is then compared line by line)."""

    lines: list[Line]
    by_items: bool
    order_id: str | None = None
    description: str | None = None
    customer_email: str | None = None
    customer_phone: str | None = None
    ttl_minutes: int | None = None
    client_id: str | None = None

    @property
    def total_kopecks(self) -> int:
        return _total(self.lines)


def _total(lines: list[Line]) -> int:
    return sum(line_amount(line.price_kopecks, line.quantity_milli) for line in lines)


def _text(fields: dict[str, Any], name: str, limit: int, code: str) -> str | None:
    value = fields.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise _invalid(_l("Поле %(field)s должно быть строкой", field=name), code)
    text = str(value).strip()
    if len(text) > limit:
        raise _invalid(_l("Поле %(field)s — не больше %(limit)s символов", field=name,
                          limit=limit), code)
    if any(ord(ch) < 32 or 0xD800 <= ord(ch) <= 0xDFFF for ch in text):
        # A lone surrogate ("\ud800" in JSON) cannot be stored: it was a 500.
        raise _invalid(_l("В поле %(field)s есть управляющие символы", field=name), code)
    return text or None


def _kopecks(value: Any, field: str) -> int:
    if isinstance(value, str) and not value.strip():
        value = None
    if value is None:
        raise _invalid(_l("Укажите сумму в рублях (amount), например 1250 или 1250.50"),
                       "missing_amount")
    try:
        kopecks = parse_rubles(value)
    except MoneyError:
        raise _invalid(_l("%(field)s — сумма в рублях, больше нуля, не больше двух знаков "
                          "после точки: например 1250 или 1250.50", field=field),
                       "invalid_amount") from None
    limits.check_amount(kopecks)
    return kopecks


def _quantity_milli(value: Any) -> int:
    if value is None or (isinstance(value, str) and not value.strip()):
        return 1000
    try:
        if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
            raise InvalidOperation
        quantity = Decimal(str(value).strip().replace(",", "."))
        if not quantity.is_finite() or quantity.copy_abs() > MAX_QUANTITY_MILLI:
            # 1e999999 would overflow the multiplication (a 500 before fuzzing found it)
            raise _invalid(_l("quantity — больше нуля и не больше 99 999,999"),
                           "invalid_quantity")
        milli = quantity * 1000
        if milli != milli.to_integral_value():
            raise InvalidOperation
    except (InvalidOperation, ValueError):
        raise _invalid(_l("quantity — число больше нуля, не больше трёх знаков после точки"),
                       "invalid_quantity") from None
    if not 0 < milli <= MAX_QUANTITY_MILLI:
        raise _invalid(_l("quantity — больше нуля и не больше 99 999,999"), "invalid_quantity")
    return int(milli)


def _items(value: Any) -> list[Line]:
    if isinstance(value, str):
        value = _json(value) if value.strip() else []
    if not isinstance(value, list):
        raise _invalid(_l("items — список позиций: [{\"name\": \"Кофе\", \"price\": \"150\", "
                          "\"quantity\": 2}]"), "invalid_items")
    if not value:
        raise _invalid(_l("В заказе нет ни одной позиции"), "empty_order")
    if len(value) > MAX_LINES:
        raise _invalid(_l("Не больше 100 позиций в одном чеке"), "too_many_lines")
    lines = []
    for number, item in enumerate(value, start=1):
        if not isinstance(item, dict):
            raise _invalid(_l("Позиция %(n)s — объект с полями name, price, quantity",
                              n=number), "invalid_items")
        name = _text(item, "name", MAX_NAME, "invalid_item")
        if not name:
            raise _invalid(_l("У позиции %(n)s нет названия (name)", n=number), "invalid_item")
        vat = _text(item, "vat", 8, "invalid_vat") or "none"
        lines.append(Line(name=name, price_kopecks=_kopecks(item.get("price"), "price"),
                          quantity_milli=_quantity_milli(item.get("quantity")), vat=vat))
    return lines


def _ttl(value: Any) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    text = str(value).strip()
    if isinstance(value, bool) or not isinstance(value, str | int) or not text.isdigit() \
            or len(text) > 6:
        raise _invalid(_l("ttl_minutes — целое число минут, от 1 до %(max)s",
                          max=limits.MAX_TTL_MINUTES), "invalid_ttl")
    minutes = int(text)
    limits.ttl(minutes)  # the range, with the bank's own wording
    return minutes


def payment_request(fields: dict[str, Any]) -> PaymentRequest:
    """Check a create request's fields.

    :raises ValidationError: with a stable code (missing_amount, invalid_amount,
        invalid_items, invalid_item, invalid_quantity, invalid_ttl, invalid_email, ...).
    """
    description = _text(fields, "description", limits.MAX_PURPOSE, "text_too_long")
    email = _text(fields, "customer_email", MAX_EMAIL, "invalid_email")
    phone = _text(fields, "customer_phone", MAX_PHONE_TEXT, "invalid_phone")
    if fields.get("items") not in (None, ""):
        lines, by_items = _items(fields["items"]), True
        if fields.get("amount") not in (None, "") and \
                _kopecks(fields["amount"], "amount") != _total(lines):
            raise _invalid(_l("amount не равна сумме позиций items; укажите что-то одно"),
                               "amount_mismatch")
    else:
        amount = _kopecks(fields.get("amount"), "amount")
        name = description or str(_l("Оплата заказа"))
        lines, by_items = [Line(name=name[:MAX_NAME], price_kopecks=amount)], False
    return PaymentRequest(
        lines=lines, by_items=by_items,
        order_id=_text(fields, "order_id", MAX_ORDER_ID, "invalid_order_id"),
        description=description, customer_email=email, customer_phone=phone,
        ttl_minutes=_ttl(fields.get("ttl_minutes")),
        client_id=_text(fields, "client_id", MAX_CLIENT_ID, "invalid_client_id"),
    )
