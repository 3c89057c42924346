"""Sandbox-only pages and control endpoints (no auth): payer page, pay API, state, reset.

Amounts in these JSON responses are strings like ``"99.00"`` (they are not bank formats).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, Response, current_app, render_template, request
from flask_babel import gettext as _

from . import clock
from .errors import BankError, NotPayable, invalid
from .jsonio import error_response, json_response, loads
from .money import AmountError, format_amount, format_rub, parse_amount
from .state import DECLINED, SUCCESS, SandboxState

bp = Blueprint("sandbox_payer", __name__)


def _state() -> SandboxState:
    return current_app.extensions["kassa_sandbox"].state


@bp.app_template_filter("rub")
def _rub_filter(kopecks: int | None) -> str:
    return "" if kopecks is None else format_rub(kopecks)


@bp.app_template_filter("msk")
def _msk_filter(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(clock.MSK).strftime("%d.%m.%Y %H:%M:%S")


def _status_label(status: str) -> str:
    labels = {
        "NEW": _("Ожидает оплаты"),
        "PAID": _("Оплачен"),
        "EXPIRED": _("Срок действия истёк"),
        "CANCELLED": _("Отменён"),
        "INACTIVE": _("Не активна: счёт не выставлен"),
        "SUCCESS": _("Успешно"),
        "DECLINED": _("Отклонён"),
    }
    return labels.get(status, status)


def _type_label(qr_type: str) -> str:
    labels = {
        "QRDynamic": _("Динамический QR-код"),
        "QRStatic": _("Статический QR-код"),
        "QRVariable": _("Кассовая ссылка"),
    }
    return labels.get(qr_type, qr_type)


def _reason_text(reason: str | None) -> str | None:
    texts = {
        "EXPIRED": _("Срок действия QR-кода истёк: оплатить его уже нельзя."),
        "PAID": _("Этот QR-код уже оплачен. Повторная оплата невозможна."),
        "CANCELLED": _("QR-код отменён продавцом: оплатить его нельзя."),
        "INACTIVE": _(
            "Кассовая ссылка сейчас не активна: продавец ещё не выставил счёт или срок счёта истёк."
        ),
        "AMOUNT_REQUIRED": _("Укажите сумму платежа."),
    }
    return texts.get(reason) if reason else None


def _render_pay(qr_id: str, *, status: int = 200, **extra: Any) -> tuple[str, int]:
    view = _state().payer_view(qr_id)
    return (
        render_template(
            "sandbox/pay.html",
            view=view,
            status_label=_status_label,
            type_label=_type_label,
            reason_text=_reason_text(view["reason"]),
            **extra,
        ),
        status,
    )


def _not_found_page(qr_id: str) -> tuple[str, int]:
    return render_template("sandbox/not_found.html", qr_id=qr_id), 404


@bp.get("/")
@bp.get("/pay/")
def index() -> str:
    return render_template(
        "sandbox/index.html",
        qrs=_state().recent_qrs(),
        status_label=_status_label,
        type_label=_type_label,
    )


@bp.get("/pay/<qr_id>")
def pay_page(qr_id: str) -> tuple[str, int]:
    try:
        return _render_pay(qr_id)
    except BankError:
        return _not_found_page(qr_id)


@bp.post("/pay/<qr_id>")
def pay_submit(qr_id: str) -> tuple[str, int]:
    action = request.form.get("action", "pay")
    try:
        view = _state().payer_view(qr_id)
    except BankError:
        return _not_found_page(qr_id)
    if action not in ("pay", "decline"):
        return _render_pay(qr_id, status=400, error=_("Неизвестное действие."))
    amount = None
    raw_amount = request.form.get("amount", "").strip()
    if view["open_sum"] and raw_amount:
        cleaned = raw_amount.replace("\u00a0", "").replace(" ", "").replace(",", ".")
        try:
            amount = parse_amount(cleaned)
        except AmountError:
            return _render_pay(
                qr_id,
                status=400,
                error=_(
                    "Неверная сумма: укажите положительное число рублей, "
                    "не больше двух знаков после запятой."
                ),
                entered_amount=raw_amount,
            )
    try:
        tx = _state().pay(qr_id, SUCCESS if action == "pay" else DECLINED, amount)
    except NotPayable as exc:
        return _render_pay(qr_id, status=409, error=_reason_text(exc.reason))
    except BankError:
        return _not_found_page(qr_id)
    return _render_pay(qr_id, result=_state().transaction_json(tx), result_amount=tx.amount)


# ---------------------------------------------------------------- JSON control endpoints


@bp.post("/sandbox/qrs/<qr_id>/pay")
def control_pay(qr_id: str) -> Response:
    raw = request.get_data(cache=True)
    try:
        body = loads(raw) if raw.strip() else {}
    except ValueError:
        raise invalid("malformed JSON body") from None
    if not isinstance(body, dict):
        raise invalid("the JSON body must be an object")
    status = body.get("status", SUCCESS)
    if status not in (SUCCESS, DECLINED):
        raise invalid('status must be "SUCCESS" or "DECLINED"')
    amount = None
    if body.get("amount") is not None:
        try:
            amount = parse_amount(body["amount"])
        except AmountError as exc:
            raise invalid(f"amount: {exc}") from None
    try:
        tx = _state().pay(qr_id, status, amount)
    except NotPayable as exc:
        if exc.reason == "AMOUNT_REQUIRED":
            raise invalid(exc.message) from None
        return error_response(409, "ERROR.QR_NOT_PAYABLE", exc.message)
    return json_response(
        {
            "transactionId": tx.id,
            "paymentStatus": tx.status,
            "amount": format_amount(tx.amount),
            "qrId": tx.qr_id,
            "order": tx.order,
        }
    )


@bp.get("/sandbox/state")
def state_snapshot() -> Response:
    return json_response(_state().snapshot())


@bp.post("/sandbox/reset")
def reset() -> Response:
    _state().reset()
    return json_response({"code": "SUCCESS"})
