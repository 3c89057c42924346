"""The emulated cash registers: ATOL Online v5 and the Raiffeisen fiscal API, with faults."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from app.sandbox import SandboxSettings, cli, create_sandbox_app, get_sandbox
from tests.helpers import wait_for

from .helpers import MERCHANT_ID, SECRET_KEY, FakeClock, Receiver

LOGIN, PASSWORD, GROUP = "v5-online-atol-ru", "zUr0OxfI", "v5-online-atol-ru_5179"
BASE = "/possystem/v5"
RAIF = "/api/fiscal/v1/receipts"
AUTH = {"Authorization": f"Bearer {SECRET_KEY}"}

PACKET: dict[str, Any] = {
    "timestamp": "01.02.2026 12:00:00",
    "external_id": "ext-1",
    "receipt": {
        "client": {"email": "buyer@example.com"},
        "company": {"email": "shop@example.com", "sno": "usn_income", "inn": "5544332219",
                    "payment_address": "https://v5.online.atol.ru"},
        "items": [
            {"name": "Чай", "price": 450.5, "quantity": 2, "sum": 901.0, "measure": 0,
             "payment_method": "full_payment", "payment_object": 1, "vat": {"type": "none"}},
            {"name": "Сыр", "price": 333.33, "quantity": 0.333, "sum": 111.0, "measure": 11,
             "payment_method": "full_payment", "payment_object": 1, "vat": {"type": "vat20"}},
        ],
        "payments": [{"type": 1, "sum": 1012.0}],
        "total": 1012.0,
    },
}

RECEIPT: dict[str, Any] = {
    "receiptNumber": "r-1",
    "client": {"email": "buyer@example.com"},
    "items": [{"name": "Чай", "price": 450.5, "quantity": 2, "amount": 901.0,
               "vatType": "none", "paymentObject": "commodity", "measurementUnit": "шт"}],
    "total": 901.0,
}


@pytest.fixture
def app() -> Iterator[Any]:
    sandbox_app = create_sandbox_app(SandboxSettings(
        MERCHANT_ID, SECRET_KEY, None, fiscal_processing_seconds=0.2,
        callback_retry_delays=(0.05, 0.05, 0.05),
    ))
    sandbox_app.testing = True
    yield sandbox_app
    get_sandbox(sandbox_app).stop()


class Atol:
    def __init__(self, client: Any) -> None:
        self.client = client
        self._token: str | None = None

    def token(self) -> str:
        if self._token is None:
            response = self.client.post(f"{BASE}/getToken",
                                        json={"login": LOGIN, "pass": PASSWORD})
            assert response.status_code == 200, response.get_json()
            self._token = response.get_json()["token"]
        return self._token

    def sell(self, packet: dict[str, Any] | None = None, *, operation: str = "sell",
             group: str = GROUP, **kw: Any) -> Any:
        """``token=None`` sends none, ``token="x"`` sends x, default: a valid one."""
        token = kw["token"] if "token" in kw else self.token()
        headers = {"Token": token} if token else {}
        return self.client.post(f"{BASE}/{group}/{operation}", json=packet or PACKET,
                                headers=headers)

    def report(self, uuid: str) -> Any:
        return self.client.get(f"{BASE}/{GROUP}/report/{uuid}", headers={"Token": self.token()})


@pytest.fixture
def atol(app: Any) -> Atol:
    return Atol(app.test_client())


def packet(**changes: Any) -> dict[str, Any]:
    """PACKET with dotted-path changes, e.g. ``packet(**{"receipt.total": 1})``; None deletes."""
    data = copy.deepcopy(PACKET)
    for path, value in changes.items():
        target: Any = data
        *parents, last = path.split(".")
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        if value is None:
            del target[last]
        else:
            target[last] = value
    return data


def error_code(response: Any) -> int:
    return response.get_json()["error"]["code"]


# ---------------------------------------------------------------- ATOL: tokens


def test_get_token(atol: Atol) -> None:
    response = atol.client.post(f"{BASE}/getToken", json={"login": LOGIN, "pass": PASSWORD})
    body = response.get_json()
    assert response.status_code == 200 and body["error"] is None and body["token"]
    by_query = atol.client.get(f"{BASE}/getToken", query_string={"login": LOGIN,
                                                                 "pass": PASSWORD})
    assert by_query.status_code == 200 and by_query.get_json()["token"] != body["token"]
    wrong = atol.client.post(f"{BASE}/getToken", json={"login": LOGIN, "pass": "nope"})
    assert (wrong.status_code, error_code(wrong)) == (401, 12)
    assert wrong.get_json()["error"]["type"] == "system"
    missing = atol.client.post(f"{BASE}/getToken", json={"login": LOGIN})
    assert (missing.status_code, error_code(missing)) == (400, 13)
    not_json = atol.client.post(f"{BASE}/getToken", data="login=x",
                                content_type="application/x-www-form-urlencoded")
    assert (not_json.status_code, error_code(not_json)) == (415, 41)


def test_token_errors(atol: Atol, fake_clock: FakeClock) -> None:
    assert error_code(atol.sell(token=None)) == 10
    assert atol.sell(token=None).status_code == 401
    assert error_code(atol.sell(token="forged")) == 11
    assert error_code(atol.sell(group="other_group")) == 20
    assert atol.sell().status_code == 200
    fake_clock.advance(24 * 3600)
    assert (atol.sell().status_code, error_code(atol.sell())) == (401, 11)


def test_expire_tokens_fault(atol: Atol) -> None:
    token = atol.token()
    atol.client.post("/sandbox/fiscal/faults", json={"expire_tokens": True})
    assert error_code(atol.sell(token=token)) == 11
    fresh = atol.client.post(f"{BASE}/getToken", json={"login": LOGIN, "pass": PASSWORD})
    assert atol.sell(token=fresh.get_json()["token"]).status_code == 200
    state = atol.client.get("/sandbox/fiscal/state").get_json()
    assert (state["tokens_issued"], state["tokens_valid"]) == (2, 1)


# ---------------------------------------------------------------- ATOL: documents


def test_register_report_done(atol: Atol) -> None:
    response = atol.sell()
    body = response.get_json()
    assert response.status_code == 200
    assert (body["status"], body["error"]) == ("wait", None) and body["uuid"]
    report = atol.report(body["uuid"]).get_json()
    assert (report["status"], report["payload"], report["external_id"]) == ("wait", None, "ext-1")
    time.sleep(0.25)
    report = atol.report(body["uuid"]).get_json()
    assert report["status"] == "done" and report["error"] is None
    assert report["group_code"] == GROUP
    payload = report["payload"]
    assert payload["total"] == 1012.0
    assert len(payload["fn_number"]) == 16 and payload["fn_number"].isdigit()
    assert len(payload["ecr_registration_number"]) == 16
    assert len(str(payload["fiscal_document_attribute"])) == 10
    assert payload["fns_site"] == "www.nalog.gov.ru"
    assert time.strptime(payload["receipt_datetime"], "%d.%m.%Y %H:%M:%S")
    link = urlsplit(payload["ofd_receipt_url"])
    view = atol.client.get(f"{link.path}?{link.query}")
    assert view.status_code == 200 and view.get_json()["uuid"] == body["uuid"]


def test_duplicate_and_unknown(atol: Atol) -> None:
    first = atol.sell().get_json()["uuid"]
    again = atol.sell(packet(**{"receipt.total": 1012.5}))
    body = again.get_json()
    assert (again.status_code, error_code(again), body["status"]) == (400, 33, "wait")
    assert body["uuid"] == first
    unknown = atol.report("00000000-0000-0000-0000-000000000000")
    assert (unknown.status_code, error_code(unknown)) == (200, 34)
    assert unknown.get_json()["status"] == "wait"
    other = atol.sell(packet(external_id="ext-2"), operation="sell_refund").get_json()
    assert other["uuid"] != first
    state = atol.client.get("/sandbox/fiscal/state").get_json()
    assert state["counts"] == {"ext-1": 1, "ext-2": 1}
    assert [d["operation"] for d in state["documents"]] == ["sell", "sell_refund"]
    assert state["requests"]["atol.sell"] == 2 and state["requests"]["atol.sell_refund"] == 1


@pytest.mark.parametrize(
    "changes",
    [
        {"timestamp": "2026-02-01 12:00:00"},
        {"external_id": None},
        {"external_id": "x" * 129},
        {"receipt.client": {}},
        {"receipt.client.email": "not-an-email"},
        {"receipt.company.inn": "123"},
        {"receipt.company.sno": None},
        {"receipt.company.payment_address": None},
        {"receipt.items": []},
        {"receipt.items.0.sum": 902.0},  # != price x quantity
        {"receipt.items.0.quantity": 1.2345},
        {"receipt.items.0.price": 1.001},
        {"receipt.items.0.measure": "шт"},
        {"receipt.items.0.payment_object": "commodity"},
        {"receipt.items.0.vat": {"type": "vat18"}},
        {"receipt.items.0.payment_method": ["full_payment"]},
        {"receipt.payments": [{"type": 1, "sum": 1000.0}]},
        {"receipt.total": 1011.0},  # 1 ruble off Σ sums
        {"service": {"callback_url": "ftp://x"}},
    ],
)
def test_validation_error_32(atol: Atol, changes: dict[str, Any]) -> None:
    response = atol.sell(packet(**changes))
    body = response.get_json()
    assert (response.status_code, error_code(response)) == (400, 32), body
    assert body["status"] == "fail" and "uuid" not in body  # no document, no uuid (not null)
    assert atol.client.get("/sandbox/fiscal/state").get_json()["documents"] == []


def test_accepted_variants(atol: Atol) -> None:
    phone_only = packet(**{"receipt.client": {"phone": "+79001234567"}, "external_id": "p"})
    assert atol.sell(phone_only).status_code == 200
    rounded_total = packet(**{"receipt.total": 1011.5, "external_id": "t"})  # within 99 kop
    assert atol.sell(rounded_total).status_code == 200
    assert error_code(atol.sell(operation="buy")) == 31
    raw = atol.client.post(f"{BASE}/{GROUP}/sell", data="{", content_type="application/json",
                           headers={"Token": atol.token()})
    assert (raw.status_code, error_code(raw)) == (400, 40)
    not_found = atol.client.get(f"{BASE}/{GROUP}/sell")
    assert not_found.status_code == 405 and error_code(not_found) == 40


def test_fail_next_and_lose_answer(atol: Atol) -> None:
    faults = atol.client.post("/sandbox/fiscal/faults",
                              json={"fail_next": 1, "lose_answer_next": 1}).get_json()
    assert (faults["fail_next"], faults["lose_answer_next"]) == (1, 1)
    lost = atol.sell()
    assert (lost.status_code, lost.data) == (502, b"")
    retry = atol.sell()
    assert error_code(retry) == 33
    uuid = retry.get_json()["uuid"]
    time.sleep(0.25)
    report = atol.report(uuid).get_json()
    assert (report["status"], report["payload"]) == ("fail", None)
    assert (report["error"]["code"], report["error"]["type"]) == (-3803, "driver")
    second = atol.sell(packet(external_id="ext-2")).get_json()["uuid"]
    time.sleep(0.25)
    assert atol.report(second).get_json()["status"] == "done"  # the fault is used up


def test_callback_delivered_with_retries(atol: Atol, receiver: Receiver) -> None:
    receiver.responses = [500]
    uuid = atol.sell(packet(service={"callback_url": receiver.url})).get_json()["uuid"]
    wait_for(lambda: len(receiver.requests) >= 2)
    body = json.loads(receiver.requests[-1]["body"])
    assert (body["uuid"], body["status"], body["external_id"]) == (uuid, "done", "ext-1")
    assert body["callback_url"] == receiver.url
    assert "X-Api-Signature-SHA256" not in receiver.requests[-1]["headers"]
    state = atol.client.get("/sandbox/fiscal/state").get_json()
    callback = state["callbacks"][0]
    assert callback["delivered"] and [a["status_code"] for a in callback["attempts"]] == [500, 200]


def test_faults_down_slow_and_reset(atol: Atol) -> None:
    atol.token()
    atol.client.post("/sandbox/fiscal/faults", json={"down": True})
    assert atol.sell().status_code == 503
    assert atol.client.get(f"{RAIF}/sell/r-1", headers=AUTH).status_code == 503
    assert atol.client.get("/sandbox/state").status_code == 200  # the bank is up
    atol.client.post("/sandbox/fiscal/faults", json={"down": False, "slow": 0.2})
    started = time.monotonic()
    assert atol.sell().status_code == 200
    assert time.monotonic() - started >= 0.2
    state = atol.client.get("/sandbox/fiscal/state").get_json()
    assert state["faults"]["slow"] == 0.2 and len(state["documents"]) == 1
    for bad in ({"nope": 1}, {"down": "yes"}, {"slow": -1}, {"fail_next": 1.5}, [1]):
        assert atol.client.post("/sandbox/fiscal/faults", json=bad).status_code == 400
    atol.client.post("/sandbox/reset")
    state = atol.client.get("/sandbox/fiscal/state").get_json()
    assert state["documents"] == [] and state["tokens_issued"] == 0
    assert state["faults"] == {"down": False, "slow": 0, "fail_next": 0,
                               "lose_answer_next": 0}


# ---------------------------------------------------------------- Raiffeisen fiscal API


def test_raiffeisen_lifecycle(app: Any) -> None:
    client = app.test_client()
    assert client.post(f"{RAIF}/sell", json=RECEIPT).status_code == 401
    saved = client.post(f"{RAIF}/sell", json=RECEIPT, headers=AUTH)
    assert saved.status_code == 200
    assert saved.get_json()["status"] == "NEW" and saved.get_json()["receiptType"] == "SELL"
    updated = dict(RECEIPT, client={"email": "other@example.com"})
    assert client.post(f"{RAIF}/sell", json=updated, headers=AUTH).status_code == 200
    registered = client.put(f"{RAIF}/sell/r-1", headers=AUTH).get_json()
    assert registered["status"] == "IN_PROGRESS"
    assert registered["client"] == {"email": "other@example.com"}
    conflict = client.post(f"{RAIF}/sell", json=RECEIPT, headers=AUTH)
    assert (conflict.status_code, conflict.get_json()["code"]) == (409, "RECEIPT_STATUS_CONFLICT")
    assert client.put(f"{RAIF}/sell/r-1", headers=AUTH).status_code == 409
    time.sleep(0.25)
    done = client.get(f"{RAIF}/sell/r-1", headers=AUTH).get_json()
    assert done["status"] == "DONE" and done["fiscalData"]["total"] == 901.0
    assert done["items"][0]["quantity"] == 2
    missing = client.get(f"{RAIF}/refund/r-1", headers=AUTH)
    assert (missing.status_code, missing.get_json()["code"]) == (404, "RECEIPT_NOT_FOUND")
    assert client.put(f"{RAIF}/sell/none", headers=AUTH).status_code == 404
    wrong_type = client.get(f"{RAIF}/buy/r-1", headers=AUTH)
    assert wrong_type.get_json()["code"] == "RECEIPT_TYPE_NOT_SUPPORTED"


@pytest.mark.parametrize(
    "changes",
    [
        {"receiptNumber": "bad number"},
        {"client": {}},
        {"items": []},
        {"total": 900.0},
        {"items": [dict(RECEIPT["items"][0], amount=900.0)]},
        {"items": [dict(RECEIPT["items"][0], vatType=None)]},
        # fiscal.yml's enums are lowercase and know six VAT rates; units are <= 16 chars.
        {"items": [dict(RECEIPT["items"][0], vatType="NONE")]},
        {"items": [dict(RECEIPT["items"][0], vatType="vat22")]},
        {"items": [dict(RECEIPT["items"][0], paymentObject="COMMODITY")]},
        {"items": [dict(RECEIPT["items"][0], measurementUnit="SQUARE_CENTIMETER")]},
        {"receiptNumber": "r.1"},
        {"client": None, "customer": {"email": "buyer@example.com"}},  # the SDK's object
    ],
)
def test_raiffeisen_validation(app: Any, changes: dict[str, Any]) -> None:
    body = {key: value for key, value in dict(RECEIPT, **changes).items() if value is not None}
    response = app.test_client().post(f"{RAIF}/sell", json=body, headers=AUTH)
    assert (response.status_code, response.get_json()["code"]) == (
        400, "RECEIPT_VALIDATION_FAILED")


def test_raiffeisen_faults(app: Any) -> None:
    client = app.test_client()
    client.post("/sandbox/fiscal/faults", json={"fail_next": 1, "lose_answer_next": 1})
    client.post(f"{RAIF}/refund", json=RECEIPT, headers=AUTH)
    assert client.put(f"{RAIF}/refund/r-1", headers=AUTH).status_code == 502
    assert client.put(f"{RAIF}/refund/r-1", headers=AUTH).status_code == 409  # registered
    time.sleep(0.25)
    failed = client.get(f"{RAIF}/refund/r-1", headers=AUTH).get_json()
    assert (failed["status"], failed["receiptType"]) == ("FAILED", "REFUND")
    assert "fiscalData" not in failed
    state = client.get("/sandbox/fiscal/state").get_json()
    assert state["requests"] == {"raif.save": 1, "raif.register": 2, "raif.status": 1}


def test_cli_reads_atol_settings() -> None:
    base = {"RAIFFEISEN_SBP_MERCHANT_ID": MERCHANT_ID, "RAIFFEISEN_SECRET_KEY": "k"}
    settings = cli.settings_from_config(
        dict(base, ATOL_LOGIN="me", ATOL_PASSWORD="pw", ATOL_GROUP_CODE="grp")
    )
    assert (settings.atol_login, settings.atol_password, settings.atol_group_code) == (
        "me", "pw", "grp")
    defaults = cli.settings_from_config(base)
    assert (defaults.atol_login, defaults.atol_group_code) == (LOGIN, GROUP)
    assert defaults.fiscal_processing_seconds == 3.0
