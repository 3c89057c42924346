"""schemathesis on /api/v1 in-process (the WSGI app, no socket): every operation of our own
OpenAPI document, generated valid and invalid requests, with a real API key. No answer is a
5xx, every status code is one the document lists, every body matches its schema, and a
refused request writes nothing."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import given
from hypothesis import strategies as st
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from tests.constructor.api_support import CANCEL, CREATE, OFFLINE, checked, new_key
from tests.security.fuzz_support import FUZZ, row_counts

# The document cannot spell out every business rule (a sum over one receipt line, a VAT
# rate the register refuses), and the API takes more than it documents on purpose (numbers
# as strings, fields a constructor adds): schema-valid input may get a 400 and
# schema-invalid input may be accepted. Every other check runs: no 5xx, the status code
# documented, the body and content type as documented.
LENIENT = [positive_data_acceptance, negative_data_rejection]


def _headers(key: str) -> dict:
    # The WSGI transport does not undo gzip (a browser or requests would): ask for none.
    return {"X-Api-Key": key, "Accept-Encoding": "identity"}


# A fuzz run is hundreds of calls with one key within seconds: the rate limit (Flask-Limiter's
# own switch) is tested elsewhere, here it would only turn the parsing under test into 429s.
APP = {**OFFLINE, "RATELIMIT_ENABLED": False}
OPERATIONS = {"POST /payments", "GET /payments/{payment_id}",
              "POST /payments/{payment_id}/cancel"}


def test_every_operation_fuzzed_in_process_answers_as_documented(make_app):
    app = make_app(**APP)
    key = new_key(app)
    # A real payment, so that the status and cancel are fuzzed past the 404 too.
    real = app.test_client().post("/api/v1/payments", json={"amount": "10"},
                                  headers={"X-Api-Key": key}).get_json()["payment_id"]
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} == OPERATIONS
    seen: dict[str, list[int]] = {}
    for operation in operations:
        seen[operation.label] = _fuzz(app, operation, key, real)
    # Valid and invalid requests both: answered (a real payment found, one made), and
    # refused with the documented 4xx past the key: a body that is not one (400), an
    # unknown id (404).
    expected = {"POST /payments": {201, 400}, "GET /payments/{payment_id}": {200, 404},
                "POST /payments/{payment_id}/cancel": {200, 400, 404}}
    for label, statuses in seen.items():
        assert expected[label] <= set(statuses), (label, sorted(set(statuses)))


def test_a_payment_made_by_the_api_is_fuzzed_by_its_real_id(make_app):
    """Generated ids are unknown (404); the status and cancel of a real payment too."""
    app = make_app(**APP)
    key = new_key(app)
    client = app.test_client()
    created = client.post("/api/v1/payments", json={"amount": "10"},
                          headers={"X-Api-Key": key}).get_json()
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    answers = []
    for path, method in (("/payments/{payment_id}", "GET"),
                         ("/payments/{payment_id}/cancel", "POST")):
        case = schema[path][method].Case(path_parameters={"payment_id": created["payment_id"]})
        response = case.call_and_validate(headers=_headers(key), excluded_checks=LENIENT)
        answers.append((path, response.status_code, response.json()["status"]))
    assert answers == [("/payments/{payment_id}", 200, "pending"),
                       ("/payments/{payment_id}/cancel", 200, "cancelled")]


# What the fuzz found (each was a 500): a number too big for Decimal arithmetic, and text
# no database driver can encode (a lone surrogate, which JSON's \\ud800 escape makes).
FOUND = [
    (b'{"amount": 1e999999}', "invalid_amount"),
    (b'{"items": [{"name": "x", "price": "1", "quantity": "1e999999999"}]}',
     "invalid_quantity"),
    (b'{"items": [{"name": "x", "price": "1", "quantity": 1e999999999}]}', "invalid_quantity"),
    (b'{"amount": "10", "description": "\\ud800"}', "text_too_long"),
    (b'{"items": [{"name": "\\udfff", "price": "1"}]}', "invalid_item"),
    (b'{"amount": "10", "order_id": "a\\ud800b"}', "invalid_order_id"),
]


@pytest.mark.parametrize(("body", "code"), FOUND)
def test_what_the_fuzz_found_is_a_documented_400(make_app, body, code):
    app = make_app(**APP)
    key = new_key(app)
    response = app.test_client().post("/api/v1/payments", data=body, headers={
        "X-Api-Key": key, "Content-Type": "application/json"})
    assert checked(app, response, *CREATE)["error"] == code
    assert response.status_code == 400
    assert row_counts(app)["orders"] == 0


BROKEN = [
    (b"{", "application/json", 400),
    (b"[1, 2]", "application/json", 400),
    (b"\xff\xfe\x00", "text/plain", 400),
    (b"[" * 100_000, "application/json", 400),
    (b"x" * (10 * 1024 * 1024), "application/json", 413),
    (b"amount=" + b"9" * (2 * 1024 * 1024), "application/x-www-form-urlencoded", 413),
]


@pytest.mark.parametrize(("body", "content_type", "status"), BROKEN)
def test_a_broken_or_huge_body_is_refused_as_documented_by_create_and_cancel(
        make_app, body, content_type, status):
    """Cancel reads a body too (a key may come in it as `token`): both operations refuse a
    broken one with 400 and one over 1 MB with 413, the answers the document lists."""
    app = make_app(**APP)
    key = new_key(app)
    client = app.test_client()
    real = client.post("/api/v1/payments", json={"amount": "10"},
                       headers={"X-Api-Key": key}).get_json()["payment_id"]
    before = row_counts(app)
    headers = {"X-Api-Key": key, "Content-Type": content_type}
    for route, path in ((CREATE, "/api/v1/payments"),
                        (CANCEL, f"/api/v1/payments/{real}/cancel")):
        response = client.post(path, data=body, headers=headers)
        assert response.status_code == status, (path, response.get_data()[:200])
        assert checked(app, response, *route)["ok"] is False
    assert row_counts(app) == before
    assert client.get(f"/api/v1/payments/{real}", headers=headers).get_json()["status"] == \
        "pending"


def _strategy(operation, real_id: str):
    modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    strategies = [operation.as_strategy(mode) for mode in modes]
    if "{payment_id}" in operation.path:
        strategies += [operation.as_strategy(mode, path_parameters={"payment_id": real_id})
                       for mode in modes]
    return st.one_of(strategies)


def _fuzz(app, operation, key: str, real_id: str) -> list[int]:
    """Run the operation's generated cases with our key; the status codes they got."""
    statuses: list[int] = []

    @given(case=_strategy(operation, real_id))
    @FUZZ
    def run(case):
        # The key is ours, not generated (a generated one would make every call a 401).
        for name in ("Authorization", "X-Api-Key"):
            (case.headers or {}).pop(name, None)
        (case.query or {}).pop("token", None)
        if isinstance(case.body, dict):
            case.body.pop("token", None)
        before = row_counts(app)
        response = case.call_and_validate(headers=_headers(key), excluded_checks=LENIENT)
        statuses.append(response.status_code)
        if response.status_code >= 400:
            assert row_counts(app) == before, (case.body, response.status_code)

    run()
    return statuses
