"""schemathesis against our own /api/v1/openapi.json: generated requests (valid and not) for
every operation, with a key, never get a 500 and every answer matches the document."""

from __future__ import annotations

import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from tests.constructor.api_support import new_key

EXAMPLES = 60
# What the document cannot promise: it does not spell out every business rule (a sum above
# what one receipt line holds, a VAT rate the configured register refuses, an email the
# register would not take), and the API takes more than it documents on purpose (numbers as
# strings, unknown fields a constructor adds): so schema-valid input may be refused with a
# 400, and schema-invalid input may be accepted. Every other check runs, the 500 check and
# the answers' schema first.
LENIENT = [positive_data_acceptance, negative_data_rejection]


def test_schemathesis_finds_no_500_and_no_answer_off_the_schema(stack):
    key = new_key(stack.app)
    # Over real HTTP (requests undoes the gzip our responses may carry; the WSGI transport
    # would not), the document as the server serves it.
    schema = schemathesis.openapi.from_url(f"{stack.web.url}/api/v1/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} == {
        "POST /payments", "GET /payments/{payment_id}", "POST /payments/{payment_id}/cancel"}
    for operation in operations:
        statuses = _fuzz(operation, stack.web.url, key)
        assert any(400 <= status < 500 for status in statuses), (operation.label, statuses)
        if operation.label == "POST /payments":
            assert any(200 <= status < 300 for status in statuses), statuses

    # Generated ids are unknown (404): the status and cancel of real payments, paid or not.
    created = [requests.post(f"{stack.web.url}/api/v1/payments", json={"amount": "10"},
                             headers={"X-Api-Key": key}, timeout=10).json() for _ in range(2)]
    stack.pay(created[0]["qr_image_url"].rsplit("/", 1)[1].removesuffix(".png"))
    seen = []
    for path in ("/payments/{payment_id}", "/payments/{payment_id}/cancel"):
        operation = schema[path]["GET" if path.endswith("}") else "POST"]
        for answer in created:
            case = operation.Case(path_parameters={"payment_id": answer["payment_id"]})
            response = case.call_and_validate(base_url=f"{stack.web.url}/api/v1",
                                              headers={"X-Api-Key": key},
                                              excluded_checks=LENIENT)
            seen.append((path, response.json().get("status"), response.status_code))
    assert ("/payments/{payment_id}/cancel", None, 409) in seen  # paid: not cancelled
    assert ("/payments/{payment_id}/cancel", "cancelled", 200) in seen


def _fuzz(operation, url: str, key: str) -> list[int]:
    """Run the operation's generated cases; the status codes they got."""
    statuses: list[int] = []

    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case):
        # The key is ours, not generated (a generated one would make every call a 401).
        for name in ("Authorization", "X-Api-Key"):
            (case.headers or {}).pop(name, None)
        (case.query or {}).pop("token", None)
        response = case.call_and_validate(base_url=f"{url}/api/v1", headers={"X-Api-Key": key},
                                          excluded_checks=LENIENT)
        statuses.append(response.status_code)

    run()
    return statuses
