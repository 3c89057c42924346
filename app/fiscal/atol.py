"""ATOL Online v5 client; Эвотор and Бизнес.Ру speak the same protocol.

POST ``{base}/getToken`` once a day, POST ``{base}/{group}/sell|sell_refund`` with a stable
``external_id``, then poll GET ``{base}/{group}/report/{uuid}`` (at most once a second) or
wait for the callback, which is only a hint (it is unsigned).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from app.fiscal.receipt import (
    DONE,
    FAIL,
    SELL,
    SELL_REFUND,
    WAIT,
    ReceiptDraft,
    RegisterResult,
)
from app.fiscal.wire import MOSCOW, atol_time, json_object, parse_payload, quantity
from app.httpclient import HttpClient, HttpResponse, ProviderError, loads_inbound
from app.money import to_decimal
from app.receipt_lines import MEASURES, PAYMENT_OBJECTS, VAT_RATES

logger = logging.getLogger(__name__)

PROVIDER = "atol"

#: A token lives 24 h; renew a little earlier so a call never carries a dying one.
TOKEN_LIFETIME_SECONDS = 23 * 3600.0
#: At most one report request per second (per KKT in the group).
REPORT_INTERVAL_SECONDS = 1.0

# ATOL's error codes.
MISSING_TOKEN, EXPIRED_TOKEN, WRONG_LOGIN = 10, 11, 12
EXTERNAL_ID_EXISTS = 33
STATE_CHECK_NOT_FOUND = 34
#: The document was refused before registration (no uuid): bad JSON, failed validation,
#: unsupported operation or media type. register() answers FAIL for these.
REFUSED_CODES = frozenset({13, 31, 32, 40, 41})

OPERATIONS = {SELL: "sell", SELL_REFUND: "sell_refund"}


def _error(data: Any) -> tuple[int | None, str]:
    """(code, text) of ATOL's ``error`` object, or (None, "") when there is none."""
    if not isinstance(data, dict):
        return None, ""
    error = data.get("error")
    if not isinstance(error, dict):
        return None, ""
    code = error.get("code")
    try:
        number = int(code) if code is not None else None
    except (TypeError, ValueError):
        number = None
    return number, str(error.get("text") or "")


def _fail_text(code: int | None, text: str) -> str:
    return f"{code} {text}".strip() if code is not None else (text or "fail")


class AtolClient:
    """Speaks ATOL Online v5 (and the sandbox, which speaks the same).

    :param base_url: ``https://online.atol.ru/possystem/v5`` (Эвотор:
        ``https://fiscalization.evotor.ru/possystem/v5``), or the sandbox
        ``http://127.0.0.1:8081/possystem/v5``.
    :param login: integrator login; :param password: its password (never logged).
    :param group_code: the KKT group, e.g. ``v5-online-atol-ru_5179``.
    :param clock: monotonic seconds; drives the token lifetime and the report throttle.
    :param http: a ready HttpClient (tests pass one with a short backoff).

    Thread-safe: one token is cached per instance (fetched under a lock, renewed after
    23 h, or at once when ATOL answers 401 / error 10 or 11, after which the call is repeated
    once), and report requests of one instance are spaced at least 1 s apart: one asked
    sooner is not sent (ProviderError ``too_soon`` says when to ask again).
    """

    name = PROVIDER
    title = "АТОЛ Онлайн"
    # v5 documents every value we know (ФФД 1.2 measure codes, the 2026 VAT rates).
    vat_rates = frozenset(VAT_RATES)
    measures = frozenset(MEASURES)
    payment_objects = frozenset(PAYMENT_OBJECTS)

    def __init__(
        self,
        base_url: str,
        login: str,
        password: str,
        group_code: str,
        *,
        timeout: tuple[float, float] = (3.05, 15),
        clock: Callable[[], float] = time.monotonic,
        http: HttpClient | None = None,
    ):
        self.login = login
        self._password = password
        self.group_code = group_code
        self.http = http or HttpClient(base_url, provider=PROVIDER, timeout=timeout)
        self._clock = clock
        self._token_lock = threading.Lock()
        self._token: str | None = None
        self._token_at = 0.0
        self._report_lock = threading.Lock()
        # Last report request per document uuid (ATOL: at most 1 request/s while polling).
        self._last_report: dict[str, float] = {}

    def __repr__(self) -> str:  # never show the password or the token
        return (
            f"AtolClient({self.http.base_url!r}, login={self.login!r}, "
            f"group={self.group_code!r})"
        )

    # -- token ----------------------------------------------------------------------------

    def _get_token(self) -> str:
        with self._token_lock:
            if self._token is not None and (
                self._clock() - self._token_at < TOKEN_LIFETIME_SECONDS
            ):
                return self._token
            self._token = self._fetch_token()
            self._token_at = self._clock()
            return self._token

    def _drop_token(self, token: str) -> None:
        """Forget ``token`` unless another thread has already replaced it."""
        with self._token_lock:
            if self._token == token:
                self._token = None

    def check_login(self) -> None:
        """Ask for a new token and forget it: one read-only call (the health check) that
        proves the address, the login and the password. The cached token is untouched."""
        self._fetch_token()

    def _fetch_token(self) -> str:
        # Safe to repeat: several tokens may be valid at once.
        response = self.http.request(
            "POST", "/getToken", json_body={"login": self.login, "pass": self._password},
            idempotent=True,
        )
        data = json_object(response)
        code, text = _error(data)
        token = data.get("token") if data else None
        if code is None and 200 <= response.status < 300 and isinstance(token, str) and token:
            logger.info("atol: new token for %s", self.login)
            return token
        if code == WRONG_LOGIN:
            raise ProviderError(
                str(code), text or "wrong login or password", provider=PROVIDER,
                status=response.status,
            )
        raise self._unexpected(response, data, "getToken")

    # -- plumbing -------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        idempotent: bool | None = None,
        throttle: str | None = None,
    ) -> tuple[HttpResponse, dict[str, Any] | None]:
        """Send with the cached token; on 401 / error 10, 11 renew it and send once more."""
        for attempt in (1, 2):
            token = self._get_token()
            if throttle:
                self._throttle(throttle)
            response = self.http.request(
                method, path, json_body=body, headers={"Token": token}, idempotent=idempotent
            )
            data = json_object(response)
            code, _ = _error(data)
            stale = code in (MISSING_TOKEN, EXPIRED_TOKEN) or (
                response.status == 401 and code is None
            )
            if stale and attempt == 1:
                logger.info("atol: token refused (%s), fetching a new one", code or 401)
                self._drop_token(token)
                continue
            return response, data
        raise AssertionError("unreachable")  # pragma: no cover

    def _throttle(self, uuid: str) -> None:
        """Space report requests for one document at least REPORT_INTERVAL_SECONDS apart.
        Different documents are not held back by each other.

        :raises ProviderError: ``too_soon`` (retryable, with ``retry_after``) when this
            document was asked about less than REPORT_INTERVAL_SECONDS ago.
        """
        with self._report_lock:
            now = self._clock()
            last = self._last_report.get(uuid)
            if last is not None and now - last < REPORT_INTERVAL_SECONDS:
                wait = last + REPORT_INTERVAL_SECONDS - now
                raise ProviderError("too_soon", f"report {uuid} asked again within "
                                    f"{REPORT_INTERVAL_SECONDS:g} s; ask in {wait:.2f} s",
                                    provider=PROVIDER, retryable=True, retry_after=wait)
            self._last_report[uuid] = now
            if len(self._last_report) > 10_000:  # forget documents not polled for a minute
                self._last_report = {k: v for k, v in self._last_report.items()
                                     if now - v < 60}

    @staticmethod
    def _unexpected(
        response: HttpResponse, data: dict[str, Any] | None, what: str
    ) -> ProviderError:
        code, text = _error(data)
        retryable = response.status >= 500 or code in (MISSING_TOKEN, EXPIRED_TOKEN)
        if code is None:
            return ProviderError(
                f"http_{response.status}" if data is None or response.status >= 400
                else "bad_response",
                f"{what}: unexpected answer", provider=PROVIDER, status=response.status,
                retryable=retryable,
            )
        return ProviderError(
            str(code), text or what, provider=PROVIDER, status=response.status,
            retryable=retryable,
        )

    # -- documents ------------------------------------------------------------------------

    def receipt_body(
        self, draft: ReceiptDraft, *, external_id: str, callback_url: str | None
    ) -> dict[str, Any]:
        """The v5 registration packet for ``draft`` (money as exact Decimal numbers).

        ATOL requires a client e-mail or phone; a receipt without either (a walk-in SBP
        buyer) is addressed to the shop's own e-mail, which is also its sender address.
        """
        client: dict[str, str] = {}
        if draft.customer_email:
            client["email"] = draft.customer_email
        if draft.customer_phone:
            client["phone"] = draft.customer_phone
        if not client:
            client["email"] = draft.company.email
        items = []
        for line in draft.lines:
            if line.measure not in MEASURES:
                raise ProviderError("bad_draft", f"unknown measure {line.measure!r}",
                                    provider=PROVIDER)
            if line.payment_object not in PAYMENT_OBJECTS:
                raise ProviderError("bad_draft", f"unknown payment object {line.payment_object!r}",
                                    provider=PROVIDER)
            items.append({
                "name": line.name,
                "price": to_decimal(line.price_kopecks),
                "quantity": quantity(line.quantity_milli),
                "sum": to_decimal(line.amount_kopecks),
                "measure": MEASURES[line.measure],
                "payment_method": line.payment_method,
                "payment_object": PAYMENT_OBJECTS[line.payment_object],
                "vat": {"type": line.vat},
            })
        body: dict[str, Any] = {
            "timestamp": atol_time(datetime.now(MOSCOW)),
            "external_id": external_id,
        }
        if callback_url:
            body["service"] = {"callback_url": callback_url}
        body["receipt"] = {
            "client": client,
            "company": {
                "email": draft.company.email,
                "sno": draft.company.sno,
                "inn": draft.company.inn,
                "payment_address": draft.company.payment_address,
            },
            "items": items,
            "payments": [{"type": draft.payment_type, "sum": to_decimal(draft.total_kopecks)}],
            "total": to_decimal(draft.total_kopecks),
        }
        return body

    def register(
        self, draft: ReceiptDraft, *, external_id: str, callback_url: str | None
    ) -> RegisterResult:
        """POST the receipt. WAIT with the uuid when accepted, also when ATOL already has
        this external_id (error 33 carries the first uuid); FAIL for a refused document."""
        operation = OPERATIONS.get(draft.operation)
        if operation is None:
            raise ProviderError("bad_draft", f"unknown operation {draft.operation!r}",
                                provider=PROVIDER)
        body = self.receipt_body(draft, external_id=external_id, callback_url=callback_url)
        # Safe to resend: ATOL keys documents by external_id.
        response, data = self._call(
            "POST", f"/{self.group_code}/{operation}", body, idempotent=True
        )
        code, text = _error(data)
        uuid = data.get("uuid") if data else None
        if code == EXTERNAL_ID_EXISTS or (code is None and 200 <= response.status < 300):
            if not uuid:
                raise ProviderError("bad_response", f"{operation}: no uuid in the answer",
                                    provider=PROVIDER, status=response.status)
            if code == EXTERNAL_ID_EXISTS:
                logger.info("atol: %s already registered as %s", external_id, uuid)
            elif data and data.get("status") == FAIL:
                return RegisterResult(FAIL, external_id, str(uuid), error=_fail_text(code, text),
                                      raw=data)
            return RegisterResult(WAIT, external_id, str(uuid), raw=data or {})
        if code in REFUSED_CODES:
            return RegisterResult(FAIL, external_id, None, error=_fail_text(code, text),
                                  raw=data or {})
        raise self._unexpected(response, data, operation)

    def status(
        self, *, external_id: str, provider_id: str | None, operation: str
    ) -> RegisterResult:
        """GET the report (at most 1 request/s per document, see `_throttle`). Error 34 (not
        processed yet) is WAIT: never resend a document because of it."""
        if not provider_id:
            raise ProviderError("no_uuid", "the document has no ATOL uuid to ask about",
                                provider=PROVIDER)
        # Not retried inside HttpClient: polling is the retry, and it must stay at 1 rps.
        response, data = self._call(
            "GET", f"/{self.group_code}/report/{provider_id}", idempotent=False,
            throttle=provider_id,
        )
        code, _ = _error(data)
        if code == STATE_CHECK_NOT_FOUND:
            return RegisterResult(WAIT, external_id, provider_id, raw=data or {})
        if data is None or response.status >= 400:
            raise self._unexpected(response, data, "report")
        result = self._from_report(data, external_id=external_id, provider_id=provider_id)
        if result.external_id != external_id:
            raise ProviderError("bad_response", f"report {provider_id} is about "
                                f"{result.external_id}, not {external_id}", provider=PROVIDER)
        return result

    def parse_callback(self, raw_body: bytes) -> RegisterResult:
        """Read the packet ATOL POSTs to ``service.callback_url`` (the same as the report).

        ATOL callbacks carry no signature: anyone can POST one. Treat the result as a hint
        and confirm it with :meth:`status` before changing anything. Only the uuid
        and a known status are required; fiscal data that cannot be read is left as None
        (the status call brings it). ``external_id`` may be missing (the report schema does
        not require it): the result then carries "" and the receipt is found by its uuid.
        """
        try:
            data = loads_inbound(raw_body, parse_float=Decimal)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ProviderError("bad_payload", "body is not JSON", provider=PROVIDER) from exc
        if not isinstance(data, dict):
            raise ProviderError("bad_payload", "body is not a JSON object", provider=PROVIDER)
        if not data.get("uuid") or not isinstance(data["uuid"], str):
            raise ProviderError("bad_payload", "uuid is missing", provider=PROVIDER)
        try:
            return self._from_report(data)
        except ProviderError as exc:
            if data.get("status") not in (WAIT, DONE, FAIL):
                raise ProviderError("bad_payload", exc.message, provider=PROVIDER) from exc
            logger.warning("atol: callback for %s with unreadable payload: %s",
                           data.get("uuid"), exc.message)
            return RegisterResult(str(data["status"]), str(data.get("external_id") or ""),
                                  data["uuid"], raw=data)

    @staticmethod
    def _from_report(
        data: dict[str, Any], *, external_id: str | None = None, provider_id: str | None = None
    ) -> RegisterResult:
        ext = str(data.get("external_id") or external_id or "")
        uuid = str(data.get("uuid") or provider_id or "")
        status = data.get("status")
        if status == DONE:
            payload = data.get("payload")
            if not isinstance(payload, dict):
                raise ProviderError("bad_response", "done without payload", provider=PROVIDER)
            return RegisterResult(DONE, ext, uuid, raw=data,
                                  fiscal=parse_payload(payload, provider=PROVIDER))
        if status == WAIT:
            return RegisterResult(WAIT, ext, uuid, raw=data)
        if status == FAIL:
            code, text = _error(data)
            return RegisterResult(FAIL, ext, uuid, error=_fail_text(code, text), raw=data)
        raise ProviderError("bad_response", f"unknown report status {status!r}",
                            provider=PROVIDER)
