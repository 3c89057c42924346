"""Payments made through the constructor API: create (idempotent by the caller's order_id),
status and cancel, and the flat answer every route gives.

A constructor's request block waits a few seconds at most, so the create call answers
within API_BANK_BUDGET_SECONDS of talking to the bank: the QR is registered in a helper
thread and, if the bank is slow or down, the order is kept and answered `pending` with its
`pay_url`, and the job `constructor.create_qr` (enqueued with the order, in the same
transaction) registers the QR; the status call shows it once it exists.
"""

from __future__ import annotations

import logging
import secrets
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import IntegrityError

from app import jobs
from app.constructor.parsing import PaymentRequest
from app.errors import BankError, InvalidStateError, KassaError, NotFoundError
from app.extensions import db
from app.fiscal.views import receipt_url, receipts_of
from app.models import (
    ApiClient,
    Job,
    JobStatus,
    Order,
    OrderChannel,
    OrderStatus,
    Payment,
    QrCode,
    QrKind,
    ReceiptKind,
    ReceiptStatus,
    utcnow,
)
from app.money import format_rubles, to_string
from app.orders.services import add_order
from app.sbp.cancelling import cancel_order
from app.sbp.qrcodes import create_dynamic_qr
from app.sbp.serialize import qr_image_url

logger = logging.getLogger(__name__)

JOB = "constructor.create_qr"
# Seconds the create call waits for the bank before it answers `pending`.
DEFAULT_BANK_BUDGET_SECONDS = 2.0
# Bank calls that outlive their request run here; a bank that hangs fills it, and later
# requests then answer `pending` on time instead of piling up threads.
_bank_calls = ThreadPoolExecutor(max_workers=8, thread_name_prefix="api-bank")

API_STATUS = {
    OrderStatus.NEW: "pending",
    OrderStatus.PENDING: "pending",
    OrderStatus.PAID: "paid",
    OrderStatus.PARTIALLY_REFUNDED: "paid",
    OrderStatus.REFUNDED: "refunded",
    OrderStatus.EXPIRED: "expired",
    OrderStatus.CANCELLED: "cancelled",
}
STATUSES = ("pending", "paid", "expired", "cancelled", "refunded", "failed")
MESSAGES = {
    "pending": _l("Ждём оплату: покажите покупателю QR-код или ссылку на оплату"),
    "paid": _l("Оплачено"),
    "expired": _l("Время на оплату истекло"),
    "cancelled": _l("Платёж отменён"),
    "refunded": _l("Деньги возвращены покупателю"),
    "failed": _l("Банк не принял платёж; создайте новый"),
}
WAITING_FOR_QR = _l("Банк отвечает медленно: ссылка на оплату уже работает, QR-код появится "
                    "через несколько секунд (запросите статус)")


def _budget() -> float:
    return float(current_app.config.get("API_BANK_BUDGET_SECONDS", DEFAULT_BANK_BUDGET_SECONDS))


def _job_key(order_id: int) -> str:
    return f"{JOB}:{order_id}"


# -- create -----------------------------------------------------------------------------------


def create_payment(client: ApiClient, req: PaymentRequest) -> tuple[Order, bool]:
    """Create the client's payment, or find the one its `order_id` made before.

    :returns: the order and whether it is new.
    :raises InvalidStateError: `order_id` was used for another sum or other items (409).
    :raises ValidationError: the cart cannot be sold (lines, receipt, email, phone).
    :raises BankError: the bank refused the QR outright (not: it is slow or down).
    """
    order, created = _find_or_create(client, req)
    if order.status == OrderStatus.NEW and _latest_qr(order.id) is None:
        _register_within_budget(order.id, req.ttl_minutes)
    db.session.expire_all()
    return db.session.get(Order, order.id), created


def _find_or_create(client: ApiClient, req: PaymentRequest) -> tuple[Order, bool]:
    if req.order_id is not None:
        existing = _by_external_id(client.id, req.order_id)
        if existing is not None:
            _check_same(existing, req)
            return existing, False
    order = add_order(channel=OrderChannel.API, lines=req.lines, description=req.description,
                      customer_email=req.customer_email, customer_phone=req.customer_phone)
    order.api_client_id = client.id
    order.external_id = req.order_id
    order.client_ref = req.client_id
    order.checkout_token = secrets.token_urlsafe(32)
    try:
        db.session.flush()
        # With the order, in its transaction: if this process dies before the bank answers,
        # the worker still registers the QR. Due once the request has stopped waiting.
        jobs.enqueue(JOB, {"order_id": order.id, "ttl_minutes": req.ttl_minutes},
                     key=_job_key(order.id),
                     run_at=utcnow() + timedelta(seconds=_budget() + 1))
        db.session.commit()
    except IntegrityError:
        # The same order_id a moment ago, from a request running alongside this one.
        db.session.rollback()
        existing = req.order_id and _by_external_id(client.id, req.order_id)
        if not existing:
            raise
        _check_same(existing, req)
        return existing, False
    logger.info("API client %s: order %s for %s kopecks (order_id %r)", client.id, order.id,
                order.total_kopecks, req.order_id)
    return order, True


def _by_external_id(client_id: int, external_id: str) -> Order | None:
    return db.session.scalars(sa.select(Order).where(
        Order.api_client_id == client_id, Order.external_id == external_id)).one_or_none()


def _check_same(order: Order, req: PaymentRequest) -> None:
    """A repeat must ask for what the first request asked for."""
    if order.total_kopecks != req.total_kopecks:
        raise InvalidStateError(
            str(_l("Платёж с order_id «%(id)s» уже создан на %(sum)s; новый order_id нужен "
                   "для другой суммы", id=order.external_id,
                   sum=format_rubles(order.total_kopecks))),
            code="order_id_conflict")
    if req.by_items:
        asked = [(line.name.strip()[:128], line.price_kopecks, line.quantity_milli, line.vat)
                 for line in req.lines]
        held = [(item.name, item.price_kopecks, item.quantity_milli, item.vat)
                for item in order.items]
        if asked != held:
            raise InvalidStateError(
                str(_l("Платёж с order_id «%(id)s» уже создан с другими позициями",
                       id=order.external_id)),
                code="order_id_conflict")


def _register_within_budget(order_id: int, ttl_minutes: int | None) -> None:
    """Register the order's QR, waiting for the bank no longer than the budget. A slow or
    unreachable bank leaves it to the job; a refusal is final."""
    app = current_app._get_current_object()
    future = _bank_calls.submit(_register, app, order_id, ttl_minutes)
    try:
        future.result(timeout=_budget())
    except FutureTimeout:
        logger.warning("order %s: the bank is slow; answered pending, the job registers the "
                       "QR", order_id)
    except BankError as exc:
        if exc.retryable:
            logger.warning("order %s: the bank did not answer; the job registers the QR",
                           order_id)
            return
        _close_job(order_id)
        raise
    except KassaError as exc:  # paid, cancelled or busy meanwhile: the status says which
        logger.info("order %s: no QR now: %s", order_id, exc.message)


def _register(app: Flask, order_id: int, ttl_minutes: int | None) -> None:
    with app.app_context():
        create_dynamic_qr(order_id, ttl_minutes=ttl_minutes)


def _close_job(order_id: int) -> None:
    """The bank refused the QR for good: its job has nothing left to do (the status then
    says `failed`)."""
    db.session.execute(sa.update(Job).where(
        Job.key == _job_key(order_id), Job.status == JobStatus.QUEUED,
    ).values(status=JobStatus.DONE, finished_at=utcnow(), last_error="bank refused"))
    db.session.commit()


def create_qr_job(payload: dict[str, Any]) -> None:
    """Job `constructor.create_qr`: register the QR of an API order the request could not
    (slow bank). Nothing to do if it has one, or is no longer waiting for its first."""
    order_id = int(payload["order_id"])
    order = db.session.get(Order, order_id)
    if order is None or order.status != OrderStatus.NEW or _latest_qr(order_id) is not None:
        db.session.rollback()
        return
    db.session.rollback()
    try:
        create_dynamic_qr(order_id, ttl_minutes=payload.get("ttl_minutes"))
    except BankError as exc:
        if exc.retryable:
            raise
        logger.warning("order %s: the bank refused its QR: %s", order_id, exc.message)
    except InvalidStateError as exc:
        logger.info("order %s: no QR: %s", order_id, exc.message)


# -- status and cancel ------------------------------------------------------------------------


def get_payment(client: ApiClient, payment_id: str) -> Order:
    """The client's own order by its public id.

    :raises NotFoundError: no such order, or another client's.
    """
    order = db.session.scalars(sa.select(Order).where(
        Order.public_id == str(payment_id)[:64], Order.api_client_id == client.id,
    )).one_or_none()
    if order is None:
        raise NotFoundError(str(_l("Платёж не найден")), code="payment_not_found")
    return order


def cancel_payment(client: ApiClient, payment_id: str) -> Order:
    """Cancel the client's unpaid payment (again: no change).

    :raises InvalidStateError: it is paid (`order_paid`).
    :raises BankError: the bank did not answer; nothing changed.
    """
    order = get_payment(client, payment_id)
    return cancel_order(order.id)


def _latest_qr(order_id: int) -> QrCode | None:
    return db.session.scalars(sa.select(QrCode).where(
        QrCode.order_id == order_id, QrCode.kind == QrKind.DYNAMIC,
    ).order_by(QrCode.id.desc()).limit(1)).first()


def api_status(order: Order, qr: QrCode | None) -> str:
    if order.status == OrderStatus.NEW and qr is None:
        job = db.session.scalar(sa.select(Job.status).where(Job.key == _job_key(order.id)))
        return "failed" if job in (JobStatus.DONE, JobStatus.DEAD) else "pending"
    if order.status == OrderStatus.PENDING and qr is not None and qr.is_expired():
        return "expired"  # the bank's word is on its way; nobody can pay it any more
    return API_STATUS[order.status]


def _receipt_url(order: Order) -> str | None:
    payment = db.session.scalars(sa.select(Payment).where(Payment.order_id == order.id)
                                 .order_by(Payment.id)).first()
    if payment is None:
        return None
    for receipt in receipts_of(payment.id):
        if receipt.kind == ReceiptKind.SELL and receipt.status == ReceiptStatus.DONE:
            return receipt_url(receipt)
    return None


def pay_url(order: Order) -> str:
    return f"{current_app.config['PUBLIC_URL']}/checkout/{order.checkout_token}"


def payment_answer(order: Order) -> dict[str, Any]:
    """The flat answer a constructor saves into its variables."""
    qr = _latest_qr(order.id)
    status = api_status(order, qr)
    message = WAITING_FOR_QR if status == "pending" and qr is None else MESSAGES[status]
    return {
        "ok": True,
        "payment_id": order.public_id,
        "status": status,
        "amount": to_string(order.total_kopecks),
        "qr_payload": qr.payload if qr else None,
        "qr_image_url": qr_image_url(qr) if qr else None,
        "pay_url": pay_url(order),
        "expires_at": qr.expires_at.isoformat() if qr and qr.expires_at else None,
        "receipt_url": _receipt_url(order) if status in ("paid", "refunded") else None,
        "message": str(message),
        "order_id": order.external_id,
        "client_id": order.client_ref,
        "description": order.description,
    }
