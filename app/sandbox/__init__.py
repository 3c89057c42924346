"""Kassa's bank and cash register emulator ("sandbox"): a self-contained Flask app speaking
Raiffeisen SBP, ATOL Online v5 and the Raiffeisen fiscal API.

It serves the bank endpoints Kassa's real HTTP client calls (same paths, JSON, error
codes and signed callbacks as the bank's OpenAPI files and SDKs describe them), the cloud register
endpoints its receipt clients call (ATOL Online v5, Raiffeisen receipts), a payer page and JSON
control endpoints for scripts and tests. It imports nothing from the rest of ``app``.

TEST DOUBLE: state is in memory behind one lock and is lost on restart. One daemon
thread (started on first use) delivers callbacks with retries, completes refunds and
fiscalizes receipts.

Bank endpoints (``Authorization: Bearer <secret_key>``, optional only on registration):
    POST   /api/sbp/v2/qrs                      register QRDynamic / QRStatic / QRVariable
    GET    /api/sbp/v2/qrs/<qrId>               info with qrStatus
    DELETE /api/sbp/v2/qrs/<qrId>               cancel
    GET    /api/sbp/v1/qr/<qrId>/image          PNG (no auth)
    GET    /api/sbp/v1/qr/<qrId>/payment-info   latest transaction or NO_INFO
    POST   /api/sbp/v1/refund, GET /api/sbp/v1/refund/<refundId>
    POST   /api/payment/v1/orders, GET|DELETE /api/payment/v1/orders/<id>   (cash links)
    GET    /api/payments/v1/orders/<id>/transaction          the order's payment (ecom API)
    POST|GET /api/payments/v1/orders/<id>/refunds/<refundId>  refund a cash-link order
    POST   /api/settings/v1/callback
Cash registers (see app/sandbox/atol.py, fiscal_raif.py):
    POST|GET /possystem/v5/getToken; POST /possystem/v5/<group>/sell|sell_refund;
    GET /possystem/v5/<group>/report/<uuid>               (header ``Token``)
    POST /api/fiscal/v1/receipts/<sell|refund>, PUT|GET .../<receiptNumber>   (Bearer)
Sandbox only (no auth):
    GET /, GET /pay/, GET|POST /pay/<qrId>      payer pages (Russian)
    POST /sandbox/qrs/<qrId>/pay                {"status": "SUCCESS"|"DECLINED", "amount"?}
    GET /sandbox/state, POST /sandbox/reset     (reset clears the registers and faults too)
    POST /sandbox/fiscal/faults, GET /sandbox/fiscal/state, GET /sandbox/fiscal/receipt
    GET|POST /sandbox/bank/faults               {"down": bool, "slow": seconds,
                                                "pay_on_register": bool}: the bank API
                                                answers 503, answers late, or pays a new
                                                QRDynamic before answering its registration
                                                (see app/sandbox/bank_control.py)
NSPK (see app/sandbox/nspk_banks.py):
    GET /proxyapp/c2bmembers.json               the SBP member bank apps; POST /sandbox/c2bmembers

Sandbox assumptions where the bank is undocumented (see comments at each place):
re-registering an unpaid ``order`` returns the same QR; ``crc`` is CRC-16/CCITT-FALSE;
a cash link holds one open order (a new activation cancels the previous one); cancelling
an already paid/cancelled/expired QR or order answers 400 ORDER_HAS_FINAL_STATUS; a static
QR or cash link registered without an expiry is valid for a year; a paid cash-link order is
announced by the ecom notification (``{"event": "payment", ...}``), a declined attempt on
it by none.

Usage::

    server = start_sandbox(SandboxSettings("MA0000000552", "key", "http://127.0.0.1:5000/sbp/callback"))
    ...  # point the Raiffeisen client at server.url
    server.shutdown()
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import threading
from pathlib import Path

from flask import Flask, Response, request
from flask_babel import Babel
from werkzeug.exceptions import HTTPException
from werkzeug.serving import BaseWSGIServer, make_server

from .errors import BankError
from .fiscal_state import AtolError, render_response
from .jsonio import error_response
from .settings import SandboxSettings
from .state import SandboxState
from .worker import Worker

__all__ = [
    "Sandbox",
    "SandboxServer",
    "SandboxSettings",
    "create_sandbox_app",
    "get_sandbox",
    "serve_sandbox",
    "start_sandbox",
    "url_host",
]

log = logging.getLogger(__name__)

#: ``<repo>/templates``; the sandbox's own templates are under ``templates/sandbox/``.
TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"

_EXTENSION_KEY = "kassa_sandbox"
ATOL_PREFIX = "/possystem/"


class Sandbox:
    """The state and background worker behind one sandbox Flask app."""

    def __init__(self, settings: SandboxSettings) -> None:
        self.settings = settings
        self.state = SandboxState(settings)
        self.worker = Worker(self.state)

    def stop(self) -> None:
        """Stop the background thread (callback delivery and refund completion)."""
        self.worker.stop()


def get_sandbox(app: Flask) -> Sandbox:
    return app.extensions[_EXTENSION_KEY]


def _is_api_path(path: str) -> bool:
    return path.startswith(("/api/", "/sandbox/", ATOL_PREFIX))


def create_sandbox_app(settings: SandboxSettings) -> Flask:
    """Build the sandbox app. ``settings`` is kept by reference (``base_url`` is read per request).

    The background thread starts on the first queued callback or refund; stop it with
    ``get_sandbox(app).stop()`` (``SandboxServer.shutdown`` does that).
    """
    app = Flask(__name__, template_folder=str(TEMPLATES_DIR))
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
    Babel(app, default_locale="ru")
    app.extensions[_EXTENSION_KEY] = Sandbox(settings)

    from . import atol, bank_api, bank_control, fiscal_control, fiscal_raif, nspk_banks, payer

    app.register_blueprint(bank_api.bp)
    app.register_blueprint(payer.bp)
    app.register_blueprint(atol.bp)
    app.register_blueprint(fiscal_raif.bp)
    app.register_blueprint(fiscal_control.bp)
    app.register_blueprint(bank_control.bp)
    app.register_blueprint(nspk_banks.bp)

    @app.errorhandler(BankError)
    def _bank_error(exc: BankError) -> Response:
        return error_response(exc.status, exc.code, exc.message)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response | HTTPException:
        if not _is_api_path(request.path):
            return exc
        status = exc.code or 500
        if request.path.startswith(ATOL_PREFIX):  # ATOL's envelope: 40 BadRequest
            error = AtolError(status, 50 if status >= 500 else 40, exc.description or exc.name)
            return render_response(error.body(), status)
        code = "ERROR.NOT_FOUND" if status == 404 else "ERROR.INVALID_REQUEST"
        if status >= 500:
            code = "ERROR.INTERNAL"
        return error_response(status, code, exc.description or exc.name)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        if not _is_api_path(request.path):
            raise exc
        log.exception("sandbox error")
        if request.path.startswith(ATOL_PREFIX):
            return render_response(AtolError(500, 50, f"{type(exc).__name__}: {exc}").body(), 500)
        return error_response(500, "ERROR.INTERNAL", f"{type(exc).__name__}: {exc}")

    return app


def url_host(host: str) -> str:
    """The host to put in a URL for a listening address (``0.0.0.0`` -> ``127.0.0.1``)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host or "127.0.0.1"
    if address.is_unspecified:
        return "127.0.0.1" if address.version == 4 else "[::1]"
    return f"[{host}]" if address.version == 6 else host


class SandboxServer:
    """A running sandbox: werkzeug (threaded) in a daemon thread plus the sandbox worker."""

    def __init__(
        self, app: Flask, server: BaseWSGIServer, thread: threading.Thread, url: str
    ) -> None:
        self.app = app
        self.url = url
        self.settings: SandboxSettings = get_sandbox(app).settings
        self._server = server
        self._thread = thread
        self._closed = False

    @property
    def sandbox(self) -> Sandbox:
        return get_sandbox(self.app)

    def shutdown(self) -> None:
        """Stop the HTTP server and the background thread. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
        get_sandbox(self.app).stop()

    def __enter__(self) -> SandboxServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()


def _bind(settings: SandboxSettings, host: str, port: int) -> tuple[Flask, BaseWSGIServer, str]:
    app = create_sandbox_app(settings)
    server = make_server(host, port, app, threaded=True)
    url = f"http://{url_host(host)}:{server.server_port}"
    settings.base_url = url
    return app, server, url


def start_sandbox(
    settings: SandboxSettings, host: str = "127.0.0.1", port: int = 0
) -> SandboxServer:
    """Serve a sandbox in a background thread; ``port=0`` picks a free port.

    Works on a copy of ``settings`` whose ``base_url`` is set to the real URL (see
    ``SandboxServer.url`` / ``SandboxServer.settings``); the caller's object is untouched.
    """
    settings = dataclasses.replace(settings)
    app, server, url = _bind(settings, host, port)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.1},
        name=f"sandbox-http-{server.server_port}",
        daemon=True,
    )
    thread.start()
    return SandboxServer(app, server, thread, url)


def serve_sandbox(settings: SandboxSettings, host: str = "127.0.0.1", port: int = 8081) -> None:
    """Serve in the foreground until interrupted (Ctrl-C). Used by ``flask sandbox run``.

    ``settings.base_url`` is set to ``http://<host>:<port>`` (0.0.0.0 becomes 127.0.0.1).
    """
    app, server, url = _bind(settings, host, port)
    log.info("sandbox listening on %s", url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        get_sandbox(app).stop()
