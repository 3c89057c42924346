"""Callbacks through the whole stack: Kassa and the sandbox bank over real HTTP, a real
worker, and a capture server playing the API clients."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.constructor import signing
from app.extensions import db
from app.models import CallbackDelivery, Job, JobStatus, OrderChannel, Payment, QrCode, utcnow
from app.sbp import qrcodes, refunds
from tests.constructor.callback_capture import capture, make_api_order, make_client  # noqa: F401
from tests.helpers import wait_for

SECRET = "whsec_test-secret"


@pytest.fixture
def shop(make_stack):
    return make_stack()


def _webhook_client(stack, capture, path: str, name: str = "бот") -> int:  # noqa: F811
    with stack.app.app_context():
        return make_client("webhook", callback_url=f"{capture.url}{path}",
                           settings={"secret": SECRET}, name=name)


def _sale(stack, client_id: int | None, *, external_id: str = "A-1", ttl: int | None = None,
          channel=OrderChannel.API) -> tuple[int, int, str]:
    """An API order of the client with a dynamic QR: (order id, QR row id, qrId)."""
    with stack.app.app_context():
        order = make_api_order(client_id, external_id=external_id, channel=channel)
        qr = qrcodes.create_dynamic_qr(order.id, ttl_minutes=ttl)
        return order.id, qr.id, qr.qr_id


def _rows(stack, model, *where) -> list:
    with stack.app.app_context():
        try:
            rows = list(db.session.scalars(sa.select(model).where(*where).order_by(model.id)))
            for row in rows:
                db.session.expunge(row)
            return rows
        finally:
            db.session.rollback()


def _callback_jobs_settled(stack) -> bool:
    return not _rows(stack, Job, Job.name.like("constructor.%"),
                     Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]))


def test_paid_calls_back_only_the_orders_own_client_once_even_if_the_bank_calls_twice(
    shop, capture  # noqa: F811
):
    ours = _webhook_client(shop, capture, "/ours", "наш")
    _webhook_client(shop, capture, "/theirs", "чужой")
    order_id, qr_code_id, qr_id = _sale(shop, ours)
    _, _, till_qr = _sale(shop, None, channel=OrderChannel.MINIAPP)  # not an API order
    shop.start_worker()
    shop.pay(qr_id)
    shop.pay(till_qr)

    (sent,) = capture.wait(1, "/ours")
    body = sent.json()
    assert signing.verify(SECRET, sent.body, sent.headers["X-Kassa-Signature"])
    assert (body["event"], body["status"], body["amount"], body["order_id"]) == (
        "paid", "paid", "399.50", "A-1")
    # The callback waited for the sale receipt: its link is in it.
    assert body["receipt_url"].startswith(f"{shop.web.url}/fiscal/r/")

    payment = wait_for(lambda: _rows(shop, Payment, Payment.order_id == order_id))[0]
    qr = _rows(shop, QrCode, QrCode.id == qr_code_id)[0]
    replay = {"transactionId": int(payment.transaction_id), "qrId": qr_id,
              "sbpMerchantId": "MA0000000552", "amount": "399.50", "order": qr.bank_order,
              "paymentStatus": "SUCCESS", "transactionDate": payment.paid_at.isoformat()}
    assert shop.callback_raw(replay)["outcome"] == "duplicate"
    wait_for(lambda: len(_rows(shop, Payment)) == 2)
    wait_for(lambda: _callback_jobs_settled(shop))

    assert [r.path for r in capture.requests] == ["/ours"]
    (delivery,) = _rows(shop, CallbackDelivery)
    assert (delivery.ok, delivery.event, delivery.order_id, delivery.status_code) == (
        True, "paid", order_id, 200)


def test_a_500_is_retried_with_backoff_until_the_client_takes_it(shop, capture):  # noqa: F811
    capture.script("/flaky", (500, "oops"), 503)
    client_id = _webhook_client(shop, capture, "/flaky")
    _, _, qr_id = _sale(shop, client_id)
    shop.start_worker()
    shop.pay(qr_id)

    capture.wait(3, "/flaky")
    wait_for(lambda: _callback_jobs_settled(shop))
    rows = _rows(shop, CallbackDelivery)
    assert [(r.attempt, r.status_code, r.ok) for r in rows] == [
        (1, 500, False), (2, 503, False), (3, 200, True)]
    assert rows[0].response_excerpt == "oops" and rows[0].error == "HTTP 500"
    first, second, third = capture.to("/flaky")
    assert first.body == second.body == third.body  # the same callback each time
    (job,) = _rows(shop, Job, Job.name == "constructor.callback")
    assert job.status == JobStatus.DONE and job.attempts == 3


def test_a_4xx_is_logged_and_given_up(shop, capture):  # noqa: F811
    capture.script("/gone", (404, "no such hook"), (404, "no such hook"))
    client_id = _webhook_client(shop, capture, "/gone")
    _, _, qr_id = _sale(shop, client_id)
    shop.start_worker()
    shop.pay(qr_id)
    capture.wait(1, "/gone")
    wait_for(lambda: _callback_jobs_settled(shop))

    (job,) = _rows(shop, Job, Job.name == "constructor.callback")
    assert job.status == JobStatus.DONE and job.attempts == 1
    (row,) = _rows(shop, CallbackDelivery)
    assert (row.ok, row.status_code, row.response_excerpt) == (False, 404, "no such hook")
    assert len(capture.to("/gone")) == 1


def test_an_expired_qr_and_a_refund_call_back_too(shop, capture, monkeypatch):  # noqa: F811
    from app.sandbox import clock

    client_id = _webhook_client(shop, capture, "/events")
    _, expiring_qr, _ = _sale(shop, client_id, external_id="late", ttl=1)
    order_id, _, qr_id = _sale(shop, client_id, external_id="paid")
    with shop.app.app_context():
        db.session.execute(sa.update(QrCode).where(QrCode.id == expiring_qr)
                           .values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    real_now = clock.now
    monkeypatch.setattr(clock, "now", lambda: real_now() + timedelta(minutes=2))
    shop.start_worker()  # the reconciler asks the bank and expires the first QR
    shop.pay(qr_id)
    payment = wait_for(lambda: _rows(shop, Payment, Payment.order_id == order_id))[0]
    capture.wait(2, "/events")
    with shop.app.app_context():
        refunds.request_refund(payment.id, 9950)

    bodies = {r.json()["event"]: r.json() for r in capture.wait(3, "/events")}
    assert bodies["expired"]["order_id"] == "late" and bodies["expired"]["status"] == "expired"
    assert bodies["expired"]["message"] == "Время на оплату истекло, платёж не получен"
    refunded = bodies["refunded"]
    assert (refunded["order_id"], refunded["status"], refunded["refund_amount"]) == (
        "paid", "refunded", "99.50")
    assert refunded["message"] == "Возвращено: 99,50\u00a0₽"
    wait_for(lambda: _callback_jobs_settled(shop))
    assert len(capture.to("/events")) == 3


def test_a_revoked_client_is_not_called_back(shop, capture):  # noqa: F811
    from app.models import ApiClient

    client_id = _webhook_client(shop, capture, "/revoked")
    _, _, qr_id = _sale(shop, client_id)
    with shop.app.app_context():
        client = db.session.get(ApiClient, client_id)
        client.active, client.revoked_at = False, utcnow()
        db.session.commit()
    shop.start_worker()
    shop.pay(qr_id)
    wait_for(lambda: _rows(shop, Job, Job.name == "constructor.paid",
                           Job.status == JobStatus.DONE))
    assert capture.requests == [] and _rows(shop, CallbackDelivery) == []
    assert _rows(shop, Job, Job.name == "constructor.callback") == []
