"""Signing, money and payload helpers of the sandbox (no HTTP)."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from datetime import datetime
from decimal import Decimal

import pytest

from app.sandbox import clock
from app.sandbox.jsonio import Amount, dumps, loads
from app.sandbox.money import AmountError, format_amount, format_rub, parse_amount
from app.sandbox.nspk import build_payload, crc16, new_qr_id
from app.sandbox.signature import build_notification, sign, signature_message

VECTOR_KEY = (
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJNQTAwMDAwMDA1NTIiLCJqdGkiOiIwZTRhODI2ZC0z"
    "MTk3LTQ5YWUtYjRlYS0zZDllOGRkODIyOGEifQ.Q-AVaDBzvfkz6I8ZCVgvGIWpWTUgotRDmTcs4ysR0Qc"
)
VECTOR_MESSAGE = (
    "101.01|MA0000000552|dfe0ff08-4796-46bb-a9fb-93fcd99ce748|SUCCESS|"
    "2020-07-24T17:20:00.999232+03:00"
)
VECTOR_HEX = "1eca6a084ff8a5b4f5740e0eeab2a72d8ff981bce5b5dea75a53bf44944a8c8d"


def test_published_test_vector() -> None:
    assert sign(VECTOR_KEY, VECTOR_MESSAGE) == VECTOR_HEX


def test_signature_message_joins_with_pipes() -> None:
    message = signature_message(
        "101.01",
        "MA0000000552",
        "dfe0ff08-4796-46bb-a9fb-93fcd99ce748",
        "SUCCESS",
        "2020-07-24T17:20:00.999232+03:00",
    )
    assert message == VECTOR_MESSAGE


def test_notification_reproduces_the_vector() -> None:
    when = datetime.fromisoformat("2020-07-24T17:20:00.999232+03:00")
    body, signature = build_notification(
        secret_key=VECTOR_KEY,
        transaction_id=23,
        qr_id="AD100004BAL7227F9BNP6KNE007J9B3K",
        sbp_merchant_id="MA0000000552",
        merchant_id=123,
        amount_kopecks=10101,
        transaction_date=when,
        payment_status="SUCCESS",
        additional_info="Доп. информация",
        order="dfe0ff08-4796-46bb-a9fb-93fcd99ce748",
        create_date=when,
    )
    assert signature == VECTOR_HEX
    assert '"amount":101.01,' in body
    pairs = json.loads(body, object_pairs_hook=list)
    assert [key for key, _ in pairs] == [
        "transactionId",
        "qrId",
        "sbpMerchantId",
        "merchantId",
        "amount",
        "currency",
        "transactionDate",
        "paymentStatus",
        "additionalInfo",
        "order",
        "createDate",
    ]


def test_whole_rubles_are_signed_with_two_decimals() -> None:
    when = clock.now()
    body, signature = build_notification(
        secret_key="k",
        transaction_id=1,
        qr_id="AD" + "0" * 30,
        sbp_merchant_id="MA0000000552",
        merchant_id=552,
        amount_kopecks=10000,
        transaction_date=when,
        payment_status="DECLINED",
        additional_info=None,
        order="o-1",
        create_date=when,
    )
    assert '"amount":100.00,' in body
    assert '"additionalInfo":null' in body
    data = json.loads(body, parse_float=str)
    message = "|".join(
        [data["amount"], data["sbpMerchantId"], data["order"], data["paymentStatus"],
         data["transactionDate"]]
    )  # fmt: skip
    expected = hmac.new(b"k", message.encode(), hashlib.sha256).hexdigest()
    assert signature == expected
    assert data["transactionDate"].endswith("+03:00")


@pytest.mark.parametrize(
    ("value", "kopecks"),
    [
        (Decimal("101.01"), 10101),
        (Decimal("1.500"), 150),
        (100, 10000),
        ("0.01", 1),
        ("1250", 125000),
        (" 99.90 ", 9990),
    ],
)
def test_parse_amount_accepts(value: object, kopecks: int) -> None:
    assert parse_amount(value) == kopecks


@pytest.mark.parametrize(
    "value",
    [0, -1, "0", "-5", Decimal("10.001"), "10.001", "abc", "", True, None, 1.5, "1e2",
     Decimal("NaN"), Decimal("Infinity"), [1]],
)  # fmt: skip
def test_parse_amount_refuses(value: object) -> None:
    with pytest.raises(AmountError):
        parse_amount(value)


def test_amount_formatting() -> None:
    assert format_amount(10000) == "100.00"
    assert format_amount(1) == "0.01"
    assert format_rub(125000) == "1 250,00 ₽"
    assert format_rub(123456789) == "1 234 567,89 ₽"
    assert dumps({"a": Amount(5), "b": [True, None, "я"]}) == '{"a":0.05,"b":[true,null,"я"]}'


def test_loads_keeps_decimals_and_refuses_nan() -> None:
    assert loads('{"amount": 101.01}') == {"amount": Decimal("101.01")}
    with pytest.raises(ValueError):
        loads('{"amount": NaN}')


def test_qr_ids_and_payloads() -> None:
    dynamic = new_qr_id("QRDynamic")
    static = new_qr_id("QRStatic")
    assert re.fullmatch(r"AD[A-Z0-9]{30}", dynamic)
    assert re.fullmatch(r"AS[A-Z0-9]{30}", static)
    assert re.fullmatch(r"AS[A-Z0-9]{30}", new_qr_id("QRVariable"))
    payload = build_payload(dynamic, "QRDynamic", 10101)
    assert re.fullmatch(
        rf"https://qr\.nspk\.ru/{dynamic}\?type=02&bank=100000000007&sum=10101&cur=RUB&crc=[0-9A-F]{{4}}",
        payload,
    )
    rest = payload.rsplit("&crc=", 1)[0]
    assert payload.endswith(f"{crc16(rest.encode()):04X}")
    assert crc16(b"123456789") == 0x29B1  # CRC-16/CCITT-FALSE check value
    assert "sum=" not in build_payload(static, "QRStatic", None)
    assert "type=01" in build_payload(static, "QRStatic", 500)
    assert "sum=500&" in build_payload(static, "QRStatic", 500)
    assert "sum=" not in build_payload(static, "QRVariable", None)
