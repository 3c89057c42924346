"""The payment's detail page: everything that happened to an order, its QR and its
payments, as one timeline (the bank's events, payments, refunds, receipts, jobs, the journal)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from app.admin.queries import LIVE_STATUSES
from app.extensions import db
from app.jobs import NOTIFICATION_JOB
from app.models import (
    AuditEntry,
    BankEvent,
    CashLinkActivation,
    Job,
    Order,
    Payment,
    QrCode,
    QrKind,
    Receipt,
)

# -- the detail page ---------------------------------------------------------------------

@dataclass
class Event:
    """One line of a timeline."""

    at: datetime
    what: str                   # bank_event, order, qr, payment, refund, receipt, job, audit
    title: str
    status: str | None = None
    details: list[tuple[str, object]] = field(default_factory=list)
    obj: object = None          # the row itself, for its actions


@dataclass
class Detail:
    order: Order | None
    qr: QrCode | None
    activation: CashLinkActivation | None
    payments: list[Payment]
    refunds: list
    receipts: list
    jobs: list
    events: list[BankEvent]
    audit: list[AuditEntry]

    @property
    def in_progress(self) -> bool:
        """Something here may still change by itself (the bank, the register, a job)."""
        return (
            (self.order is not None and self.order.status.value in LIVE_STATUSES)
            or any(r.status.value in ("pending", "in_progress") for r in self.refunds)
            or any(r.status.value in ("pending", "wait") for r in self.receipts)
            or any(j.status.value in ("queued", "running") for j in self.jobs)
        )

    def timeline(self) -> list[Event]:
        items: list[Event] = []
        if self.order is not None:
            items.append(Event(self.order.created_at, "order", "order.created",
                               self.order.status.value, obj=self.order))
        if self.qr is not None and self.qr.kind != QrKind.CASH_LINK:
            items.append(Event(self.qr.created_at, "qr", "qr.created", self.qr.status.value,
                               obj=self.qr))
        if self.activation is not None:
            items.append(Event(self.activation.created_at, "activation", "activation.created",
                               self.activation.status.value, obj=self.activation))
        items += [Event(event.received_at, "bank_event", event.source,
                        event.payment_status, obj=event) for event in self.events]
        items += [Event(payment.paid_at, "payment", "payment", payment.status.value,
                        obj=payment) for payment in self.payments]
        for refund in self.refunds:
            items.append(Event(refund.created_at, "refund", "refund", refund.status.value,
                               obj=refund))
        items += [Event(receipt.created_at, "receipt", receipt.kind.value,
                        receipt.status.value, obj=receipt) for receipt in self.receipts]
        items += [Event(job.created_at, "job", job.name, job.status.value, obj=job)
                  for job in self.jobs]
        items += [Event(entry.at, "audit", entry.action, obj=entry) for entry in self.audit]
        return sorted(items, key=lambda item: item.at)


def payment_detail(payment_id: int) -> tuple[Payment, Detail] | None:
    payment = db.session.get(Payment, payment_id)
    if payment is None:
        return None
    activation = (db.session.get(CashLinkActivation, payment.activation_id)
                  if payment.activation_id else None)
    order = payment.order
    # A static QR takes many payments: only this one belongs on its page.
    payments = (list(db.session.scalars(sa.select(Payment).where(
        Payment.order_id == order.id).order_by(Payment.id))) if order is not None
        else [payment])
    return payment, _detail(order, payment.qr_code, activation, payments)


def order_detail(order_id: int) -> Detail | None:
    order = db.session.get(Order, order_id)
    if order is None:
        return None
    qr = db.session.scalars(sa.select(QrCode).where(QrCode.order_id == order.id)
                            .order_by(QrCode.id.desc()).limit(1)).first()
    activation = db.session.scalars(sa.select(CashLinkActivation).where(
        CashLinkActivation.order_id == order.id).order_by(CashLinkActivation.id.desc())
        .limit(1)).first()
    if activation is not None and (qr is None or activation.created_at > qr.created_at):
        qr = activation.qr_code
    else:
        activation = None
    payments = list(db.session.scalars(sa.select(Payment).where(Payment.order_id == order.id)
                                       .order_by(Payment.id)))
    return _detail(order, qr, activation, payments)


def _detail(order, qr, activation, payments) -> Detail:
    payment_ids = [payment.id for payment in payments]
    refunds = [refund for payment in payments for refund in payment.refunds]
    receipts = list(db.session.scalars(sa.select(Receipt).where(
        Receipt.payment_id.in_(payment_ids)).order_by(Receipt.id))) if payment_ids else []
    events = []
    if qr is not None:
        query = sa.select(BankEvent).where(BankEvent.qr_id == qr.qr_id)
        if qr.kind == QrKind.CASH_LINK:
            # One cash link, many sales: the events that name this sale's order.
            bank_order = activation.bank_order_id if activation is not None else None
            query = query.where(BankEvent.payload.contains(bank_order or "\x00"))
        elif qr.kind == QrKind.STATIC:
            transactions = [p.transaction_id for p in payments if p.transaction_id]
            query = query.where(BankEvent.transaction_id.in_(transactions))
        events = list(db.session.scalars(query.order_by(BankEvent.id).limit(200)))
    jobs = _related_jobs(order, qr, payment_ids, [r.id for r in refunds],
                         [r.id for r in receipts])
    targets = [("payment", payment_ids), ("refund", [r.id for r in refunds]),
               ("receipt", [r.id for r in receipts]), ("job", [j.id for j in jobs])]
    if order is not None:
        targets.append(("order", [order.id]))
    if qr is not None and qr.kind != QrKind.CASH_LINK:
        targets.append(("qr_code", [qr.id]))
    conditions = [sa.and_(AuditEntry.target_type == kind,
                          AuditEntry.target_id.in_([str(ident) for ident in idents]))
                  for kind, idents in targets if idents]
    audit = list(db.session.scalars(sa.select(AuditEntry).where(sa.or_(*conditions))
                                    .order_by(AuditEntry.id).limit(200)))
    return Detail(order=order, qr=qr, activation=activation, payments=payments,
                  refunds=refunds, receipts=receipts, jobs=jobs, events=events, audit=audit)


def _related_jobs(order, qr, payment_ids, refund_ids, receipt_ids) -> list[Job]:
    """The jobs about these objects, found by their keys (the outbox names each job after
    what it is about: `<job>:payment-<id>`, `fiscal.submit:<receipt id>:<attempt>` ...)."""
    patterns = []
    for ident in payment_ids:
        patterns += [f"%:payment-{ident}", f"%:payment-{ident}:%"]
    for ident in refund_ids:
        patterns += [f"sbp.send_refund:{ident}", f"sbp.poll_refund:{ident}",
                     f"%:refund-{ident}", f"%:refund-{ident}:%"]
    for ident in receipt_ids:
        patterns += [f"fiscal.submit:{ident}:%", f"fiscal.poll:{ident}:%",
                     f"%:receipt-{ident}", f"%:receipt-{ident}-%"]
    if qr is not None and qr.kind == QrKind.DYNAMIC:
        patterns += [f"%:qr-{qr.id}", f"%:qr-{qr.id}:%"]
    if not patterns:
        return []
    jobs = list(db.session.scalars(sa.select(Job).where(
        sa.or_(*(Job.key.like(pattern) for pattern in patterns))).order_by(Job.id).limit(300)))
    sent = [job.id for job in jobs if job.name == NOTIFICATION_JOB]
    if sent:  # and the notifications an admin sent again
        again = sa.or_(*(Job.key.like(f"{NOTIFICATION_JOB}:resend-{ident}-%")
                         for ident in sent))
        jobs += db.session.scalars(sa.select(Job).where(again).order_by(Job.id).limit(100))
    return jobs
