"""Each constructor's callback against a local capture server: the method, URL, headers and
body exactly as that constructor's inbound API takes them, and the delivery log."""

from __future__ import annotations

import textwrap
import time

import pytest
import sqlalchemy as sa

from app.constructor import callbacks, outbound, signing
from app.extensions import db
from app.models import CallbackDelivery, OrderStatus, utcnow
from tests.constructor.callback_capture import capture, make_api_order, make_client  # noqa: F401

PUBLIC_URL = "https://kassa.example"
JSON_TYPE = "application/json; charset=utf-8"


@pytest.fixture
def kassa(make_app, capture):  # noqa: F811 - the fixture
    """Kassa with every constructor's API pointed at the capture server."""
    app = make_app(PUBLIC_URL=PUBLIC_URL, SALEBOT_API_URL=capture.url,
                   PUZZLEBOT_API_URL=capture.url, BOTHELP_OAUTH_URL=capture.url,
                   BOTHELP_API_URL=capture.url)
    outbound._tokens.clear()  # a BotHelp token from another test
    with app.app_context():
        yield app


def paid_order(client_id: int, **kwargs):
    order = make_api_order(client_id, **kwargs)
    order.status, order.paid_at = OrderStatus.PAID, utcnow()
    db.session.commit()
    return order


def call_back(client_id: int, order) -> None:
    """Run the callback job of the order's paid event, as the worker would."""
    callbacks.send({"api_client_id": client_id, "order_id": order.id, "event": "paid"})


def variables_of(order) -> dict[str, str]:
    """The paid callback's fields as a constructor's variables (all text)."""
    return {"event": "paid", "payment_id": order.public_id, "order_id": "A-1",
            "client_id": "777", "status": "paid", "amount": "399.50",
            "paid_at": order.paid_at.isoformat(),
            "pay_url": f"{PUBLIC_URL}/checkout/{order.checkout_token}",
            "message": "Оплачено: 399,50\u00a0₽"}


def deliveries() -> list[CallbackDelivery]:
    return list(db.session.scalars(sa.select(CallbackDelivery).order_by(CallbackDelivery.id)))


def test_salebot_gets_callback_with_client_id_message_and_the_fields_as_variables(
    kassa, capture  # noqa: F811
):
    client_id = make_client("salebot", settings={"api_key": "sb-key-0123456789"})
    order = paid_order(client_id)
    call_back(client_id, order)

    (sent,) = capture.requests
    assert (sent.method, sent.path, sent.query) == ("POST", "/api/sb-key-0123456789/callback", {})
    assert sent.headers["Content-Type"] == JSON_TYPE
    fields = variables_of(order)
    fields["payment_message"] = fields.pop("message")
    del fields["client_id"]
    assert sent.json() == {"client_id": 777, "message": "kassa_paid", **fields}

    (logged,) = deliveries()
    assert logged.ok and logged.status_code == 200 and logged.event == "paid"
    assert logged.url == f"{capture.url}/api/***/callback"  # the key is not in the log
    assert logged.order_id == order.id and logged.attempt == 1


def test_salebot_trigger_message_is_a_setting(kassa, capture):  # noqa: F811
    client_id = make_client("salebot", settings={"api_key": "sb-key-0123456789",
                                                 "message_paid": "оплата прошла"})
    call_back(client_id, paid_order(client_id))
    assert capture.requests[0].json()["message"] == "оплата прошла"


def test_puzzlebot_changes_each_variable_quoted_then_runs_the_scenario(kassa, capture):  # noqa: F811
    client_id = make_client("puzzlebot", settings={"token": "pz-token-abcdef",
                                                   "scenario_id": "55"})
    order = paid_order(client_id)
    call_back(client_id, order)

    assert [(r.method, r.path, r.body) for r in capture.requests] == [("GET", "/", b"")] * 3
    assert [r.query for r in capture.requests] == [
        {"token": "pz-token-abcdef", "method": "variableChange", "user_id": "777",
         "variable": "status", "expression": '"paid"'},
        {"token": "pz-token-abcdef", "method": "variableChange", "user_id": "777",
         "variable": "payment_id", "expression": f'"{order.public_id}"'},
        {"token": "pz-token-abcdef", "method": "scenarioRun", "scenario_id": "55",
         "user_id": "777"},
    ]
    logged = deliveries()
    assert [row.ok for row in logged] == [True, True, True]
    assert all("pz-token" not in row.url and "token=***" in row.url for row in logged)


def test_puzzlebot_answering_a_nonzero_code_is_given_up(kassa, capture):  # noqa: F811
    capture.script("/", (200, '{"code": 7, "message": "bad token"}'))
    client_id = make_client("puzzlebot", settings={"token": "pz-token-abcdef",
                                                   "variables": ["status", "amount"]})
    call_back(client_id, paid_order(client_id))  # no exception: nothing to retry
    assert len(capture.requests) == 1
    (logged,) = deliveries()
    assert not logged.ok and logged.status_code == 200
    assert logged.error == "the answer's code is not 0" and "bad token" in logged.response_excerpt


def test_leadteh_incoming_webhook_gets_all_variables_inside_variables(kassa, capture):  # noqa: F811
    client_id = make_client("leadteh", callback_url=f"{capture.url}/leadteh/hook")
    order = paid_order(client_id)
    call_back(client_id, order)
    (sent,) = capture.requests
    assert (sent.method, sent.path, sent.headers["Content-Type"]) == (
        "POST", "/leadteh/hook", JSON_TYPE)
    assert sent.json() == {"contact_id": 777, "variables": [
        {"name": name, "value": value} for name, value in variables_of(order).items()]}


def test_smartbot_webhook_gets_peer_id_and_the_variables(kassa, capture):  # noqa: F811
    client_id = make_client("smartbot", callback_url=f"{capture.url}/smartbot/run")
    order = paid_order(client_id, client_ref="2000000001")
    call_back(client_id, order)
    (sent,) = capture.requests
    assert (sent.method, sent.path, sent.headers["Content-Type"]) == (
        "POST", "/smartbot/run", JSON_TYPE)
    assert sent.json() == {"peer_id": 2000000001,
                           **variables_of(order), "client_id": "2000000001"}


def test_botmother_external_event_gets_platform_users_and_data(kassa, capture):  # noqa: F811
    client_id = make_client("botmother", callback_url=f"{capture.url}/bm/event")
    order = paid_order(client_id)
    call_back(client_id, order)
    (sent,) = capture.requests
    assert (sent.method, sent.path, sent.headers["Content-Type"]) == (
        "POST", "/bm/event", JSON_TYPE)
    assert sent.json() == {"platform": "tg", "users": ["777"], "data": variables_of(order)}


def test_bothelp_takes_a_token_once_then_patches_the_subscribers_custom_fields(
    kassa, capture  # noqa: F811
):
    client_id = make_client("bothelp", settings={"client_id": "bh-client",
                                                 "client_secret": "bh-secret-123"})
    first = paid_order(client_id)
    second = paid_order(client_id, client_ref="778", external_id="A-2")
    call_back(client_id, first)
    call_back(client_id, second)

    token_call, patch, patch_again = capture.requests  # the token is kept until it expires
    assert (token_call.method, token_call.path) == ("POST", "/oauth2/token")
    assert token_call.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert token_call.form() == {"grant_type": "client_credentials", "client_id": "bh-client",
                                 "client_secret": "bh-secret-123"}
    assert (patch.method, patch.path) == ("PATCH", "/v1/subscribers/cuid/777/customFields")
    assert patch.headers["Authorization"] == "Bearer TOK1"
    assert patch.headers["Content-Type"] == JSON_TYPE
    assert patch.json() == [{"name": name, "value": value}
                            for name, value in variables_of(first).items()]
    assert patch_again.path == "/v1/subscribers/cuid/778/customFields"
    assert patch_again.headers["Authorization"] == "Bearer TOK1"
    assert [row.ok for row in deliveries()] == [True, True]


def test_bothelp_refused_credentials_are_logged_without_the_secret(kassa, capture):  # noqa: F811
    capture.script("/oauth2/token", (401, '{"error": "invalid_client"}'))
    client_id = make_client("bothelp", settings={"client_id": "bh-client",
                                                 "client_secret": "bh-secret-123"})
    call_back(client_id, paid_order(client_id))
    (logged,) = deliveries()
    assert not logged.ok and logged.status_code == 401
    assert "bh-secret-123" not in logged.request_body and "client_secret=***" in (
        logged.request_body)


def _documented_receiver():
    """The ten-line receiver exactly as documented (signing.py's docstring, which
    docs/constructors.md repeats), run as it is written."""
    doc = signing.__doc__
    code = doc[doc.index("    import hashlib"):doc.index("\nNothing here knows Flask")]
    namespace: dict = {}
    exec(textwrap.dedent(code), namespace)  # noqa: S102 - our own documentation
    return namespace["verify"]


receiver = _documented_receiver()


def test_the_generic_webhook_is_signed_and_a_receiver_refuses_replays_and_tampering(
    kassa, capture, monkeypatch  # noqa: F811
):
    secret = signing.new_secret()
    client_id = make_client("webhook", callback_url=f"{capture.url}/hooks/kassa",
                            settings={"secret": secret})
    order = paid_order(client_id)
    call_back(client_id, order)

    (sent,) = capture.requests
    assert (sent.method, sent.path, sent.headers["Content-Type"]) == (
        "POST", "/hooks/kassa", JSON_TYPE)
    assert sent.headers["X-Kassa-Event"] == "paid"
    assert sent.json() == {"ok": True, **variables_of(order)}
    header = sent.headers["X-Kassa-Signature"]
    assert receiver(secret, sent.body, header)
    assert signing.verify(secret, sent.body, header) == int(header[2:header.index(",")])
    assert not receiver(secret, sent.body.replace(b"399.50", b"1.00"), header)
    assert not receiver("whsec_another", sent.body, header)
    with pytest.raises(signing.SignatureError) as refused:
        signing.verify(secret, sent.body + b" ", header)
    assert refused.value.code == "mismatch"

    # The same request replayed six minutes later.
    later = time.time() + 360
    monkeypatch.setattr(time, "time", lambda: later)
    assert not receiver(secret, sent.body, header)
    with pytest.raises(signing.SignatureError) as replay:
        signing.verify(secret, sent.body, header)
    assert replay.value.code == "expired"


def test_a_client_without_its_key_or_end_user_calls_nobody(kassa, capture):  # noqa: F811
    no_user = make_client("salebot", settings={"api_key": "sb-key-0123456789"})
    call_back(no_user, paid_order(no_user, client_ref=None))
    assert capture.requests == []
    (logged,) = deliveries()
    assert not logged.ok and logged.method == "-" and "client_id" in logged.error


def test_send_test_reaches_the_client_and_says_what_it_lacks(kassa, capture):  # noqa: F811
    from app.errors import ValidationError

    client_id = make_client("smartbot", callback_url=f"{capture.url}/smartbot/run",
                            settings={"test_client_id": "42"})
    delivery = callbacks.send_test(client_id)
    assert delivery.ok and delivery.event == "test" and delivery.order_id is None
    body = capture.requests[0].json()
    assert body["peer_id"] == 42 and body["event"] == "test" and body["payment_id"] == "test"

    capture.script("/smartbot/run", (403, "forbidden"))
    refused = callbacks.send_test(client_id, client_ref="43")
    assert not refused.ok and refused.status_code == 403 and refused.response_excerpt == (
        "forbidden")

    bare = make_client("salebot")
    with pytest.raises(ValidationError) as lacking:
        callbacks.send_test(bare)
    assert lacking.value.code == "callback_not_configured"
    assert "api_key" in lacking.value.message


def test_the_shop_keeps_writing_while_a_constructor_takes_its_time_to_answer(
    kassa, capture  # noqa: F811
):
    """On SQLite a transaction holds the write lock: none may stay open over the call."""
    from app.models import ApiClient

    client_id = make_client("smartbot", callback_url=f"{capture.url}/smartbot/run")
    order = paid_order(client_id)
    took: list[float] = []

    def write_meanwhile():
        started = time.monotonic()
        with kassa.app_context():
            db.session.get(ApiClient, client_id).last_used_at = utcnow()
            db.session.commit()
        took.append(time.monotonic() - started)

    capture.on_request = write_meanwhile
    call_back(client_id, order)
    assert len(took) == 1 and took[0] < 2
    assert [row.ok for row in deliveries()] == [True]
