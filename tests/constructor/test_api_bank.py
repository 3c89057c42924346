"""The constructor API with the sandbox bank and register over real HTTP: the QR a bot
shows, the customer paying it, the receipt with the API's contact, a slow bank (pending
within 3 s, then the QR follows), and a bank that refuses."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests
import sqlalchemy as sa

from app.extensions import db
from app.models import Job, JobStatus, Receipt, ReceiptStatus
from tests.constructor.api_support import CREATE, STATUS, checked, new_key
from tests.helpers import LiveServer, decode_qr, wait_for


def _post(stack, key, **kwargs) -> requests.Response:
    return requests.post(f"{stack.web.url}/api/v1/payments", headers={"X-Api-Key": key},
                         timeout=10, **kwargs)


def _status(stack, key, payment_id) -> dict:
    response = requests.get(f"{stack.web.url}/api/v1/payments/{payment_id}",
                            headers={"Authorization": f"Bearer {key}"}, timeout=10)
    return checked(stack.app, response, *STATUS)


def _qr_id(answer: dict) -> str:
    return answer["qr_image_url"].rsplit("/", 1)[1].removesuffix(".png")


@pytest.mark.parametrize("contact", [{"customer_email": "buyer@example.ru"},
                                     {"customer_phone": "+7 (912) 345-67-89"}])
def test_pay_the_bots_qr_and_the_receipt_carries_the_api_contact(stack, contact):
    key = new_key(stack.app)
    stack.start_worker()
    response = _post(stack, key, data={
        "items": json.dumps([{"name": "Капучино", "price": "220", "quantity": "2"}]),
        "order_id": "tg-1001", "client_id": "777", **contact})
    created = checked(stack.app, response, *CREATE)
    assert response.status_code == 201
    assert created["status"] == "pending" and created["amount"] == "440.00"
    assert created["qr_payload"].startswith("https://qr.nspk.ru/")
    assert created["expires_at"]
    png = requests.get(created["qr_image_url"], timeout=10)
    assert png.headers["Content-Type"] == "image/png"
    assert decode_qr(png.content) == created["qr_payload"]

    stack.pay(_qr_id(created))
    paid = wait_for(lambda: (s := _status(stack, key, created["payment_id"]))["receipt_url"]
                    and s, timeout=20)
    assert paid["status"] == "paid" and paid["message"] == "Оплачено"
    assert (paid["order_id"], paid["client_id"]) == ("tg-1001", "777")
    page = requests.get(paid["receipt_url"], timeout=10)
    assert page.status_code == 200 and "440,00" in page.text

    with stack.app.app_context():
        receipt = db.session.query(Receipt).one()
        assert receipt.status == ReceiptStatus.DONE
        assert (receipt.customer_email, receipt.customer_phone) == (
            contact.get("customer_email"), contact.get("customer_phone") and "+79123456789")


class StallingBank:
    """A proxy in front of the sandbox that, until released, holds every request (a bank
    that does not answer) or, when `down`, answers 503 at once (a bank that is down)."""

    def __init__(self, target: str, *, down: bool = False):
        self.target = target
        self.down = down
        self.released = threading.Event()
        self.held = 0
        self.server = LiveServer(self)
        self.url = self.server.url

    def __call__(self, environ, start_response):
        if not self.released.is_set():
            self.held += 1
            if self.down:
                start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
                return [b"down"]
            self.released.wait(30)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        query = environ.get("QUERY_STRING")
        upstream = requests.request(
            environ["REQUEST_METHOD"],
            f"{self.target}{environ['PATH_INFO']}" + (f"?{query}" if query else ""),
            data=environ["wsgi.input"].read(length) if length else None,
            headers={k[5:].replace("_", "-").title(): v for k, v in environ.items()
                     if k.startswith("HTTP_")} | {
                         "Content-Type": environ.get("CONTENT_TYPE", "application/json")},
            timeout=10)
        start_response(f"{upstream.status_code} X", [
            ("Content-Type", upstream.headers.get("Content-Type", "application/json"))])
        return [upstream.content]

    def stop(self):
        self.released.set()
        self.server.stop()


@pytest.fixture
def slow_stack(make_stack):
    holder = {}

    def factory(**kwargs):
        stack = make_stack(HTTP_TIMEOUT=(1, 1))
        bank = StallingBank(stack.bank_url, **kwargs)
        stack.app.extensions["kassa.sbp"].http.base_url = bank.url
        holder["bank"] = bank
        return stack, bank

    yield factory
    if "bank" in holder:
        holder["bank"].stop()


@pytest.mark.parametrize("down", [False, True], ids=["stalls", "down"])
def test_a_slow_bank_answers_pending_within_3_seconds_then_the_qr_follows(slow_stack, down):
    stack, bank = slow_stack(down=down)
    key = new_key(stack.app)
    started = time.monotonic()
    response = _post(stack, key, json={"amount": "150", "order_id": "slow-1"})
    elapsed = time.monotonic() - started
    created = checked(stack.app, response, *CREATE)
    assert elapsed < 3, elapsed
    assert bank.held >= 1
    assert created["status"] == "pending"
    assert created["qr_payload"] is None and created["qr_image_url"] is None
    assert created["pay_url"].startswith(f"{stack.web.url}/checkout/")
    assert "медленно" in created["message"]
    # The status call answers at once, still without a QR.
    assert _status(stack, key, created["payment_id"])["qr_payload"] is None

    bank.released.set()
    stack.start_worker()
    shown = wait_for(lambda: (s := _status(stack, key, created["payment_id"]))["qr_payload"]
                     and s, timeout=20)
    assert shown["status"] == "pending" and shown["qr_payload"].startswith("https://qr.nspk.ru/")
    # The same answer for the bot that repeats its request.
    again = checked(stack.app, _post(stack, key, json={"amount": "150", "order_id": "slow-1"}),
                    *CREATE)
    assert again["qr_payload"] == shown["qr_payload"]
    assert len(stack.bank_state()["qrs"]) == 1
    if down:  # the request gave up at once: the job registered the QR
        with stack.app.app_context():
            job = db.session.scalars(sa.select(Job).where(
                Job.name == "constructor.create_qr")).one()
            assert job.status == JobStatus.DONE and job.attempts >= 1
    stack.pay(_qr_id(shown))
    assert wait_for(lambda: _status(stack, key, created["payment_id"])["status"] == "paid")


def test_a_bank_that_refuses_the_qr_is_a_502_then_failed(make_stack):
    stack = make_stack(RAIFFEISEN_SBP_MERCHANT_ID="MA0000000000")
    key = new_key(stack.app)
    response = _post(stack, key, json={"amount": "150", "order_id": "no"})
    refused = checked(stack.app, response, *CREATE)
    assert response.status_code == 502
    assert refused["error"] == "bank_error" and "Банк отказал" in refused["message"]
    # The order stays, and says so: a bot that asks again learns it failed.
    again = _post(stack, key, json={"amount": "150", "order_id": "no"})
    assert checked(stack.app, again, *CREATE)["error"] == "bank_error"
    with stack.app.app_context():
        from app.models import Order

        order = db.session.query(Order).one()
        payment_id = order.public_id
    failed = _status(stack, key, payment_id)
    assert failed["status"] == "failed" and failed["qr_payload"] is None
