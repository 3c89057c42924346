"""The staff's notifications: Kassa and the sandbox bank and register over real HTTP, a real
worker, and what the fake Bot API received."""

from __future__ import annotations

import signal
import threading
import time
from datetime import timedelta

import pytest
import requests
import sqlalchemy as sa

from app import jobs
from app.extensions import db
from app.jobs.worker import Worker
from app.models import Job, JobStatus, OrderChannel, Payment, QrCode, Receipt, utcnow
from app.orders.services import Line, create_order
from app.people.services import add_staff
from app.sbp import qrcodes, refunds
from app.telegram import notify
from app.telegram.messages import Reply
from tests.helpers import wait_for
from tests.jobs.test_worker_kill import kill_db, spawn_worker  # noqa: F401 - fixtures
from tests.telegram.conftest import BOT_CONFIG, CASHIER, MANAGER, TOKEN

CART = [Line(name="Капучино", price_kopecks=15000, quantity_milli=2000),
        Line(name="Круассан", price_kopecks=9950)]


@pytest.fixture
def shop(make_stack, fakebot):
    """Kassa + sandbox with the bot on; a cashier and a manager."""
    stack = make_stack(TELEGRAM_API_URL=fakebot.url, **BOT_CONFIG)
    with stack.app.app_context():
        add_staff(CASHIER, name="Ольга")
        add_staff(MANAGER, name="Пётр", cashier=False, manager=True)
    return stack


def _sale(stack, *, cashier: bool = True, ttl: int | None = None) -> tuple[int, str]:
    """An order of CART (made by the cashier, or not) with a dynamic QR: (QR row id, qrId)."""
    with stack.app.app_context():
        from app.people.services import active_cashier

        cashier_id = active_cashier(CASHIER).id if cashier else None
        order = create_order(channel=OrderChannel.MINIAPP, lines=CART, cashier_id=cashier_id)
        qr = qrcodes.create_dynamic_qr(order.id, ttl_minutes=ttl)
        return qr.id, qr.qr_id


def _one(stack, query):
    """The first row of `query`, detached with its columns loaded; no transaction is left
    open (on SQLite it would hold the write lock the worker needs)."""
    with stack.app.app_context():
        try:
            row = db.session.scalars(query).first()
            if row is not None:
                db.session.expunge(row)
            return row
        finally:
            db.session.rollback()


def _telegram_jobs_settled(stack) -> bool:
    with stack.app.app_context():
        try:
            return not db.session.scalar(sa.select(sa.func.count()).select_from(Job).where(
                Job.name.like("telegram.%"),
                Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING])))
        finally:
            db.session.rollback()


def _texts(api, chat_id: int) -> list[str]:
    return [call["text"] for call in api.sent() if int(call["chat_id"]) == chat_id]


def test_the_cashier_is_told_once_with_the_lines_and_the_receipt_even_if_the_bank_calls_twice(
    shop, fakebot
):
    qr_code_id, qr_id = _sale(shop)
    shop.start_worker()
    shop.pay(qr_id)
    (message,) = fakebot.wait_sent(1)
    assert int(message["chat_id"]) == CASHIER

    payment = wait_for(lambda: _one(shop, sa.select(Payment)))
    receipt = _one(shop, sa.select(Receipt))
    assert message["text"].splitlines() == [
        "Оплачено: 399,50\u00a0₽",
        f"Заказ №{payment.order_id}",
        "Капучино × 2 = 300,00\u00a0₽",
        "Круассан × 1 = 99,50\u00a0₽",
        f"Чек: {shop.web.url}/fiscal/r/{receipt.token}",
    ]

    # The bank's notification again: nothing new for the cashier.
    qr = _one(shop, sa.select(QrCode).where(QrCode.id == qr_code_id))
    replay = {"transactionId": int(payment.transaction_id), "qrId": qr_id,
              "sbpMerchantId": "MA0000000552", "amount": "399.50", "order": qr.bank_order,
              "paymentStatus": "SUCCESS", "transactionDate": payment.paid_at.isoformat()}
    assert shop.callback_raw(replay)["outcome"] == "duplicate"
    wait_for(lambda: _telegram_jobs_settled(shop))
    assert len(fakebot.sent()) == 1

    # A refund: the managers hear of it, the cashier does not.
    with shop.app.app_context():
        refunds.request_refund(payment.id, 9950)
    (refunded,) = [call for call in fakebot.wait_sent(2) if int(call["chat_id"]) == MANAGER]
    assert refunded["text"].startswith("Возврат проведён: 99,50\u00a0₽")
    assert f"заказ №{payment.order_id}" in refunded["text"]
    assert len(_texts(fakebot, CASHIER)) == 1


def test_an_order_without_a_cashier_tells_nobody_and_a_wrong_sum_tells_the_managers(
    shop, fakebot
):
    _, qr_id = _sale(shop, cashier=False)
    _, flagged_qr = _sale(shop)
    shop.start_worker()
    shop.pay(qr_id)
    shop.pay(flagged_qr, amount="99.00")
    (flagged,) = fakebot.wait_sent(1)
    wait_for(lambda: _one(shop, sa.select(Payment).where(Payment.status == "paid")))
    wait_for(lambda: _telegram_jobs_settled(shop))
    assert len(fakebot.sent()) == 1
    assert int(flagged["chat_id"]) == MANAGER
    assert flagged["text"].startswith("Платёж на проверке: 99,00\u00a0₽")
    assert "Причина: bank reported 9900 kopecks, QR asked for 39950" in flagged["text"]


def test_a_receipt_the_register_refuses_twice_reaches_the_managers(shop, fakebot):
    response = requests.post(f"{shop.bank_url}/sandbox/fiscal/faults", json={"fail_next": 2},
                             timeout=5)
    assert response.status_code == 200, response.text
    _, qr_id = _sale(shop)
    shop.start_worker()
    shop.pay(qr_id)
    wait_for(lambda: _texts(fakebot, MANAGER), timeout=20)
    receipt = _one(shop, sa.select(Receipt))
    (failed,) = _texts(fakebot, MANAGER)
    assert failed.startswith(f"Чек продажи не пробит: чек {receipt.id} на 399,50\u00a0₽")
    assert f"Ошибка: {receipt.error}" in failed
    assert len(_texts(fakebot, CASHIER)) == 1  # the sale itself was paid


def test_an_expired_qr_tells_the_cashier_to_make_a_new_one(shop, fakebot, monkeypatch):
    from app.sandbox import clock

    qr_code_id, _ = _sale(shop, ttl=1)
    with shop.app.app_context():
        db.session.execute(sa.update(QrCode).where(QrCode.id == qr_code_id)
                           .values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    real_now = clock.now
    monkeypatch.setattr(clock, "now", lambda: real_now() + timedelta(minutes=2))
    shop.start_worker()  # the reconciler asks the bank and expires the QR
    (message,) = fakebot.wait_sent(1)
    assert int(message["chat_id"]) == CASHIER
    assert message["text"].startswith("QR-код истёк: заказ №")
    assert "399,50\u00a0₽" in message["text"] and "новый QR-код" in message["text"]


# -- sending -------------------------------------------------------------------------------

@pytest.fixture
def worker_thread():
    started: list[tuple[Worker, threading.Thread]] = []

    def start(app) -> Worker:
        worker = Worker(app)
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        started.append((worker, thread))
        return worker

    yield start
    for worker, thread in started:
        worker.stop.set()
        thread.join(timeout=10)


def test_a_429_waits_telegrams_retry_after_then_the_message_arrives_once(
    telegram, fakebot, worker_thread
):
    fakebot.refuse("sendMessage", 1)
    notify.fan_out("test-event", [CASHIER], Reply("Чек не пробит"))
    started = time.monotonic()
    worker_thread(telegram.app)
    (message,) = fakebot.wait_sent(1)
    waited = time.monotonic() - started
    assert message["text"] == "Чек не пробит"
    assert waited >= 1.0, "sent again before Telegram's retry_after"
    wait_for(lambda: db.session.scalar(sa.select(Job.status).where(
        Job.name == "telegram.send")) is JobStatus.DONE and not db.session.rollback())
    (job,) = db.session.scalars(sa.select(Job).where(Job.name == "telegram.send"))
    assert job.attempts == 1  # a 429 is no failure
    db.session.rollback()
    assert len(fakebot.sent()) == 1


def test_a_blocked_bot_or_a_missing_chat_is_given_up_without_retrying(telegram, fakebot):
    fakebot.fail("sendMessage", 403, "Forbidden: bot was blocked by the user")
    fakebot.fail("sendMessage", 400, "Bad Request: chat not found")
    notify.fan_out("test-event", [CASHIER, MANAGER], Reply("Оплачено"))
    telegram.run_jobs()
    sends = db.session.scalars(sa.select(Job).where(Job.name == "telegram.send")).all()
    assert [(job.status, job.attempts) for job in sends] == [(JobStatus.DONE, 1)] * 2
    db.session.rollback()
    assert fakebot.sent() == []


def test_a_worker_killed_while_sending_leaves_the_message_to_the_next_worker(
    kill_db, spawn_worker, fakebot, monkeypatch  # noqa: F811 - fixtures
):
    app, url = kill_db
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("TELEGRAM_API_URL", fakebot.url)
    fakebot.stall("sendMessage")  # the first worker's request never gets through
    with app.app_context():
        jobs.enqueue(notify.SEND_JOB, {"chat_id": CASHIER, "text": "Оплачено: 100,00 ₽"},
                     key="telegram.send:test:1001")
        db.session.commit()

    first, first_log = spawn_worker(url, "worker-1")
    wait_for(lambda: fakebot.held or first.poll() is not None, timeout=20)
    assert first.poll() is None, first_log.read_text()
    first.send_signal(signal.SIGKILL)
    assert first.wait(timeout=10) == -signal.SIGKILL

    _, second_log = spawn_worker(url, "worker-2")
    (message,) = fakebot.wait_sent(1, timeout=30)
    assert message["text"] == "Оплачено: 100,00 ₽" and int(message["chat_id"]) == CASHIER
    with app.app_context():
        def attempts_when_done():
            try:
                return db.session.scalar(sa.select(Job.attempts).where(
                    Job.name == notify.SEND_JOB, Job.status == JobStatus.DONE))
            finally:
                db.session.rollback()
        assert wait_for(attempts_when_done, timeout=10) == 2
    assert len(fakebot.sent()) == 1
    assert TOKEN not in second_log.read_text() + first_log.read_text()
