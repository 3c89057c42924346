"""The OpenAPI 3.1 description of /api/v1, built here in Python (tests validate every answer
against it and run schemathesis on it)."""

from __future__ import annotations

from typing import Any

from flask import current_app

from app.constructor.parsing import MAX_CLIENT_ID, MAX_EMAIL, MAX_ORDER_ID
from app.constructor.payments import STATUSES
from app.receipt_lines import MAX_LINES, MAX_NAME, VAT_RATES
from app.sbp.limits import MAX_PURPOSE, MAX_TTL_MINUTES

AMOUNT = {
    "description": "Rubles: \"1250\" or \"1250.50\" (a JSON number works too).",
    "oneOf": [
        {"type": "string", "pattern": r"^\s*\d{1,8}([.,]\d{1,2})?\s*$"},
        {"type": "number", "exclusiveMinimum": 0, "maximum": 42949673},
    ],
}
ITEM = {
    "type": "object",
    "required": ["name", "price"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME},
        "price": AMOUNT,
        "quantity": {
            "description": "Up to 3 decimals; 1 when omitted.",
            "oneOf": [{"type": "string"}, {"type": "number", "exclusiveMinimum": 0}],
        },
        "vat": {"type": "string", "enum": list(VAT_RATES), "default": "none"},
    },
}
CREATE_PROPERTIES: dict[str, Any] = {
    "amount": AMOUNT,
    "items": {
        "description": "Receipt lines instead of `amount` (in a form: the list as JSON text).",
        "oneOf": [{"type": "array", "minItems": 1, "maxItems": MAX_LINES, "items": ITEM},
                  {"type": "string"}],
    },
    "order_id": {"type": "string", "maxLength": MAX_ORDER_ID,
                 "description": "Your order id: a repeat with the same content returns the "
                                "same payment, with another sum or items it is a 409."},
    "description": {"type": "string", "maxLength": MAX_PURPOSE},
    "customer_email": {"type": "string", "maxLength": MAX_EMAIL,
                       "description": "Goes on the receipt."},
    "customer_phone": {"type": "string", "maxLength": 32,
                       "description": "Goes on the receipt when there is no email."},
    "ttl_minutes": {"oneOf": [{"type": "integer", "minimum": 1, "maximum": MAX_TTL_MINUTES},
                              {"type": "string", "pattern": r"^\d{1,4}$"}]},
    "client_id": {"type": "string", "maxLength": MAX_CLIENT_ID,
                  "description": "The bot user's id in the constructor; sent back in "
                                 "callbacks."},
    "token": {"type": "string", "description": "The API key, when no header can be set."},
}
CREATE_BODY = {
    "type": "object",
    "properties": CREATE_PROPERTIES,
    "anyOf": [{"required": ["amount"]}, {"required": ["items"]}],
}
LEADTEH_BODY = {
    "type": "object",
    "required": ["variables"],
    "properties": {"variables": {"type": "array", "items": {
        "type": "object", "required": ["name"],
        "properties": {"name": {"type": "string"}, "value": {}},
    }}},
}
NULLABLE_STRING = {"type": ["string", "null"]}
PAYMENT = {
    "type": "object",
    "required": ["ok", "payment_id", "status", "amount", "qr_payload", "qr_image_url",
                 "pay_url", "expires_at", "receipt_url", "message", "order_id", "client_id"],
    "properties": {
        "ok": {"const": True},
        "payment_id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
        "status": {"type": "string", "enum": list(STATUSES)},
        "amount": {"type": "string", "pattern": r"^\d+\.\d{2}$"},
        "qr_payload": {**NULLABLE_STRING, "description": "The SBP link the QR encodes; null "
                                                         "while the bank is slow."},
        "qr_image_url": {**NULLABLE_STRING, "format": "uri",
                         "description": "A PNG of the QR that Telegram can show."},
        "pay_url": {"type": "string", "format": "uri",
                    "description": "Our pay page: the QR, and bank buttons on a phone."},
        "expires_at": {**NULLABLE_STRING, "format": "date-time"},
        "receipt_url": {**NULLABLE_STRING, "format": "uri"},
        "message": {"type": "string", "description": "A Russian sentence for the customer."},
        "order_id": NULLABLE_STRING,
        "client_id": NULLABLE_STRING,
        "description": NULLABLE_STRING,
    },
}
ERROR = {
    "type": "object",
    "required": ["ok", "error", "message"],
    "properties": {
        "ok": {"const": False},
        "error": {"type": "string", "description": "A stable code: invalid_amount, "
                                                    "invalid_key, order_id_conflict..."},
        "message": {"type": "string", "description": "In Russian."},
    },
}


def _answer(description: str) -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Payment"}}}}


def _errors(*statuses: int) -> dict:
    texts = {400: "Bad input", 401: "No key, or a wrong or revoked one", 404: "Not found",
             409: "order_id used for another payment, or the payment is paid",
             413: "Body over 1 MB", 429: "Too many requests with this key: wait `Retry-After` "
                                               "seconds",
             502: "The bank refused or did not answer"}
    answers = {str(status): {
        "description": texts[status],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    } for status in statuses}
    if "429" in answers:
        answers["429"]["headers"] = {"Retry-After": {
            "description": "Seconds to wait", "schema": {"type": "integer", "minimum": 0}}}
    return answers


PAYMENT_ID = {"name": "payment_id", "in": "path", "required": True,
              "schema": {"type": "string", "maxLength": 64}}
SECURITY = [{"bearer": []}, {"apiKey": []}, {"token": []}]


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of /api/v1."""
    form = {"schema": {"$ref": "#/components/schemas/CreatePayment"}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Kassa constructor API",
            "version": "1.0.0",
            "description": "SBP payments for bots built in Salebot, PuzzleBot, Leadteh, "
                           "SmartBot Pro, Botmother, BotHelp or any program. Answers are flat "
                           "JSON; errors have `ok: false`, a stable `error` code and a Russian "
                           "`message`. A create call answers within 3 seconds: when the bank "
                           "is slow the status is `pending` with `pay_url` and no QR yet; "
                           "ask for the status again.",
        },
        "servers": [{"url": f"{current_app.config['PUBLIC_URL']}/api/v1"}],
        "security": SECURITY,
        "paths": {
            "/payments": {"post": {
                "operationId": "createPayment",
                "summary": "Create a payment (or return the one `order_id` made before)",
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": {"oneOf": [
                        {"$ref": "#/components/schemas/CreatePayment"},
                        {"$ref": "#/components/schemas/LeadtehVariables"},
                    ]}},
                    "application/x-www-form-urlencoded": form,
                    "multipart/form-data": form,
                }},
                "responses": {
                    "201": _answer("Created"),
                    "200": _answer("The payment this order_id made before"),
                    **_errors(400, 401, 409, 413, 429, 502),
                },
            }},
            "/payments/{payment_id}": {"get": {
                "operationId": "getPayment",
                "summary": "The payment's status (the QR appears here once the bank has it)",
                "parameters": [PAYMENT_ID],
                "responses": {"200": _answer("The payment"), **_errors(401, 404, 429)},
            }},
            "/payments/{payment_id}/cancel": {"post": {
                "operationId": "cancelPayment",
                "summary": "Cancel an unpaid payment",
                "parameters": [PAYMENT_ID],
                # No body is needed; one is read for a `token` (the key), so a broken or
                # oversized one is refused as on create.
                "requestBody": {"required": False, "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/KeyOnly"}},
                    "application/x-www-form-urlencoded": {
                        "schema": {"$ref": "#/components/schemas/KeyOnly"}},
                }},
                "responses": {"200": _answer("Cancelled (or was already)"),
                              **_errors(400, 401, 404, 409, 413, 429, 502)},
            }},
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
                "token": {"type": "apiKey", "in": "query", "name": "token"},
            },
            "schemas": {"CreatePayment": CREATE_BODY, "LeadtehVariables": LEADTEH_BODY,
                        "KeyOnly": {"type": "object", "properties": {
                            "token": CREATE_PROPERTIES["token"]}},
                        "Payment": PAYMENT, "Error": ERROR},
        },
    }
