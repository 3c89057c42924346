"""Routes of /api/v1 (thin: parse, authenticate, call the payment services, answer flat JSON)."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from app import jobs
from app.audit import Actor, act_as
from app.constructor import clients, openapi, parsing, payments
from app.errors import KassaError
from app.models import ApiClient

bp = Blueprint("constructor", __name__)


@bp.record_once
def _register_jobs(state) -> None:
    jobs.registry(state.app).handler(payments.JOB, payments.create_qr_job)


def _header_key() -> str | None:
    authorization = request.headers.get("Authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return (request.headers.get("X-Api-Key") or request.args.get(parsing.TOKEN_FIELD)
            or None)


def _authenticate(fields: dict | None = None) -> ApiClient:
    """The calling client, by its key in a header, the query string or the body's `token`."""
    key = _header_key()
    if key is None and fields is not None:
        token = fields.get(parsing.TOKEN_FIELD)
        key = token if isinstance(token, str) else None
    client = clients.authenticate(key)
    act_as(Actor("api_client", id=client.id, label=client.name, source=request.remote_addr))
    return client


@bp.post("/payments")
def create():
    fields = None
    if _header_key() is None:  # the key may be in the body: read it first
        fields = parsing.read_fields(request)
    client = _authenticate(fields)
    if fields is None:
        fields = parsing.read_fields(request)
    fields.pop(parsing.TOKEN_FIELD, None)
    order, created = payments.create_payment(client, parsing.payment_request(fields))
    return jsonify(payments.payment_answer(order)), 201 if created else 200


@bp.get("/payments/<payment_id>")
def status(payment_id: str):
    client = _authenticate()
    return jsonify(payments.payment_answer(payments.get_payment(client, payment_id)))


@bp.post("/payments/<payment_id>/cancel")
def cancel(payment_id: str):
    client = _authenticate(parsing.read_fields(request) if _header_key() is None else None)
    return jsonify(payments.payment_answer(payments.cancel_payment(client, payment_id)))


@bp.get("/openapi.json")
def openapi_document():
    return jsonify(openapi.document())


def _error(status: int, code: str, message) -> tuple:
    response = jsonify(ok=False, error=code, message=str(message))
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="kassa"'
    return response, status


@bp.errorhandler(KassaError)
def _refused(exc: KassaError):
    return _error(exc.status, exc.code, exc.message)


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(_exc):
    return _error(413, "body_too_large", _l("Запрос слишком большой: не больше 1 МБ"))


@bp.errorhandler(HTTPException)
def _http(exc: HTTPException):
    if (exc.code or 500) >= 500:
        return exc
    if exc.code == 400:
        return _error(400, "invalid_body", _l("Тело запроса не прочитать: пришлите JSON, "
                                              "форму или параметры в адресе"))
    code = (exc.name or "error").lower().replace(" ", "_")
    return _error(exc.code, code, exc.description or exc.name)
