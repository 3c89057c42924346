"""What the constructor API's tests share: an API client with its key, and a check that an
answer is one the OpenAPI document promises (its status code and its JSON schema)."""

from __future__ import annotations

import functools

from jsonschema import Draft202012Validator, FormatChecker

from app.constructor.clients import create_client

CREATE = ("POST", "/api/v1/payments")
STATUS = ("GET", "/api/v1/payments/{id}")
CANCEL = ("POST", "/api/v1/payments/{id}/cancel")
# The bank is not there (tests/conftest.py points it at a closed port): answer `pending`
# after a tenth of a second, not after the real budget.
OFFLINE = {"API_BANK_BUDGET_SECONDS": 0.1}
OPERATIONS = {
    ("POST", "/api/v1/payments"): "/payments",
    ("GET", "/api/v1/payments/{id}"): "/payments/{payment_id}",
    ("POST", "/api/v1/payments/{id}/cancel"): "/payments/{payment_id}/cancel",
}


def new_key(app, name: str = "shop", **kwargs) -> str:
    with app.app_context():
        return create_client(name, **kwargs)[1]


@functools.cache
def _validator(schema_name: str, document_text: str) -> Draft202012Validator:
    import json

    document = json.loads(document_text)
    return Draft202012Validator({**document, "$ref": f"#/components/schemas/{schema_name}"},
                                format_checker=FormatChecker())


def checked(app, response, method: str, route: str) -> dict:
    """The answer's JSON (a Flask test response or a requests one), after asserting the
    document lists its status code for the operation and its body matches the Payment (ok)
    or Error schema."""
    import json

    from app.constructor.openapi import document

    with app.test_request_context():
        doc = document()
    operation = doc["paths"][OPERATIONS[(method, route)]][method.lower()]
    assert str(response.status_code) in operation["responses"], (
        f"{method} {route} answered {response.status_code}, not in the document")
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.get_json() if hasattr(response, "get_json") else response.json()
    name = "Payment" if body.get("ok") else "Error"
    _validator(name, json.dumps(doc, sort_keys=True)).validate(body)
    return body
