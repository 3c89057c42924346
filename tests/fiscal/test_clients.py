"""Kassa's receipt clients (ATOL Online v5, Raiffeisen fiscal API) against the sandbox over
real HTTP: the wire format, idempotent retries, token renewal, throttling, faults."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from app.fiscal.atol import AtolClient
from app.fiscal.provider import FiscalProvider
from app.fiscal.raiffeisen import RaiffeisenReceiptsClient
from app.fiscal.receipt import (
    DONE,
    FAIL,
    SELL,
    SELL_REFUND,
    WAIT,
    Company,
    ReceiptDraft,
    ReceiptLine,
    RegisterResult,
)
from app.fiscal.wire import quantity
from app.httpclient import HttpClient, ProviderError
from app.sandbox import SandboxServer, SandboxSettings, start_sandbox

SECRET = "fiscal-test-secret"
LOGIN, PASSWORD, GROUP = "v5-online-atol-ru", "zUr0OxfI", "v5-online-atol-ru_5179"
COMPANY = Company(inn="5544332219", email="shop@example.com", sno="usn_income",
                  payment_address="https://v5.online.atol.ru")


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    sandbox = start_sandbox(SandboxSettings(
        "MA0000000552", SECRET, None, fiscal_processing_seconds=0.2,
        callback_retry_delays=(0.05, 0.05, 0.05),
    ))
    yield sandbox
    sandbox.shutdown()


@pytest.fixture(autouse=True)
def _reset(server: SandboxServer) -> None:
    requests.post(f"{server.url}/sandbox/reset", timeout=5).raise_for_status()


class FakeTime:
    """A monotonic clock that moves by hand, and by `tick` seconds at each reading."""

    def __init__(self, tick: float = 0.0) -> None:
        self.now = 1000.0
        self.tick = tick

    def clock(self) -> float:
        self.now += self.tick
        return self.now


def atol_client(server: SandboxServer, fake: FakeTime | None = None, **kw: Any) -> AtolClient:
    # By default a second passes at each reading: the report throttle never refuses a poll.
    fake = fake or FakeTime(tick=1.0)
    base = f"{server.url}/possystem/v5"
    return AtolClient(
        base, kw.pop("login", LOGIN), kw.pop("password", PASSWORD), kw.pop("group", GROUP),
        clock=fake.clock,
        http=HttpClient(base, provider="atol", backoff=0.01), **kw,
    )


def raif_client(server: SandboxServer) -> RaiffeisenReceiptsClient:
    return RaiffeisenReceiptsClient(
        server.url, SECRET, http=HttpClient(server.url, provider="raiffeisen", backoff=0.01)
    )


def faults(server: SandboxServer, **switches: Any) -> None:
    requests.post(f"{server.url}/sandbox/fiscal/faults", json=switches,
                  timeout=5).raise_for_status()


def state(server: SandboxServer) -> dict[str, Any]:
    return requests.get(f"{server.url}/sandbox/fiscal/state", timeout=5).json()


def draft(operation: str = SELL, *, email: str | None = "buyer@example.com",
          phone: str | None = None, lines: tuple[ReceiptLine, ...] | None = None) -> ReceiptDraft:
    lines = lines or (
        ReceiptLine("Чай улун", 45050, 2000, 90100),
        ReceiptLine("Сыр", 120000, 1500, 180000, vat="vat20", measure="kilogram"),
        ReceiptLine("Доставка", 19900, 1000, 19900, payment_object="service"),
    )
    return ReceiptDraft(operation, lines, sum(line.amount_kopecks for line in lines), COMPANY,
                        customer_email=email, customer_phone=phone)


def poll(client: FiscalProvider, result: RegisterResult, operation: str = SELL,
         timeout: float = 5.0) -> RegisterResult:
    deadline = time.monotonic() + timeout
    while True:
        current = client.status(external_id=result.external_id,
                                provider_id=result.provider_id, operation=operation)
        if current.status != WAIT:
            return current
        assert time.monotonic() < deadline, "the document never left wait"
        time.sleep(0.05)


# ---------------------------------------------------------------- ATOL


def test_protocol_and_body_shape() -> None:
    client = AtolClient("http://127.0.0.1:9/possystem/v5", LOGIN, PASSWORD, GROUP)
    assert isinstance(client.name, str) and PASSWORD not in repr(client)
    body = client.receipt_body(draft(email=None), external_id="e-1",
                               callback_url="https://shop.example/cb")
    receipt = body["receipt"]
    assert re.fullmatch(r"\d{2}\.\d{2}\.\d{4} \d{2}:\d{2}:\d{2}", body["timestamp"])
    assert body["service"] == {"callback_url": "https://shop.example/cb"}
    assert receipt["client"] == {"email": COMPANY.email}  # ATOL needs one: the shop's
    cheese = receipt["items"][1]
    assert (str(cheese["price"]), str(cheese["quantity"]), str(cheese["sum"])) == (
        "1200.00", "1.5", "1800.00")
    assert (cheese["measure"], cheese["payment_object"], cheese["vat"]) == (
        11, 1, {"type": "vat20"})
    assert receipt["items"][2]["payment_object"] == 4
    assert receipt["payments"] == [{"type": 1, "sum": receipt["total"]}]
    assert str(receipt["total"]) == "2900.00"
    assert [str(quantity(q)) for q in (1000, 1500, 1, 100000)] == ["1", "1.5", "0.001", "100"]
    phone_only = client.receipt_body(draft(email=None, phone="+79001234567"),
                                     external_id="e", callback_url=None)
    assert phone_only["receipt"]["client"] == {"phone": "+79001234567"}
    assert "service" not in phone_only


def test_sell_wait_then_done_with_fiscal_data(server: SandboxServer) -> None:
    client = atol_client(server)
    first = client.register(draft(), external_id="sell-1", callback_url=None)
    assert (first.status, first.external_id) == (WAIT, "sell-1")
    assert first.provider_id and first.fiscal is None
    done = poll(client, first)
    assert (done.status, done.provider_id) == (DONE, first.provider_id)
    fiscal = done.fiscal
    assert fiscal is not None
    assert fiscal.total_kopecks == 290000
    assert re.fullmatch(r"\d{16}", fiscal.fn_number)
    assert re.fullmatch(r"\d{16}", fiscal.ecr_registration_number or "")
    assert 10**9 <= fiscal.fiscal_document_attribute < 10**10
    assert fiscal.receipt_datetime.utcoffset() == timedelta(hours=3)
    assert (fiscal.fns_site, fiscal.shift_number) == ("www.nalog.gov.ru", 1)
    assert fiscal.ofd_inn and fiscal.ofd_receipt_url
    assert requests.get(fiscal.ofd_receipt_url, timeout=5).json()["external_id"] == "sell-1"
    doc = state(server)["documents"][0]
    assert (doc["operation"], doc["total"], doc["status"]) == ("sell", "2900.00", "done")
    assert doc["items"][1] == {"name": "Сыр", "price": "1200.00", "quantity": "1.500",
                               "sum": "1800.00"}
    second = poll(client, client.register(draft(email=None), external_id="sell-2",
                                          callback_url=None))
    assert second.fiscal is not None
    assert second.fiscal.fiscal_document_number == fiscal.fiscal_document_number + 1
    assert second.fiscal.fiscal_receipt_number == (fiscal.fiscal_receipt_number or 0) + 1
    assert state(server)["tokens_issued"] == 1  # one token for the whole session


def test_sell_refund(server: SandboxServer) -> None:
    client = atol_client(server)
    result = client.register(draft(SELL_REFUND, phone="+79001234567"),
                             external_id="refund-1", callback_url=None)
    done = poll(client, result, SELL_REFUND)
    assert done.status == DONE and done.fiscal is not None
    assert state(server)["documents"][0]["operation"] == "sell_refund"


def test_same_external_id_is_the_same_document(server: SandboxServer) -> None:
    client = atol_client(server)
    first = client.register(draft(), external_id="dup-1", callback_url=None)
    again = client.register(draft(), external_id="dup-1", callback_url=None)
    assert again.status == WAIT
    assert again.provider_id == first.provider_id
    snapshot = state(server)
    assert snapshot["counts"] == {"dup-1": 1}
    assert snapshot["registrations"] == {"dup-1": 2}


def test_lost_answer_is_retried_into_error_33(server: SandboxServer) -> None:
    client = atol_client(server)
    faults(server, lose_answer_next=1)
    result = client.register(draft(), external_id="lost-1", callback_url=None)
    assert result.status == WAIT and result.provider_id
    snapshot = state(server)
    assert snapshot["counts"] == {"lost-1": 1}
    assert snapshot["requests"]["atol.sell"] == 2  # lost answer, then 33 with the uuid
    assert snapshot["documents"][0]["uuid"] == result.provider_id
    assert poll(client, result).status == DONE


def test_down_is_a_retryable_error(server: SandboxServer) -> None:
    client = atol_client(server)
    faults(server, down=True)
    with pytest.raises(ProviderError) as down:
        client.register(draft(), external_id="down-1", callback_url=None)
    assert down.value.retryable and down.value.code == "http_503"
    with pytest.raises(ProviderError) as report:
        client.status(external_id="down-1", provider_id="some-uuid", operation=SELL)
    assert report.value.retryable
    assert state(server)["documents"] == []
    faults(server, down=False)
    assert client.register(draft(), external_id="down-1", callback_url=None).status == WAIT


def test_expired_token_is_renewed_once(server: SandboxServer) -> None:
    client = atol_client(server)
    result = client.register(draft(), external_id="tok-1", callback_url=None)
    faults(server, expire_tokens=True)
    assert poll(client, result).status == DONE
    snapshot = state(server)
    assert snapshot["tokens_issued"] == 2
    assert snapshot["requests"]["atol.getToken"] == 2


def test_token_renewed_after_23_hours(server: SandboxServer) -> None:
    fake = FakeTime()
    client = atol_client(server, fake)
    client.register(draft(), external_id="age-1", callback_url=None)
    fake.now += 23 * 3600
    client.register(draft(), external_id="age-2", callback_url=None)
    assert state(server)["tokens_issued"] == 2


def test_wrong_password_is_not_retryable(server: SandboxServer) -> None:
    client = atol_client(server, password="wrong")
    with pytest.raises(ProviderError) as wrong:
        client.register(draft(), external_id="pw-1", callback_url=None)
    assert (wrong.value.code, wrong.value.retryable) == ("12", False)


def test_fail_next_ends_in_fail(server: SandboxServer) -> None:
    client = atol_client(server)
    faults(server, fail_next=1)
    result = client.register(draft(), external_id="kkt-1", callback_url=None)
    failed = poll(client, result)
    assert failed.status == FAIL and failed.fiscal is None
    assert failed.error is not None and failed.error.startswith("-3803 ")
    assert failed.provider_id == result.provider_id


def test_validation_failure_is_a_fail_result(server: SandboxServer) -> None:
    client = atol_client(server)
    bad = draft(lines=(ReceiptLine("Чай", 10000, 1000, 15000),))  # sum != price x quantity
    result = client.register(bad, external_id="bad-1", callback_url=None)
    assert (result.status, result.provider_id) == (FAIL, None)
    assert result.error is not None and result.error.startswith("32 ")
    assert state(server)["documents"] == []


def test_report_edge_cases(server: SandboxServer) -> None:
    client = atol_client(server)
    with pytest.raises(ProviderError) as no_uuid:
        client.status(external_id="x", provider_id=None, operation=SELL)
    assert (no_uuid.value.code, no_uuid.value.retryable) == ("no_uuid", False)
    unknown = client.status(external_id="x", provider_id="0b7e1c4e-unknown", operation=SELL)
    assert unknown.status == WAIT  # error 34: not processed yet, never resend


def test_a_report_asked_again_within_a_second_is_not_sent_and_says_when(
    server: SandboxServer,
) -> None:
    """ATOL allows one report request a second per document: a sooner one is refused
    before it is sent (the poll job retries then), without waiting in the caller."""
    fake = FakeTime()
    client = atol_client(server, fake)
    client.status(external_id="x", provider_id="u-1", operation=SELL)
    fake.now += 0.25
    with pytest.raises(ProviderError) as too_soon:
        client.status(external_id="x", provider_id="u-1", operation=SELL)
    assert (too_soon.value.code, too_soon.value.retryable) == ("too_soon", True)
    assert too_soon.value.retry_after == pytest.approx(0.75)
    assert fake.now == 1000.25  # nobody waited
    assert state(server)["requests"]["atol.report"] == 1
    # Another document is not held back by the first one's pace.
    client.status(external_id="y", provider_id="u-2", operation=SELL)
    fake.now += 0.75
    client.status(external_id="x", provider_id="u-1", operation=SELL)
    assert state(server)["requests"]["atol.report"] == 3


class Receiver:
    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.bodies.append(body)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/fiscal/callback"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_callback_is_the_report_packet(server: SandboxServer) -> None:
    client = atol_client(server)
    receiver = Receiver()
    try:
        result = client.register(draft(), external_id="cb-1", callback_url=receiver.url)
        deadline = time.monotonic() + 5
        while not receiver.bodies:
            assert time.monotonic() < deadline, "no callback"
            time.sleep(0.02)
    finally:
        receiver.close()
    hint = client.parse_callback(receiver.bodies[0])
    assert (hint.status, hint.external_id, hint.provider_id) == (DONE, "cb-1", result.provider_id)
    assert hint.fiscal is not None and hint.fiscal.total_kopecks == 290000
    assert hint == poll(client, result)
    for junk in (b"not json", b"[]", b'{"uuid": "u"}',
                 b'{"uuid":"u","external_id":"e","status":"gone"}'):
        with pytest.raises(ProviderError) as bad:
            client.parse_callback(junk)
        assert bad.value.code == "bad_payload"
    garbled = client.parse_callback(
        b'{"uuid":"u","external_id":"e","status":"done","payload":{"total":1}}')
    assert (garbled.status, garbled.provider_id, garbled.fiscal) == (DONE, "u", None)


# ---------------------------------------------------------------- Raiffeisen


def test_raiffeisen_save_register_done(server: SandboxServer) -> None:
    client = raif_client(server)
    body = client.receipt_body(draft(email=None, phone="+79001234567"), external_id="r-1")
    assert body["client"] == {"email": COMPANY.email}
    # fiscal.yml: lowercase enums, a short unit name, no fields it does not define.
    assert body["items"][1]["vatType"] == "vat20"
    assert body["items"][1]["measurementUnit"] == "кг"
    assert body["items"][2]["paymentObject"] == "service"
    assert set(body) == {"receiptNumber", "client", "items", "total"}
    assert set(body["items"][0]) == {"name", "price", "quantity", "amount", "paymentObject",
                                     "vatType", "measurementUnit"}
    result = client.register(draft(), external_id="r-1", callback_url="https://ignored.example")
    assert (result.status, result.provider_id) == (WAIT, "r-1")
    assert result.raw["status"] == "IN_PROGRESS"
    done = poll(client, result)
    assert done.status == DONE
    assert done.fiscal is not None and done.fiscal.total_kopecks == 290000
    refund = poll(client, client.register(draft(SELL_REFUND), external_id="r-1",
                                          callback_url=None), SELL_REFUND)
    assert refund.status == DONE
    assert state(server)["counts"] == {"r-1": 2}  # a sell and a refund with one number


def test_raiffeisen_conflict_reads_the_status(server: SandboxServer) -> None:
    client = raif_client(server)
    first = client.register(draft(), external_id="r-2", callback_url=None)
    again = client.register(draft(), external_id="r-2", callback_url=None)
    assert again.status in (WAIT, DONE) and again.provider_id == first.provider_id
    assert state(server)["registrations"] == {"r-2": 1}
    faults(server, lose_answer_next=1)
    lost = client.register(draft(), external_id="r-3", callback_url=None)  # PUT retried -> 409
    assert lost.status == WAIT
    assert state(server)["registrations"] == {"r-2": 1, "r-3": 1}
    assert poll(client, lost).status == DONE


def test_raiffeisen_failed_and_refused(server: SandboxServer) -> None:
    client = raif_client(server)
    faults(server, fail_next=1)
    failed = poll(client, client.register(draft(), external_id="r-4", callback_url=None))
    assert failed.status == FAIL and failed.fiscal is None
    bad = draft(lines=(ReceiptLine("Чай", 10000, 1000, 15000),))
    refused = client.register(bad, external_id="r-5", callback_url=None)
    assert (refused.status, refused.provider_id) == (FAIL, None)
    assert refused.error is not None and refused.error.startswith("RECEIPT_VALIDATION_FAILED")
    with pytest.raises(ProviderError) as missing:
        client.status(external_id="r-404", provider_id="r-404", operation=SELL)
    assert (missing.value.code, missing.value.retryable) == ("RECEIPT_NOT_FOUND", False)
    with pytest.raises(ProviderError) as unsupported:
        client.parse_callback(b"{}")
    assert unsupported.value.code == "not_supported"
    faults(server, down=True)
    with pytest.raises(ProviderError) as down:
        client.register(draft(), external_id="r-6", callback_url=None)
    assert down.value.retryable
    wrong_key = RaiffeisenReceiptsClient(server.url, "wrong")
    faults(server, down=False)
    with pytest.raises(ProviderError) as unauthorized:
        wrong_key.status(external_id="r-4", provider_id="r-4", operation=SELL)
    assert (unauthorized.value.status, unauthorized.value.retryable) == (401, False)


def test_one_token_for_concurrent_calls(server: SandboxServer) -> None:
    client = atol_client(server)
    results: list[RegisterResult] = []
    threads = [
        threading.Thread(target=lambda n=n: results.append(
            client.register(draft(), external_id=f"conc-{n}", callback_url=None)))
        for n in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(r.status for r in results) == [WAIT] * 6
    assert state(server)["tokens_issued"] == 1
