"""Routes of /api/v1 (thin: parse, authenticate, call the payment services, answer flat JSON)."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, jsonify, request
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from app import jobs, ratelimit
from app.audit import Actor, act_as
from app.constructor import clients, openapi, parsing, payments
from app.errors import KassaError
from app.models import ApiClient

bp = Blueprint("constructor", __name__)


@bp.record_once
def _register_jobs(state) -> None:
    jobs.registry(state.app).handler(payments.JOB, payments.create_qr_job)


def _header_keys() -> set[str]:
    """The keys the request carries outside its body: Authorization (a scheme other than
    Bearer counts as a wrong key, not as none), X-Api-Key, ?token=. A credential that is
    there but empty counts too: one wrong or empty key among right ones is still a 401."""
    keys = set()
    if "Authorization" in request.headers:
        authorization = request.headers["Authorization"].strip()
        scheme, _, credentials = authorization.partition(" ")
        keys.add(credentials.strip() if scheme.lower() == "bearer" else authorization)
    if "X-Api-Key" in request.headers:
        keys.add(request.headers["X-Api-Key"].strip())
    if parsing.TOKEN_FIELD in request.args:
        keys.add(request.args[parsing.TOKEN_FIELD].strip())
    return keys


def rate_limit_key() -> str:
    """Whom a request to /api/v1 counts against (ratelimit): its client when it carries one
    known key outside its body, else its address (no key, a wrong one, several, or the
    key in the body, which is read only in the view). Looked up on a connection of its own,
    before the view: the request's session is not touched. While the database does not
    answer, the address counts (the view then answers 503)."""
    keys = _header_keys()
    try:
        client_id = clients.active_client_id(next(iter(keys))) if len(keys) == 1 else None
    except sa.exc.SQLAlchemyError:
        client_id = None
    return f"client:{client_id}" if client_id is not None else f"ip:{ratelimit.client_ip()}"


def _authenticate(keys: set[str]) -> ApiClient:
    """The calling client. Two different keys in one request are refused like a wrong one:
    a wrong key anywhere is a 401."""
    if len(keys) > 1:
        raise clients.AuthError(str(_l("В запросе несколько разных ключей API")),
                                code="invalid_key")
    client = clients.authenticate(next(iter(keys), None) or None)
    act_as(Actor("api_client", id=client.id, label=client.name, source=request.remote_addr))
    return client


def _body_key(fields: dict) -> set[str]:
    if parsing.TOKEN_FIELD not in fields:
        return set()
    token = fields.pop(parsing.TOKEN_FIELD)
    return {token.strip() if isinstance(token, str) else ""}


def _fields_and_client() -> tuple[dict, ApiClient]:
    """The body's fields and the client; a key outside the body is checked before the body
    is read, a key in the body (`token`) after."""
    keys = _header_keys()
    if keys:
        _authenticate(keys)
    fields = parsing.read_fields(request)
    return fields, _authenticate(keys | _body_key(fields))


@bp.post("/payments")
def create():
    fields, client = _fields_and_client()
    order, created = payments.create_payment(client, parsing.payment_request(fields))
    return jsonify(payments.payment_answer(order)), 201 if created else 200


@bp.get("/payments/<payment_id>")
def status(payment_id: str):
    client = _authenticate(_header_keys())
    return jsonify(payments.payment_answer(payments.get_payment(client, payment_id)))


@bp.post("/payments/<payment_id>/cancel")
def cancel(payment_id: str):
    _, client = _fields_and_client()
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
