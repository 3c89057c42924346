"""The emulated Raiffeisen SBP endpoints (same paths and JSON as the bank, host root)."""

from __future__ import annotations

import hmac
import io
import re
import time
from typing import Any

import qrcode
from flask import Blueprint, Response, current_app, request
from qrcode.image.pure import PyPNGImage

from . import clock
from .errors import BankError, invalid
from .jsonio import error_response, json_response, loads
from .money import AmountError, parse_amount
from .state import (
    ORDER_PATTERN,
    QR_DYNAMIC,
    QR_TYPES,
    QR_VARIABLE,
    SUCCESS,
    RegisterRequest,
    SandboxState,
)

bp = Blueprint("sandbox_bank", __name__)

_ACCOUNT = re.compile(r"\d{20}")


def _state() -> SandboxState:
    return current_app.extensions["kassa_sandbox"].state


@bp.before_request
def _down() -> Response | None:
    """The ``down`` fault: every bank API call answers 503 and changes nothing."""
    if _state().bank_faults_json()["down"]:
        return error_response(503, "ERROR.SERVICE_UNAVAILABLE", "the bank is down (sandbox fault)")
    return None


@bp.after_request
def _slow(response: Response) -> Response:
    """The ``slow`` fault: the answer is held back after the bank has done the work, as a
    bank that is slow to answer (a client that times out has still registered the QR)."""
    slow = _state().bank_faults_json()["slow"]
    if slow > 0 and response.status_code != 503:
        time.sleep(float(slow))
    return response


def _check_bearer(optional: bool = False) -> None:
    """``Authorization: Bearer <secret_key>``; with ``optional`` a missing header is fine."""
    header = request.headers.get("Authorization", "").strip()
    if not header:
        if optional:
            return
        raise BankError(401, "ERROR.UNAUTHORIZED", "Authorization: Bearer <secretKey> is required")
    scheme, _, token = header.partition(" ")
    secret = current_app.extensions["kassa_sandbox"].settings.secret_key
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        token.strip().encode("utf-8"), secret.encode("utf-8")
    ):
        raise BankError(401, "ERROR.UNAUTHORIZED", "invalid secret key")


def _body() -> dict[str, Any]:
    try:
        data = loads(request.get_data(cache=True))
    except ValueError:
        raise invalid("malformed JSON body") from None
    if not isinstance(data, dict):
        raise invalid("the JSON body must be an object")
    return data


def _opt_str(body: dict[str, Any], key: str, max_len: int | None = None) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(f"{key} must be a string")
    if max_len is not None and len(value) > max_len:
        raise invalid(f"{key} must be at most {max_len} characters")
    return value


def _amount(value: Any, key: str = "amount") -> int:
    try:
        return parse_amount(value)
    except AmountError as exc:
        raise invalid(f"{key}: {exc}") from None


def _transaction_id(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    raise invalid("transactionId must be an integer")


# ---------------------------------------------------------------- QR codes


@bp.post("/api/sbp/v2/qrs")
def register_qr() -> Response:
    # The 2021 spec registers QRs without authorization; a Bearer, if sent, must be right.
    _check_bearer(optional=True)
    body = _body()
    merchant_id = body.get("sbpMerchantId")
    if merchant_id is None or merchant_id == "":
        raise BankError(400, "ERROR.SBP_MERCHANT_ID_IS_MISSING", "sbpMerchantId is required")
    if merchant_id != current_app.extensions["kassa_sandbox"].settings.merchant_id:
        raise BankError(
            400, "ERROR.MERCHANT_NOT_REGISTERED", f"merchant {merchant_id} is not registered"
        )
    qr_type = body.get("qrType")
    if qr_type not in QR_TYPES:
        raise invalid(f"qrType must be one of {', '.join(QR_TYPES)}")
    order = body.get("order")
    if order is None and qr_type != QR_VARIABLE:
        raise BankError(400, "ERROR.INVALID_ORDER", f"order is required for {qr_type}")
    if order is not None and not (isinstance(order, str) and ORDER_PATTERN.fullmatch(order)):
        raise BankError(
            400, "ERROR.INVALID_ORDER", "order must be 1-40 characters of A-Z a-z 0-9 - _ ."
        )
    amount = None if body.get("amount") is None else _amount(body["amount"])
    if qr_type == QR_DYNAMIC and amount is None:
        raise BankError(400, "ERROR.DYNAMIC_QR_WITHOUT_AMOUNT", "a QRDynamic requires amount")
    if qr_type == QR_VARIABLE and amount is not None:
        raise invalid("a QRVariable has no amount; activate it via POST /api/payment/v1/orders")
    currency = body.get("currency")
    if (amount is not None or currency is not None) and currency != "RUB":
        raise invalid('currency must be "RUB"')
    expiration = None
    if body.get("qrExpirationDate") is not None:
        try:
            expiration = clock.parse_iso(body["qrExpirationDate"])
        except ValueError as exc:
            raise BankError(
                400, "ERROR.QR_EXPIRATION_DATE_NOT_VALID", f"qrExpirationDate: {exc}"
            ) from None
    account = _opt_str(body, "account")
    if account is not None and not _ACCOUNT.fullmatch(account):
        raise invalid("account must be 20 digits")
    req = RegisterRequest(
        qr_type=qr_type,
        order=order,
        amount=amount,
        payment_details=_opt_str(body, "paymentDetails", 185),
        additional_info=_opt_str(body, "additionalInfo", 140),
        expiration=expiration,
        account=account,
        description=_opt_str(body, "qrDescription"),
        redirect_url=_opt_str(body, "redirectUrl"),
    )
    state = _state()
    registered = state.register_qr(req)
    if qr_type == QR_DYNAMIC and state.bank_faults_json()["pay_on_register"]:
        # The ``pay_on_register`` fault: the customer pays before the registration's answer
        # is back, so the bank's callback races the caller's commit of the new QR.
        state.pay(registered["qrId"], SUCCESS)
    return json_response(registered)


@bp.get("/api/sbp/v2/qrs/<qr_id>")
def qr_info(qr_id: str) -> Response:
    _check_bearer()
    return json_response(_state().qr_info(qr_id))


@bp.delete("/api/sbp/v2/qrs/<qr_id>")
def cancel_qr(qr_id: str) -> Response:
    _check_bearer()
    _state().cancel_qr(qr_id)
    return json_response({"code": "SUCCESS"})


@bp.get("/api/sbp/v1/qr/<qr_id>/image")
def qr_image(qr_id: str) -> Response:
    payload = _state().qr_payload(qr_id)
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=8, border=4)
    code.add_data(payload)
    code.make(fit=True)
    buffer = io.BytesIO()
    code.make_image(image_factory=PyPNGImage).save(buffer)
    return Response(buffer.getvalue(), mimetype="image/png")


@bp.get("/api/sbp/v1/qr/<qr_id>/payment-info")
def payment_info(qr_id: str) -> Response:
    _check_bearer()
    return json_response(_state().payment_info(qr_id))


# ---------------------------------------------------------------- refunds


@bp.post("/api/sbp/v1/refund")
def create_refund() -> Response:
    _check_bearer()
    body = _body()
    refund_id = body.get("refundId")
    if not isinstance(refund_id, str) or not 1 <= len(refund_id) <= 40:
        raise invalid("refundId must be a string of 1-40 characters")
    order = body.get("order")
    if not isinstance(order, str) or not order:
        raise invalid("order is required")
    if body.get("amount") is None:
        raise invalid("amount is required")
    result = _state().create_refund(
        refund_id=refund_id,
        order=order,
        amount=_amount(body["amount"]),
        transaction_id=_transaction_id(body.get("transactionId")),
        payment_details=_opt_str(body, "paymentDetails", 140),
    )
    return json_response(result)


@bp.get("/api/sbp/v1/refund/<refund_id>")
def refund_info(refund_id: str) -> Response:
    _check_bearer()
    return json_response(_state().refund_info(refund_id))


# ---------------------------------------------------------------- cash-link orders


@bp.post("/api/payment/v1/orders")
def create_order() -> Response:
    _check_bearer()
    body = _body()
    qr = body.get("qr")
    if not isinstance(qr, dict) or not isinstance(qr.get("id"), str) or not qr["id"]:
        raise invalid("qr.id is required")
    order_id = body.get("id")
    valid_id = isinstance(order_id, str) and ORDER_PATTERN.fullmatch(order_id)
    if order_id is not None and not valid_id:
        raise invalid("id must be 1-40 characters of A-Z a-z 0-9 - _ .")
    if body.get("amount") is None:
        raise invalid("amount is required")
    amount = _amount(body["amount"])
    expiration = None
    if body.get("expirationDate") is not None:
        try:
            expiration = clock.parse_iso(body["expirationDate"])
        except ValueError as exc:
            raise invalid(f"expirationDate: {exc}") from None
    result = _state().create_order(
        order_id=order_id,
        amount=amount,
        comment=_opt_str(body, "comment"),
        expiration=expiration,
        qr_id=qr["id"],
        additional_info=_opt_str(qr, "additionalInfo", 140),
        payment_details=_opt_str(qr, "paymentDetails", 185),
    )
    return json_response(result)


@bp.get("/api/payment/v1/orders/<order_id>")
def order_info(order_id: str) -> Response:
    _check_bearer()
    return json_response(_state().order_info(order_id))


@bp.delete("/api/payment/v1/orders/<order_id>")
def cancel_order(order_id: str) -> Response:
    _check_bearer()
    _state().cancel_order(order_id)
    return json_response({"code": "SUCCESS"})


# ---------------------------------------------------------------- ecom API on orders


@bp.get("/api/payments/v1/orders/<order_id>/transaction")
def order_transaction(order_id: str) -> Response:
    _check_bearer()
    return json_response(_state().order_transaction(order_id))


@bp.post("/api/payments/v1/orders/<order_id>/refunds/<refund_id>")
def create_order_refund(order_id: str, refund_id: str) -> Response:
    _check_bearer()
    if not ORDER_PATTERN.fullmatch(refund_id):
        raise invalid("refundId must be 1-40 characters of A-Z a-z 0-9 - _ .")
    body = _body()
    if body.get("amount") is None:
        raise invalid("amount is required")
    result = _state().create_order_refund(
        order_id=order_id,
        refund_id=refund_id,
        amount=_amount(body["amount"]),
        payment_details=_opt_str(body, "paymentDetails", 140),
    )
    return json_response(result)


@bp.get("/api/payments/v1/orders/<order_id>/refunds/<refund_id>")
def order_refund_info(order_id: str, refund_id: str) -> Response:
    _check_bearer()
    return json_response(_state().order_refund_info(order_id, refund_id))


# ---------------------------------------------------------------- settings


@bp.post("/api/settings/v1/callback")
def set_callback() -> Response:
    _check_bearer()
    url = _body().get("callbackUrl")
    if not isinstance(url, str) or not re.match(r"https?://[^\s/]+", url):
        raise invalid("callbackUrl must be an http(s) URL")
    _state().set_callback_url(url)
    # The answer is the setting itself (sbp_en.yaml / ecom_en.yaml callbackSettings).
    return json_response({"callbackUrl": url})
