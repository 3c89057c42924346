"""In-memory state and business rules of the emulated bank.

This is a TEST DOUBLE: all data lives in process memory, is guarded by ONE
``threading.Lock`` (:attr:`SandboxState.lock`; the worker's condition variable is
built on that same lock) and is lost on restart or ``POST /sandbox/reset``.
Public methods take the lock themselves; methods starting with ``_`` expect the
caller to hold it. Responses are built under the lock and returned as plain
dicts ready for :func:`app.sandbox.jsonio.dumps`.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from . import clock
from .errors import BankError, NotPayable, invalid, not_found
from .fiscal_state import CallbackDelivery, FiscalState
from .jsonio import Amount
from .money import format_amount
from .nspk import build_payload, new_qr_id
from .outgoing import Attempt, Outgoing
from .settings import SandboxSettings
from .signature import ECOM_SIGNATURE_HEADER, build_ecom_notification, build_notification

QR_DYNAMIC = "QRDynamic"
QR_STATIC = "QRStatic"
QR_VARIABLE = "QRVariable"
QR_TYPES = (QR_DYNAMIC, QR_STATIC, QR_VARIABLE)

SUCCESS = "SUCCESS"
DECLINED = "DECLINED"

#: Default lifetime of a cash-link order (PayKeeper default, also the Raif bot's "+5m").
DEFAULT_ORDER_TTL = timedelta(minutes=5)
#: Sandbox assumption: a static QR or cash link registered without ``qrExpirationDate`` is
#: valid for a year. The v2 QR info and payment-info answers require the field (sbp_en.yaml
#: ``qrInfov2``, ``paymentInfo``); the bank's SDK fixture of a QRStatic's info shows an
#: expiration one year after its creation.
DEFAULT_STATIC_TTL = timedelta(days=365)

ORDER_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,40}")


@dataclass
class Transaction:
    id: int
    qr_id: str
    order: str | None  # the QR's order, or the cash-link order id
    cash_order_id: str | None
    amount: int  # kopecks
    status: str  # SUCCESS | DECLINED
    create_date: datetime
    transaction_date: datetime
    additional_info: str | None
    payment_purpose: str | None


@dataclass
class Qr:
    qr_id: str
    qr_type: str
    order: str | None
    amount: int | None  # kopecks; None = open sum (static) or variable
    payment_details: str | None
    additional_info: str | None
    expiration: datetime | None
    account: str | None
    description: str | None
    redirect_url: str | None
    payload: str
    created_at: datetime
    cancelled_at: datetime | None = None
    transaction_ids: list[int] = field(default_factory=list)
    cash_order_ids: list[str] = field(default_factory=list)


@dataclass
class CashOrder:
    """An order of the orders API; activates a QRVariable (cash link)."""

    id: str
    qr_id: str
    amount: int
    comment: str | None
    expiration: datetime
    additional_info: str | None
    payment_details: str | None
    created_at: datetime
    status: str  # stored: NEW | PAID | CANCELLED; EXPIRED is derived from the clock
    status_date: datetime
    transaction_id: int | None = None


@dataclass
class Refund:
    refund_id: str
    order: str
    transaction_id: int
    amount: int
    payment_details: str | None
    status: str  # IN_PROGRESS | COMPLETED | DECLINED
    created_at: datetime
    due_monotonic: float
    completed_at: datetime | None = None


@dataclass(kw_only=True)
class Delivery(Outgoing):
    """The bank's payment notification of one transaction."""

    transaction_id: int

    @property
    def label(self) -> str:
        return f"transaction {self.transaction_id}"


@dataclass
class BankFaults:
    """Fault switches of the emulated bank API (``POST /sandbox/bank/faults``)."""

    down: bool = False  # every bank API call answers 503 and does nothing
    slow: Decimal = Decimal(0)  # seconds each bank API answer is held back after the work is done
    pay_on_register: bool = False  # a new QRDynamic is paid before its registration answers


BANK_FAULT_KEYS = ("down", "slow", "pay_on_register")


@dataclass
class RegisterRequest:
    qr_type: str
    order: str | None
    amount: int | None
    payment_details: str | None = None
    additional_info: str | None = None
    expiration: datetime | None = None
    account: str | None = None
    description: str | None = None
    redirect_url: str | None = None


def _merchant_number(sbp_merchant_id: str) -> int:
    """The numeric ``merchantId`` the bank reports next to ``sbpMerchantId`` (its digits)."""
    digits = re.sub(r"\D", "", sbp_merchant_id)
    return int(digits) if digits else 1


class SandboxState:
    def __init__(self, settings: SandboxSettings) -> None:
        self.settings = settings
        self.lock = threading.Lock()
        #: The worker waits on this; it shares :attr:`lock`.
        self.changed = threading.Condition(self.lock)
        #: Called (under the lock) whenever background work is queued; set by the worker.
        self.on_work: Callable[[], None] | None = None
        # Transaction ids keep growing across resets and start from the epoch in ms,
        # so a restarted sandbox does not reuse ids a persistent Kassa DB has seen.
        self._transaction_ids = itertools.count(int(time.time() * 1000))
        self.merchant_number = _merchant_number(settings.merchant_id)
        #: The emulated cash registers (ATOL, Raiffeisen fiscal API); same lock.
        self.fiscal = FiscalState(settings, self.lock, self._wake_worker)
        self._clear()

    def _clear(self) -> None:
        self.callback_url: str | None = self.settings.callback_url
        self.qrs: dict[str, Qr] = {}
        self.qr_by_order: dict[str, str] = {}
        self.orders: dict[str, CashOrder] = {}
        self.transactions: dict[int, Transaction] = {}
        self.refunds: dict[str, Refund] = {}
        self.deliveries: dict[int, Delivery] = {}
        self.bank_faults = BankFaults()
        self.fiscal._clear()

    def reset(self) -> None:
        with self.lock:
            self._clear()

    # ------------------------------------------------------------------ bank faults

    def bank_faults_json(self) -> dict[str, Any]:
        with self.lock:
            return dataclasses.asdict(self.bank_faults)

    def set_bank_faults(self, changes: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            for key, value in changes.items():
                setattr(self.bank_faults, key, value)
            return dataclasses.asdict(self.bank_faults)

    # ------------------------------------------------------------------ helpers

    def _qr_url(self, qr_id: str) -> str:
        return f"{self.settings.base_url.rstrip('/')}/api/sbp/v1/qr/{qr_id}/image"

    def _get_qr(self, qr_id: str) -> Qr:
        qr = self.qrs.get(qr_id)
        if qr is None:
            raise not_found(f"QR {qr_id} not found")
        return qr

    def _successful(self, qr: Qr) -> list[Transaction]:
        return [
            tx for tx in (self.transactions[i] for i in qr.transaction_ids) if tx.status == SUCCESS
        ]

    def _order_status(self, order: CashOrder, now: datetime) -> tuple[str, datetime]:
        if order.status != "NEW":
            return order.status, order.status_date
        if now >= order.expiration:
            return "EXPIRED", order.expiration
        return "NEW", order.status_date

    def _active_order(self, qr: Qr, now: datetime) -> CashOrder | None:
        for order_id in reversed(qr.cash_order_ids):
            order = self.orders[order_id]
            if self._order_status(order, now)[0] == "NEW":
                return order
        return None

    def _qr_status(self, qr: Qr, now: datetime) -> str:
        if qr.qr_type == QR_DYNAMIC and self._successful(qr):
            return "PAID"
        if qr.cancelled_at is not None:
            return "CANCELLED"
        if qr.expiration is not None and now >= qr.expiration:
            return "EXPIRED"
        if qr.qr_type == QR_VARIABLE:
            return "NEW" if self._active_order(qr, now) else "INACTIVE"
        return "NEW"

    def _wake_worker(self) -> None:
        self.changed.notify_all()
        if self.on_work is not None:
            self.on_work()

    # ------------------------------------------------------------------ QR codes

    def register_qr(self, req: RegisterRequest) -> dict[str, Any]:
        with self.lock:
            now = clock.now()
            if req.expiration is not None and req.expiration <= now:
                raise BankError(
                    400, "ERROR.QR_EXPIRATION_DATE_NOT_VALID", "qrExpirationDate is in the past"
                )
            if req.order is not None:
                existing_id = self.qr_by_order.get(req.order)
                if existing_id is not None:
                    existing = self.qrs[existing_id]
                    if self._successful(existing):
                        raise BankError(
                            400,
                            "ERROR.ORDER_NUMBER_ALREADY_REGISTERED",
                            f"order {req.order} already has a successful payment",
                        )
                    if existing.qr_type != req.qr_type or existing.amount != req.amount:
                        raise invalid(
                            f"order {req.order} is already registered with a different "
                            "qrType or amount"
                        )
                    # Sandbox assumption: registering the same order again before it is
                    # paid is idempotent and returns the SAME qrId/payload (whatever its
                    # status), so a client may safely retry a registration that timed out.
                    return self._registration_json(existing)
                if req.order in self.orders:
                    raise BankError(
                        400,
                        "ERROR.ORDER_NUMBER_ALREADY_REGISTERED",
                        f"order {req.order} is already used by a cash-link order",
                    )
            expiration = req.expiration
            if expiration is None and req.qr_type == QR_DYNAMIC:
                expiration = now + timedelta(seconds=self.settings.default_dynamic_ttl_seconds)
            elif expiration is None:
                expiration = now + DEFAULT_STATIC_TTL
            qr_id = new_qr_id(req.qr_type)
            while qr_id in self.qrs:  # pragma: no cover - 36^30 space
                qr_id = new_qr_id(req.qr_type)
            qr = Qr(
                qr_id=qr_id,
                qr_type=req.qr_type,
                order=req.order,
                amount=req.amount,
                payment_details=req.payment_details,
                additional_info=req.additional_info,
                expiration=expiration,
                account=req.account,
                description=req.description,
                redirect_url=req.redirect_url,
                payload=build_payload(qr_id, req.qr_type, req.amount),
                created_at=now,
            )
            self.qrs[qr_id] = qr
            if req.order is not None:
                self.qr_by_order[req.order] = qr_id
            return self._registration_json(qr)

    def _registration_json(self, qr: Qr) -> dict[str, Any]:
        return {
            "code": "SUCCESS",
            "qrId": qr.qr_id,
            "payload": qr.payload,
            "qrUrl": self._qr_url(qr.qr_id),
        }

    def qr_info(self, qr_id: str) -> dict[str, Any]:
        with self.lock:
            qr = self._get_qr(qr_id)
            data: dict[str, Any] = {
                "code": "SUCCESS",
                "qrId": qr.qr_id,
                "payload": qr.payload,
                "qrUrl": self._qr_url(qr.qr_id),
                "qrStatus": self._qr_status(qr, clock.now()),
                "qrExpirationDate": qr.expiration,
            }
            data["qrType"] = qr.qr_type
            if qr.order is not None:
                data["order"] = qr.order
            if qr.amount is not None:
                data["amount"] = Amount(qr.amount)
            return data

    def qr_payload(self, qr_id: str) -> str:
        with self.lock:
            return self._get_qr(qr_id).payload

    def cancel_qr(self, qr_id: str) -> None:
        with self.lock:
            qr = self._get_qr(qr_id)
            now = clock.now()
            status = self._qr_status(qr, now)
            if status in ("PAID", "CANCELLED", "EXPIRED"):
                raise BankError(
                    400, "ORDER_HAS_FINAL_STATUS", f"QR {qr_id} is already {status.lower()}"
                )
            qr.cancelled_at = now
            if qr.qr_type == QR_VARIABLE:
                active = self._active_order(qr, now)
                if active is not None:
                    active.status, active.status_date = "CANCELLED", now

    def payment_info(self, qr_id: str) -> dict[str, Any]:
        with self.lock:
            qr = self._get_qr(qr_id)
            now = clock.now()
            latest = self.transactions[qr.transaction_ids[-1]] if qr.transaction_ids else None
            order_id = qr.order
            amount = qr.amount
            create_date = qr.created_at
            purpose = qr.payment_details
            additional_info = qr.additional_info
            expiration = qr.expiration
            if latest is not None:
                order_id, amount, create_date = latest.order, latest.amount, latest.create_date
                purpose, additional_info = latest.payment_purpose, latest.additional_info
                if latest.cash_order_id is not None:
                    expiration = self.orders[latest.cash_order_id].expiration
            elif qr.qr_type == QR_VARIABLE:
                active = self._active_order(qr, now)
                if active is not None:
                    order_id, amount, create_date = active.id, active.amount, active.created_at
                    purpose = active.payment_details or qr.payment_details
                    additional_info = active.additional_info or qr.additional_info
                    expiration = active.expiration
            data: dict[str, Any] = {"code": "SUCCESS"}
            # Optional strings are left out rather than sent as null (sbp_en.yaml paymentInfo).
            if additional_info is not None:
                data["additionalInfo"] = additional_info
            if purpose is not None:
                data["paymentPurpose"] = purpose
            data.update({
                # Required; an open-sum static QR nobody has paid yet has no sum: 0.
                "amount": Amount(amount or 0),
                "createDate": create_date,
                "currency": "RUB",
                "merchantId": self.merchant_number,
                # Required: an idle cash link registered without an order reports its qrId
                # (sandbox assumption; the bank's answer for that case is undocumented).
                "order": order_id or qr.qr_id,
                "paymentStatus": latest.status if latest is not None else "NO_INFO",
                "qrId": qr.qr_id,
                "sbpMerchantId": self.settings.merchant_id,
            })
            if latest is not None:
                data["transactionDate"] = latest.transaction_date
                data["transactionId"] = latest.id
            if expiration is not None:
                data["qrExpirationDate"] = expiration
            return data

    # ------------------------------------------------------------------ payments

    def pay(self, qr_id: str, status: str, amount: int | None = None) -> Transaction:
        """Make one payment attempt (``status`` SUCCESS or DECLINED) and queue its callback.

        ``amount`` is the payer's sum for an open-sum static QR, otherwise an override of
        the paid sum (to emulate a bank reporting a different amount).
        Raises ``BankError`` 404 for an unknown QR and :class:`NotPayable` otherwise.
        """
        if status not in (SUCCESS, DECLINED):
            raise ValueError(status)
        with self.lock:
            qr = self._get_qr(qr_id)
            now = clock.now()
            qr_status = self._qr_status(qr, now)
            cash_order: CashOrder | None = None
            if qr_status == "PAID":
                raise NotPayable("PAID", f"QR {qr_id} is already paid")
            if qr_status in ("CANCELLED", "EXPIRED"):
                raise NotPayable(qr_status, f"QR {qr_id} is {qr_status.lower()}")
            if qr.qr_type == QR_VARIABLE:
                cash_order = self._active_order(qr, now)
                if cash_order is None:
                    raise NotPayable("INACTIVE", f"cash link {qr_id} has no open order")
                paid = amount if amount is not None else cash_order.amount
                order_id = cash_order.id
                create_date = cash_order.created_at
                additional_info = cash_order.additional_info or qr.additional_info
                purpose = cash_order.payment_details or qr.payment_details
            else:
                paid = amount if amount is not None else qr.amount
                if paid is None:
                    raise NotPayable("AMOUNT_REQUIRED", f"QR {qr_id} has no fixed sum; give amount")
                order_id = qr.order
                create_date = qr.created_at
                additional_info = qr.additional_info
                purpose = qr.payment_details
            tx = Transaction(
                id=next(self._transaction_ids),
                qr_id=qr.qr_id,
                order=order_id,
                cash_order_id=cash_order.id if cash_order is not None else None,
                amount=paid,
                status=status,
                create_date=create_date,
                transaction_date=now,
                additional_info=additional_info,
                payment_purpose=purpose,
            )
            self.transactions[tx.id] = tx
            qr.transaction_ids.append(tx.id)
            if cash_order is not None and status == SUCCESS:
                cash_order.status, cash_order.status_date = "PAID", now
                cash_order.transaction_id = tx.id
            self._queue_notification(tx)
            return tx

    def _queue_notification(self, tx: Transaction) -> None:
        # No callback URL known to the bank at payment time: nothing is ever sent.
        if not self.callback_url:
            return
        if tx.cash_order_id is not None:
            self._queue_ecom_notification(tx, self.orders[tx.cash_order_id])
            return
        body, signature = build_notification(
            secret_key=self.settings.secret_key,
            transaction_id=tx.id,
            qr_id=tx.qr_id,
            sbp_merchant_id=self.settings.merchant_id,
            merchant_id=self.merchant_number,
            amount_kopecks=tx.amount,
            transaction_date=tx.transaction_date,
            payment_status=tx.status,
            additional_info=tx.additional_info,
            order=tx.order or "",
            create_date=tx.create_date,
        )
        self._queue_delivery(tx, body, signature)

    def _queue_ecom_notification(self, tx: Transaction, order: CashOrder) -> None:
        """A cash-link order's payment is announced by the ecom (orders) notification.

        Its statuses are SUCCESS | NOT_FOUND (ecom_en.yaml): a declined attempt leaves the
        order unpaid and announces nothing; the order can still be paid or polled.
        """
        if tx.status != SUCCESS:
            return
        body, signature = build_ecom_notification(
            secret_key=self.settings.secret_key,
            public_id=self.settings.merchant_id,
            transaction_id=tx.id,
            order_id=order.id,
            qr_id=tx.qr_id,
            amount_kopecks=tx.amount,
            status=SUCCESS,
            status_date=tx.transaction_date,
            comment=order.comment,
            additional_info=tx.additional_info,
        )
        self._queue_delivery(tx, body, signature, ECOM_SIGNATURE_HEADER)

    def _queue_delivery(
        self, tx: Transaction, body: str, signature: str, header: str | None = None
    ) -> None:
        delivery = Delivery(
            transaction_id=tx.id,
            url=self.callback_url or "",
            body=body,
            signature=signature,
            next_due=time.monotonic(),
        )
        if header is not None:
            delivery.signature_header = header
        self.deliveries[tx.id] = delivery
        self._wake_worker()

    def set_callback_url(self, url: str) -> None:
        with self.lock:
            self.callback_url = url

    # ------------------------------------------------------------------ refunds

    def create_refund(
        self,
        *,
        refund_id: str,
        order: str,
        amount: int,
        transaction_id: int | None,
        payment_details: str | None,
    ) -> dict[str, Any]:
        with self.lock:
            self._complete_due_refunds(time.monotonic())
            existing = self.refunds.get(refund_id)
            if existing is not None:
                if (
                    existing.amount != amount
                    or existing.order != order
                    or (transaction_id is not None and transaction_id != existing.transaction_id)
                ):
                    raise invalid(f"refundId {refund_id} is already used for another refund")
                return self._refund_json(existing)
            tx = self._refundable_transaction(order, transaction_id)
            refunded = sum(
                r.amount
                for r in self.refunds.values()
                if r.transaction_id == tx.id and r.status != "DECLINED"
            )
            if refunded + amount > tx.amount:
                raise BankError(
                    400,
                    "ERROR.REFUND_INSUFFICIENT_FUNDS",
                    f"refunds would exceed the paid amount {format_amount(tx.amount)} "
                    f"(already refunded {format_amount(refunded)})",
                )
            refund = Refund(
                refund_id=refund_id,
                order=order,
                transaction_id=tx.id,
                amount=amount,
                payment_details=payment_details,
                status="IN_PROGRESS",
                created_at=clock.now(),
                due_monotonic=time.monotonic() + self.settings.refund_processing_seconds,
            )
            self.refunds[refund_id] = refund
            self._wake_worker()
            return self._refund_json(refund)

    def _refundable_transaction(self, order: str, transaction_id: int | None) -> Transaction:
        qr_id = self.qr_by_order.get(order)
        if qr_id is not None:
            qr = self.qrs[qr_id]
            successful = self._successful(qr)
            if qr.qr_type != QR_DYNAMIC and transaction_id is None:
                raise invalid("transactionId is required to refund a payment of a static QR")
            if transaction_id is None:
                if not successful:
                    raise not_found(f"order {order} has no successful payment")
                return successful[0]
            for tx in successful:
                if tx.id == transaction_id:
                    return tx
            raise not_found(f"no successful transaction {transaction_id} for order {order}")
        cash_order = self.orders.get(order)
        if cash_order is not None:
            if cash_order.transaction_id is None:
                raise not_found(f"order {order} has no successful payment")
            if transaction_id is not None and transaction_id != cash_order.transaction_id:
                raise not_found(f"no successful transaction {transaction_id} for order {order}")
            return self.transactions[cash_order.transaction_id]
        raise not_found(f"order {order} not found")

    def _refund_json(self, refund: Refund) -> dict[str, Any]:
        return {"code": "SUCCESS", "amount": Amount(refund.amount), "refundStatus": refund.status}

    def refund_info(self, refund_id: str) -> dict[str, Any]:
        with self.lock:
            self._complete_due_refunds(time.monotonic())
            refund = self.refunds.get(refund_id)
            if refund is None:
                raise BankError(404, "ERROR.REFUND_NOT_FOUND", f"refund {refund_id} not found")
            return self._refund_json(refund)

    def _complete_due_refunds(self, now_monotonic: float) -> None:
        for refund in self.refunds.values():
            if refund.status == "IN_PROGRESS" and refund.due_monotonic <= now_monotonic:
                refund.status = "COMPLETED"
                refund.completed_at = clock.now()

    # ------------------------------------------------------------------ cash-link orders

    def create_order(
        self,
        *,
        order_id: str | None,
        amount: int,
        comment: str | None,
        expiration: datetime | None,
        qr_id: str,
        additional_info: str | None,
        payment_details: str | None,
    ) -> dict[str, Any]:
        with self.lock:
            now = clock.now()
            if expiration is not None and expiration <= now:
                raise invalid("expirationDate is in the past")
            if order_id is not None and order_id in self.orders:
                existing = self.orders[order_id]
                if existing.amount != amount or existing.qr_id != qr_id:
                    raise invalid(f"order {order_id} already exists with a different amount or QR")
                return self._order_json(existing, now)  # idempotent re-creation
            qr = self._get_qr(qr_id)
            if qr.qr_type != QR_VARIABLE:
                raise invalid(f"QR {qr_id} is a {qr.qr_type}; orders activate a QRVariable only")
            if qr.cancelled_at is not None:
                raise invalid(f"QR {qr_id} is cancelled")
            if qr.expiration is not None and now >= qr.expiration:
                raise invalid(f"QR {qr_id} is expired")
            if order_id is None:
                order_id = str(uuid.uuid4())
            elif order_id in self.qr_by_order:
                raise invalid(f"order id {order_id} is already used as the order of a QR")
            # PayKeeper/Moneta semantics: a cash link carries one unpaid order at a time,
            # so activating it again force-cancels the previous still-open order.
            previous = self._active_order(qr, now)
            if previous is not None:
                previous.status, previous.status_date = "CANCELLED", now
            order = CashOrder(
                id=order_id,
                qr_id=qr_id,
                amount=amount,
                comment=comment,
                expiration=expiration or now + DEFAULT_ORDER_TTL,
                additional_info=additional_info,
                payment_details=payment_details,
                created_at=now,
                status="NEW",
                status_date=now,
            )
            self.orders[order_id] = order
            qr.cash_order_ids.append(order_id)
            return self._order_json(order, now)

    def _get_order(self, order_id: str) -> CashOrder:
        order = self.orders.get(order_id)
        if order is None:
            raise BankError(404, "ORDER_NOT_FOUND", f"order {order_id} not found")
        return order

    def _order_json(self, order: CashOrder, now: datetime) -> dict[str, Any]:
        value, date = self._order_status(order, now)
        qr: dict[str, Any] = {"id": order.qr_id}
        if order.additional_info is not None:
            qr["additionalInfo"] = order.additional_info
        if order.payment_details is not None:
            qr["paymentDetails"] = order.payment_details
        data: dict[str, Any] = {"id": order.id, "amount": Amount(order.amount)}
        # Optional strings are left out rather than sent as null.
        if order.comment is not None:
            data["comment"] = order.comment
        data.update({
            "status": {"value": value, "date": date},
            "expirationDate": order.expiration,
            "qr": qr,
        })
        return data

    def order_info(self, order_id: str) -> dict[str, Any]:
        with self.lock:
            return self._order_json(self._get_order(order_id), clock.now())

    def order_transaction(self, order_id: str) -> dict[str, Any]:
        """GET /api/payments/v1/orders/{orderId}/transaction (ecom ``resPayStatus``).

        The order's successful payment (status SUCCESS); an order not (yet) paid answers
        status NOT_FOUND, with the order's sum and its status date.
        """
        with self.lock:
            order = self.orders.get(order_id)
            if order is None:
                raise not_found(f"order {order_id} not found")
            now = clock.now()
            transaction: dict[str, Any] = {}
            if order.transaction_id is not None:
                tx = self.transactions[order.transaction_id]
                transaction["id"] = tx.id
                status, date, amount = SUCCESS, tx.transaction_date, tx.amount
            else:
                status, amount = "NOT_FOUND", order.amount
                date = self._order_status(order, now)[1]
            transaction.update({
                "orderId": order.id,
                "status": {"value": status, "date": date},
                "paymentMethod": "sbp",
                "paymentParams": {"qrId": order.qr_id},
                "amount": Amount(amount),
            })
            if order.comment is not None:
                transaction["comment"] = order.comment
            extra = {} if order.additional_info is None else {
                "additionalInfo": order.additional_info
            }
            transaction["extra"] = extra
            return {"code": "SUCCESS", "transaction": transaction}

    def create_order_refund(
        self, *, order_id: str, refund_id: str, amount: int, payment_details: str | None
    ) -> dict[str, Any]:
        """POST /api/payments/v1/orders/{orderId}/refunds/{refundId} (ecom ``statusRefund``)."""
        if order_id not in self.orders:
            raise not_found(f"order {order_id} not found")
        return self.create_refund(
            refund_id=refund_id, order=order_id, amount=amount, transaction_id=None,
            payment_details=payment_details,
        )

    def order_refund_info(self, order_id: str, refund_id: str) -> dict[str, Any]:
        with self.lock:
            self._complete_due_refunds(time.monotonic())
            refund = self.refunds.get(refund_id)
            if refund is None or refund.order != order_id:
                raise BankError(404, "ERROR.REFUND_NOT_FOUND", f"refund {refund_id} not found")
            return self._refund_json(refund)

    def cancel_order(self, order_id: str) -> None:
        with self.lock:
            order = self._get_order(order_id)
            now = clock.now()
            value, _ = self._order_status(order, now)
            if value == "PAID":
                raise BankError(400, "ORDER_HAS_FINAL_STATUS", f"order {order_id} is already paid")
            if value in ("CANCELLED", "EXPIRED"):
                raise BankError(
                    400, "ORDER_HAS_FINAL_STATUS", f"order {order_id} is already {value.lower()}"
                )
            order.status, order.status_date = "CANCELLED", now

    # ------------------------------------------------------------------ views for the sandbox UI

    def payer_view(self, qr_id: str) -> dict[str, Any]:
        """Everything the payer page shows; raises BankError 404 for an unknown QR."""
        with self.lock:
            qr = self._get_qr(qr_id)
            now = clock.now()
            status = self._qr_status(qr, now)
            view: dict[str, Any] = {
                "qr_id": qr.qr_id,
                "qr_type": qr.qr_type,
                "status": status,
                "merchant_id": self.settings.merchant_id,
                "order": qr.order,
                "amount": qr.amount,
                "purpose": qr.payment_details,
                "description": qr.description,
                "expiration": qr.expiration,
                "payload": qr.payload,
                "open_sum": qr.qr_type == QR_STATIC and qr.amount is None,
                "payable": status == "NEW",
                "reason": None if status == "NEW" else status,
            }
            if qr.qr_type == QR_VARIABLE:
                active = self._active_order(qr, now)
                view["amount"] = active.amount if active else None
                if active is not None:
                    view["order"] = active.id
                    view["purpose"] = active.payment_details or qr.payment_details or active.comment
                    view["expiration"] = active.expiration
            view["transactions"] = [
                self.transaction_json(self.transactions[i]) for i in reversed(qr.transaction_ids)
            ]
            return view

    def recent_qrs(self, limit: int = 50) -> list[dict[str, Any]]:
        with self.lock:
            now = clock.now()
            result = []
            for qr in list(self.qrs.values())[::-1][:limit]:
                amount = qr.amount
                if qr.qr_type == QR_VARIABLE:
                    active = self._active_order(qr, now)
                    amount = active.amount if active else None
                result.append(
                    {
                        "qr_id": qr.qr_id,
                        "qr_type": qr.qr_type,
                        "order": qr.order,
                        "amount": amount,
                        "status": self._qr_status(qr, now),
                        "created_at": qr.created_at,
                    }
                )
            return result

    @staticmethod
    def transaction_json(tx: Transaction) -> dict[str, Any]:
        """A transaction for the sandbox-only endpoints (amount as a string)."""
        return {
            "transactionId": tx.id,
            "paymentStatus": tx.status,
            "amount": format_amount(tx.amount),
            "qrId": tx.qr_id,
            "order": tx.order,
            "transactionDate": tx.transaction_date,
        }

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready dump for tests (amounts as strings like ``"100.00"``)."""
        with self.lock:
            self._complete_due_refunds(time.monotonic())
            now = clock.now()
            return {
                "callbackUrl": self.callback_url,
                "qrs": [
                    {
                        "qrId": qr.qr_id,
                        "qrType": qr.qr_type,
                        "order": qr.order,
                        "amount": format_amount(qr.amount) if qr.amount is not None else None,
                        "qrStatus": self._qr_status(qr, now),
                        "qrExpirationDate": qr.expiration,
                        "transactions": [
                            self.transaction_json(self.transactions[i]) for i in qr.transaction_ids
                        ],
                    }
                    for qr in self.qrs.values()
                ],
                "orders": [
                    {
                        "id": order.id,
                        "qrId": order.qr_id,
                        "amount": format_amount(order.amount),
                        "status": self._order_status(order, now)[0],
                        "expirationDate": order.expiration,
                        "transactionId": order.transaction_id,
                    }
                    for order in self.orders.values()
                ],
                "refunds": [
                    {
                        "refundId": refund.refund_id,
                        "order": refund.order,
                        "transactionId": refund.transaction_id,
                        "amount": format_amount(refund.amount),
                        "refundStatus": refund.status,
                    }
                    for refund in self.refunds.values()
                ],
                "deliveries": [
                    {
                        "transactionId": d.transaction_id,
                        "url": d.url,
                        "delivered": d.delivered,
                        "gaveUp": d.gave_up,
                        "attempts": [
                            {"at": a.at, "url": a.url, "status_code": a.status_code}
                            if a.error is None
                            else {"at": a.at, "url": a.url, "error": a.error}
                            for a in d.attempts
                        ],
                    }
                    for d in self.deliveries.values()
                ],
            }

    # ------------------------------------------------------------------ worker support (lock held)

    def _due_deliveries(
        self, now_monotonic: float
    ) -> list[tuple[Delivery | CallbackDelivery, str]]:
        """Deliveries to attempt now, marked in flight; each with the URL to post to.

        Bank notifications first, then ATOL callbacks (which go to their document's URL).
        """
        due = sorted(
            (
                d
                for d in self.deliveries.values()
                if d.next_due is not None and d.next_due <= now_monotonic
            ),
            key=lambda d: (d.next_due, d.transaction_id),
        )
        for delivery in due:
            delivery.next_due = None
        # The callback URL current at attempt time wins, so fixing it helps pending retries.
        result: list[tuple[Delivery | CallbackDelivery, str]] = [
            (d, self.callback_url or d.url) for d in due
        ]
        result += [(d, d.url) for d in self.fiscal._due_deliveries(now_monotonic)]
        return result

    def _record_attempt(
        self,
        delivery: Delivery | CallbackDelivery,
        attempt: Attempt,
        started_monotonic: float,
    ) -> None:
        delivery.attempts.append(attempt)
        if delivery.first_monotonic is None:
            delivery.first_monotonic = started_monotonic
        if attempt.status_code == 200:
            delivery.delivered = True
            return
        delays = self.settings.callback_retry_delays
        if not delays:
            delivery.gave_up = True
            return
        delay = delays[min(len(delivery.attempts) - 1, len(delays) - 1)]
        next_due = time.monotonic() + delay
        if next_due - delivery.first_monotonic > self.settings.callback_retry_window_seconds:
            delivery.gave_up = True
        else:
            delivery.next_due = next_due

    def _next_wakeup(self, now_monotonic: float) -> float | None:
        """Seconds until the next scheduled job, or None when idle."""
        times = [d.next_due for d in self.deliveries.values() if d.next_due is not None]
        times += [r.due_monotonic for r in self.refunds.values() if r.status == "IN_PROGRESS"]
        times += self.fiscal._next_times()
        if not times:
            return None
        return max(0.0, min(times) - now_monotonic)
