"""The emulated ATOL Online v5 endpoints (ATOL's protocol description) under ``/possystem/v5``.

    POST|GET /possystem/v5/getToken                   {login, pass} -> {error, token, timestamp}
    POST     /possystem/v5/<group>/sell|sell_refund   header ``Token``; -> {uuid, status: wait}
    GET      /possystem/v5/<group>/report/<uuid>      header ``Token``; the report packet

Errors use ATOL's envelope and codes: 10 missing token, 11 expired token (401), 12 wrong
login (401), 13 bad getToken request, 20 foreign group (401), 31 unsupported operation,
32 validation (400, status fail, no uuid), 33 known external_id (400, status wait, the first
uuid), 34 unknown uuid in a report (HTTP 200, status wait: "not processed yet"), 40 body
is not JSON, 41 not application/json.

Validation (code 32) follows the v5 packet: timestamp ``dd.mm.yyyy HH:MM:SS``, external_id
1..128, client e-mail or phone, company email/sno/inn/payment_address, 1..100 items with
name, price, quantity (<= 3 decimals), sum, measure code, payment_method, integer
payment_object, vat.type; 1..10 payments. Like a KKT it also checks that each item sum is
round(price x quantity) within 1 kopeck, that the payments add up to the item sums exactly
and that ``total`` is within 99 kopecks of them (§2.2, §4 "Rounding").
"""

from __future__ import annotations

import re
import time
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import Blueprint, Response, current_app, request

from . import clock
from .fiscal_state import AtolError, FiscalState, Item, atol_time, render_response
from .jsonio import loads
from .money import format_amount

bp = Blueprint("sandbox_atol", __name__, url_prefix="/possystem/v5")

OPERATIONS = ("sell", "sell_refund")
#: v5 operations the real service knows but this sandbox does not emulate (-> code 31).
OTHER_OPERATIONS = (
    "sell_correction", "buy", "buy_refund", "buy_correction",
    "sell_refund_correction", "buy_refund_correction",
)
VAT_TYPES = frozenset({
    "none", "vat0", "vat5", "vat7", "vat10", "vat20", "vat22",
    "vat105", "vat107", "vat110", "vat120", "vat122",
})
PAYMENT_METHODS = frozenset({
    "full_prepayment", "prepayment", "advance", "full_payment", "partial_payment",
    "credit", "credit_payment",
})
MEASURE_CODES = frozenset({
    0, 10, 11, 12, 20, 21, 22, 30, 31, 32, 40, 41, 42, 50, 51, 70, 71, 72, 73, 80, 81, 82, 83, 255,
})
SNO_TYPES = frozenset({"osn", "usn_income", "usn_income_outcome", "envd", "esn", "patent"})
# ATOL's JSON schema (v4.6, kept in v5): price <= 42949673, sum / payments[].sum / total
# <= 100000000 rubles; quantity 99 999,999 at most (5+3 digits, ATOL's schema).
MAX_PRICE = 4_294_967_300  # kopecks
MAX_SUM = 10_000_000_000  # kopecks
MAX_QUANTITY = 99_999_999  # thousandths
TIMESTAMP = re.compile(r"\d{2}\.\d{2}\.\d{4} \d{2}:\d{2}:\d{2}")
INN = re.compile(r"\d{10}|\d{12}")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
PHONE = re.compile(r"\+?[0-9]{10,15}")


def _fiscal() -> FiscalState:
    return current_app.extensions["kassa_sandbox"].state.fiscal


@bp.errorhandler(AtolError)
def _atol_error(exc: AtolError) -> Response:
    return render_response(exc.body(), exc.http_status)


@bp.before_request
def _guard() -> Response | None:
    """Count the request and apply the ``down`` and ``slow`` faults."""
    args = request.view_args or {}
    endpoint = (request.endpoint or "").rsplit(".", 1)[-1]
    # "getToken" is ATOL's operation name, not a password.
    names = {"get_token": "getToken", "register": args.get("operation", "register")}  # nosec B105
    name = names.get(endpoint, endpoint)
    down, slow = _fiscal().enter(f"atol.{name}")
    if slow > 0:
        time.sleep(slow)
    if down:
        return Response("Service Unavailable", 503, mimetype="text/plain")
    return None


def _member(value: Any, allowed: frozenset[Any]) -> bool:
    """``value in allowed`` for a plain str/int (never a bool, list or Decimal)."""
    return type(value) in (str, int) and value in allowed


def _invalid(message: str) -> AtolError:
    return AtolError(400, 32, f"Ошибка валидации входящего чека: {message}")


def _token() -> str | None:
    return request.headers.get("Token") or request.args.get("token") or None


def _json_body() -> dict[str, Any]:
    if request.mimetype != "application/json":
        raise AtolError(415, 41, "Неподдерживаемый Content-Type: нужен application/json")
    try:
        data = loads(request.get_data(cache=True))
    except ValueError:
        raise AtolError(400, 40, "Некорректный запрос: тело не является JSON") from None
    if not isinstance(data, dict):
        raise AtolError(400, 40, "Некорректный запрос: ожидается JSON-объект")
    return data


# ---------------------------------------------------------------- values


def _number(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise _invalid(f"{where} должно быть числом")
    number = Decimal(value)
    if not number.is_finite() or number < 0:
        raise _invalid(f"{where} должно быть неотрицательным числом")
    return number


def _kopecks(value: Any, where: str, limit: int = MAX_SUM) -> int:
    number = _number(value, where)
    try:
        scaled = number * 100
        if scaled != scaled.to_integral_value():
            raise _invalid(f"{where}: не более 2 знаков после запятой")
        kopecks = int(scaled)
    except InvalidOperation:
        raise _invalid(f"{where} вне диапазона") from None
    if kopecks > limit:
        raise _invalid(f"{where} больше {format_amount(limit)}")
    return kopecks


def _thousandths(value: Any, where: str) -> int:
    number = _number(value, where)
    scaled = number * 1000
    if scaled != scaled.to_integral_value():
        raise _invalid(f"{where}: не более 3 знаков после запятой")
    milli = int(scaled)
    if not 0 < milli <= MAX_QUANTITY:
        raise _invalid(f"{where} должно быть больше 0 и не больше 99999.999")
    return milli


def _string(obj: dict[str, Any], key: str, where: str, max_len: int, *,
            required: bool = True) -> str | None:
    value = obj.get(key)
    if value is None or value == "":
        if required:
            raise _invalid(f"{where}.{key} обязательно")
        return None
    if not isinstance(value, str):
        raise _invalid(f"{where}.{key} должно быть строкой")
    if len(value) > max_len:
        raise _invalid(f"{where}.{key} длиннее {max_len} символов")
    return value


def _object(obj: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = obj.get(key)
    if not isinstance(value, dict):
        raise _invalid(f"{where}.{key} обязательно и должно быть объектом")
    return value


def _items(receipt: dict[str, Any]) -> list[Item]:
    raw = receipt.get("items")
    if not isinstance(raw, list) or not 1 <= len(raw) <= 100:
        raise _invalid("receipt.items: от 1 до 100 позиций")
    items = []
    for index, entry in enumerate(raw):
        where = f"receipt.items[{index}]"
        if not isinstance(entry, dict):
            raise _invalid(f"{where} должно быть объектом")
        name = _string(entry, "name", where, 128) or ""
        for key in ("price", "quantity", "sum"):
            if key not in entry:
                raise _invalid(f"{where}.{key} обязательно")
        price = _kopecks(entry["price"], f"{where}.price", MAX_PRICE)
        milli = _thousandths(entry["quantity"], f"{where}.quantity")
        amount = _kopecks(entry["sum"], f"{where}.sum")
        expected = (price * milli + 500) // 1000  # round half up
        if abs(amount - expected) > 1:
            raise _invalid(f"{where}.sum не равна price × quantity")
        measure = entry.get("measure")
        if not _member(measure, MEASURE_CODES):
            raise _invalid(f"{where}.measure: неизвестный код единицы измерения")
        if not _member(entry.get("payment_method"), PAYMENT_METHODS):
            raise _invalid(f"{where}.payment_method: неизвестное значение")
        payment_object = entry.get("payment_object")
        if (
            isinstance(payment_object, bool)
            or not isinstance(payment_object, int)
            or not 1 <= payment_object <= 33
        ):
            raise _invalid(f"{where}.payment_object: целое число от 1 до 33")
        vat = entry.get("vat")
        if not isinstance(vat, dict) or not _member(vat.get("type"), VAT_TYPES):
            raise _invalid(f"{where}.vat.type: неизвестная ставка НДС")
        items.append(Item(name=name, price=price, quantity_milli=milli, amount=amount))
    return items


def _parties(receipt: dict[str, Any]) -> None:
    """receipt.client (email or phone) and receipt.company."""
    client = _object(receipt, "client", "receipt")
    email = _string(client, "email", "receipt.client", 64, required=False)
    phone = _string(client, "phone", "receipt.client", 64, required=False)
    if email is None and phone is None:
        raise _invalid("receipt.client: нужен email или phone")
    if email is not None and not EMAIL.fullmatch(email):
        raise _invalid("receipt.client.email: некорректный адрес")
    if phone is not None and not PHONE.fullmatch(phone):
        raise _invalid("receipt.client.phone: некорректный номер")
    company = _object(receipt, "company", "receipt")
    company_email = _string(company, "email", "receipt.company", 64) or ""
    if not EMAIL.fullmatch(company_email):
        raise _invalid("receipt.company.email: некорректный адрес")
    if not _member(company.get("sno"), SNO_TYPES):
        raise _invalid("receipt.company.sno: неизвестная система налогообложения")
    if not INN.fullmatch(_string(company, "inn", "receipt.company", 12) or ""):
        raise _invalid("receipt.company.inn: 10 или 12 цифр")
    _string(company, "payment_address", "receipt.company", 256)


def _validate(body: dict[str, Any]) -> tuple[str, str | None, list[Item], int]:
    """(external_id, callback_url, items, total) of a valid packet; AtolError 32 otherwise."""
    timestamp = body.get("timestamp")
    if not isinstance(timestamp, str) or not TIMESTAMP.fullmatch(timestamp):
        raise _invalid("timestamp должен иметь формат dd.mm.yyyy HH:MM:SS")
    external_id = _string(body, "external_id", "", 128) or ""
    callback_url = None
    service = body.get("service")
    if service is not None:
        if not isinstance(service, dict):
            raise _invalid("service должно быть объектом")
        callback_url = _string(service, "callback_url", "service", 256, required=False)
        if callback_url is not None and not re.match(r"https?://\S+$", callback_url):
            raise _invalid("service.callback_url должен быть http(s) URL")
    receipt = _object(body, "receipt", "")
    _parties(receipt)
    items = _items(receipt)
    payments = receipt.get("payments")
    if not isinstance(payments, list) or not 1 <= len(payments) <= 10:
        raise _invalid("receipt.payments: от 1 до 10 оплат")
    paid = 0
    for index, payment in enumerate(payments):
        where = f"receipt.payments[{index}]"
        if not isinstance(payment, dict):
            raise _invalid(f"{where} должно быть объектом")
        kind = payment.get("type")
        if isinstance(kind, bool) or not isinstance(kind, int) or not 0 <= kind <= 9:
            raise _invalid(f"{where}.type: целое число от 0 до 9")
        if "sum" not in payment:
            raise _invalid(f"{where}.sum обязательно")
        paid += _kopecks(payment["sum"], f"{where}.sum")
    if "total" not in receipt:
        raise _invalid("receipt.total обязательно")
    total = _kopecks(receipt["total"], "receipt.total")
    items_sum = sum(item.amount for item in items)
    if paid != items_sum:
        raise _invalid("сумма оплат не равна сумме позиций")
    if abs(total - items_sum) > 99:
        raise _invalid("receipt.total отличается от суммы позиций больше чем на 99 копеек")
    return external_id, callback_url, items, total


# ---------------------------------------------------------------- endpoints


@bp.route("/getToken", methods=["GET", "POST"])
def get_token() -> Response:
    if request.method == "GET":
        login, password = request.args.get("login"), request.args.get("pass")
    else:
        body = _json_body()
        login, password = body.get("login"), body.get("pass")
    return render_response(_fiscal().issue_token(login, password))


@bp.post("/<group>/<operation>")
def register(group: str, operation: str) -> Response:
    fiscal = _fiscal()
    fiscal.check_token(_token(), group)
    if operation not in OPERATIONS:
        known = operation in OTHER_OPERATIONS
        raise AtolError(
            400, 31,
            f"Операция {operation} не поддерживается"
            + (" песочницей" if known else ""),
        )
    external_id, callback_url, items, total = _validate(_json_body())
    result = fiscal.atol_register(
        operation=operation,
        external_id=external_id,
        callback_url=callback_url,
        items=items,
        total=total,
    )
    if result.lose_answer:
        # Registered, but the answer is lost on the way back (fault "lose_answer_next").
        return Response(b"", 502)
    if result.duplicate:
        raise AtolError(
            400, 33,
            f"В системе существует чек с external_id : {external_id} и group_code: {group}",
            status="wait", uuid=result.document.uuid,
        )
    return render_response(
        {
            "uuid": result.document.uuid,
            "status": "wait",
            "error": None,
            "timestamp": atol_time(clock.now()),
        }
    )


@bp.get("/<group>/report/<uuid>")
def report(group: str, uuid: str) -> Response:
    fiscal = _fiscal()
    fiscal.check_token(_token(), group)
    packet = fiscal.atol_report(uuid)
    if packet is None:
        error = AtolError(200, 34, "Документ еще не обработан", status="wait", uuid=uuid)
        return render_response(error.body(), 200)
    return render_response(packet)
