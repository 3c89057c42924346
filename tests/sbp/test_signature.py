"""The bank's callback signature: the published test vector, tampering, exact amounts."""

import json

import pytest

from app.httpclient import ProviderError, dumps
from app.sbp.provider import SignatureError
from app.sbp.raiffeisen import (
    RaiffeisenClient,
    ecom_notification_signature,
    notification_signature,
)

# Raiffeisen-DGTL/sbp-sdk-java, src/test/.../TestData.java (the bank's signature test vector).
VECTOR_KEY = (
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJNQTAwMDAwMDA1NTIiLCJqdGkiOiIwZTRhODI2ZC0z"
    "MTk3LTQ5YWUtYjRlYS0zZDllOGRkODIyOGEifQ.Q-AVaDBzvfkz6I8ZCVgvGIWpWTUgotRDmTcs4ysR0Qc"
)
VECTOR_BODY = (
    b'{"transactionId":17998,"qrId":"AS1000408BSPMRDI8IHBGO4DFQAISU9O",'
    b'"sbpMerchantId":"MA0000000552","merchantId":123,"amount":101.01,"currency":"RUB",'
    b'"transactionDate":"2020-07-24T17:20:00.999232+03:00","paymentStatus":"SUCCESS",'
    b'"additionalInfo":null,"order":"dfe0ff08-4796-46bb-a9fb-93fcd99ce748",'
    b'"createDate":"2020-07-24T17:19:58+03:00"}'
)
VECTOR_SIGNATURE = "1eca6a084ff8a5b4f5740e0eeab2a72d8ff981bce5b5dea75a53bf44944a8c8d"


@pytest.fixture
def client():
    return RaiffeisenClient("http://127.0.0.1:9", "MA0000000552", VECTOR_KEY)


def test_published_vector_verifies_and_parses(client):
    info = client.parse_notification(VECTOR_BODY, VECTOR_SIGNATURE)
    assert info.amount_kopecks == 10101
    assert info.transaction_id == "17998"
    assert info.qr_id == "AS1000408BSPMRDI8IHBGO4DFQAISU9O"
    assert info.order == "dfe0ff08-4796-46bb-a9fb-93fcd99ce748"
    assert info.status == "SUCCESS"
    assert info.transaction_date.isoformat() == "2020-07-24T17:20:00.999232+03:00"


def test_signature_of_the_vector_fields():
    fields = {
        "amount": "101.01", "sbpMerchantId": "MA0000000552",
        "order": "dfe0ff08-4796-46bb-a9fb-93fcd99ce748", "paymentStatus": "SUCCESS",
        "transactionDate": "2020-07-24T17:20:00.999232+03:00",
    }
    assert notification_signature(VECTOR_KEY, fields) == VECTOR_SIGNATURE


def test_uppercase_hex_is_accepted(client):
    assert client.parse_notification(VECTOR_BODY, VECTOR_SIGNATURE.upper()).amount_kopecks == 10101


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b'"amount":101.01', b'"amount":1010.1'),
        (b'"amount":101.01', b'"amount":101.02'),
        (b'"paymentStatus":"SUCCESS"', b'"paymentStatus":"DECLINED"'),
        (b'"order":"dfe0ff08', b'"order":"dfe0ff09'),
        (b"17:20:00.999232", b"17:20:01.999232"),
    ],
)
def test_tampered_signed_field_is_refused(client, old, new):
    tampered = VECTOR_BODY.replace(old, new)
    assert tampered != VECTOR_BODY
    with pytest.raises(SignatureError):
        client.parse_notification(tampered, VECTOR_SIGNATURE)


def test_missing_or_wrong_signature_or_key_is_refused(client):
    with pytest.raises(SignatureError):
        client.parse_notification(VECTOR_BODY, None)
    with pytest.raises(SignatureError):
        client.parse_notification(VECTOR_BODY, "")
    with pytest.raises(SignatureError):
        client.parse_notification(VECTOR_BODY, VECTOR_SIGNATURE[:-1] + "0")
    other = RaiffeisenClient("http://127.0.0.1:9", "MA0000000552", VECTOR_KEY + "x")
    with pytest.raises(SignatureError):
        other.parse_notification(VECTOR_BODY, VECTOR_SIGNATURE)


@pytest.mark.parametrize("amount_text", ["100", "100.0", "100.00"])
def test_amount_is_signed_as_sent_not_as_a_float(client, amount_text):
    """The same number written differently signs differently: we sign the text we got."""
    body = json.loads(VECTOR_BODY)
    raw = dumps({**body, "amount": "@@"}).replace('"@@"', amount_text).encode()
    fields = {"amount": amount_text, "sbpMerchantId": "MA0000000552", "order": body["order"],
              "paymentStatus": "SUCCESS", "transactionDate": body["transactionDate"]}
    signature = notification_signature(VECTOR_KEY, fields)
    assert client.parse_notification(raw, signature).amount_kopecks == 10000
    other_text = {"100": "100.00", "100.0": "100", "100.00": "100"}[amount_text]
    with pytest.raises(SignatureError):
        client.parse_notification(
            raw.replace(f'"amount": {amount_text},'.encode(), f'"amount": {other_text},'.encode()),
            signature,
        )


def test_notification_for_another_merchant_is_refused():
    stranger = RaiffeisenClient("http://127.0.0.1:9", "MA0000000999", VECTOR_KEY)
    with pytest.raises(ProviderError) as refused:
        stranger.parse_notification(VECTOR_BODY, VECTOR_SIGNATURE)
    assert refused.value.code == "bad_payload"


# The ecom (orders) notification, as a paid cash-link order brings it.
# Vector of Raiffeisen-DGTL/ecom-sdk-net, Raiffeisen.Ecom.Test/EcomTest.Validation.cs: key
# "testSecretKey", publicId "testPublicId", its body and expected (uppercase) hex.
ECOM_KEY, ECOM_PUBLIC_ID = "testSecretKey", "testPublicId"
ECOM_SIGNATURE = "1CD05C590E5786644295F3AE6BAE2F4CD1BFE1E366969FAA3E1C5EEF53D7DB06"
ECOM_ACQUIRING_BODY = """{
    "event": "payment",
    "transaction": {
        "id": 120059,
        "orderId": "testOrder",
        "status": {
            "value": "SUCCESS",
            "date": "2019-07-11T17:45:13+03:00"
        },
        "paymentMethod": "acquiring",
        "paymentParams": {
            "rrn": 935014591810,
            "authCode": 25984
        },
        "amount": 12500.5,
        "comment": "Покупка шоколадного торта",
        "extra": {
            "additionalInfo": "Sweet Cake"
        }
    }
}""".encode()
# ecom_en.yaml (Raiffeisen-DGTL/ecom-API) x-webhooks example "sbp": the same signed fields.
ECOM_SBP_BODY = (
    '{"event":"payment","transaction":{"id":120059,"orderId":"testOrder",'
    '"status":{"value":"SUCCESS","date":"2019-07-11T17:45:13+03:00"},"paymentMethod":"sbp",'
    '"paymentParams":{"qrId":"AD100051KNSNR64I98CRUJUASC9M72QT"},"amount":12500.5,'
    '"comment":"Покупка шоколадного торта","extra":{"additionalInfo":"Sweet Cake"}}}'
).encode()


@pytest.fixture
def ecom_client():
    return RaiffeisenClient("http://127.0.0.1:9", "MA0000000552", ECOM_KEY,
                            public_id=ECOM_PUBLIC_ID)


def test_ecom_sdk_vectors():
    # ecom-sdk-java CryptoUtilsTest: its control line, key and hex.
    assert ecom_notification_signature(
        "test_secret_key", amount="1", public_id="test_public_id",
        order="test_transaction_order_id", status="test_transaction_status_value",
        status_date="test_transaction_status_date",
    ) == "96c4b6fa97866f01acabcf32116e3e1347e0e5769b8587eeb877b79180eea4cb"
    assert ecom_notification_signature(
        ECOM_KEY, amount="12500.5", public_id=ECOM_PUBLIC_ID, order="testOrder",
        status="SUCCESS", status_date="2019-07-11T17:45:13+03:00",
    ) == ECOM_SIGNATURE.lower()


def test_ecom_notification_of_a_cash_link_payment_verifies_and_parses(ecom_client):
    info = ecom_client.parse_notification(ECOM_SBP_BODY, ECOM_SIGNATURE)
    assert (info.qr_id, info.order, info.status) == (
        "AD100051KNSNR64I98CRUJUASC9M72QT", "testOrder", "SUCCESS")
    assert (info.amount_kopecks, info.transaction_id) == (1250050, "120059")
    assert info.transaction_date.isoformat() == "2019-07-11T17:45:13+03:00"
    # The SDK's own body (a card payment) verifies with the same signature; it has no QR.
    card = ecom_client.parse_notification(ECOM_ACQUIRING_BODY, ECOM_SIGNATURE.lower())
    assert (card.qr_id, card.order, card.amount_kopecks) == ("", "testOrder", 1250050)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b'"amount":12500.5', b'"amount":12500.50'),
        (b'"amount":12500.5', b'"amount":1250.5'),
        (b'"orderId":"testOrder"', b'"orderId":"testOrder2"'),
        (b'"value":"SUCCESS"', b'"value":"NOT_FOUND"'),
        (b"17:45:13+03:00", b"17:45:14+03:00"),
    ],
)
def test_tampered_ecom_notification_is_refused(ecom_client, old, new):
    tampered = ECOM_SBP_BODY.replace(old, new)
    assert tampered != ECOM_SBP_BODY
    with pytest.raises(SignatureError):
        ecom_client.parse_notification(tampered, ECOM_SIGNATURE)


def test_ecom_notification_needs_its_own_key_and_merchant(ecom_client):
    # The merchant id is part of what is signed: another publicId does not verify.
    other_merchant = RaiffeisenClient("http://127.0.0.1:9", "MA0000000552", ECOM_KEY)
    with pytest.raises(SignatureError):
        other_merchant.parse_notification(ECOM_SBP_BODY, ECOM_SIGNATURE)
    other_key = RaiffeisenClient("http://127.0.0.1:9", "MA0000000552", ECOM_KEY + "x",
                                 public_id=ECOM_PUBLIC_ID)
    with pytest.raises(SignatureError):
        other_key.parse_notification(ECOM_SBP_BODY, ECOM_SIGNATURE)
    # The SBP signature of the SBP vector does not pass for an ecom body, nor the reverse.
    with pytest.raises(SignatureError):
        ecom_client.parse_notification(ECOM_SBP_BODY, VECTOR_SIGNATURE)
    with pytest.raises(SignatureError):
        RaiffeisenClient("http://127.0.0.1:9", "MA0000000552", VECTOR_KEY).parse_notification(
            VECTOR_BODY, ECOM_SIGNATURE)


def _signed_ecom(transaction: dict, *, event="payment") -> tuple[bytes, str]:
    status = transaction.get("status") or {}
    raw = dumps({"event": event, "transaction": transaction}).encode()
    amount = "" if transaction.get("amount") is None else str(transaction["amount"])
    return raw, ecom_notification_signature(
        ECOM_KEY, amount=amount, public_id=ECOM_PUBLIC_ID,
        order=transaction.get("orderId") or "", status=status.get("value") or "",
        status_date=status.get("date") or "",
    )


@pytest.mark.parametrize(
    "transaction",
    [
        {"orderId": "o-1", "status": {"value": "SUCCESS", "date": "2026-01-01T10:00:00+03:00"}},
        {"amount": 10, "status": {"value": "SUCCESS", "date": "2026-01-01T10:00:00+03:00"}},
        {"amount": 10, "orderId": "o-1", "status": {"date": "2026-01-01T10:00:00+03:00"}},
        {"amount": "abc", "orderId": "o-1",
         "status": {"value": "SUCCESS", "date": "2026-01-01T10:00:00+03:00"}},
    ],
)
def test_malformed_but_signed_ecom_notification_is_bad_payload(ecom_client, transaction):
    raw, signature = _signed_ecom(transaction)
    with pytest.raises(ProviderError) as refused:
        ecom_client.parse_notification(raw, signature)
    assert refused.value.code == "bad_payload"
    assert not isinstance(refused.value, SignatureError)


def test_ecom_body_without_transaction_or_event_is_bad_payload(ecom_client):
    for raw in (b'{"event":"payment"}', b'{"event":"payment","transaction":[1]}'):
        with pytest.raises(ProviderError) as refused:
            ecom_client.parse_notification(raw, "0" * 64)
        assert refused.value.code == "bad_payload"
    raw, signature = _signed_ecom(
        {"amount": 10, "orderId": "o-1",
         "status": {"value": "SUCCESS", "date": "2026-01-01T10:00:00+03:00"}},
        event="refund",
    )
    with pytest.raises(ProviderError) as not_payment:
        ecom_client.parse_notification(raw, signature)
    assert not_payment.value.code == "bad_payload"

@pytest.mark.parametrize("signature", ["é" * 64, VECTOR_SIGNATURE[:-1] + "\xff", "ä"])
def test_a_non_ascii_signature_is_a_wrong_signature(client, signature):
    with pytest.raises(SignatureError):
        client.parse_notification(VECTOR_BODY, signature)


def test_the_callback_answers_400_to_a_non_ascii_signature(app):
    response = app.test_client().post(
        "/sbp/callback", data=VECTOR_BODY, content_type="application/json",
        headers={"X-Api-Signature-SHA256": "é" * 64},
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "bad_signature"
