"""Kassa's receipt requests and the sandbox's answers, held to the providers' specifications.

The schemas in tests/specs restate ATOL's protocol (v4.6 JSON schemas plus the v5 changes)
and Raiffeisen's fiscal.yml; each file names its sources. Every request here is what our
clients really sent over HTTP, and every answer what the sandbox really gave, so neither
Kassa nor the sandbox can drift from the provider without a test going red.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from jsonschema import Draft202012Validator, ValidationError, validators

from app.fiscal.atol import AtolClient
from app.fiscal.raiffeisen import RaiffeisenReceiptsClient
from app.fiscal.receipt import SELL, SELL_REFUND, WAIT, Company, ReceiptDraft, ReceiptLine
from app.httpclient import HttpClient, dumps
from app.sandbox import SandboxServer, SandboxSettings, start_sandbox

SPECS = Path(__file__).parent.parent / "specs"
SECRET = "specs-secret"
LOGIN, PASSWORD, GROUP = "v5-online-atol-ru", "zUr0OxfI", "v5-online-atol-ru_5179"
COMPANY = Company(inn="5544332219", email="shop@example.com", sno="usn_income",
                  payment_address="https://v5.online.atol.ru")
LINES = (
    ReceiptLine("Чай улун", 45050, 2000, 90100),
    ReceiptLine("Сыр", 120000, 1500, 180000, vat="vat20", measure="kilogram"),
    ReceiptLine("Ткань", 33333, 333, 11100, vat="vat10", measure="square_centimeter"),
    ReceiptLine("Доставка", 19900, 1000, 19900, payment_object="service"),
)
PRICE_CEILING = 4_294_967_300  # ATOL's schema: price <= 42949673


def _decimal_multiple_of(validator, divisor, instance, schema):
    """multipleOf in exact decimals (the stock check divides binary floats)."""
    if not validator.is_type(instance, "number"):
        return
    if Decimal(str(instance)) % Decimal(str(divisor)) != 0:
        yield ValidationError(f"{instance!r} is not a multiple of {divisor}")


Validator = validators.extend(Draft202012Validator, {"multipleOf": _decimal_multiple_of})


def _schema(name: str, definition: str | None = None) -> Draft202012Validator:
    root = json.loads((SPECS / name).read_text(encoding="utf-8"), parse_float=Decimal)
    if definition is not None:
        root = {**root, "$ref": f"#/$defs/{definition}"}
    Draft202012Validator.check_schema(root)
    return Validator(root)


ATOL_REQUEST = _schema("atol_v5_sell_request.schema.json")
ATOL_REGISTRATION = _schema("atol_v5_answers.schema.json", "registration")
ATOL_REPORT = _schema("atol_v5_answers.schema.json", "report")
RAIF_RECEIPT = _schema("raiffeisen_fiscal.schema.json", "Receipt")
RAIF_RESPONSE = _schema("raiffeisen_fiscal.schema.json", "Response")
RAIF_ERROR = _schema("raiffeisen_fiscal.schema.json", "Error")


def _valid(validator: Draft202012Validator, document: Any, what: str) -> None:
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in validator.iter_errors(document)]
    assert not errors, f"{what} breaks the specification: {errors}"


class RecordingSession(requests.Session):
    """A requests session that keeps every exchange: (method, path, request body, status,
    response body), bodies parsed as JSON with exact decimals."""

    def __init__(self) -> None:
        super().__init__()
        self.exchanges: list[tuple[str, str, Any, int, Any]] = []

    def request(self, method, url, *args, **kwargs):
        response = super().request(method, url, *args, **kwargs)
        body = kwargs.get("data")
        parse = lambda text: json.loads(text, parse_float=Decimal) if text else None  # noqa: E731
        self.exchanges.append((method, url.split("/", 3)[-1], parse(body), response.status_code,
                               parse(response.text)))
        return response


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    sandbox = start_sandbox(SandboxSettings(
        "MA0000000552", SECRET, None, fiscal_processing_seconds=0.1,
        callback_retry_delays=(0.05,),
    ))
    yield sandbox
    sandbox.shutdown()


@pytest.fixture(autouse=True)
def _reset(server: SandboxServer) -> None:
    requests.post(f"{server.url}/sandbox/reset", timeout=5).raise_for_status()


def _draft(operation: str = SELL, lines: tuple[ReceiptLine, ...] = LINES, **kw: Any):
    return ReceiptDraft(operation, lines, sum(x.amount_kopecks for x in lines), COMPANY, **kw)


def _poll(client, result, operation: str = SELL):
    deadline = time.monotonic() + 5
    while True:
        current = client.status(external_id=result.external_id,
                                provider_id=result.provider_id, operation=operation)
        if current.status != WAIT:
            return current
        assert time.monotonic() < deadline
        time.sleep(0.05)


def _atol(server: SandboxServer) -> tuple[AtolClient, RecordingSession]:
    session = RecordingSession()
    base = f"{server.url}/possystem/v5"
    # A clock on which a second passes at each reading: the report throttle never refuses.
    client = AtolClient(base, LOGIN, PASSWORD, GROUP, clock=itertools.count(0.0).__next__,
                        http=HttpClient(base, provider="atol", backoff=0.01, session=session))
    return client, session


def _raif(server: SandboxServer) -> tuple[RaiffeisenReceiptsClient, RecordingSession]:
    session = RecordingSession()
    client = RaiffeisenReceiptsClient(server.url, SECRET, http=HttpClient(
        server.url, provider="raiffeisen", backoff=0.01, session=session))
    return client, session


def _faults(server: SandboxServer, **switches: Any) -> None:
    requests.post(f"{server.url}/sandbox/fiscal/faults", json=switches,
                  timeout=5).raise_for_status()


# ---------------------------------------------------------------- ATOL Online v5


def test_atol_requests_and_answers_follow_the_protocol(server: SandboxServer) -> None:
    client, session = _atol(server)
    sale = client.register(_draft(customer_email=None, customer_phone="+79001234567"),
                           external_id="sell-0a1b2c3d-1",
                           callback_url="https://shop.example/fiscal/atol/callback")
    client.register(_draft(), external_id="sell-0a1b2c3d-1", callback_url=None)  # code 33
    refund = client.register(_draft(SELL_REFUND, LINES[:1]), external_id="refund-0a1b2c3d-1",
                             callback_url=None)
    _faults(server, fail_next=1)
    failed = client.register(_draft(), external_id="sell-0a1b2c3d-2", callback_url=None)
    assert _poll(client, sale).status == "done"
    assert _poll(client, refund, SELL_REFUND).status == "done"
    assert _poll(client, failed).status == "fail"
    client.status(external_id="x", provider_id="00000000-0000-0000-0000-000000000000",
                  operation=SELL)  # code 34: not processed (unknown uuid)
    refused = client.register(_draft(lines=(ReceiptLine("Чай", 10000, 1000, 10000),)),
                              external_id="x" * 129, callback_url=None)  # code 32
    assert refused.status == "fail"

    kinds = set()
    for method, path, sent, status, answer in session.exchanges:
        if path.endswith(("/sell", "/sell_refund")):
            kinds.add("registration")
            if len(sent["external_id"]) <= 128:
                _valid(ATOL_REQUEST, sent, f"our {path} request")
            _valid(ATOL_REGISTRATION, answer, f"the sandbox's {status} answer to {path}")
        elif "/report/" in path:
            full = answer.get("group_code") is not None
            kinds.add("report" if full else "not processed")
            _valid(ATOL_REPORT if full else ATOL_REGISTRATION, answer, f"report {status}")
        assert method in ("GET", "POST")
    assert kinds == {"registration", "report", "not processed"}
    _schemas_are_not_vacuous(session.exchanges[1][2])


def _schemas_are_not_vacuous(body: dict[str, Any]) -> None:
    """v4-style items, prices over the ceiling and null uuids fail the restated schemas."""
    item = body["receipt"]["items"][0]
    for change in ({"payment_object": "commodity"}, {"measure": None}, {"price": "1.00"},
                   {"vat": {"type": "vat18"}}, {"price": Decimal("42949673.01")}):
        assert not ATOL_REQUEST.is_valid({**body, "receipt": {
            **body["receipt"], "items": [{**item, **change}]}}), change
    assert not ATOL_REGISTRATION.is_valid({"uuid": None, "status": "wait", "error": None,
                                           "timestamp": "01.01.2026 00:00:00"})


def test_atol_totals_up_to_the_schema_limits_are_accepted(server: SandboxServer) -> None:
    """Price up to 42 949 673 ₽ and sums, payments and total up to 100 000 000 ₽."""
    client, session = _atol(server)
    ceiling = ReceiptLine("Слиток", PRICE_CEILING, 1000, PRICE_CEILING)
    result = client.register(_draft(lines=(ceiling, ceiling)), external_id="big",
                             callback_url=None)
    [(_, _, sent, status, answer)] = [x for x in session.exchanges if x[1].endswith("/sell")]
    _valid(ATOL_REQUEST, sent, "a receipt at the price ceiling")
    assert (status, result.status) == (200, WAIT), answer
    assert str(sent["receipt"]["total"]) == "85899346.00"
    assert _poll(client, result).fiscal.total_kopecks == 2 * PRICE_CEILING


# ---------------------------------------------------------------- Raiffeisen fiscal API


def test_raiffeisen_requests_and_answers_follow_fiscal_yml(server: SandboxServer) -> None:
    client, session = _raif(server)
    sale = client.register(_draft(customer_email=None, customer_phone="+79001234567"),
                           external_id="sell-0a1b2c3d-1", callback_url=None)
    refund = client.register(_draft(SELL_REFUND, LINES[1:2]), external_id="refund-0a1b2c3d-1",
                             callback_url=None)
    assert _poll(client, sale).status == "done"
    assert _poll(client, refund, SELL_REFUND).status == "done"
    client.register(_draft(), external_id="sell-0a1b2c3d-1", callback_url=None)  # 409s
    _faults(server, fail_next=1)
    assert _poll(client, client.register(_draft(), external_id="sell-0a1b2c3d-2",
                                         callback_url=None)).status == "fail"

    statuses = set()
    for method, path, sent, status, answer in session.exchanges:
        if method == "POST":
            _valid(RAIF_RECEIPT, sent, f"our POST {path}")
        if status == 200:
            _valid(RAIF_RESPONSE, answer, f"the sandbox's answer to {method} {path}")
            statuses.add(answer["status"])
        else:
            _valid(RAIF_ERROR, answer, f"the sandbox's {status} to {method} {path}")
            statuses.add(status)
    assert statuses == {"NEW", "IN_PROGRESS", "DONE", "FAILED", 409}


def test_the_raiffeisen_schema_refuses_the_sdk_shape() -> None:
    """The SDKs' shape (UPPERCASE enums, customer, payments) is not fiscal.yml's."""
    client = RaiffeisenReceiptsClient("http://127.0.0.1:9", SECRET)
    body = json.loads(dumps(client.receipt_body(_draft(), external_id="n")), parse_float=Decimal)
    _valid(RAIF_RECEIPT, body, "our request")
    item = body["items"][0]
    for changed in (
        {**body, "items": [{**item, "vatType": "VAT20"}]},
        {**body, "items": [{**item, "paymentObject": "COMMODITY"}]},
        {**body, "items": [{**item, "vatType": "vat22"}]},
        {**body, "items": [{**item, "measurementUnit": "SQUARE_CENTIMETER"}]},
        {**body, "items": [{**item, "paymentMode": "FULL_PAYMENT"}]},
        {**body, "payments": [{"type": "E_PAYMENT", "amount": body["total"]}]},
        {key: value for key, value in body.items() if key != "client"}
        | {"customer": body["client"]},
        {**body, "receiptNumber": "sell.1"},
    ):
        assert not RAIF_RECEIPT.is_valid(changed), changed
