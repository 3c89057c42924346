"""Sales written straight into the database at chosen times, for the dashboard's figures."""

from __future__ import annotations

import itertools
from datetime import datetime

from app.extensions import db
from app.models import (
    Order,
    OrderChannel,
    OrderStatus,
    Payment,
    PaymentStatus,
    QrCode,
    QrKind,
    QrStatus,
    Refund,
    RefundStatus,
)

_numbers = itertools.count(1)


def sale(at: datetime, kopecks: int, *, status: PaymentStatus = PaymentStatus.PAID,
         order_status: OrderStatus = OrderStatus.PAID) -> Payment:
    """An order, its dynamic QR and its payment, all made at `at`; committed."""
    n = next(_numbers)
    order = Order(channel=OrderChannel.MINIAPP, total_kopecks=kopecks, status=order_status,
                  created_at=at, updated_at=at)
    db.session.add(order)
    db.session.flush()
    qr = QrCode(kind=QrKind.DYNAMIC, status=QrStatus.PAID, qr_id=f"AD{n:08d}",
                bank_order=f"test-{n}", payload=f"https://qr.nspk.ru/AD{n:08d}",
                amount_kopecks=kopecks, order_id=order.id, created_at=at, updated_at=at)
    db.session.add(qr)
    db.session.flush()
    payment = Payment(qr_code_id=qr.id, order_id=order.id, bank_key=f"key-{n}",
                      transaction_id=str(9000 + n), amount_kopecks=kopecks, status=status,
                      paid_at=at, created_at=at, updated_at=at)
    db.session.add(payment)
    db.session.commit()
    return payment


def unpaid_order(at: datetime, kopecks: int, status: OrderStatus) -> Order:
    order = Order(channel=OrderChannel.MINIAPP, total_kopecks=kopecks, status=status,
                  created_at=at, updated_at=at)
    db.session.add(order)
    db.session.commit()
    return order


def completed_refund(payment: Payment, kopecks: int, at: datetime) -> Refund:
    refund = Refund(payment_id=payment.id, refund_id=f"rf-{next(_numbers)}",
                    amount_kopecks=kopecks, status=RefundStatus.COMPLETED, completed_at=at,
                    created_at=at, updated_at=at)
    payment.refunded_kopecks += kopecks
    payment.status = PaymentStatus.PARTIALLY_REFUNDED
    db.session.add(refund)
    db.session.commit()
    return refund
