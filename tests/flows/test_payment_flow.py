"""End to end over real HTTP: the sandbox bank, Kassa's web app and a worker thread."""

from __future__ import annotations

import concurrent.futures
import json

import pytest
import requests
import sqlalchemy as sa

from app import jobs
from app.extensions import db
from app.models import (
    BankEvent,
    Job,
    JobStatus,
    Order,
    OrderChannel,
    OrderStatus,
    Payment,
    PaymentStatus,
    QrCode,
    QrStatus,
)
from app.orders.services import create_amount_order
from app.sbp import cancelling, qrcodes, reconciliation, refunds
from tests.helpers import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def paid_jobs(stack):
    """A recording subscriber of "payment.paid", standing in for receipts and Telegram."""
    seen: list[dict] = []

    jobs.registry(stack.app).subscribe("payment.paid", "test.record_paid", seen.append)
    return seen


def _new_qr(stack, amount=10000, ttl=None):
    with stack.app.app_context():
        order = create_amount_order(channel=OrderChannel.CLI, amount_kopecks=amount,
                                    description="Тест")
        qr = qrcodes.create_dynamic_qr(order.id, ttl_minutes=ttl)
        return qr.id, qr.qr_id, order.id


def _qr(stack, qr_code_id) -> QrCode:
    with stack.app.app_context():
        qr = db.session.get(QrCode, qr_code_id)
        db.session.expunge(qr)
        return qr


def test_dynamic_qr_paid_in_sandbox_becomes_paid(stack, paid_jobs):
    stack.start_worker()
    qr_code_id, qr_id, order_id = _new_qr(stack, amount=12550)
    assert _qr(stack, qr_code_id).status == QrStatus.ACTIVE

    stack.pay(qr_id)

    wait_for(lambda: _qr(stack, qr_code_id).status == QrStatus.PAID)
    with stack.app.app_context():
        order = db.session.get(Order, order_id)
        assert order.status == OrderStatus.PAID
        payment = db.session.scalars(sa.select(Payment)).one()
        assert payment.amount_kopecks == 12550
        assert payment.status == PaymentStatus.PAID
    wait_for(lambda: paid_jobs == [{"payment_id": payment.id}])



class Recorder:
    """A stand-in callback URL that keeps what the bank sent (to replay it at Kassa)."""

    def __init__(self):
        from tests.helpers import LiveServer

        self.calls: list[tuple[bytes, dict]] = []
        self.server = LiveServer(self._wsgi)
        self.url = self.server.url + "/hook"

    def _wsgi(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        headers = {k[5:].replace("_", "-").title(): v for k, v in environ.items()
                   if k.startswith("HTTP_")}
        self.calls.append((body, headers))
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"ok": true}']


@pytest.fixture
def recorder(stack):
    rec = Recorder()
    yield rec
    rec.server.stop()


def _point_bank_at(stack, url):
    from app.config import SANDBOX_SECRET_KEY

    response = requests.post(
        f"{stack.bank_url}/api/settings/v1/callback", json={"callbackUrl": url},
        headers={"Authorization": f"Bearer {SANDBOX_SECRET_KEY}"}, timeout=5,
    )
    assert response.status_code == 200, response.text


def _count(stack, model, *where) -> int:
    with stack.app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def _post_callback(stack, body: bytes, signature: str | None):
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Api-Signature-SHA256"] = signature
    return requests.post(f"{stack.web.url}/sbp/callback", data=body, headers=headers, timeout=10)


def test_same_callback_five_times_at_once_gives_one_payment_and_one_set_of_jobs(
    stack, recorder, paid_jobs
):
    qr_code_id, qr_id, _ = _new_qr(stack, amount=5000)
    _point_bank_at(stack, recorder.url)
    stack.pay(qr_id)
    body, headers = wait_for(lambda: recorder.calls and recorder.calls[0])
    signature = headers["X-Api-Signature-Sha256"]

    with concurrent.futures.ThreadPoolExecutor(5) as pool:
        responses = list(pool.map(lambda _: _post_callback(stack, body, signature), range(5)))

    assert [r.status_code for r in responses] == [200] * 5
    outcomes = sorted(r.json()["outcome"] for r in responses)
    assert outcomes == ["duplicate"] * 4 + ["paid"]
    assert _count(stack, Payment) == 1
    assert _count(stack, BankEvent) == 1
    assert _count(stack, Job, Job.name == "test.record_paid") == 1
    assert _qr(stack, qr_code_id).status == QrStatus.PAID
    stack.start_worker()
    wait_for(lambda: _count(stack, Job, Job.status == JobStatus.DONE,
                            Job.name == "test.record_paid") == 1)
    assert len(paid_jobs) == 1


def test_bad_signature_or_body_is_refused_and_changes_nothing(stack, recorder):
    qr_code_id, qr_id, order_id = _new_qr(stack, amount=5000)
    _point_bank_at(stack, recorder.url)
    stack.pay(qr_id)
    body, headers = wait_for(lambda: recorder.calls and recorder.calls[0])
    good = headers["X-Api-Signature-Sha256"]
    tampered = body.replace(b"50.00", b"5.00")
    assert tampered != body

    cases = [
        (tampered, good),                 # the body was changed on the way
        (body, "0" * 64),                 # a wrong signature
        (body, None),                     # no signature at all
        (b"not json", good),              # not a notification
        (b"", good),
    ]
    for raw, signature in cases:
        response = _post_callback(stack, raw, signature)
        assert response.status_code == 400, (raw, response.text)
        assert response.json()["ok"] is False
    too_big = b"{" + b" " * (10 * 1024 * 1024) + b"}"
    assert _post_callback(stack, too_big, good).status_code == 413

    assert _count(stack, BankEvent) == 0
    assert _count(stack, Payment) == 0
    assert _qr(stack, qr_code_id).status == QrStatus.ACTIVE
    with stack.app.app_context():
        assert db.session.get(Order, order_id).status == OrderStatus.PENDING

    # The genuine callback still works afterwards.
    assert _post_callback(stack, body, good).json()["outcome"] == "paid"


def test_amount_mismatch_is_flagged_for_review_and_not_marked_paid(stack, paid_jobs):
    qr_code_id, qr_id, order_id = _new_qr(stack, amount=10000)
    stack.pay(qr_id, amount="99.00")

    wait_for(lambda: _count(stack, Payment) == 1)
    qr = _qr(stack, qr_code_id)
    assert qr.status == QrStatus.ACTIVE
    assert qr.needs_review is True
    assert "9900" in qr.review_reason
    with stack.app.app_context():
        payment = db.session.scalars(sa.select(Payment)).one()
        assert payment.status == PaymentStatus.REVIEW
        assert payment.amount_kopecks == 9900
        assert db.session.get(Order, order_id).status == OrderStatus.PENDING
    assert _count(stack, Job, Job.name == "test.record_paid") == 0


def _expire_now(stack, qr_code_id, monkeypatch):
    """Move both clocks past the QR's TTL: ours (expires_at) and the bank's."""
    from datetime import timedelta

    from app.models import utcnow
    from app.sandbox import clock

    with stack.app.app_context():
        db.session.execute(sa.update(QrCode).where(QrCode.id == qr_code_id)
                           .values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    real_now = clock.now
    monkeypatch.setattr(clock, "now", lambda: real_now() + timedelta(minutes=2))


def test_qr_past_its_ttl_expires_after_asking_the_bank(stack, monkeypatch):
    qr_code_id, qr_id, order_id = _new_qr(stack, amount=3000, ttl=1)
    with stack.app.app_context():
        reconciliation.reconcile()
    assert _qr(stack, qr_code_id).status == QrStatus.ACTIVE  # young and open: left alone

    _expire_now(stack, qr_code_id, monkeypatch)
    stack.start_worker()  # the reconciler runs every second in the stack

    wait_for(lambda: _qr(stack, qr_code_id).status == QrStatus.EXPIRED)
    with stack.app.app_context():
        assert db.session.get(Order, order_id).status == OrderStatus.EXPIRED
    bank_qr = next(q for q in stack.bank_state()["qrs"] if q["qrId"] == qr_id)
    assert bank_qr["qrStatus"] == "EXPIRED"


def test_payment_just_before_expiry_is_kept_even_if_its_callback_is_late(
    stack, monkeypatch, paid_jobs
):
    qr_code_id, qr_id, order_id = _new_qr(stack, amount=3000, ttl=1)
    _point_bank_at(stack, "http://127.0.0.1:9/nobody-listens")  # the callback gets lost
    stack.pay(qr_id)
    _expire_now(stack, qr_code_id, monkeypatch)

    with stack.app.app_context():
        reconciliation.reconcile()

    assert _qr(stack, qr_code_id).status == QrStatus.PAID
    with stack.app.app_context():
        assert db.session.get(Order, order_id).status == OrderStatus.PAID
        payment = db.session.scalars(sa.select(Payment)).one()
        assert payment.amount_kopecks == 3000
        assert payment.transaction_id is not None
    assert _count(stack, Job, Job.name == "test.record_paid") == 1

    # When the bank finally gets through, it is a duplicate.
    _point_bank_at(stack, f"{stack.web.url}/sbp/callback")
    wait_for(lambda: all(d["delivered"] for d in stack.bank_state()["deliveries"]), timeout=15)
    delivery = stack.bank_state()["deliveries"][0]
    assert delivery["attempts"][-1]["status_code"] == 200
    assert "error" in delivery["attempts"][0]  # the first try found nobody listening
    assert _count(stack, BankEvent) == 1  # the poll's record; the callback was a repeat
    assert _count(stack, Payment) == 1
    assert _count(stack, Job, Job.name == "test.record_paid") == 1


def test_static_qr_paid_twice_gives_two_payments(stack, paid_jobs):
    with stack.app.app_context():
        qr = qrcodes.create_static_qr(amount_kopecks=15000, description="Кофе")
        qr_code_id, qr_id = qr.id, qr.qr_id
    stack.pay(qr_id)
    stack.pay(qr_id)

    wait_for(lambda: _count(stack, Payment) == 2)
    with stack.app.app_context():
        payments = db.session.scalars(sa.select(Payment).order_by(Payment.id)).all()
        assert [p.amount_kopecks for p in payments] == [15000, 15000]
        assert len({p.transaction_id for p in payments}) == 2
        assert all(p.order_id is None for p in payments)
    assert _qr(stack, qr_code_id).status == QrStatus.ACTIVE
    assert _count(stack, Job, Job.name == "test.record_paid") == 2


def test_cash_link_activated_paid_activated_again_and_deactivated(stack, paid_jobs):
    from app.errors import InvalidStateError
    from app.models import ActivationStatus, CashLinkActivation

    with stack.app.app_context():
        link = qrcodes.register_cash_link(description="Касса 1")
        link_id, qr_id = link.id, link.qr_id
        first = create_amount_order(channel=OrderChannel.MINIAPP, amount_kopecks=25000)
        activation = qrcodes.activate_cash_link(link_id, first.id, ttl_minutes=5)
        assert activation.amount_kopecks == 25000
        assert db.session.get(QrCode, link_id).status == QrStatus.ACTIVE
        # One sale at a time on a till's link.
        other = create_amount_order(channel=OrderChannel.MINIAPP, amount_kopecks=100)
        with pytest.raises(InvalidStateError) as busy:
            qrcodes.activate_cash_link(link_id, other.id)
        assert busy.value.code == "cash_link_busy"
        first_id = first.id

    stack.pay(qr_id)
    wait_for(lambda: _count(stack, Payment) == 1)
    with stack.app.app_context():
        assert db.session.get(Order, first_id).status == OrderStatus.PAID
        assert db.session.get(QrCode, link_id).status == QrStatus.INACTIVE
        payment = db.session.scalars(sa.select(Payment)).one()
        assert (payment.order_id, payment.amount_kopecks) == (first_id, 25000)

        second = create_amount_order(channel=OrderChannel.MINIAPP, amount_kopecks=4200)
        again = qrcodes.activate_cash_link(link_id, second.id)
        assert again.amount_kopecks == 4200
        second_id, again_id = second.id, again.id
    assert next(q for q in stack.bank_state()["qrs"] if q["qrId"] == qr_id)["qrStatus"] == "NEW"

    with stack.app.app_context():
        cancelling.deactivate_cash_link(link_id)
        assert db.session.get(CashLinkActivation, again_id).status == ActivationStatus.CANCELLED
        assert db.session.get(Order, second_id).status == OrderStatus.CANCELLED
        assert db.session.get(QrCode, link_id).status == QrStatus.INACTIVE
    bank = stack.bank_state()
    assert next(q for q in bank["qrs"] if q["qrId"] == qr_id)["qrStatus"] == "INACTIVE"
    # Nobody can pay the deactivated link any more.
    response = requests.post(f"{stack.bank_url}/sandbox/qrs/{qr_id}/pay",
                             json={"status": "SUCCESS"}, timeout=5)
    assert response.status_code == 409
    assert _count(stack, Payment) == 1


def test_partial_then_full_refund_and_over_refund_refused(stack):
    from app.errors import InvalidStateError, ValidationError
    from app.models import Refund, RefundStatus

    stack.start_worker()
    _qr_code_id, qr_id, order_id = _new_qr(stack, amount=10000)
    stack.pay(qr_id)
    wait_for(lambda: _count(stack, Payment) == 1)
    with stack.app.app_context():
        payment_id = db.session.scalars(sa.select(Payment.id)).one()
        refunds.request_refund(payment_id, 3000, reason="Не понравился круассан")
        with pytest.raises(ValidationError) as over:
            refunds.request_refund(payment_id, 7001)
        assert over.value.code == "over_refund"

    def refund_statuses():
        with stack.app.app_context():
            return [r.status for r in db.session.scalars(sa.select(Refund).order_by(Refund.id))]

    wait_for(lambda: refund_statuses() == [RefundStatus.COMPLETED])
    with stack.app.app_context():
        payment = db.session.get(Payment, payment_id)
        assert (payment.status, payment.refunded_kopecks) == (PaymentStatus.PARTIALLY_REFUNDED,
                                                              3000)
        assert db.session.get(Order, order_id).status == OrderStatus.PARTIALLY_REFUNDED
        rest = refunds.request_refund(payment_id)  # the rest: 70,00 ₽
        assert rest.amount_kopecks == 7000
    wait_for(lambda: refund_statuses() == [RefundStatus.COMPLETED] * 2)
    with stack.app.app_context():
        payment = db.session.get(Payment, payment_id)
        assert (payment.status, payment.refunded_kopecks) == (PaymentStatus.REFUNDED, 10000)
        assert db.session.get(Order, order_id).status == OrderStatus.REFUNDED
        with pytest.raises(InvalidStateError):
            refunds.request_refund(payment_id, 1)
    bank_refunds = stack.bank_state()["refunds"]
    assert sorted(r["amount"] for r in bank_refunds) == ["30.00", "70.00"]


class FlakyBank:
    """A proxy in front of the sandbox that forwards each request but loses the answer
    (a 504 from a load balancer) until it is healed."""

    def __init__(self, target: str):
        from tests.helpers import LiveServer

        self.target = target
        self.broken = True
        self.forwarded = 0
        self.server = LiveServer(self._wsgi)
        self.url = self.server.url

    def _wsgi(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        path = environ.get("PATH_INFO", "")
        headers = {"Authorization": environ.get("HTTP_AUTHORIZATION", ""),
                   "Content-Type": environ.get("CONTENT_TYPE", "application/json")}
        upstream = requests.request(environ["REQUEST_METHOD"], self.target + path, data=body,
                                    headers=headers, timeout=5)
        self.forwarded += 1
        if self.broken:
            start_response("504 Gateway Timeout", [("Content-Type", "text/plain")])
            return [b"upstream answer lost"]
        start_response(f"{upstream.status_code} X", [("Content-Type", "application/json")])
        return [upstream.content]


def test_bank_down_while_creating_a_qr_keeps_the_order_and_a_retry_makes_no_second_qr(stack):
    from app.errors import BankError
    from app.sbp.raiffeisen import RaiffeisenClient

    config = stack.app.config
    with stack.app.app_context():
        order = create_amount_order(channel=OrderChannel.MINIAPP, amount_kopecks=7700)
        order_id = order.id

    # 1. Nothing listens where the bank should be.
    stack.app.extensions["kassa.sbp"] = RaiffeisenClient(
        "http://127.0.0.1:9", config["RAIFFEISEN_SBP_MERCHANT_ID"],
        config["RAIFFEISEN_SECRET_KEY"], timeout=(0.5, 1))
    with stack.app.app_context(), pytest.raises(BankError) as down:
        qrcodes.create_dynamic_qr(order_id)
    assert down.value.retryable is True
    assert "Заказ сохранён" in down.value.message

    # 2. The bank gets the request but its answer is lost on the way back.
    flaky = FlakyBank(stack.bank_url)
    stack.app.extensions["kassa.sbp"] = RaiffeisenClient(
        flaky.url, config["RAIFFEISEN_SBP_MERCHANT_ID"], config["RAIFFEISEN_SECRET_KEY"])
    with stack.app.app_context(), pytest.raises(BankError):
        qrcodes.create_dynamic_qr(order_id)
    assert flaky.forwarded >= 1
    with stack.app.app_context():
        order = db.session.get(Order, order_id)
        assert order.status == OrderStatus.NEW
        assert order.total_kopecks == 7700
    assert _count(stack, QrCode) == 0

    # 3. The bank is back: the retry succeeds, and the bank still has exactly one QR.
    flaky.broken = False
    with stack.app.app_context():
        qr = qrcodes.create_dynamic_qr(order_id)
        assert db.session.get(Order, order_id).status == OrderStatus.PENDING
        qr_id = qr.qr_id
    flaky.server.stop()
    bank_qrs = [q for q in stack.bank_state()["qrs"] if q["order"].startswith(order.public_id)]
    assert [q["qrId"] for q in bank_qrs] == [qr_id]
    assert _count(stack, QrCode) == 1


def test_cli_creates_a_qr_and_shows_it_paid(stack):

    stack.start_worker()
    runner = stack.app.test_cli_runner()
    created = runner.invoke(args=["qr", "create", "--type", "dynamic", "--amount", "100"])
    assert created.exit_code == 0, created.output
    data = json.loads(created.output)
    assert data["payload"].startswith("https://qr.nspk.ru/")
    assert (data["type"], data["status"], data["amount"]) == ("dynamic", "active", "100.00")
    assert data["image_url"] == f"{stack.web.url}/sbp/qr/{data['qr_id']}.png"

    stack.pay(data["qr_id"])

    def shown_paid():
        shown = runner.invoke(args=["qr", "show", data["qr_id"]])
        return json.loads(shown.output)["status"] == "paid" and json.loads(shown.output)

    # "Within a second or two" on a quiet machine; a shared test machine may be slower.
    shown = wait_for(shown_paid, timeout=10)
    assert shown["payments"][0]["amount"] == "100.00"
    image = requests.get(data["image_url"], timeout=5)
    assert image.status_code == 200
    assert image.headers["Content-Type"] == "image/png"
    assert image.content.startswith(b"\x89PNG")


def test_cancel_closes_the_qr_at_the_bank_and_is_refused_once_the_customer_paid(stack):
    from app.errors import InvalidStateError

    qr_code_id, qr_id, order_id = _new_qr(stack, amount=2000)
    with stack.app.app_context():
        order = cancelling.cancel_order(order_id)
        assert order.status == OrderStatus.CANCELLED
    assert _qr(stack, qr_code_id).status == QrStatus.CANCELLED
    bank_qr = next(q for q in stack.bank_state()["qrs"] if q["qrId"] == qr_id)
    assert bank_qr["qrStatus"] == "CANCELLED"
    gone = requests.post(f"{stack.bank_url}/sandbox/qrs/{qr_id}/pay",
                         json={"status": "SUCCESS"}, timeout=5)
    assert gone.status_code == 409  # the customer can no longer pay it

    # The customer pays a moment before the cashier cancels; the callback is still on its way.
    qr_code_id, qr_id, order_id = _new_qr(stack, amount=2000)
    _point_bank_at(stack, "http://127.0.0.1:9/nobody-listens")
    stack.pay(qr_id)
    with stack.app.app_context(), pytest.raises(InvalidStateError) as refused:
        cancelling.cancel_order(order_id)
    assert refused.value.code == "order_paid"
    assert _qr(stack, qr_code_id).status == QrStatus.PAID
    with stack.app.app_context():
        assert db.session.get(Order, order_id).status == OrderStatus.PAID
    assert _count(stack, Payment) == 1
