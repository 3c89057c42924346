"""The bank's callback signature: the published test vector, tampering, exact amounts."""

import json

import pytest

from app.httpclient import ProviderError, dumps
from app.sbp.provider import SignatureError
from app.sbp.raiffeisen import RaiffeisenClient, notification_signature

# Raiffeisen-DGTL/sbp-sdk-java, src/test/.../TestData.java (reference/sbp.md §1.6).
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
