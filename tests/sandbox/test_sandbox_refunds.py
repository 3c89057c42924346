"""Refunds: POST /api/sbp/v1/refund and GET /api/sbp/v1/refund/<refundId>."""

from __future__ import annotations

from tests.helpers import wait_for

from .helpers import Bank
from .test_sandbox_qrs import error_code


def refund_status(bank: Bank, refund_id: str) -> str:
    return bank.call("GET", f"/api/sbp/v1/refund/{refund_id}").get_json()["refundStatus"]


def test_refund_in_progress_then_completed(bank: Bank) -> None:
    qr_id = bank.dynamic(order="order-1", amount="100.00")
    bank.pay(qr_id)
    response = bank.refund(amount="40.00", order="order-1", refundId="refund-1")
    assert response.status_code == 200
    assert response.get_data(as_text=True) == (
        '{"code":"SUCCESS","amount":40.00,"refundStatus":"IN_PROGRESS"}'
    )
    assert refund_status(bank, "refund-1") == "IN_PROGRESS"
    # refund_processing_seconds is 0.2 in these tests; the background thread completes it.
    wait_for(lambda: refund_status(bank, "refund-1") == "COMPLETED")
    state = bank.client.get("/sandbox/state").get_json()
    assert state["refunds"][0]["refundStatus"] == "COMPLETED"
    assert state["refunds"][0]["amount"] == "40.00"


def test_over_refund_is_refused(bank: Bank) -> None:
    qr_id = bank.dynamic(order="order-1", amount="100.00")
    bank.pay(qr_id)
    assert bank.refund(amount=40, order="order-1", refundId="r1").status_code == 200
    too_much = bank.refund(amount="60.01", order="order-1", refundId="r2")
    assert too_much.status_code == 400
    assert error_code(too_much) == "ERROR.REFUND_INSUFFICIENT_FUNDS"
    assert bank.refund(amount="60.00", order="order-1", refundId="r3").status_code == 200
    nothing_left = bank.refund(amount="0.01", order="order-1", refundId="r4")
    assert error_code(nothing_left) == "ERROR.REFUND_INSUFFICIENT_FUNDS"
    assert bank.call("GET", "/api/sbp/v1/refund/r2").status_code == 404


def test_refund_of_an_overridden_amount(bank: Bank) -> None:
    qr_id = bank.dynamic(order="order-1", amount="100.00")
    bank.pay(qr_id, amount="99.00")
    too_much = bank.refund(amount="99.01", order="order-1", refundId="r1")
    assert error_code(too_much) == "ERROR.REFUND_INSUFFICIENT_FUNDS"
    assert bank.refund(amount="99.00", order="order-1", refundId="r2").status_code == 200


def test_refund_id_is_idempotent(bank: Bank) -> None:
    qr_id = bank.dynamic(order="order-1", amount="100.00")
    bank.pay(qr_id)
    first = bank.refund(amount="30.00", order="order-1", refundId="r1")
    again = bank.refund(amount=30, order="order-1", refundId="r1")
    assert again.status_code == 200
    assert again.get_json() == first.get_json()
    state = bank.client.get("/sandbox/state").get_json()
    assert len(state["refunds"]) == 1
    different = bank.refund(amount="31.00", order="order-1", refundId="r1")
    assert different.status_code == 400
    assert error_code(different) == "ERROR.INVALID_REQUEST"


def test_static_refund_needs_the_transaction(bank: Bank) -> None:
    qr_id = bank.static(order="s-1", amount="10.00", currency="RUB")
    first = bank.pay(qr_id).get_json()["transactionId"]
    declined = bank.pay(qr_id, "DECLINED").get_json()["transactionId"]
    second = bank.pay(qr_id).get_json()["transactionId"]
    missing = bank.refund(amount=10, order="s-1", refundId="r1")
    assert missing.status_code == 400
    assert error_code(missing) == "ERROR.INVALID_REQUEST"
    ok = bank.refund(amount=10, order="s-1", refundId="r1", transactionId=first)
    assert ok.status_code == 200
    again = bank.refund(amount=1, order="s-1", refundId="r2", transactionId=first)
    assert error_code(again) == "ERROR.REFUND_INSUFFICIENT_FUNDS"
    ok = bank.refund(amount=10, order="s-1", refundId="r3", transactionId=str(second))
    assert ok.status_code == 200
    for transaction_id in (declined, 12345):
        response = bank.refund(amount=1, order="s-1", refundId="r9", transactionId=transaction_id)
        assert response.status_code == 404
        assert error_code(response) == "ERROR.NOT_FOUND"


def test_refund_errors(bank: Bank) -> None:
    unpaid = bank.dynamic(order="unpaid")
    bank.pay(unpaid, "DECLINED")
    cases = [
        ({"amount": 1, "order": "nobody", "refundId": "r"}, 404, "ERROR.NOT_FOUND"),
        ({"amount": 1, "order": "unpaid", "refundId": "r"}, 404, "ERROR.NOT_FOUND"),
        ({"amount": 1, "order": "unpaid", "refundId": "x" * 41}, 400, "ERROR.INVALID_REQUEST"),
        ({"amount": 1, "order": "unpaid", "refundId": ""}, 400, "ERROR.INVALID_REQUEST"),
        ({"amount": 1, "order": "unpaid"}, 400, "ERROR.INVALID_REQUEST"),
        ({"amount": 1, "refundId": "r"}, 400, "ERROR.INVALID_REQUEST"),
        ({"order": "unpaid", "refundId": "r"}, 400, "ERROR.INVALID_REQUEST"),
        ({"amount": 0, "order": "unpaid", "refundId": "r"}, 400, "ERROR.INVALID_REQUEST"),
        ({"amount": "0.001", "order": "unpaid", "refundId": "r"}, 400, "ERROR.INVALID_REQUEST"),
        ({"amount": 1, "order": "unpaid", "refundId": "r", "transactionId": "x"}, 400,
         "ERROR.INVALID_REQUEST"),
    ]  # fmt: skip
    for body, status, code in cases:
        response = bank.refund(**body)
        assert response.status_code == status, body
        assert error_code(response) == code, body
    unknown = bank.call("GET", "/api/sbp/v1/refund/nope")
    assert unknown.status_code == 404
    assert error_code(unknown) == "ERROR.REFUND_NOT_FOUND"
