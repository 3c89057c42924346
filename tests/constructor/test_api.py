"""The constructor API as a bot's request block uses it: every auth form and body format,
a wrong key, idempotency by order_id, status and cancel of one's own payments only, and the
`flask api-client` commands. The bank is unreachable here (answers are `pending`); the
bank's side is in test_api_bank.py."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import ApiClient, AuditEntry, Order, OrderChannel
from tests.constructor.api_support import CANCEL, CREATE, OFFLINE, STATUS, checked, new_key


@pytest.fixture
def app(make_app):
    with (app := make_app(**OFFLINE)).app_context():
        yield app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def key(app):
    return new_key(app)


def _orders() -> list[Order]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(Order).order_by(Order.id)))


def _create(app, client, expect=201, **kwargs) -> dict:
    response = client.post("/api/v1/payments", **kwargs)
    body = checked(app, response, *CREATE)
    assert response.status_code == expect, body
    return body


AUTH_FORMS = {
    "bearer": lambda key: {"headers": {"Authorization": f"Bearer {key}"}},
    "x-api-key": lambda key: {"headers": {"X-Api-Key": key}},
    "query": lambda key: {"query_string": {"token": key}},
    "body": lambda key: {"json": {"token": key}},
}


@pytest.mark.parametrize("form", AUTH_FORMS)
def test_every_auth_form_creates_a_payment(app, client, key, form):
    auth = AUTH_FORMS[form](key)
    body = {**auth.get("json", {}), "amount": "1250.50", "description": "Заказ 7"}
    answer = _create(app, client, headers=auth.get("headers"),
                     query_string=auth.get("query_string"), json=body)
    assert answer["status"] == "pending"
    assert answer["amount"] == "1250.50"
    assert answer["pay_url"].startswith("http://127.0.0.1:5000/checkout/")
    [order] = _orders()
    assert (order.public_id, order.total_kopecks, order.channel) == (
        answer["payment_id"], 125050, OrderChannel.API)
    assert order.checkout_token and answer["pay_url"].endswith(order.checkout_token)
    assert len(order.checkout_token) >= 40


@pytest.mark.parametrize("auth", [
    {"headers": {"Authorization": "Bearer kassa_wrong"}},
    {"headers": {"X-Api-Key": "kassa_wrong"}},
    {"query_string": {"token": "kassa_wrong"}},
    {"headers": {"Authorization": "Basic dXNlcjpwYXNz"}},
    {},
])
def test_a_wrong_or_missing_key_is_401_and_creates_nothing(app, client, key, auth):
    response = client.post("/api/v1/payments", json={"amount": "100"}, **auth)
    answer = checked(app, response, *CREATE)
    assert response.status_code == 401
    assert answer["error"] in ("invalid_key", "missing_key")
    assert "ключ" in answer["message"].lower()
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert _orders() == []


def test_a_revoked_key_is_refused(app, client, key):
    runner = app.test_cli_runner()
    client_id = db.session.scalar(sa.select(ApiClient.id))
    assert runner.invoke(args=["api-client", "revoke", str(client_id)]).exit_code == 0
    response = client.post("/api/v1/payments", json={"amount": "100"},
                           headers={"X-Api-Key": key})
    assert response.status_code == 401
    assert _orders() == []


ITEMS = [{"name": "Капучино", "price": "220", "quantity": 2, "vat": "vat22"},
         {"name": "Круассан", "price": "150.50"}]


@pytest.mark.parametrize("fmt", ["json", "form", "multipart", "query", "leadteh", "text"])
def test_every_body_format(app, client, key, fmt):
    fields = {"items": json.dumps(ITEMS), "order_id": "A-17", "client_id": "tg-42",
              "customer_email": "buyer@example.ru", "ttl_minutes": "15"}
    request = {
        "json": {"json": {**fields, "items": ITEMS, "ttl_minutes": 15}},
        "form": {"data": fields},
        "multipart": {"data": fields, "content_type": "multipart/form-data"},
        "query": {"query_string": fields},
        "leadteh": {"json": {"variables": [{"name": k, "value": v} for k, v in fields.items()],
                             "contact_id": 99}},
        # A constructor that sends a form but says text/plain.
        "text": {"data": "&".join(f"{k}={v}" for k, v in {
            **fields, "items": json.dumps(ITEMS).replace("&", "")}.items()),
            "content_type": "text/plain"},
    }[fmt]
    answer = _create(app, client, headers={"X-Api-Key": key}, **request)
    assert (answer["amount"], answer["order_id"], answer["client_id"]) == (
        "590.50", "A-17", "tg-42")
    [order] = _orders()
    assert order.customer_email == "buyer@example.ru"
    assert [(i.name, i.price_kopecks, i.quantity_milli, i.vat) for i in order.items] == [
        ("Капучино", 22000, 2000, "vat22"), ("Круассан", 15050, 1000, "none")]


def test_a_json_number_amount_keeps_its_kopecks(app, client, key):
    response = client.post("/api/v1/payments", data='{"amount": 0.29}',
                           content_type="application/json", headers={"X-Api-Key": key})
    assert checked(app, response, *CREATE)["amount"] == "0.29"
    assert _orders()[0].total_kopecks == 29


def test_a_repeated_order_id_returns_the_same_payment(app, client, key):
    auth = {"X-Api-Key": key}
    first = _create(app, client, headers=auth, json={"amount": "300", "order_id": "R1"})
    again = _create(app, client, expect=200, headers=auth, data={"amount": "300.00",
                                                                 "order_id": "R1"})
    assert again["payment_id"] == first["payment_id"]
    assert again["pay_url"] == first["pay_url"]
    assert len(_orders()) == 1


@pytest.mark.parametrize("repeat", [
    {"amount": "301", "order_id": "R1"},
    {"items": [{"name": "Другое", "price": "300"}], "order_id": "R1"},
])
def test_a_repeated_order_id_with_other_content_is_409(app, client, key, repeat):
    auth = {"X-Api-Key": key}
    _create(app, client, headers=auth,
            json={"items": [{"name": "Чай", "price": "300"}], "order_id": "R1"})
    answer = _create(app, client, expect=409, headers=auth, json=repeat)
    assert answer["error"] == "order_id_conflict"
    assert "R1" in answer["message"]
    assert len(_orders()) == 1


def test_order_ids_are_scoped_to_their_client(app, client, key):
    other = new_key(app, "другой бот")
    one = _create(app, client, headers={"X-Api-Key": key}, json={"amount": "10",
                                                                 "order_id": "1"})
    two = _create(app, client, headers={"X-Api-Key": other}, json={"amount": "20",
                                                                   "order_id": "1"})
    assert one["payment_id"] != two["payment_id"]
    assert len(_orders()) == 2


def test_two_identical_requests_at_once_make_one_order(make_app):
    """Two workers of gunicorn get the same request: the unique constraint decides."""
    import threading

    app = make_app(**OFFLINE)
    key = new_key(app)
    barrier = threading.Barrier(4)
    answers = []

    def call():
        client = app.test_client()
        barrier.wait()
        response = client.post("/api/v1/payments", json={"amount": "99", "order_id": "same"},
                               headers={"X-Api-Key": key})
        answers.append((response.status_code, response.get_json()))

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert sorted(status for status, _ in answers) == [200, 200, 200, 201], answers
    assert len({answer["payment_id"] for _, answer in answers}) == 1
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Order)) == 1


def test_status_and_cancel_of_ones_own_payment(app, client, key):
    auth = {"Authorization": f"Bearer {key}"}
    created = _create(app, client, headers=auth, json={"amount": "50", "order_id": "C1"})
    url = f"/api/v1/payments/{created['payment_id']}"
    status = checked(app, client.get(url, headers=auth), *STATUS)
    assert status["status"] == "pending" and status["payment_id"] == created["payment_id"]

    cancelled = checked(app, client.post(f"{url}/cancel", headers=auth), *CANCEL)
    assert cancelled["status"] == "cancelled"
    assert cancelled["message"] == "Платёж отменён"
    assert checked(app, client.get(url, query_string={"token": key}), *STATUS)["status"] == (
        "cancelled")
    entry = db.session.scalars(sa.select(AuditEntry).where(
        AuditEntry.action == "order.cancel")).one()
    assert entry.actor_kind == "api_client"


def test_another_clients_payment_is_not_found(app, client, key):
    other = new_key(app, "чужой")
    created = _create(app, client, headers={"X-Api-Key": key}, json={"amount": "50"})
    url = f"/api/v1/payments/{created['payment_id']}"
    for response in (client.get(url, headers={"X-Api-Key": other}),
                     client.post(f"{url}/cancel", headers={"X-Api-Key": other})):
        assert response.status_code == 404
        assert response.get_json()["error"] == "payment_not_found"
    assert _orders()[0].status.value == "new"
    missing = client.get("/api/v1/payments/" + "0" * 32, headers={"X-Api-Key": key})
    assert checked(app, missing, *STATUS)["error"] == "payment_not_found"


def test_the_cli_prints_the_key_once_and_stores_its_hash(app, client):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["api-client", "create", "shop", "--preset", "salebot",
                                 "--setting", "api_key=sb-project-key"])
    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout)
    key = created["key"]
    assert created["preset"] == "salebot" and key.startswith(created["key_prefix"])
    stored = db.session.scalars(sa.select(ApiClient)).one()
    assert stored.settings == {"api_key": "sb-project-key"}  # --setting, never printed
    assert "sb-project-key" not in result.stdout
    assert key not in (stored.key_hash, json.dumps(stored.settings))
    assert _create(app, client, headers={"X-Api-Key": key}, json={"amount": "1"})["ok"]

    listed = json.loads(runner.invoke(args=["api-client", "list"]).stdout)
    assert [c["name"] for c in listed] == ["shop"] and "key" not in listed[0]
    assert key not in runner.invoke(args=["api-client", "list"]).stdout
    refused = runner.invoke(args=["api-client", "create", "x", "--preset", "tilda"])
    assert refused.exit_code != 0
    actions = db.session.scalars(sa.select(AuditEntry.action)).all()
    assert actions.count("api_client.create") == 1


def test_the_cli_prints_a_webhooks_signing_secret_once(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["api-client", "create", "site", "--preset", "webhook",
                                 "--callback-url", "https://example.org/kassa"])
    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout)
    stored = db.session.scalars(sa.select(ApiClient)).one()
    assert created["signing_secret"] == stored.settings["secret"]
    assert "whsec_" not in runner.invoke(args=["api-client", "list"]).stdout


def test_the_webhook_preset_gets_a_signing_secret(app):
    from app.constructor.clients import create_client, update_client
    from app.constructor.presets import missing

    client, _ = create_client("hook", callback_url="https://example.org/hook")
    secret = client.settings["secret"]
    assert secret.startswith("whsec_") and len(secret) > 40
    assert missing("webhook", client.settings, client.callback_url) == []  # callbacks can go
    update_client(client.id, settings={"extra": "1"})
    assert db.session.get(ApiClient, client.id).settings == {"extra": "1",
                                                             "secret": secret}
    audit = db.session.scalars(sa.select(AuditEntry).where(
        AuditEntry.action == "api_client.update")).one()
    assert secret not in json.dumps(audit.details)


def test_openapi_document_is_served_and_valid(app, client):
    from jsonschema import Draft202012Validator

    document = client.get("/api/v1/openapi.json").get_json()
    assert document["openapi"].startswith("3.1")
    assert set(document["paths"]) == {"/payments", "/payments/{payment_id}",
                                      "/payments/{payment_id}/cancel"}
    for schema in document["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    assert document["servers"] == [{"url": "http://127.0.0.1:5000/api/v1"}]


def test_a_right_key_next_to_a_wrong_or_empty_one_is_refused(app, client, key):
    for extra in ({"Authorization": "Bearer kassa_other"}, {"Authorization": ""},
                  {"Authorization": "Basic dXNlcjpwYXNz"}):
        response = client.post("/api/v1/payments", json={"amount": "100"},
                               headers={"X-Api-Key": key, **extra})
        assert checked(app, response, *CREATE)["error"] in ("invalid_key", "missing_key")
    response = client.post("/api/v1/payments", json={"amount": "100", "token": "kassa_x"},
                           headers={"X-Api-Key": key})
    assert response.status_code == 401
    assert _orders() == []
    same = client.post("/api/v1/payments", query_string={"token": key},
                       json={"amount": "100", "token": key}, headers={"X-Api-Key": key})
    assert same.status_code == 201


def test_an_unexpected_failure_while_registering_the_qr_still_answers_pending(
        app, client, key, monkeypatch):
    def broken(order_id, **_):
        raise RuntimeError("database went away")

    monkeypatch.setattr("app.constructor.payments.create_dynamic_qr", broken)
    answer = _create(app, client, headers={"X-Api-Key": key}, json={"amount": "70"})
    assert answer["status"] == "pending" and answer["qr_payload"] is None
    assert len(_orders()) == 1
