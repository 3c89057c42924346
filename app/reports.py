"""The shop's figures for a period, in Moscow days: revenue, refunds, orders and payments by
status, revenue per day, and what needs a person (dead jobs, failed receipts, payments kept
for review). Read by the admin dashboard and the managers' daily summary in Telegram.

Revenue is the money received: payments recorded in the period (by when Kassa recorded
them, which is within seconds of the bank's time), except those kept for review, which are
not accepted yet. Refunds are those completed in the period.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import sqlalchemy as sa

from app.extensions import db
from app.formatting import MOSCOW
from app.models import (
    Job,
    JobStatus,
    Order,
    OrderStatus,
    Payment,
    PaymentStatus,
    Receipt,
    ReceiptStatus,
    Refund,
    RefundStatus,
    utcnow,
)
from app.orders.services import shop_day_start

# Payments whose money is the shop's (a payment under review is not, yet).
RECEIVED = (PaymentStatus.PAID, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED)
ATTENTION_LIMIT = 20


@dataclass(frozen=True)
class Figures:
    start: datetime
    end: datetime
    revenue_kopecks: int
    payments: int
    refunds_kopecks: int
    refunds: int
    orders_by_status: dict[OrderStatus, int] = field(default_factory=dict)
    payments_by_status: dict[PaymentStatus, int] = field(default_factory=dict)

    @property
    def orders(self) -> int:
        return sum(self.orders_by_status.values())

    @property
    def net_kopecks(self) -> int:
        return self.revenue_kopecks - self.refunds_kopecks


def moscow_day_start(day: date) -> datetime:
    """Midnight of a Moscow date, as an aware datetime (compares with UTC values)."""
    return datetime(day.year, day.month, day.day, tzinfo=MOSCOW)


def moscow_today(now: datetime | None = None) -> date:
    return (now or utcnow()).astimezone(MOSCOW).date()


def last_days(days: int, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The last `days` whole Moscow days, today included: (start, the end of today)."""
    today = shop_day_start(now or utcnow())
    return today - timedelta(days=days - 1), today + timedelta(days=1)


def figures(start: datetime, end: datetime) -> Figures:
    """Everything counted in [start, end)."""
    in_period = Payment.created_at >= start, Payment.created_at < end
    revenue, payments = db.session.execute(
        sa.select(sa.func.coalesce(sa.func.sum(Payment.amount_kopecks), 0), sa.func.count())
        .where(*in_period, Payment.status.in_(RECEIVED))).one()
    refunded, refunds = db.session.execute(
        sa.select(sa.func.coalesce(sa.func.sum(Refund.amount_kopecks), 0), sa.func.count())
        .where(Refund.status == RefundStatus.COMPLETED, Refund.completed_at >= start,
               Refund.completed_at < end)).one()
    orders = dict(db.session.execute(
        sa.select(Order.status, sa.func.count()).where(Order.created_at >= start,
                                                       Order.created_at < end)
        .group_by(Order.status)).all())
    by_status = dict(db.session.execute(
        sa.select(Payment.status, sa.func.count()).where(*in_period)
        .group_by(Payment.status)).all())
    return Figures(start, end, int(revenue), payments, int(refunded), refunds,
                   {status: orders[status] for status in OrderStatus if status in orders},
                   {status: by_status[status] for status in PaymentStatus
                    if status in by_status})


def daily_revenue(days: int, now: datetime | None = None) -> list[tuple[date, int]]:
    """Revenue per Moscow day for the last `days` days, oldest first, a day without sales
    as 0. One query: each payment's day is found by a CASE over the day boundaries, so
    it is the same on SQLite and PostgreSQL."""
    start, end = last_days(days, now)
    starts = [start + timedelta(days=index) for index in range(days)]
    day_index = sa.case(*[(Payment.created_at >= moment, index)
                          for index, moment in reversed(list(enumerate(starts)))], else_=-1)
    sums = dict(db.session.execute(
        sa.select(day_index, sa.func.sum(Payment.amount_kopecks))
        .where(Payment.created_at >= start, Payment.created_at < end,
               Payment.status.in_(RECEIVED))
        .group_by(day_index)).all())
    return [(moment.astimezone(MOSCOW).date(), int(sums.get(index) or 0))
            for index, moment in enumerate(starts)]


@dataclass(frozen=True)
class Attention:
    dead_jobs: list[Job]
    dead_jobs_total: int
    failed_receipts: list[Receipt]
    failed_receipts_total: int
    review_payments: list[Payment]
    review_payments_total: int


def _newest(query, order_column, limit: int) -> tuple[list, int]:
    rows = list(db.session.scalars(query.order_by(order_column.desc()).limit(limit)))
    total = len(rows) if len(rows) < limit else db.session.scalar(
        sa.select(sa.func.count()).select_from(query.subquery()))
    return rows, total


def attention(limit: int = ATTENTION_LIMIT) -> Attention:
    """What a person must look at, newest first (at most `limit` of each, and how many)."""
    jobs, jobs_total = _newest(sa.select(Job).where(Job.status == JobStatus.DEAD),
                               Job.finished_at, limit)
    receipts, receipts_total = _newest(
        sa.select(Receipt).where(Receipt.status == ReceiptStatus.FAILED), Receipt.id, limit)
    payments, payments_total = _newest(
        sa.select(Payment).where(Payment.status == PaymentStatus.REVIEW), Payment.id, limit)
    return Attention(jobs, jobs_total, receipts, receipts_total, payments, payments_total)


def failed_receipts_count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Receipt)
                             .where(Receipt.status == ReceiptStatus.FAILED))


def review_payments_count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Payment)
                             .where(Payment.status == PaymentStatus.REVIEW))


def job_payment_id(job: Job) -> int | None:
    """The payment a job is about, when its payload names one."""
    value = (job.payload or {}).get("payment_id")
    return value if isinstance(value, int) else None
