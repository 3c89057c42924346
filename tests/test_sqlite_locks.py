"""SQLite: commits reach the disk, and reads do not queue behind a writer's lock.

These build their own app on a SQLite file, whatever TEST_DATABASE_URL says: the behaviour
is SQLite's (PostgreSQL's reads never wait for writers).
"""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from app import create_app
from app.extensions import db
from app.models import (
    Payment,
    PaymentStatus,
    QrCode,
    QrKind,
    QrStatus,
    Receipt,
    ReceiptKind,
)


@pytest.fixture
def sqlite_app(tmp_path):
    app = create_app({
        "APP_ENV": "testing", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'k.db'}",
        "SECRET_KEY": "test-secret", "LOG_LEVEL": "WARNING",
    })
    with app.app_context():
        db.create_all()
        qr = QrCode(kind=QrKind.STATIC, status=QrStatus.ACTIVE, qr_id="AS" + "1" * 30,
                    bank_order="st-1", payload="https://qr.nspk.ru/AS111?type=01")
        payment = Payment(qr_code=qr, bank_key="st-1|12550|", amount_kopecks=12550,
                          status=PaymentStatus.PAID)
        db.session.add(Receipt(
            token="receipt-token", kind=ReceiptKind.SELL, payment=payment, provider="atol",
            external_id="sell-1", total_kopecks=12550, lines=[],
        ))
        db.session.commit()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_sqlite_commits_wait_for_the_disk(sqlite_app):
    with sqlite_app.app_context(), db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL


@pytest.mark.parametrize(("path", "status"), [
    ("/sbp/qr/AS111111111111111111111111111111.png", 200),
    ("/fiscal/r/receipt-token", 200),
    ("/readyz", 200),
])
def test_a_read_completes_while_another_connection_holds_the_write_lock(
        sqlite_app, path, status):
    answered: list[int] = []
    with sqlite_app.app_context(), db.engine.connect() as writer:
        writer.begin()  # BEGIN IMMEDIATE: the write lock, held until the block ends
        writer.execute(sa.update(QrCode).values(description="being changed"))

        reader = threading.Thread(
            target=lambda: answered.append(sqlite_app.test_client().get(path).status_code),
            daemon=True,
        )
        reader.start()
        reader.join(timeout=3)
        done_under_the_lock = not reader.is_alive()
        _a_write_cannot_begin()
    reader.join(timeout=30)
    assert done_under_the_lock, "the read waited for the writer"
    assert answered == [status]


def _a_write_cannot_begin() -> None:
    """Any other transaction still begins IMMEDIATE: it waits for the write lock (here it
    gives up at once)."""
    with db.engine.connect() as other:
        other.connection.dbapi_connection.execute("PRAGMA busy_timeout=0")
        with pytest.raises(sa.exc.OperationalError, match="database is locked"):
            other.begin()
