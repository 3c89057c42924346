"""Domain errors and the HTML/JSON error handlers."""

from __future__ import annotations

import contextlib
import logging

from flask import Flask, current_app, jsonify, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from app.extensions import DATABASE_UNAVAILABLE, database_failure, db

logger = logging.getLogger(__name__)

JSON_PREFIXES = ("/api/", "/sbp/", "/fiscal/", "/telegram/", "/healthz", "/readyz")


class KassaError(Exception):
    """A refusal a user can act on: a stable `code`, a human `message`, an HTTP status."""

    code = "error"
    status = 400

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status:
            self.status = status


class ValidationError(KassaError):
    code = "invalid_request"


class NotFoundError(KassaError):
    code = "not_found"
    status = 404


class InvalidStateError(KassaError):
    """The object is not in a state that allows the action (cancel a paid QR, refund twice)."""

    code = "invalid_state"
    status = 409


class BankError(KassaError):
    """The bank refused or could not be reached; `bank_code` carries its code when it answered."""

    code = "bank_error"
    status = 502

    def __init__(self, message: str, *, bank_code: str | None = None, retryable: bool = False):
        super().__init__(message)
        self.bank_code = bank_code
        self.retryable = retryable


def wants_json() -> bool:
    if request.path.startswith(JSON_PREFIXES):
        return True
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json" and not request.headers.get("HX-Request")


def error_response(status: int, code: str, message: str):
    """A refusal as JSON (`{"ok": false, "error", "message"}`) or as an error page."""
    if wants_json():
        return jsonify(ok=False, error=code, message=message), status
    template = f"errors/{status}.html" if status in (400, 403, 404, 409, 413, 500) else (
        "errors/generic.html"
    )
    return render_template(template, status=status, code=code, message=message), status


def database_down(exc: Exception) -> bool:
    """Whether the request failed because the database cannot be reached (it is restarting,
    say); if so, it is logged in one line (no traceback) and the caller answers 503 with
    `database_down_message()`, so a client or the bank tries again."""
    if not isinstance(exc, DATABASE_UNAVAILABLE):
        return False
    with contextlib.suppress(DATABASE_UNAVAILABLE):
        db.session.rollback()
    logger.error("database unavailable on %s %s: %s", request.method, request.path,
                 database_failure(exc, current_app.config["SQLALCHEMY_DATABASE_URI"]))
    return True


def database_down_message() -> str:
    return _("Сервис недоступен на минуту: база данных не отвечает. Повторите чуть позже.")


def screen_error_handlers(bp, error_screen, *, unexpected: str) -> None:
    """A Mini App's refusals as its own screens (the till's, the shop's): a domain refusal
    with its message, an HTTP error in Russian, anything else logged and `unexpected` shown;
    the transaction is rolled back first. `error_screen(message, status)` renders one."""

    @bp.errorhandler(KassaError)
    def _kassa_error(exc: KassaError):
        db.session.rollback()
        return error_screen(exc.message, exc.status)

    @bp.errorhandler(429)
    def _rate_limited(_exc: HTTPException):
        from app.ratelimit import rate_limited_message, retry_after

        seconds = retry_after()
        response = current_app.make_response(error_screen(rate_limited_message(seconds), 429))
        response.headers["Retry-After"] = str(seconds)
        return response

    @bp.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        messages = {404: _("Не найдено"), 405: _("Так нельзя"),
                    413: _("Слишком большой запрос")}
        return error_screen(messages.get(exc.code, exc.name), exc.code or 500)

    @bp.errorhandler(Exception)
    def _unexpected(exc: Exception):
        if database_down(exc):
            return error_screen(database_down_message(), 503)
        db.session.rollback()
        logger.exception("%s: unhandled error on %s %s", bp.name, request.method,
                         request.path)
        return error_screen(str(unexpected), 500)


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(KassaError)
    def handle_kassa_error(exc: KassaError):
        return error_response(exc.status, exc.code, exc.message)

    @app.errorhandler(CSRFError)
    def handle_csrf_error(exc: CSRFError):
        return error_response(400, "csrf", _("Форма устарела или пришла не с этой страницы. "
                                       "Обновите страницу и попробуйте ещё раз."))

    @app.errorhandler(HTTPException)
    def handle_http_error(exc: HTTPException):
        code = (exc.name or "error").lower().replace(" ", "_")
        return error_response(exc.code or 500, code, exc.description or exc.name)

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception):
        if database_down(exc):
            return error_response(503, "database_unavailable", database_down_message())
        db.session.rollback()
        logger.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "Internal error; it has been logged.")
