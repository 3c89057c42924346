"""In-memory state of the emulated cloud cash registers: ATOL Online v5 and the Raiffeisen
fiscal API (ATOL Online v5, Raiffeisen's ``fiscal.yml``), plus the fault switches tests flip.

TEST DOUBLE, like :mod:`app.sandbox.state`: everything lives in memory behind the ONE lock
of :class:`~app.sandbox.state.SandboxState` (passed in), and is lost on restart or
``POST /sandbox/reset``. Public methods take the lock; ``_`` methods expect it held.

A document waits ``fiscal_processing_seconds`` (sandbox monotonic time) and is then
fiscalized (or fails, if a ``fail_next`` fault was armed when it was registered). That
happens lazily on every read and in the sandbox worker, which also delivers ATOL callbacks
(the report packet, unsigned, POSTed to ``service.callback_url``, retried like bank ones).

Fiscal requisites are made up but well-formed: the FN number is "9999" + 12 digits from the
start time (a new FN per sandbox process, so FN+FD pairs never repeat across restarts), FD
numbers grow by one per fiscalized receipt (+2 at a shift change, the close/open reports),
the FPD is a 10-digit HMAC of the document, the shift changes with the Moscow date.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
import uuid as uuidlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from flask import Response

from . import clock
from .errors import BankError
from .jsonio import Amount
from .money import format_amount
from .outgoing import Outgoing
from .settings import SandboxSettings

ATOL = "atol"
RAIFFEISEN = "raiffeisen"
# Document statuses, ATOL's words; NEW is a saved Raiffeisen receipt not yet registered.
NEW, WAIT, DONE, FAIL = "new", "wait", "done", "fail"
RAIF_STATUS = {NEW: "NEW", WAIT: "IN_PROGRESS", DONE: "DONE", FAIL: "FAILED"}

ATOL_TIME = "%d.%m.%Y %H:%M:%S"
FNS_SITE = "www.nalog.gov.ru"
OFD_INN = "7704211201"
ECR_REGISTRATION_NUMBER = "0000000001005417"
DAEMON_CODE = "prod-agent-1"
DEVICE_CODE = "KKT014034"
#: What a ``fail_next`` document ends with (a KKT "driver" error, as ATOL reports one).
KKT_ERROR_CODE = -3803
KKT_ERROR_TEXT = "Неверная цена/сумма (wrong price/sum)"

FAULT_KEYS = ("down", "slow", "fail_next", "lose_answer_next", "expire_tokens")


def atol_time(moment: datetime) -> str:
    return moment.astimezone(clock.MSK).strftime(ATOL_TIME)


class AtolError(Exception):
    """Rendered in ATOL's envelope: ``{uuid, error{error_id, code, text, type}, status,
    timestamp}`` with HTTP ``http_status``."""

    def __init__(
        self,
        http_status: int,
        code: int,
        text: str,
        *,
        status: str = FAIL,
        uuid: str | None = None,
        error_type: str = "system",
    ) -> None:
        super().__init__(f"{http_status} {code}: {text}")
        self.http_status = http_status
        self.code = code
        self.text = text
        self.status = status
        self.uuid = uuid
        self.error_type = error_type

    def body(self) -> dict[str, Any]:
        # A refused document has no uuid: the key is left out, never null (ATOL's samples).
        return {
            **({"uuid": self.uuid} if self.uuid else {}),
            "error": {
                "error_id": str(uuidlib.uuid4()),
                "code": self.code,
                "text": self.text,
                "type": self.error_type,
            },
            "status": self.status,
            "timestamp": atol_time(clock.now()),
        }


def render(obj: Any) -> str:
    """Compact JSON like :func:`app.sandbox.jsonio.dumps`, plus Decimal as its exact number."""
    if isinstance(obj, Amount):
        return format_amount(obj.kopecks)
    if isinstance(obj, Decimal):
        return format(obj, "f")
    if isinstance(obj, dict):
        return "{" + ",".join(
            render(str(key)) + ":" + render(value) for key, value in obj.items()
        ) + "}"
    if isinstance(obj, (list, tuple)):
        return "[" + ",".join(render(item) for item in obj) + "]"
    if isinstance(obj, datetime):
        return render(clock.iso(obj))
    if obj is None or isinstance(obj, (bool, int, str)):
        return json.dumps(obj, ensure_ascii=False)
    raise TypeError(f"cannot render {type(obj).__name__} as JSON")


def render_response(obj: Any, status: int = 200) -> Response:
    return Response(render(obj), status=status, mimetype="application/json")


@dataclass
class Faults:
    down: bool = False
    slow: Decimal = Decimal(0)  # seconds
    fail_next: int = 0
    lose_answer_next: int = 0


@dataclass
class Token:
    value: str
    issued_at: datetime
    expired: bool = False


@dataclass
class Item:
    """One receipt line, normalized: kopecks and thousandths."""

    name: str
    price: int
    quantity_milli: int
    amount: int

    def json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "price": format_amount(self.price),
            "quantity": format(Decimal(self.quantity_milli).scaleb(-3), "f"),
            "sum": format_amount(self.amount),
        }


@dataclass
class FiscalDocument:
    uuid: str
    provider: str  # ATOL | RAIFFEISEN
    external_id: str  # ATOL external_id / Raiffeisen receiptNumber
    operation: str  # sell | sell_refund (ATOL); sell | refund (Raiffeisen)
    items: list[Item]
    total: int
    callback_url: str | None
    created_at: datetime
    status: str
    body: dict[str, Any] | None = None  # Raiffeisen: the saved receipt as sent
    due_monotonic: float | None = None
    will_fail: bool = False
    payload: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    finished_at: datetime | None = None


@dataclass(kw_only=True)
class CallbackDelivery(Outgoing):
    """An ATOL callback (ATOL does not sign them)."""

    uuid: str

    @property
    def label(self) -> str:
        return f"ATOL document {self.uuid}"


@dataclass
class Registration:
    """The outcome of one registration call."""

    document: FiscalDocument
    duplicate: bool
    lose_answer: bool


class FiscalState:
    def __init__(
        self, settings: SandboxSettings, lock: threading.Lock, wake: Callable[[], None]
    ) -> None:
        self.settings = settings
        self.lock = lock
        self._wake = wake
        # Kept across resets, like the bank's transaction ids (see the module docstring).
        self.fn_number = f"9999{int(time.time()) % 10**12:012d}"
        self._fpd_key = uuidlib.uuid4().bytes
        self._fd_numbers = itertools.count(2)  # FD 1 is the registration report
        self.shift_number = 0
        self._shift_date: date | None = None
        self._receipt_in_shift = 0
        self._clear()

    def _clear(self) -> None:
        self.faults = Faults()
        self.tokens: dict[str, Token] = {}
        self.documents: dict[str, FiscalDocument] = {}
        self.atol_by_external_id: dict[str, str] = {}
        self.raif_by_number: dict[tuple[str, str], str] = {}
        self.deliveries: dict[str, CallbackDelivery] = {}
        self.requests: Counter[str] = Counter()
        self.registrations: Counter[str] = Counter()

    # ------------------------------------------------------------------ faults and counters

    def enter(self, endpoint: str) -> tuple[bool, float]:
        """Count a request to a fiscal endpoint; returns the (down, slow) faults."""
        with self.lock:
            self.requests[endpoint] += 1
            return self.faults.down, float(self.faults.slow)

    def set_faults(self, changes: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            if "down" in changes:
                self.faults.down = bool(changes["down"])
            if "slow" in changes:
                self.faults.slow = Decimal(str(changes["slow"]))
            if "fail_next" in changes:
                self.faults.fail_next = int(changes["fail_next"])
            if "lose_answer_next" in changes:
                self.faults.lose_answer_next = int(changes["lose_answer_next"])
            if changes.get("expire_tokens"):
                for token in self.tokens.values():
                    token.expired = True
            return self._faults_json()

    def _faults_json(self) -> dict[str, Any]:
        return {
            "down": self.faults.down,
            "slow": self.faults.slow,
            "fail_next": self.faults.fail_next,
            "lose_answer_next": self.faults.lose_answer_next,
        }

    def _take_fail(self) -> bool:
        if self.faults.fail_next > 0:
            self.faults.fail_next -= 1
            return True
        return False

    def _take_lose(self) -> bool:
        if self.faults.lose_answer_next > 0:
            self.faults.lose_answer_next -= 1
            return True
        return False

    # ------------------------------------------------------------------ ATOL tokens

    def issue_token(self, login: Any, password: Any) -> dict[str, Any]:
        with self.lock:
            now = clock.now()
            if not login or not password:
                raise AtolError(400, 13, "Ошибка валидации: login и pass обязательны")
            if not (
                hmac.compare_digest(str(login).encode(), self.settings.atol_login.encode())
                and hmac.compare_digest(
                    str(password).encode(), self.settings.atol_password.encode()
                )
            ):
                raise AtolError(401, 12, "Неверный логин или пароль")
            value = hashlib.sha256(uuidlib.uuid4().bytes).hexdigest()
            self.tokens[value] = Token(value, now)
            return {"error": None, "token": value, "timestamp": atol_time(now)}

    def check_token(self, value: str | None, group_code: str) -> None:
        with self.lock:
            if not value:
                raise AtolError(401, 10, "Не передан токен")
            token = self.tokens.get(value)
            lifetime = timedelta(seconds=self.settings.atol_token_lifetime_seconds)
            if token is None or token.expired or clock.now() - token.issued_at >= lifetime:
                raise AtolError(401, 11, "Срок действия токена истёк")
            if group_code != self.settings.atol_group_code:
                raise AtolError(
                    401, 20, f"Код группы {group_code} не соответствует токену"
                )

    # ------------------------------------------------------------------ ATOL documents

    def atol_register(
        self,
        *,
        operation: str,
        external_id: str,
        callback_url: str | None,
        items: list[Item],
        total: int,
    ) -> Registration:
        with self.lock:
            self.registrations[external_id] += 1
            existing = self.atol_by_external_id.get(external_id)
            if existing is not None:
                return Registration(self.documents[existing], True, self._take_lose())
            doc = FiscalDocument(
                uuid=str(uuidlib.uuid4()),
                provider=ATOL,
                external_id=external_id,
                operation=operation,
                items=items,
                total=total,
                callback_url=callback_url,
                created_at=clock.now(),
                status=WAIT,
                due_monotonic=time.monotonic() + self.settings.fiscal_processing_seconds,
                will_fail=self._take_fail(),
            )
            self.documents[doc.uuid] = doc
            self.atol_by_external_id[external_id] = doc.uuid
            self._wake()
            return Registration(doc, False, self._take_lose())

    def atol_report(self, uuid: str) -> dict[str, Any] | None:
        """The report packet, or None when there is no such ATOL document (error 34)."""
        with self.lock:
            self._complete_due(time.monotonic())
            doc = self.documents.get(uuid)
            if doc is None or doc.provider != ATOL:
                return None
            return self._atol_packet(doc)

    def _atol_packet(self, doc: FiscalDocument) -> dict[str, Any]:
        return {
            "uuid": doc.uuid,
            "error": doc.error,
            "status": doc.status,
            "payload": doc.payload,
            "timestamp": atol_time(doc.finished_at or clock.now()),
            "group_code": self.settings.atol_group_code,
            "daemon_code": DAEMON_CODE,
            "device_code": DEVICE_CODE,
            "external_id": doc.external_id,
            "callback_url": doc.callback_url or "",
        }

    # ------------------------------------------------------------------ Raiffeisen receipts

    def _raif_doc(self, receipt_type: str, number: str) -> FiscalDocument:
        uuid = self.raif_by_number.get((receipt_type, number))
        if uuid is None:
            raise BankError(404, "RECEIPT_NOT_FOUND", f"Чек {number} не найден")
        return self.documents[uuid]

    @staticmethod
    def _conflict(doc: FiscalDocument) -> BankError:
        return BankError(
            409,
            "RECEIPT_STATUS_CONFLICT",
            f"Чек {doc.external_id} в статусе {RAIF_STATUS[doc.status]}, действие невозможно",
        )

    def raif_save(
        self,
        *,
        receipt_type: str,
        number: str,
        body: dict[str, Any],
        items: list[Item],
        total: int,
    ) -> dict[str, Any]:
        """POST: create, or update the NEW receipt with this number (409 once registered)."""
        with self.lock:
            self._complete_due(time.monotonic())
            uuid = self.raif_by_number.get((receipt_type, number))
            if uuid is not None:
                doc = self.documents[uuid]
                if doc.status != NEW:
                    raise self._conflict(doc)
                doc.body, doc.items, doc.total = body, items, total
            else:
                doc = FiscalDocument(
                    uuid=str(uuidlib.uuid4()),
                    provider=RAIFFEISEN,
                    external_id=number,
                    operation=receipt_type,
                    items=items,
                    total=total,
                    callback_url=None,
                    created_at=clock.now(),
                    status=NEW,
                    body=body,
                )
                self.documents[doc.uuid] = doc
                self.raif_by_number[(receipt_type, number)] = doc.uuid
            return self._raif_json(doc)

    def raif_register(self, receipt_type: str, number: str) -> tuple[dict[str, Any], bool]:
        """PUT: send the saved receipt to the register; returns (answer, lose_answer)."""
        with self.lock:
            self._complete_due(time.monotonic())
            doc = self._raif_doc(receipt_type, number)
            if doc.status != NEW:
                raise self._conflict(doc)
            self.registrations[number] += 1
            doc.status = WAIT
            doc.due_monotonic = time.monotonic() + self.settings.fiscal_processing_seconds
            doc.will_fail = self._take_fail()
            self._wake()
            return self._raif_json(doc), self._take_lose()

    def raif_get(self, receipt_type: str, number: str) -> dict[str, Any]:
        with self.lock:
            self._complete_due(time.monotonic())
            return self._raif_json(self._raif_doc(receipt_type, number))

    def _raif_json(self, doc: FiscalDocument) -> dict[str, Any]:
        data = dict(doc.body or {})
        data["receiptNumber"] = doc.external_id
        data["receiptType"] = "SELL" if doc.operation == "sell" else "REFUND"
        data["status"] = RAIF_STATUS[doc.status]
        if doc.status == DONE and doc.payload is not None:
            # Sandbox addition: the bank documents no fiscal identifiers (in ``fiscal.yml``).
            data["fiscalData"] = doc.payload
        return data

    # ------------------------------------------------------------------ processing (lock held)

    def _fiscalize(self, doc: FiscalDocument, now: datetime) -> dict[str, Any]:
        today = now.astimezone(clock.MSK).date()
        if self._shift_date != today:
            if self._shift_date is not None:
                next(self._fd_numbers)  # shift close report
            next(self._fd_numbers)  # shift open report
            self.shift_number += 1
            self._shift_date = today
            self._receipt_in_shift = 0
        self._receipt_in_shift += 1
        fd = next(self._fd_numbers)
        digest = hmac.new(
            self._fpd_key, f"{self.fn_number}|{fd}|{doc.total}|{doc.uuid}".encode(), hashlib.sha256
        ).digest()
        fpd = 1_000_000_000 + int.from_bytes(digest[:8], "big") % 9_000_000_000
        query = urlencode({"fn": self.fn_number, "i": fd, "fp": fpd})
        base = self.settings.base_url.rstrip("/")
        return {
            "fiscal_receipt_number": self._receipt_in_shift,
            "shift_number": self.shift_number,
            "receipt_datetime": atol_time(now),
            "total": Amount(doc.total),
            "fn_number": self.fn_number,
            "ecr_registration_number": ECR_REGISTRATION_NUMBER,
            "fiscal_document_number": fd,
            "fiscal_document_attribute": fpd,
            "fns_site": FNS_SITE,
            "ofd_inn": OFD_INN,
            "ofd_receipt_url": f"{base}/sandbox/fiscal/receipt?{query}",
        }

    def _complete_due(self, now_monotonic: float) -> None:
        due = sorted(
            (
                d
                for d in self.documents.values()
                if d.status == WAIT
                and d.due_monotonic is not None
                and d.due_monotonic <= now_monotonic
            ),
            key=lambda d: d.due_monotonic or 0.0,
        )
        for doc in due:
            now = clock.now()
            doc.finished_at = now
            if doc.will_fail:
                doc.status = FAIL
                doc.error = {
                    "error_id": str(uuidlib.uuid4()),
                    "code": KKT_ERROR_CODE,
                    "text": KKT_ERROR_TEXT,
                    "type": "driver",
                }
            else:
                doc.status = DONE
                doc.payload = self._fiscalize(doc, now)
            if doc.provider == ATOL and doc.callback_url:
                self.deliveries[doc.uuid] = CallbackDelivery(
                    uuid=doc.uuid,
                    url=doc.callback_url,
                    body=render(self._atol_packet(doc)),
                    next_due=time.monotonic(),
                )
                self._wake()

    def _due_deliveries(self, now_monotonic: float) -> list[CallbackDelivery]:
        due = sorted(
            (
                d
                for d in self.deliveries.values()
                if d.next_due is not None and d.next_due <= now_monotonic
            ),
            key=lambda d: d.next_due or 0.0,
        )
        for delivery in due:
            delivery.next_due = None
        return due

    def _next_times(self) -> list[float]:
        times = [d.next_due for d in self.deliveries.values() if d.next_due is not None]
        times += [
            d.due_monotonic
            for d in self.documents.values()
            if d.status == WAIT and d.due_monotonic is not None
        ]
        return times

    # ------------------------------------------------------------------ views

    def find_receipt(self, fn: str, fd: str, fp: str) -> dict[str, Any] | None:
        """The document behind an ``ofd_receipt_url`` (fn/i/fp), as in :meth:`snapshot`."""
        with self.lock:
            for doc in self.documents.values():
                payload = doc.payload or {}
                if (
                    payload.get("fn_number") == fn
                    and str(payload.get("fiscal_document_number")) == fd
                    and str(payload.get("fiscal_document_attribute")) == fp
                ):
                    return self._document_json(doc)
            return None

    def _document_json(self, doc: FiscalDocument) -> dict[str, Any]:
        return {
            "uuid": doc.uuid,
            "provider": doc.provider,
            "external_id": doc.external_id,
            "operation": doc.operation,
            "status": doc.status if doc.provider == ATOL else RAIF_STATUS[doc.status],
            "total": format_amount(doc.total),
            "items": [item.json() for item in doc.items],
            "callback_url": doc.callback_url,
            "created_at": doc.created_at,
            "finished_at": doc.finished_at,
            "payload": doc.payload,
            "error": doc.error,
        }

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready dump for tests (amounts as strings, except inside ``payload``)."""
        with self.lock:
            self._complete_due(time.monotonic())
            counts: Counter[str] = Counter(d.external_id for d in self.documents.values())
            now = clock.now()
            lifetime = timedelta(seconds=self.settings.atol_token_lifetime_seconds)
            return {
                "faults": self._faults_json(),
                "documents": [self._document_json(d) for d in self.documents.values()],
                "counts": dict(counts),
                "registrations": dict(self.registrations),
                "tokens_issued": len(self.tokens),
                "tokens_valid": sum(
                    1
                    for t in self.tokens.values()
                    if not t.expired and now - t.issued_at < lifetime
                ),
                "requests": dict(self.requests),
                "callbacks": [
                    {
                        "uuid": d.uuid,
                        "url": d.url,
                        "delivered": d.delivered,
                        "gaveUp": d.gave_up,
                        "attempts": [
                            {"at": a.at, "url": a.url, "status_code": a.status_code}
                            if a.error is None
                            else {"at": a.at, "url": a.url, "error": a.error}
                            for a in d.attempts
                        ],
                    }
                    for d in self.deliveries.values()
                ],
            }
