"""The monitor's list: payments and unpaid orders in one list, filtered, sorted and paged by
keyset, so that a page costs the same on the first page and the ten-thousandth.

A row is either a payment ("p": money the bank reported, whatever became of it) or an order
that has no payment yet ("o": new, waiting for the customer, expired or cancelled). An
order that is paid shows as its payment. Each kind is read from its own table with its own
index (see `INDEXES` below), each branch already sorted and limited, and the two are merged:
the database never sorts more than two pages.

Keyset: a page is asked for "after" the last row of the page before, by the row's sort
values plus (kind, id), which are unique. The cursor is that tuple, encoded in the URL.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from app.admin.keyset import decode_cursor, encode_cursor
from app.extensions import db
from app.formatting import MOSCOW
from app.models import (
    OPEN_ORDERS_SQL,
    CashLinkActivation,
    Order,
    OrderChannel,
    OrderStatus,
    Payment,
    PaymentStatus,
    QrCode,
    QrKind,
    StaffMember,
)

PAGE_SIZE = 50

# The indexes the list relies on (declared on the models, created by migration 0013_admin_monitor):
#   payments (status, created_at, id)   status filter, newest first
#   payments (created_at, id)           no filter, newest first
#   payments (amount_kopecks, id), payments (status, amount_kopecks, id)   by amount
#   orders (created_at, id) WHERE status is open   the unpaid orders, newest first
#   orders (status, created_at)         an open status filter
#   payments (order_id), payments (transaction_id), qr_codes (qr_id), orders (public_id)
#                                        the search
PAYMENT_STATUSES = tuple(status.value for status in PaymentStatus)
OPEN_STATUSES = (OrderStatus.NEW, OrderStatus.PENDING, OrderStatus.EXPIRED,
                 OrderStatus.CANCELLED)
ORDER_STATUSES = tuple(status.value for status in OPEN_STATUSES)
# Rows whose status may still change by itself: the list polls them.
LIVE_STATUSES = (OrderStatus.NEW.value, OrderStatus.PENDING.value)
KINDS = tuple(kind.value for kind in QrKind)
# Channel: where the sale came from. An order's channel, or "static" for money paid to a
# static QR (no order), or "cash_link" for a sale on a till's cash link.
CHANNELS = ("miniapp", "api", "static", "cash_link", "cli", "admin")
SORTS = ("-created", "created", "-amount", "amount", "status")


@dataclass
class Filters:
    status: str | None = None
    kind: str | None = None
    channel: str | None = None
    cashier_id: int | None = None
    date_from: date | None = None   # Moscow days, inclusive
    date_to: date | None = None
    q: str | None = None
    sort: str = "-created"

    def query_args(self) -> dict[str, str]:
        """The filters as URL parameters (for links, the CSV and the next page)."""
        args = {"status": self.status, "kind": self.kind, "channel": self.channel,
                "cashier": self.cashier_id, "date_from": self.date_from,
                "date_to": self.date_to, "q": self.q,
                "sort": None if self.sort == "-created" else self.sort}
        return {name: str(value) for name, value in args.items() if value not in (None, "")}


@dataclass
class ListRow:
    """One line of the list, whichever table it came from."""

    src: str                    # "p" payment, "o" order without a payment
    id: int
    created_at: datetime
    amount_kopecks: int
    status: str
    refunded_kopecks: int = 0
    kind: str | None = None     # the QR's kind
    channel: str | None = None
    order_id: int | None = None
    qr_id: str | None = None
    transaction_id: str | None = None
    cashier: str | None = None
    needs_review: bool = False

    @property
    def live(self) -> bool:
        return self.src == "o" and self.status in LIVE_STATUSES


@dataclass
class Page:
    rows: list[ListRow] = field(default_factory=list)
    next_cursor: str | None = None


# -- the two branches ------------------------------------------------------------------------

def _descending(sort: str) -> bool:
    return sort.startswith("-")


def _primary(sort: str, created, amount, status) -> list:
    return {"created": [created], "amount": [amount], "status": [status, created]}[
        sort.lstrip("-")]


def _after(columns: list, ident, src: str, cursor: list | None, descending: bool):
    """The branch's rows that come after the cursor in the list's order (primary, src, id)."""
    if cursor is None:
        return sa.true()
    *values, cursor_src, cursor_id = cursor
    # Statuses are compared as plain strings: the cursor may hold the other table's status.
    bound = [sa.literal(value, type_=sa.String() if isinstance(column.type, sa.Enum)
                        else column.type)
             for value, column in zip(values, columns, strict=True)]
    left, right = sa.tuple_(*columns), sa.tuple_(*bound)
    if src == cursor_src:
        left, right = sa.tuple_(*columns, ident), sa.tuple_(*bound, sa.literal(cursor_id))
        return left < right if descending else left > right
    # Another branch: on a tie of the primary values "o" rows come before "p" rows
    # (ascending), so a tie follows the cursor only on the branch ordered after it.
    tie_follows = src < cursor_src if descending else src > cursor_src
    if descending:
        return left <= right if tie_follows else left < right
    return left >= right if tie_follows else left > right


def _day_bounds(filters: Filters):
    start = (datetime.combine(filters.date_from, time(), MOSCOW) if filters.date_from
             else None)
    end = (datetime.combine(filters.date_to + timedelta(days=1), time(), MOSCOW)
           if filters.date_to else None)
    return start, end


def _payment_branch(filters: Filters, cursor: list | None, limit: int, found):
    if filters.status and filters.status not in PAYMENT_STATUSES:
        return None
    where = []
    joined_qr = joined_order = False
    if filters.status:
        where.append(Payment.status == PaymentStatus(filters.status))
    kind = filters.kind or {"static": "static", "cash_link": "cash_link"}.get(
        filters.channel or "")
    if filters.kind and filters.channel in ("static", "cash_link") \
            and filters.kind != filters.channel:
        return None
    if kind:
        joined_qr = True
        where.append(QrCode.kind == QrKind(kind))
    if filters.channel and filters.channel not in ("static", "cash_link"):
        joined_order = True
        where.append(Order.channel == OrderChannel(filters.channel))
    if filters.cashier_id:
        joined_order = True
        where.append(Order.cashier_id == filters.cashier_id)
    if found is not None:
        where.append(_payment_search(found))
    joins = ([(QrCode, QrCode.id == Payment.qr_code_id)] if joined_qr else []) + (
        [(Order, Order.id == Payment.order_id)] if joined_order else [])
    return _branch("p", (Payment.id, Payment.created_at, Payment.amount_kopecks,
                         Payment.status), where, joins=joins, filters=filters, cursor=cursor,
                   limit=limit)


def _payment_search(found: Found):
    matches = [Payment.transaction_id == found.text[:64]]
    if found.qr_code_id is not None:
        matches.append(Payment.qr_code_id == found.qr_code_id)
    if found.activation_id is not None:
        matches.append(Payment.activation_id == found.activation_id)
    if found.order_ids:
        matches.append(Payment.order_id.in_(found.order_ids))
    return sa.or_(*matches)


def _order_branch(filters: Filters, cursor: list | None, limit: int, found):
    if filters.status and filters.status not in ORDER_STATUSES:
        return None
    kind = filters.kind or (filters.channel if filters.channel == "cash_link" else None)
    if kind == "static" or filters.channel == "static" or (
            filters.kind and filters.channel == "cash_link" and filters.kind != "cash_link"):
        return None  # money to a static QR has no order
    # Without a status, the very predicate of the partial index ix_orders_open_created, as
    # SQL text: a bound parameter would keep a prepared (generic) plan off that index.
    where = [Order.status == OrderStatus(filters.status) if filters.status
             else sa.text(OPEN_ORDERS_SQL.replace("status", "orders.status"))]
    if kind == "dynamic":
        where.append(sa.exists().where(QrCode.order_id == Order.id,
                                       QrCode.kind == QrKind.DYNAMIC))
    elif kind == "cash_link":
        where.append(sa.exists().where(CashLinkActivation.order_id == Order.id))
    if filters.channel and filters.channel != "cash_link":
        where.append(Order.channel == OrderChannel(filters.channel))
    if filters.cashier_id:
        where.append(Order.cashier_id == filters.cashier_id)
    if found is not None:
        where.append(_order_search(found))
    return _branch("o", (Order.id, Order.created_at, Order.total_kopecks, Order.status),
                   where, joins=[], filters=filters, cursor=cursor, limit=limit)


def _branch(src: str, keys: tuple, where: list, *, joins: list, filters: Filters,
            cursor: list | None, limit: int):
    """One table's part of a page: its rows in the date range, after the cursor, sorted,
    `limit` of them, as (src, id, created_at, amount, status)."""
    ident, created, amount, status = keys
    start, end = _day_bounds(filters)
    if start:
        where.append(created >= start)
    if end:
        where.append(created < end)
    columns = _primary(filters.sort, created, amount, status)
    where.append(_after(columns, ident, src, cursor, _descending(filters.sort)))
    query = sa.select(
        sa.literal(src).label("src"), ident.label("id"), created.label("created_at"),
        amount.label("amount"), sa.type_coerce(status, sa.String).label("status"),
    )
    for target, onclause in joins:
        query = query.join(target, onclause)
    order = [*columns, ident]
    order = [column.desc() for column in order] if _descending(filters.sort) else order
    return query.where(*where).order_by(*order).limit(limit)


def _order_search(found: Found):
    ids = set(found.order_ids) | set(found.orders_of_qr)
    return Order.id.in_(sorted(ids)) if ids else sa.false()


@dataclass
class Found:
    """What a search text names, looked up first by the unique keys, so that the list's
    query is a plain OR of indexed equalities (a bitmap OR, not a scan)."""

    text: str
    qr_code_id: int | None = None
    activation_id: int | None = None
    order_ids: list[int] = field(default_factory=list)
    orders_of_qr: list[int] = field(default_factory=list)


def find(q: str) -> Found:
    q = q.strip()
    found = Found(text=q)
    qr = db.session.execute(sa.select(QrCode.id, QrCode.order_id, QrCode.kind)
                            .where(QrCode.qr_id == q[:32])).first()
    if qr is not None:
        found.qr_code_id = qr.id
        if qr.order_id is not None:
            found.orders_of_qr.append(qr.order_id)
        if qr.kind == QrKind.CASH_LINK:  # its sales' orders
            found.orders_of_qr += db.session.scalars(sa.select(CashLinkActivation.order_id)
                                                     .where(CashLinkActivation.qr_code_id
                                                            == qr.id).limit(1000))
    activation = db.session.execute(
        sa.select(CashLinkActivation.id, CashLinkActivation.order_id)
        .where(CashLinkActivation.bank_order_id == q[:40])).first()
    if activation is not None:
        found.activation_id = activation.id
        found.orders_of_qr.append(activation.order_id)
    orders = [Order.public_id == q[:32]]
    if q.isdigit() and len(q) < 18:
        orders.append(Order.id == int(q))
    found.order_ids = list(db.session.scalars(sa.select(Order.id).where(sa.or_(*orders))))
    return found


def page_statement(filters: Filters, cursor: list | None, limit: int):
    """The one query of a page's keys (src, id and the sort values), or None when the
    filters exclude both tables. (bench/admin_list.py explains it.)"""
    found = find(filters.q) if filters.q else None
    branches = [branch for branch in (_order_branch(filters, cursor, limit, found),
                                      _payment_branch(filters, cursor, limit, found))
                if branch is not None]
    if len(branches) < 2:
        return branches[0] if branches else None
    merged = sa.union_all(*(sa.select(branch.subquery()) for branch in branches)).subquery()
    columns = _primary(filters.sort, merged.c.created_at, merged.c.amount, merged.c.status)
    order = [*columns, merged.c.src, merged.c.id]
    order = [column.desc() for column in order] if _descending(filters.sort) else order
    return sa.select(merged).order_by(*order).limit(limit)


def _page_keys(filters: Filters, cursor: list | None, limit: int) -> list:
    statement = page_statement(filters, cursor, limit)
    return [] if statement is None else db.session.execute(statement).all()


def _cursor_of(key, sort: str) -> str:
    values = _primary(sort, key.created_at, key.amount, key.status)
    return encode_cursor([*values, key.src, key.id])


# -- the page ------------------------------------------------------------------------------

def list_page(filters: Filters, after: str | None = None, size: int = PAGE_SIZE) -> Page:
    """One page of the list and the cursor of the next (None on the last page)."""
    keys = _page_keys(filters, decode_cursor(after, filters.sort), size + 1)
    more = len(keys) > size
    keys = keys[:size]
    rows = hydrate([(key.src, key.id) for key in keys])
    return Page(rows=rows, next_cursor=_cursor_of(keys[-1], filters.sort) if more else None)


def cursor_of_row(row: ListRow) -> str:
    """The cursor of a row in the list newest first."""
    return encode_cursor([row.created_at, row.src, row.id])


def rows_since(filters: Filters, since: str | None, size: int = PAGE_SIZE) -> list[ListRow]:
    """The rows newer than the row `since` names (all of the first page without it),
    newest first: the list's top, read the other way round from that row."""
    if since is None:
        return list_page(replace(filters, sort="-created"), size=size).rows
    return list(reversed(list_page(replace(filters, sort="created"), since, size).rows))


def iterate_rows(filters: Filters, batch: int = 500) -> Iterator[ListRow]:
    """Every row of the filtered list, in order, a keyset page at a time (the CSV)."""
    after = None
    while True:
        page = list_page(filters, after, size=batch)
        yield from page.rows
        db.session.rollback()  # no transaction held open while the client reads
        if page.next_cursor is None:
            return
        after = page.next_cursor


def hydrate(keys: list[tuple[str, int]]) -> list[ListRow]:
    """The list's rows for (src, id) keys, in the keys' order: two or three queries."""
    payment_ids = [ident for src, ident in keys if src == "p"]
    order_ids = [ident for src, ident in keys if src == "o"]
    rows: dict[tuple[str, int], ListRow] = {}
    cashiers: dict[int, str] = {}
    orders = (db.session.scalars(sa.select(Order).where(Order.id.in_(order_ids))).all()
              if order_ids else [])
    payments = (db.session.scalars(
        sa.select(Payment).where(Payment.id.in_(payment_ids))
        .options(joinedload(Payment.qr_code), joinedload(Payment.order))).all()
        if payment_ids else [])
    staff_ids = {order.cashier_id for order in orders if order.cashier_id} | {
        payment.order.cashier_id for payment in payments
        if payment.order is not None and payment.order.cashier_id}
    if staff_ids:
        cashiers = {member.id: member.name or str(member.telegram_id)
                    for member in db.session.scalars(
                        sa.select(StaffMember).where(StaffMember.id.in_(staff_ids)))}
    for payment in payments:
        order, qr = payment.order, payment.qr_code
        rows["p", payment.id] = ListRow(
            src="p", id=payment.id, created_at=payment.created_at,
            amount_kopecks=payment.amount_kopecks, status=payment.status.value,
            refunded_kopecks=payment.refunded_kopecks, kind=qr.kind.value,
            channel=_channel(order, qr.kind), order_id=payment.order_id, qr_id=qr.qr_id,
            transaction_id=payment.transaction_id,
            cashier=cashiers.get(order.cashier_id) if order is not None else None,
            needs_review=payment.status == PaymentStatus.REVIEW,
        )
    qrs = _latest_qrs(order_ids)
    for order in orders:
        qr = qrs.get(order.id)
        rows["o", order.id] = ListRow(
            src="o", id=order.id, created_at=order.created_at,
            amount_kopecks=order.total_kopecks, status=order.status.value,
            kind=qr.kind.value if qr is not None else None,
            channel=_channel(order, qr.kind if qr is not None else None), order_id=order.id,
            qr_id=qr.qr_id if qr is not None else None, cashier=cashiers.get(order.cashier_id),
        )
    return [rows[key] for key in keys if key in rows]


def _latest_qrs(order_ids: list[int]) -> dict[int, QrCode]:
    """The QR code each order was last shown with: its own dynamic QR, or the cash link
    its latest sale was put on."""
    if not order_ids:
        return {}
    found: dict[int, QrCode] = {}
    for qr in db.session.scalars(sa.select(QrCode).where(QrCode.order_id.in_(order_ids))
                                 .order_by(QrCode.id)):
        found[qr.order_id] = qr
    for activation in db.session.scalars(
            sa.select(CashLinkActivation).where(CashLinkActivation.order_id.in_(order_ids))
            .options(joinedload(CashLinkActivation.qr_code)).order_by(CashLinkActivation.id)):
        found[activation.order_id] = activation.qr_code
    return found


def _channel(order: Order | None, kind: QrKind | None) -> str:
    if order is None:
        return "static"
    if kind == QrKind.CASH_LINK and order.channel not in (OrderChannel.MINIAPP,
                                                          OrderChannel.API):
        return "cash_link"
    return order.channel.value


def row_of(src: str, ident: int) -> ListRow | None:
    """One row as it is now; an order that got paid is shown as its payment."""
    if src == "o":
        paid = db.session.scalar(sa.select(Payment.id).where(Payment.order_id == ident)
                                 .order_by(Payment.id.desc()).limit(1))
        if paid is not None:
            src, ident = "p", paid
    rows = hydrate([(src, ident)])
    return rows[0] if rows else None


def cashier_choices() -> list[tuple[int, str]]:
    return [(member.id, member.name or str(member.telegram_id)) for member in
            db.session.scalars(sa.select(StaffMember).where(StaffMember.is_cashier.is_(True))
                               .order_by(StaffMember.name, StaffMember.id))]
