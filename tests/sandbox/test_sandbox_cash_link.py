"""Cash links: a QRVariable activated by orders of /api/payment/v1/orders."""

from __future__ import annotations

import re
from datetime import timedelta

from .helpers import Bank, FakeClock
from .test_sandbox_qrs import error_code


def test_activate_pay_activate_again_cancel(bank: Bank) -> None:
    link = bank.variable()
    assert bank.qr(link)["qrStatus"] == "INACTIVE"
    inactive = bank.pay(link)
    assert inactive.status_code == 409
    assert error_code(inactive) == "ERROR.QR_NOT_PAYABLE"

    response = bank.activate(link, amount="250.00", comment="Чек 1",
                             qr={"id": link, "paymentDetails": "Кофе"})  # fmt: skip
    assert response.status_code == 200
    assert '"amount":250.00' in response.get_data(as_text=True)
    first = response.get_json()
    assert re.fullmatch(r"[0-9a-f-]{36}", first["id"])  # generated UUID
    assert first["status"]["value"] == "NEW"
    assert first["comment"] == "Чек 1"
    assert first["qr"] == {"id": link, "paymentDetails": "Кофе"}  # no nulls
    assert first["expirationDate"].endswith("+03:00")
    assert bank.qr(link)["qrStatus"] == "NEW"

    paid = bank.pay(link).get_json()
    assert paid["order"] == first["id"]
    assert paid["amount"] == "250.00"
    assert bank.order(first["id"]).get_json()["status"]["value"] == "PAID"
    assert bank.qr(link)["qrStatus"] == "INACTIVE"
    info = bank.call("GET", f"/api/sbp/v1/qr/{link}/payment-info").get_json()
    assert info["order"] == first["id"]
    assert info["paymentStatus"] == "SUCCESS"
    assert info["paymentPurpose"] == "Кофе"
    delete_paid = bank.call("DELETE", f"/api/payment/v1/orders/{first['id']}")
    assert delete_paid.status_code == 400
    assert error_code(delete_paid) == "ORDER_HAS_FINAL_STATUS"

    second = bank.activate(link, amount=99, id="order-2").get_json()
    assert second["id"] == "order-2"
    assert bank.qr(link)["qrStatus"] == "NEW"
    # Activating again while order-2 is open force-cancels it.
    third = bank.activate(link, amount=120, id="order-3").get_json()
    assert bank.order("order-2").get_json()["status"]["value"] == "CANCELLED"
    assert bank.pay(link).get_json()["order"] == "order-3"
    assert bank.order(third["id"]).get_json()["status"]["value"] == "PAID"

    bank.activate(link, amount=10, id="order-4")
    cancel = bank.call("DELETE", "/api/payment/v1/orders/order-4")
    assert cancel.status_code == 200
    assert cancel.get_json() == {"code": "SUCCESS"}
    assert bank.order("order-4").get_json()["status"]["value"] == "CANCELLED"
    assert bank.qr(link)["qrStatus"] == "INACTIVE"
    assert bank.pay(link).status_code == 409
    again = bank.call("DELETE", "/api/payment/v1/orders/order-4")
    assert again.status_code == 400
    assert error_code(again) == "ORDER_HAS_FINAL_STATUS"
    assert "already cancelled" in again.get_json()["message"]

    # Refund by the cash-link order id.
    assert bank.refund(amount=120, order="order-3", refundId="r-3").status_code == 200
    over = bank.refund(amount="0.01", order="order-3", refundId="r-4")
    assert error_code(over) == "ERROR.REFUND_INSUFFICIENT_FUNDS"
    unpaid = bank.refund(amount=1, order="order-4", refundId="r-5")
    assert unpaid.status_code == 404


def test_order_idempotency_and_errors(bank: Bank) -> None:
    link = bank.variable()
    first = bank.activate(link, amount="10.00", id="o-1")
    again = bank.activate(link, amount=10, id="o-1")
    assert again.status_code == 200
    assert again.get_json() == first.get_json()
    assert bank.order("o-1").get_json()["status"]["value"] == "NEW"  # not self-cancelled
    different = bank.activate(link, amount=11, id="o-1")
    assert different.status_code == 400
    assert error_code(different) == "ERROR.INVALID_REQUEST"

    dynamic = bank.dynamic(order="dyn-1")
    not_variable = bank.activate(dynamic, amount=1)
    assert not_variable.status_code == 400
    assert error_code(not_variable) == "ERROR.INVALID_REQUEST"
    unknown_qr = bank.activate("AS" + "0" * 30, amount=1)
    assert unknown_qr.status_code == 404
    assert error_code(unknown_qr) == "ERROR.NOT_FOUND"
    for body in (
        {"amount": 1},
        {"amount": 1, "qr": {}},
        {"amount": 0, "qr": {"id": link}},
        {"qr": {"id": link}},
        {"amount": 1, "id": "bad id", "qr": {"id": link}},
        {"amount": 1, "expirationDate": "2001-01-01T00:00:00+03:00", "qr": {"id": link}},
        {"amount": 1, "id": "dyn-1", "qr": {"id": link}},
    ):
        response = bank.call("POST", "/api/payment/v1/orders", body)
        assert response.status_code == 400, body
        assert error_code(response) == "ERROR.INVALID_REQUEST", body
    for method in ("GET", "DELETE"):
        response = bank.call(method, "/api/payment/v1/orders/nope")
        assert response.status_code == 404
        assert response.get_json()["code"] == "ORDER_NOT_FOUND"


def test_order_expiry(bank: Bank, fake_clock: FakeClock) -> None:
    link = bank.variable()
    created = bank.activate(link, amount=5, id="o-1").get_json()
    expires = fake_clock.now() + timedelta(minutes=5)
    assert created["expirationDate"] == expires.isoformat(timespec="microseconds")
    fake_clock.advance(5 * 60)
    status = bank.order("o-1").get_json()["status"]
    assert status["value"] == "EXPIRED"
    assert bank.qr(link)["qrStatus"] == "INACTIVE"
    assert bank.pay(link).status_code == 409
    delete = bank.call("DELETE", "/api/payment/v1/orders/o-1")
    assert error_code(delete) == "ORDER_HAS_FINAL_STATUS"
    assert "already expired" in delete.get_json()["message"]
    custom = (fake_clock.now() + timedelta(seconds=30)).isoformat()
    bank.activate(link, amount=5, id="o-2", expirationDate=custom)
    assert bank.qr(link)["qrStatus"] == "NEW"
    fake_clock.advance(31)
    assert bank.qr(link)["qrStatus"] == "INACTIVE"


def test_cancelling_the_link(bank: Bank) -> None:
    link = bank.variable()
    bank.activate(link, amount=5, id="o-1")
    assert bank.call("DELETE", f"/api/sbp/v2/qrs/{link}").status_code == 200
    assert bank.qr(link)["qrStatus"] == "CANCELLED"
    assert bank.order("o-1").get_json()["status"]["value"] == "CANCELLED"
    assert bank.activate(link, amount=5).status_code == 400
