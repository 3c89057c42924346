"""QR registration, info, cancellation, image and payment-info (Flask test client)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from app.sandbox import clock

from .helpers import AUTH, MERCHANT_ID, Bank, FakeClock


def error_code(response) -> str:
    body = response.get_json()
    assert set(body) == {"code", "message"}, body
    return body["code"]


# ---------------------------------------------------------------- auth and envelope


def test_registration_without_or_with_bearer(bank: Bank) -> None:
    body = {"sbpMerchantId": MERCHANT_ID, "qrType": "QRStatic", "order": "s-1"}
    assert bank.call("POST", "/api/sbp/v2/qrs", body, auth=False).status_code == 200
    assert bank.call("POST", "/api/sbp/v2/qrs", {**body, "order": "s-2"}).status_code == 200
    wrong = bank.call(
        "POST", "/api/sbp/v2/qrs", body, auth=False, headers={"Authorization": "Bearer nope"}
    )
    assert wrong.status_code == 401
    assert error_code(wrong) == "ERROR.UNAUTHORIZED"


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic dGVzdA==", "test-secret-key"])
def test_other_calls_require_the_bearer(bank: Bank, header: str | None) -> None:
    qr_id = bank.dynamic()
    headers = {"Authorization": header} if header else {}
    for method, path in [
        ("GET", f"/api/sbp/v2/qrs/{qr_id}"),
        ("DELETE", f"/api/sbp/v2/qrs/{qr_id}"),
        ("GET", f"/api/sbp/v1/qr/{qr_id}/payment-info"),
        ("GET", "/api/sbp/v1/refund/r-1"),
        ("GET", "/api/payment/v1/orders/o-1"),
    ]:
        response = bank.call(method, path, auth=False, headers=headers)
        assert response.status_code == 401, path
        assert error_code(response) == "ERROR.UNAUTHORIZED"
    for path, body in [
        ("/api/sbp/v1/refund", {"amount": 1, "order": "order-1", "refundId": "r"}),
        ("/api/payment/v1/orders", {"amount": 1, "qr": {"id": qr_id}}),
        ("/api/settings/v1/callback", {"callbackUrl": "http://127.0.0.1:1/cb"}),
    ]:
        response = bank.call("POST", path, body, auth=False, headers=headers)
        assert response.status_code == 401, path


def test_malformed_json(bank: Bank) -> None:
    for data in [b"{not json", b"", b"[1, 2]", b'{"amount": NaN}']:
        response = bank.client.post(
            "/api/sbp/v2/qrs", data=data, headers=AUTH, content_type="application/json"
        )
        assert response.status_code == 400
        assert error_code(response) == "ERROR.INVALID_REQUEST"


def test_unknown_route_and_method_are_json(bank: Bank) -> None:
    response = bank.call("GET", "/api/sbp/v9/nothing")
    assert response.status_code == 404
    assert error_code(response) == "ERROR.NOT_FOUND"
    response = bank.call("PUT", "/api/sbp/v2/qrs")
    assert response.status_code == 405
    assert error_code(response) == "ERROR.INVALID_REQUEST"


# ---------------------------------------------------------------- registration


def test_register_dynamic(bank: Bank) -> None:
    response = bank.register(qrType="QRDynamic", order="order-1", amount=1250, currency="RUB")
    assert response.status_code == 200
    body = response.get_json()
    assert list(body) == ["code", "qrId", "payload", "qrUrl"]
    assert body["code"] == "SUCCESS"
    qr_id = body["qrId"]
    assert re.fullmatch(r"AD[A-Z0-9]{30}", qr_id)
    assert re.fullmatch(
        rf"https://qr\.nspk\.ru/{qr_id}\?type=02&bank=100000000007&sum=125000&cur=RUB"
        r"&crc=[0-9A-F]{4}",
        body["payload"],
    )
    assert body["qrUrl"] == f"http://127.0.0.1:8081/api/sbp/v1/qr/{qr_id}/image"

    info = bank.call("GET", f"/api/sbp/v2/qrs/{qr_id}")
    assert '"amount":1250.00' in info.get_data(as_text=True)
    data = info.get_json()
    assert data["qrStatus"] == "NEW"
    assert data["qrType"] == "QRDynamic"
    assert data["order"] == "order-1"
    assert data["payload"] == body["payload"]
    expires = clock.parse_iso(data["qrExpirationDate"])
    assert data["qrExpirationDate"].endswith("+03:00")
    # default TTL of a dynamic QR is 3 days
    assert timedelta(days=3) - timedelta(minutes=1) < expires - clock.now() <= timedelta(days=3)


def test_register_static_and_variable_payloads(bank: Bank) -> None:
    fixed = bank.register(qrType="QRStatic", order="s-fixed", amount="99.90", currency="RUB")
    open_sum = bank.register(qrType="QRStatic", order="s-open")
    variable = bank.register(qrType="QRVariable", qrDescription="Касса 1")
    for response in (fixed, open_sum, variable):
        assert response.status_code == 200
        assert re.fullmatch(r"AS[A-Z0-9]{30}", response.get_json()["qrId"])
        assert "type=01&bank=100000000007" in response.get_json()["payload"]
    assert "&sum=9990&cur=RUB&crc=" in fixed.get_json()["payload"]
    assert "sum=" not in open_sum.get_json()["payload"]
    assert "sum=" not in variable.get_json()["payload"]
    info = bank.qr(variable.get_json()["qrId"])
    assert info["qrStatus"] == "INACTIVE"
    assert info["qrType"] == "QRVariable"
    assert "amount" not in info
    # Required in the v2 info: a QR registered without an expiry is valid for a year.
    expires = clock.parse_iso(info["qrExpirationDate"])
    assert timedelta(days=364) < expires - clock.now() <= timedelta(days=365)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"qrType": "QRDynamic", "order": "o", "amount": 1, "currency": "RUB"},
         "ERROR.SBP_MERCHANT_ID_IS_MISSING"),
        ({"sbpMerchantId": "", "qrType": "QRDynamic", "order": "o", "amount": 1,
          "currency": "RUB"}, "ERROR.SBP_MERCHANT_ID_IS_MISSING"),
        ({"sbpMerchantId": "MA0000000999", "qrType": "QRDynamic", "order": "o", "amount": 1,
          "currency": "RUB"}, "ERROR.MERCHANT_NOT_REGISTERED"),
        ({"qrType": "QRWhatever", "order": "o"}, "ERROR.INVALID_REQUEST"),
        ({"qrType": "QRDynamic", "amount": 1, "currency": "RUB"}, "ERROR.INVALID_ORDER"),
        ({"qrType": "QRStatic"}, "ERROR.INVALID_ORDER"),
        ({"qrType": "QRStatic", "order": "x" * 41}, "ERROR.INVALID_ORDER"),
        ({"qrType": "QRStatic", "order": ""}, "ERROR.INVALID_ORDER"),
        ({"qrType": "QRStatic", "order": "bad order"}, "ERROR.INVALID_ORDER"),
        ({"qrType": "QRStatic", "order": "заказ"}, "ERROR.INVALID_ORDER"),
        ({"qrType": "QRStatic", "order": 12}, "ERROR.INVALID_ORDER"),
        ({"qrType": "QRDynamic", "order": "o"}, "ERROR.DYNAMIC_QR_WITHOUT_AMOUNT"),
        ({"qrType": "QRDynamic", "order": "o", "amount": 0, "currency": "RUB"},
         "ERROR.INVALID_REQUEST"),
        ({"qrType": "QRDynamic", "order": "o", "amount": -5, "currency": "RUB"},
         "ERROR.INVALID_REQUEST"),
        ({"qrType": "QRDynamic", "order": "o", "amount": "10.001", "currency": "RUB"},
         "ERROR.INVALID_REQUEST"),
        ({"qrType": "QRDynamic", "order": "o", "amount": "ten", "currency": "RUB"},
         "ERROR.INVALID_REQUEST"),
        ({"qrType": "QRDynamic", "order": "o", "amount": 10, "currency": "USD"},
         "ERROR.INVALID_REQUEST"),
        ({"qrType": "QRDynamic", "order": "o", "amount": 10}, "ERROR.INVALID_REQUEST"),
        ({"qrType": "QRVariable", "amount": 10, "currency": "RUB"}, "ERROR.INVALID_REQUEST"),
        ({"qrType": "QRStatic", "order": "o", "paymentDetails": "x" * 186},
         "ERROR.INVALID_REQUEST"),
        ({"qrType": "QRStatic", "order": "o", "additionalInfo": "x" * 141},
         "ERROR.INVALID_REQUEST"),
        ({"qrType": "QRStatic", "order": "o", "account": "123"}, "ERROR.INVALID_REQUEST"),
        ({"qrType": "QRDynamic", "order": "o", "amount": 1, "currency": "RUB",
          "qrExpirationDate": "2020-01-01T00:00:00+03:00"}, "ERROR.QR_EXPIRATION_DATE_NOT_VALID"),
        ({"qrType": "QRDynamic", "order": "o", "amount": 1, "currency": "RUB",
          "qrExpirationDate": "2999-01-01T00:00:00"}, "ERROR.QR_EXPIRATION_DATE_NOT_VALID"),
        ({"qrType": "QRDynamic", "order": "o", "amount": 1, "currency": "RUB",
          "qrExpirationDate": "tomorrow"}, "ERROR.QR_EXPIRATION_DATE_NOT_VALID"),
    ],
)  # fmt: skip
def test_registration_errors(bank: Bank, body: dict, code: str) -> None:
    if "sbpMerchantId" not in body and code != "ERROR.SBP_MERCHANT_ID_IS_MISSING":
        body = {"sbpMerchantId": MERCHANT_ID, **body}
    response = bank.call("POST", "/api/sbp/v2/qrs", body)
    assert response.status_code == 400
    assert error_code(response) == code


def test_amount_as_exact_json_number(bank: Bank) -> None:
    response = bank.client.post(
        "/api/sbp/v2/qrs",
        data=f'{{"sbpMerchantId":"{MERCHANT_ID}","qrType":"QRDynamic","order":"o-1",'
        '"amount":101.01,"currency":"RUB"}',
        headers=AUTH,
        content_type="application/json",
    )
    assert response.status_code == 200
    assert "&sum=10101&" in response.get_json()["payload"]
    bad = bank.client.post(
        "/api/sbp/v2/qrs",
        data=f'{{"sbpMerchantId":"{MERCHANT_ID}","qrType":"QRDynamic","order":"o-2",'
        '"amount":101.011,"currency":"RUB"}',
        headers=AUTH,
        content_type="application/json",
    )
    assert bad.status_code == 400


def test_expiration_date_with_offset_is_kept(bank: Bank) -> None:
    moment = (clock.now() + timedelta(hours=2)).replace(microsecond=0)
    utc_text = moment.astimezone(clock.MSK).strftime("%Y-%m-%dT%H:%M:%S+03:00")
    qr_id = bank.dynamic(qrExpirationDate=utc_text)
    assert clock.parse_iso(bank.qr(qr_id)["qrExpirationDate"]) == moment


def test_idempotent_re_registration(bank: Bank) -> None:
    first = bank.register(qrType="QRDynamic", order="order-7", amount="100.00").get_json()
    again = bank.register(qrType="QRDynamic", order="order-7", amount=100).get_json()
    assert again == first
    # A declined attempt does not make the order "paid".
    assert bank.pay(first["qrId"], "DECLINED").status_code == 200
    assert bank.register(qrType="QRDynamic", order="order-7", amount=100).get_json() == first
    # Different data under the same order is refused.
    other = bank.register(qrType="QRDynamic", order="order-7", amount=101)
    assert other.status_code == 400
    assert error_code(other) == "ERROR.INVALID_REQUEST"
    # Once paid, the order number is taken.
    assert bank.pay(first["qrId"]).status_code == 200
    taken = bank.register(qrType="QRDynamic", order="order-7", amount=100)
    assert taken.status_code == 400
    assert error_code(taken) == "ERROR.ORDER_NUMBER_ALREADY_REGISTERED"


def test_static_order_taken_after_payment(bank: Bank) -> None:
    qr_id = bank.static(order="s-1", amount=10, currency="RUB")
    assert bank.static(order="s-1", amount=10, currency="RUB") == qr_id
    bank.pay(qr_id)
    response = bank.register(qrType="QRStatic", order="s-1", amount=10)
    assert error_code(response) == "ERROR.ORDER_NUMBER_ALREADY_REGISTERED"


# ---------------------------------------------------------------- status, cancel, expiry


def test_dynamic_lifecycle_and_cancel(bank: Bank) -> None:
    qr_id = bank.dynamic()
    assert bank.pay(qr_id, "DECLINED").get_json()["paymentStatus"] == "DECLINED"
    assert bank.qr(qr_id)["qrStatus"] == "NEW"
    assert bank.pay(qr_id).get_json()["paymentStatus"] == "SUCCESS"
    assert bank.qr(qr_id)["qrStatus"] == "PAID"
    again = bank.pay(qr_id)
    assert again.status_code == 409
    assert error_code(again) == "ERROR.QR_NOT_PAYABLE"
    delete = bank.call("DELETE", f"/api/sbp/v2/qrs/{qr_id}")
    assert delete.status_code == 400
    assert error_code(delete) == "ORDER_HAS_FINAL_STATUS"

    other = bank.dynamic(order="order-2")
    delete = bank.call("DELETE", f"/api/sbp/v2/qrs/{other}")
    assert delete.status_code == 200
    assert delete.get_json() == {"code": "SUCCESS"}
    assert bank.qr(other)["qrStatus"] == "CANCELLED"
    assert bank.pay(other).status_code == 409
    repeat = bank.call("DELETE", f"/api/sbp/v2/qrs/{other}")
    assert repeat.status_code == 400
    assert error_code(repeat) == "ORDER_HAS_FINAL_STATUS"
    assert "cancelled" in repeat.get_json()["message"]


def test_static_cancel(bank: Bank) -> None:
    qr_id = bank.static(amount=5, currency="RUB")
    bank.pay(qr_id)
    assert bank.call("DELETE", f"/api/sbp/v2/qrs/{qr_id}").status_code == 200
    assert bank.qr(qr_id)["qrStatus"] == "CANCELLED"
    assert bank.pay(qr_id).status_code == 409


def test_unknown_qr(bank: Bank) -> None:
    unknown = "AD" + "X" * 30
    for method, path in [
        ("GET", f"/api/sbp/v2/qrs/{unknown}"),
        ("DELETE", f"/api/sbp/v2/qrs/{unknown}"),
        ("GET", f"/api/sbp/v1/qr/{unknown}/payment-info"),
        ("GET", f"/api/sbp/v1/qr/{unknown}/image"),
    ]:
        response = bank.call(method, path)
        assert response.status_code == 404, path
        assert error_code(response) == "ERROR.NOT_FOUND"
    response = bank.pay(unknown)
    assert response.status_code == 404
    assert error_code(response) == "ERROR.NOT_FOUND"


def test_expiry_with_fake_clock(bank: Bank, fake_clock: FakeClock) -> None:
    expires = (fake_clock.now() + timedelta(seconds=60)).isoformat()
    qr_id = bank.dynamic(qrExpirationDate=expires)
    default_ttl = bank.dynamic(order="order-2")
    assert bank.qr(qr_id)["qrStatus"] == "NEW"
    fake_clock.advance(61)
    assert bank.qr(qr_id)["qrStatus"] == "EXPIRED"
    assert bank.qr(default_ttl)["qrStatus"] == "NEW"
    response = bank.pay(qr_id)
    assert response.status_code == 409
    assert "expired" in response.get_json()["message"]
    delete = bank.call("DELETE", f"/api/sbp/v2/qrs/{qr_id}")
    assert error_code(delete) == "ORDER_HAS_FINAL_STATUS"
    assert "expired" in delete.get_json()["message"]
    fake_clock.advance(3 * 24 * 3600)
    assert bank.qr(default_ttl)["qrStatus"] == "EXPIRED"


def test_expiry_with_real_time(bank: Bank) -> None:
    expires = (clock.now() + timedelta(seconds=0.3)).isoformat()
    qr_id = bank.dynamic(qrExpirationDate=expires)
    assert bank.qr(qr_id)["qrStatus"] == "NEW"
    import time

    time.sleep(0.35)
    assert bank.qr(qr_id)["qrStatus"] == "EXPIRED"


# ---------------------------------------------------------------- image and payment-info


def test_qr_image_is_png(bank: Bank) -> None:
    qr_id = bank.dynamic()
    response = bank.call("GET", f"/api/sbp/v1/qr/{qr_id}/image", auth=False)
    assert response.status_code == 200
    assert response.mimetype == "image/png"
    assert response.data.startswith(b"\x89PNG\r\n\x1a\n")


def test_payment_info(bank: Bank) -> None:
    qr_id = bank.dynamic(order="order-9", amount="250.50", paymentDetails="Заказ 9",
                         additionalInfo="cart-9")  # fmt: skip
    info = bank.call("GET", f"/api/sbp/v1/qr/{qr_id}/payment-info").get_json()
    assert info["paymentStatus"] == "NO_INFO"
    assert "transactionId" not in info
    assert info["order"] == "order-9"
    assert info["sbpMerchantId"] == MERCHANT_ID
    assert info["merchantId"] == 552
    assert info["currency"] == "RUB"

    declined = bank.pay(qr_id, "DECLINED").get_json()
    info = bank.call("GET", f"/api/sbp/v1/qr/{qr_id}/payment-info").get_json()
    assert info["paymentStatus"] == "DECLINED"
    assert info["transactionId"] == declined["transactionId"]

    paid = bank.pay(qr_id).get_json()
    assert paid["transactionId"] == declined["transactionId"] + 1
    response = bank.call("GET", f"/api/sbp/v1/qr/{qr_id}/payment-info")
    assert '"amount":250.50' in response.get_data(as_text=True)
    info = response.get_json()
    assert info["paymentStatus"] == "SUCCESS"
    assert info["transactionId"] == paid["transactionId"]
    assert info["paymentPurpose"] == "Заказ 9"
    assert info["additionalInfo"] == "cart-9"
    for key in ("createDate", "transactionDate", "qrExpirationDate"):
        assert info[key].endswith("+03:00")
    assert set(info) == {
        "code", "additionalInfo", "paymentPurpose", "amount", "createDate", "currency",
        "merchantId", "order", "paymentStatus", "qrId", "sbpMerchantId", "transactionDate",
        "transactionId", "qrExpirationDate",
    }  # fmt: skip


def test_static_paid_twice(bank: Bank) -> None:
    qr_id = bank.static(amount="100.00", currency="RUB")
    first = bank.pay(qr_id).get_json()
    second = bank.pay(qr_id).get_json()
    assert first["transactionId"] != second["transactionId"]
    assert first["amount"] == second["amount"] == "100.00"
    assert bank.qr(qr_id)["qrStatus"] == "NEW"
    info = bank.call("GET", f"/api/sbp/v1/qr/{qr_id}/payment-info").get_json()
    assert info["transactionId"] == second["transactionId"]


def test_open_sum_static_and_amount_override(bank: Bank) -> None:
    open_qr = bank.static(order="open")
    missing = bank.pay(open_qr)
    assert missing.status_code == 400
    assert error_code(missing) == "ERROR.INVALID_REQUEST"
    assert bank.pay(open_qr, amount="55.50").get_json()["amount"] == "55.50"
    assert bank.pay(open_qr, amount="10").get_json()["amount"] == "10.00"
    dynamic = bank.dynamic(order="override", amount="100.00")
    paid = bank.pay(dynamic, amount="99.00").get_json()
    assert paid == {
        "transactionId": paid["transactionId"],
        "paymentStatus": "SUCCESS",
        "amount": "99.00",
        "qrId": dynamic,
        "order": "override",
    }
    maybe = bank.client.post(f"/sandbox/qrs/{dynamic}/pay", json={"status": "MAYBE"})
    assert maybe.status_code == 400
