"""Malformed and hostile input to the constructor API: each is a 4xx with a stable code and
a Russian message, nothing is created, and nothing is ever a 500."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import Order
from tests.constructor.api_support import CREATE, OFFLINE, checked, new_key


@pytest.fixture
def app(make_app):
    with (app := make_app(**OFFLINE)).app_context():
        yield app


@pytest.fixture
def call(app):
    key = new_key(app)
    client = app.test_client()

    def post(expect_status: int, **kwargs) -> dict:
        response = client.post("/api/v1/payments", headers={"X-Api-Key": key}, **kwargs)
        answer = checked(app, response, *CREATE)
        assert response.status_code == expect_status, answer
        return answer

    return post


def _count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Order))


REFUSED = [
    ({"amount": "-100"}, "invalid_amount"),
    ({"amount": "0"}, "invalid_amount"),
    ({"amount": "0.00"}, "invalid_amount"),
    ({"amount": "10.999"}, "invalid_amount"),
    ({"amount": "1e3"}, "invalid_amount"),
    ({"amount": "сто"}, "invalid_amount"),
    ({"amount": "99999999999999999999999999"}, "invalid_amount"),
    ({"amount": "42949674"}, "invalid_amount"),
    ({"amount": -5}, "invalid_amount"),
    ({"amount": True}, "invalid_amount"),
    ({"amount": [100]}, "invalid_amount"),
    ({"amount": {"rub": 1}}, "invalid_amount"),
    ({}, "missing_amount"),
    ({"amount": ""}, "missing_amount"),
    ({"description": "только описание"}, "missing_amount"),
    ({"items": []}, "empty_order"),
    ({"items": "not json"}, "invalid_json"),
    ({"items": {"name": "x"}}, "invalid_items"),
    ({"items": ["Кофе"]}, "invalid_items"),
    ({"items": [{"price": "10"}]}, "invalid_item"),
    ({"items": [{"name": "   ", "price": "10"}]}, "invalid_item"),
    ({"items": [{"name": "x" * 129, "price": "10"}]}, "invalid_item"),
    ({"items": [{"name": "Кофе", "price": "-1"}]}, "invalid_amount"),
    ({"items": [{"name": "Кофе", "price": "10", "quantity": 0}]}, "invalid_quantity"),
    ({"items": [{"name": "Кофе", "price": "10", "quantity": "1.0001"}]}, "invalid_quantity"),
    ({"items": [{"name": "Кофе", "price": "10", "quantity": "NaN"}]}, "invalid_quantity"),
    ({"items": [{"name": "Кофе", "price": "10", "quantity": 10**9}]}, "invalid_quantity"),
    ({"items": [{"name": "Кофе", "price": "10", "vat": "vat99"}]}, "invalid_vat"),
    ({"items": [{"name": f"п{i}", "price": "1"} for i in range(101)]}, "too_many_lines"),
    ({"items": [{"name": "Кофе", "price": "10"}], "amount": "11"}, "amount_mismatch"),
    ({"amount": "10", "ttl_minutes": 0}, "invalid_ttl"),
    ({"amount": "10", "ttl_minutes": "5000"}, "invalid_ttl"),
    ({"amount": "10", "ttl_minutes": "десять"}, "invalid_ttl"),
    ({"amount": "10", "ttl_minutes": 1.5}, "invalid_ttl"),
    ({"amount": "10", "customer_email": "not-an-email"}, "invalid_email"),
    ({"amount": "10", "customer_email": "a" * 60 + "@example.ru"}, "invalid_email"),
    ({"amount": "10", "customer_phone": "позвоните"}, "invalid_phone"),
    ({"amount": "10", "description": "д" * 141}, "text_too_long"),
    ({"amount": "10", "order_id": "x" * 65}, "invalid_order_id"),
    ({"amount": "10", "order_id": {"id": 1}}, "invalid_order_id"),
    ({"amount": "10", "order_id": "a\x00b"}, "invalid_order_id"),
    ({"amount": "10", "client_id": ["x"]}, "invalid_client_id"),
    ({"variables": "[{\"name\": 1}]"}, "invalid_body"),
    ({"variables": 5}, "invalid_body"),
]


def test_bad_fields_are_refused_with_a_code(app, call):
    for body, code in REFUSED:
        answer = call(400, json=body)
        assert answer["error"] == code, (body, answer)
        assert any("а" <= ch <= "я" for ch in answer["message"].lower()), answer["message"]
    assert _count() == 0


BROKEN_JSON = [
    b"{broken", b'{"amount": "10",}', b"[1, 2]", b'"amount"', b"[" * 50_000 + b"]" * 50_000,
    b'{"amount": NaN}', b'{"amount": 1' + b"0" * 5000 + b"}", b"\xff\xfe{}",
]


def test_broken_json_is_400(app, call):
    for raw in BROKEN_JSON:
        answer = call(400, data=raw, content_type="application/json")
        assert answer["error"] in ("invalid_json", "invalid_body"), (raw[:40], answer)
    assert _count() == 0


def test_a_10_mb_body_is_413(app, call):
    answer = call(413, data=json.dumps({"amount": "10", "pad": "x" * 10 * 1024 * 1024}),
                  content_type="application/json")
    assert answer["error"] == "body_too_large"
    assert _count() == 0


def test_a_broken_multipart_body_is_400(app, call):
    answer = call(400, data=b"--xx\r\nnonsense", content_type="multipart/form-data; boundary=yy")
    assert answer["error"] in ("invalid_body", "missing_amount")
    assert _count() == 0


def test_unknown_fields_are_ignored(app, call):
    answer = call(201, json={"amount": "10", "utm_source": "bot", "nested": {"a": [1]},
                             "amount_rub": "999"})
    assert answer["amount"] == "10.00"
    assert _count() == 1


def test_largest_sane_payment_passes(app, call):
    answer = call(201, json={"amount": "42949673.00"})
    assert answer["amount"] == "42949673.00"


def test_a_huge_key_and_path_are_refused_plainly(app):
    client = app.test_client()
    response = client.post("/api/v1/payments", json={"amount": "1"},
                           headers={"X-Api-Key": "k" * 100_000})
    assert checked(app, response, *CREATE)["error"] == "invalid_key"
    key = new_key(app, "other")
    response = client.get("/api/v1/payments/" + "z" * 5000, headers={"X-Api-Key": key})
    assert response.status_code == 404
    assert response.get_json()["error"] == "payment_not_found"
