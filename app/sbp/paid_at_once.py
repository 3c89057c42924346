"""The common bank callback in one PostgreSQL statement: a dynamic QR paid in full.

Nearly every callback a shop receives says "this dynamic QR was paid, the sum it asked
for". `apply_bank_event` (app/sbp/services.py) handles any callback with the ORM in about
eight statements; on PostgreSQL this one case is a single statement of data-modifying
CTEs, run on the driver connection as a transaction of its own:

    qr    UPDATE qr_codes  -> paid     where it is a dynamic QR that may become paid,
                                       asks for exactly this sum, is not flagged, its
                                       order may become paid, and this news is not on file
    ev    INSERT bank_events           the raw notification, outcome "paid"
    pay   INSERT payments              status paid
    ord   UPDATE orders    -> paid
    jobs  INSERT jobs                  one per subscriber of "payment.paid"

Every write hangs off `qr`. When the QR is not in that state nothing is written and the
caller takes the general path, which knows every other case (a sum that differs, a
static QR, a cash link, an unknown QR, a status other than SUCCESS). The "from" statuses
come from the transition tables the models use, so there is still one table per
aggregate. A repeat finds the news on file and writes nothing; a repeat racing the first
callback waits on the QR's row lock, then finds the QR paid.

All or nothing: a part that could not write its row (the order changed under a
concurrent transaction) makes the statement fail on purpose, and PostgreSQL undoes the
rest; so does a bank event already recorded by a request still in flight. tests/
test_paid_at_once.py runs every callback scenario through both paths and compares the
rows.

This module knows tables and psycopg, not Flask.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import re
import threading
from typing import NamedTuple

import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Engine
from sqlalchemy.pool import PoolProxiedConnection

from app.models import (
    ORDER_TRANSITIONS,
    QR_TRANSITIONS,
    BankEvent,
    Job,
    JobStatus,
    Order,
    OrderStatus,
    Payment,
    PaymentStatus,
    QrCode,
    QrKind,
    QrStatus,
)

logger = logging.getLogger(__name__)


def _may_become(table, to) -> list:
    return sorted((status for status, targets in table.items() if to in targets),
                  key=lambda status: status.value)


QR_FROM = _may_become(QR_TRANSITIONS[QrKind.DYNAMIC], QrStatus.PAID)
ORDER_FROM = _may_become(ORDER_TRANSITIONS, OrderStatus.PAID)
OUTCOME = "paid"


def _param(name: str, type_=None):
    """A value given at execution; `sql()` turns the marker into psycopg's %(name)s."""
    return sa.literal_column(f"__value_{name}__", type_)


def _insert(table: sa.Table, rows_from, /, **values) -> sa.Insert:
    """INSERT INTO table (columns) SELECT values FROM rows_from, each value labelled with
    its column so that the SQL text carries no generated names."""
    return sa.insert(table).from_select(
        list(values),
        sa.select(*(v.label(k) for k, v in values.items())).select_from(rows_from),
    )


def statement() -> sa.Select:
    """The statement, with %(name)s placeholders for the values of one callback.

    Values (all plain Python: str, int, aware datetime, list of str): qr_id, amount,
    provider, event_key, source, transaction_id, payment_status, payload, paid_at, now,
    max_attempts, job_names (the subscribers of "payment.paid").
    """
    qrs, orders, events, payments, jobs = (
        QrCode.__table__, Order.__table__, BankEvent.__table__, Payment.__table__, Job.__table__
    )
    now = sa.cast(_param("now"), sa.DateTime(timezone=True))
    paid_at = sa.cast(_param("paid_at"), sa.DateTime(timezone=True))
    amount = sa.cast(_param("amount"), sa.BigInteger)
    qr_id = _param("qr_id", sa.String)
    payable_order = sa.exists().where(orders.c.id == qrs.c.order_id,
                                      orders.c.status.in_(ORDER_FROM))
    on_file = sa.exists().where(events.c.provider == _param("provider", sa.String),
                                events.c.event_key == _param("event_key", sa.String))
    qr = (
        sa.update(qrs)
        .where(
            qrs.c.qr_id == qr_id,
            qrs.c.kind == QrKind.DYNAMIC,
            qrs.c.status.in_(QR_FROM),
            qrs.c.needs_review.is_(False),
            qrs.c.amount_kopecks == amount,
            sa.or_(qrs.c.order_id.is_(None), payable_order),
            ~on_file,
        )
        .values(status=QrStatus.PAID, updated_at=now)
        .returning(qrs.c.id, qrs.c.order_id)
        .cte("qr")
    )
    event = (
        _insert(events, qr, provider=_param("provider"), event_key=_param("event_key"),
                source=_param("source"), qr_id=qr_id,
                transaction_id=_param("transaction_id"),
                payment_status=_param("payment_status"), payload=_param("payload"),
                outcome=sa.literal(OUTCOME, events.c.outcome.type), received_at=now)
        .returning(events.c.id)
        .cte("ev")
    )
    payment = (
        _insert(payments, qr, qr_code_id=qr.c.id, order_id=qr.c.order_id,
                transaction_id=_param("transaction_id"), amount_kopecks=amount,
                refunded_kopecks=sa.literal(0, sa.BigInteger()),
                status=sa.literal(PaymentStatus.PAID, payments.c.status.type),
                paid_at=paid_at, created_at=now, updated_at=now)
        .returning(payments.c.id)
        .cte("pay")
    )
    order = (
        sa.update(orders)
        .where(orders.c.id == qr.c.order_id, orders.c.status.in_(ORDER_FROM))
        .values(status=OrderStatus.PAID, paid_at=paid_at, updated_at=now)
        .returning(orders.c.id)
        .cte("ord")
    )
    names = (sa.func.unnest(sa.cast(_param("job_names"), postgresql.ARRAY(sa.String)))
             .table_valued("name").render_derived(name="names"))
    job = (
        _insert(jobs, payment.join(names, sa.true()),
                name=names.c.name,
                payload=sa.cast(sa.func.jsonb_build_object("payment_id", payment.c.id), sa.JSON),
                key=names.c.name + ":payment-" + sa.cast(payment.c.id, sa.String),
                status=sa.literal(JobStatus.QUEUED, jobs.c.status.type),
                attempts=sa.literal(0), max_attempts=sa.cast(_param("max_attempts"), sa.Integer),
                run_at=now, created_at=now, updated_at=now)
        .returning(jobs.c.id)
        .cte("jobs")
    )

    def one(select, label):
        return select.scalar_subquery().label(label)

    result = sa.select(
        on_file.label("on_file"),
        one(sa.select(qr.c.id), "qr_code_id"),
        one(sa.select(qr.c.order_id), "order_id"),
        # The main query sees the rows as they were before the statement.
        one(sa.select(orders.c.status)
            .where(orders.c.id == sa.select(qr.c.order_id).scalar_subquery()), "order_was"),
        one(sa.select(qrs.c.status).where(qrs.c.qr_id == qr_id), "qr_was"),
        one(sa.select(event.c.id), "event_id"),
        one(sa.select(payment.c.id), "payment_id"),
        one(sa.select(sa.func.count()).select_from(order), "orders_updated"),
        one(sa.select(sa.func.count()).select_from(job), "jobs_added"),
    ).cte("result")
    r = result.c
    whole = sa.and_(
        r.event_id.is_not(None), r.payment_id.is_not(None),
        r.orders_updated == sa.case((r.order_id.is_(None), 0), else_=1),
        r.jobs_added == sa.func.cardinality(sa.cast(_param("job_names"),
                                                    postgresql.ARRAY(sa.String))),
    )
    # The statement is its own transaction (autocommit): when the QR was updated but a
    # later part wrote nothing (the order changed under a concurrent transaction), divide
    # by zero so that the whole statement fails and nothing of it stays. The divisor is
    # computed from the rows, so PostgreSQL cannot fold it while planning.
    partial = sa.and_(r.qr_code_id.is_not(None), sa.not_(whole))
    guard = (sa.literal(1) / sa.case((partial, 0), else_=1)).label("whole")
    return sa.select(*(r[name] for name in Result._fields)).add_columns(guard)


class Result(NamedTuple):
    """What the statement did. Either all of it happened (payment_id is set) or nothing."""

    on_file: bool          # this news was recorded before: a repeat
    qr_code_id: int | None
    order_id: int | None
    order_was: str | None  # the order's status before the statement
    qr_was: str | None     # the QR's status before the statement
    event_id: int | None
    payment_id: int | None
    orders_updated: int
    jobs_added: int


@functools.cache
def sql() -> str:
    """The statement as psycopg's SQL text: built once, prepared once per connection."""
    text = str(statement().compile(dialect=postgresql.psycopg.dialect(),
                                   compile_kwargs={"literal_binds": True}))
    if "%" in text:
        raise RuntimeError("a literal % in the one-statement path would need escaping")
    return re.sub(r"__value_(\w+?)__", r"%(\1)s", text)


def execute(dbapi_connection, values: dict, cursor=None) -> Result | None:
    """Run the statement on a psycopg connection, as a transaction of its own.

    Driver level on purpose: this is the hottest statement in Kassa. SQLAlchemy's session
    costs twice the CPU of the statement itself, and autocommit saves the BEGIN and COMMIT
    round trips (bench/README.md).

    :param cursor: a cursor of that connection to reuse (`run` keeps one).
    :returns: the result; or None when the statement wrote nothing because it could not
        do all of it: the bank event is on file already (recorded a moment ago by a
        request still in flight when this statement began), or the order changed under a
        concurrent transaction. The general path then decides.
    """
    autocommit = dbapi_connection.autocommit
    if not autocommit:
        dbapi_connection.autocommit = True
    try:
        row = (cursor or dbapi_connection).execute(sql(), values, prepare=True).fetchone()
    except (psycopg.errors.UniqueViolation, psycopg.errors.DivisionByZero):
        return None
    finally:
        if not autocommit:
            dbapi_connection.autocommit = False
    return Result(*row[:-1])


class _Kept(threading.local):
    """The connection this thread keeps for the statement, and the engine and process it
    came from."""

    engine: Engine | None = None
    pid: int = 0
    connection: PoolProxiedConnection | None = None
    cursor: psycopg.Cursor | None = None


_kept = _Kept()
# Every thread's kept connection, to close them when their engine is disposed or the
# process exits: id -> (pid, engine, connection).
_every: dict[int, tuple[int, Engine, PoolProxiedConnection]] = {}
_every_lock = threading.Lock()


def run(engine: Engine, values: dict) -> Result | None:
    """`execute` on a connection this thread keeps for the statement, in autocommit.

    The connection is taken from the engine's pool once and kept (one per process, or per
    thread under a threaded server): a callback then pays neither the checkout and
    checkin, with the pool's reset, nor two autocommit switches, about a tenth of the web
    process's CPU per callback (bench/README.md). The pool opens it, so it has the
    engine's settings; it counts as one checked-out connection of that pool.

    A connection that broke (the server restarted, an idle timeout) is thrown away and None
    returned, so that the general path decides this callback. If the statement had
    committed before the break, that path finds the news on file.
    """
    connection = _connection(engine)
    try:
        return execute(connection.driver_connection, values, _kept.cursor)
    except psycopg.OperationalError as exc:
        logger.warning("the one-statement connection broke (%s); taking the general path",
                       exc)
        _close(connection)
        return None


def _connection(engine: Engine) -> PoolProxiedConnection:
    kept = _kept
    if kept.connection is not None:
        if (kept.engine is engine and kept.pid == os.getpid()
                and kept.connection.is_valid):
            return kept.connection
        if kept.pid == os.getpid():
            _close(kept.connection)  # another engine's (tests build many apps)
        # Else it was opened by the process this one forked from: not ours to use or to
        # close, and psycopg leaves another process's connection alone when collected.
        kept.connection = None
    connection = engine.raw_connection()
    connection.driver_connection.autocommit = True
    with _every_lock:
        if not sa.event.contains(engine, "engine_disposed", _engine_disposed):
            sa.event.listen(engine, "engine_disposed", _engine_disposed)
        _every[id(connection)] = (os.getpid(), engine, connection)
    kept.engine, kept.pid, kept.connection = engine, os.getpid(), connection
    kept.cursor = connection.driver_connection.cursor()
    return connection


def _close(connection: PoolProxiedConnection) -> None:
    with _every_lock:
        _every.pop(id(connection), None)
    if connection.is_valid:
        connection.invalidate()  # closes it; the pool forgets it


def _close_every(engine: Engine | None = None) -> None:
    """Close this process's kept connections (of `engine`, or all)."""
    with _every_lock:
        mine = [connection for pid, owner, connection in _every.values()
                if pid == os.getpid() and (engine is None or owner is engine)]
    for connection in mine:
        _close(connection)


def _engine_disposed(engine: Engine) -> None:
    """`engine.dispose()` closes the pool's connections, and these with them."""
    _close_every(engine)


atexit.register(_close_every)
