"""Calling API clients back when their payments are paid, expire or are refunded: one job
per event and client, with retries, each attempt kept in the delivery log.

The pattern is app/telegram/notify.py's: an event job (`constructor.paid`,
`constructor.expired`, `constructor.refunded`) finds the order's API client and enqueues one
`constructor.callback` job keyed `constructor.callback:<event>:<client>`, so a repeated
event or a re-run event job never calls a client twice. `constructor.callback` builds the
preset's requests (presets.py), sends them and writes each attempt to `CallbackDelivery`:
- an answer 2xx is done;
- no answer, a timeout, a 5xx, a 408 or a 429 fails the job, so the worker retries it with
  its backoff until the attempts run out;
- any other answer (a 4xx: a wrong key, an unknown user) is logged and given up, since
  sending the same again would be refused again;
- a callback URL that now resolves to an internal address is not called at all (SSRF,
  outbound.py): the attempt is logged and the job is dead at once, for an admin to see.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from app import audit, jobs
from app.constructor import outbound, presets
from app.constructor.outbound import CallbackFailed
from app.constructor.presets import Callback, OutboundRequest, PresetError
from app.errors import InvalidStateError, NotFoundError, ValidationError
from app.extensions import db
from app.fiscal.views import receipt_of, receipt_url, sale_receipt_or_wait
from app.jobs import GiveUpJob, enqueue
from app.models import (
    ApiClient,
    CallbackDelivery,
    Job,
    Order,
    OrderStatus,
    Payment,
    QrCode,
    ReceiptStatus,
    Refund,
    utcnow,
)
from app.money import format_rubles, to_string

logger = logging.getLogger(__name__)

SEND_JOB = "constructor.callback"
EVENT_JOBS = {  # event -> the job it causes
    "payment.paid": "constructor.paid",
    "qr.expired": "constructor.expired",
    "refund.completed": "constructor.refunded",
}
# The constructors' API base URLs: settings, whose defaults are the real services.
BASE_URL_SETTINGS = {
    "salebot": "SALEBOT_API_URL",
    "puzzlebot": "PUZZLEBOT_API_URL",
    "bothelp_oauth": "BOTHELP_OAUTH_URL",
    "bothelp": "BOTHELP_API_URL",
}
EXCERPT_CHARS = 1000
BODY_CHARS = 20_000
# API statuses of an order (the API's `status`).
API_STATUS = {
    OrderStatus.NEW: "pending", OrderStatus.PENDING: "pending", OrderStatus.PAID: "paid",
    OrderStatus.EXPIRED: "expired", OrderStatus.CANCELLED: "cancelled",
    OrderStatus.PARTIALLY_REFUNDED: "refunded", OrderStatus.REFUNDED: "refunded",
}


def init_app(app: Flask) -> None:
    """Subscribe the callback jobs to the payment events."""
    registry = jobs.registry(app)
    registry.handler(SEND_JOB, send)
    handlers = {"constructor.paid": paid, "constructor.expired": expired,
                "constructor.refunded": refunded}
    for event, job_name in EVENT_JOBS.items():
        registry.subscribe(event, job_name, handlers[job_name])


# -- which client, if any ------------------------------------------------------------------

def callback_ready(client: ApiClient | None) -> bool:
    """An active, unrevoked client whose preset has all it needs to call back."""
    return (client is not None and client.active and client.revoked_at is None
            and not presets.missing(client.preset.value, client.settings, client.callback_url))


def _fan_out(order: Order | None, event: str, event_key: str, **refs: int) -> None:
    """Enqueue the callback of `event` for the order's API client, if it has one to call,
    and commit. Orders of other channels, or of another client, call nobody."""
    client = db.session.get(ApiClient, order.api_client_id) if (
        order is not None and order.api_client_id is not None) else None
    if not callback_ready(client):
        db.session.rollback()
        return
    key = f"{SEND_JOB}:{event_key}:{client.id}"
    enqueue(SEND_JOB, {"api_client_id": client.id, "order_id": order.id, "event": event,
                       "key": key, **refs}, key=key)
    db.session.commit()


def paid(payload: dict) -> None:
    """Job `constructor.paid` (event payment.paid)."""
    payment = db.session.get(Payment, payload["payment_id"])
    _fan_out(payment.order if payment else None, "paid", f"payment-{payload['payment_id']}",
             payment_id=payload["payment_id"])


def expired(payload: dict) -> None:
    """Job `constructor.expired` (event qr.expired): only while the order is still expired
    (a new QR, or money that came late, makes the news stale)."""
    qr = db.session.get(QrCode, payload["qr_code_id"])
    order = qr.order if qr is not None else None
    if order is not None and order.status == OrderStatus.EXPIRED:
        _fan_out(order, "expired", f"qr-{qr.id}")
    else:
        db.session.rollback()


def refunded(payload: dict) -> None:
    """Job `constructor.refunded` (event refund.completed)."""
    refund = db.session.get(Refund, payload["refund_id"])
    _fan_out(refund.payment.order if refund else None, "refunded",
             f"refund-{payload['refund_id']}", refund_id=payload["refund_id"])


# -- the fields a callback carries ----------------------------------------------------------

def _iso(value) -> str | None:
    return value.isoformat() if value else None


def callback_fields(order: Order, event: str, *, payment: Payment | None = None,
                    refund: Refund | None = None) -> dict[str, Any]:
    """The flat fields of a callback: the API's answer keys that a bot saves into its
    variables, plus `event`. Keys without a value are left out."""
    receipt = receipt_of(payment.id, refund.id if refund else 0) if payment else None
    public = current_app.config["PUBLIC_URL"]
    messages = {
        "paid": _("Оплачено: %(amount)s", amount=format_rubles(order.total_kopecks)),
        "expired": _("Время на оплату истекло, платёж не получен"),
        "refunded": _("Возвращено: %(amount)s", amount=format_rubles(
            refund.amount_kopecks if refund else order.total_kopecks)),
    }
    fields = {
        "ok": True,
        "event": event,
        "payment_id": order.public_id,
        "order_id": order.external_id,
        "client_id": order.client_ref,
        "status": API_STATUS[order.status],
        "amount": to_string(order.total_kopecks),
        "paid_at": _iso(order.paid_at),
        "refund_amount": to_string(refund.amount_kopecks) if refund else None,
        "receipt_url": receipt_url(receipt) if (
            receipt is not None and receipt.status != ReceiptStatus.FAILED) else None,
        "pay_url": f"{public}/checkout/{order.checkout_token}" if order.checkout_token else None,
        "message": messages.get(event),
    }
    return {name: value for name, value in fields.items() if value is not None}


# -- sending ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    """The client as a callback needs it, read before the network is used: no database
    transaction stays open (on SQLite, holding the write lock) while a constructor answers."""

    id: int
    preset: str
    settings: dict[str, Any]
    callback_url: str | None

    @classmethod
    def of(cls, client: ApiClient) -> Target:
        return cls(client.id, client.preset.value, dict(client.settings or {}),
                   client.callback_url)


@dataclass
class Outcome:
    """How a callback went: `ok`, or given up, or to be retried (`retry`); its attempts as
    delivery rows not yet added to the session."""

    ok: bool
    retry: bool
    deliveries: list[CallbackDelivery]
    error: str | None = None
    #: Not sent: the callback URL leads into the internal network (SSRF guard).
    refused: bool = False


def send(payload: dict) -> None:
    """Job `constructor.callback`: call one client back about one event of one order.

    :raises RetryJob: a paid callback waiting for its sale receipt.
    :raises CallbackFailed: no answer, or a "later" answer: the worker retries.
    """
    client = db.session.get(ApiClient, payload["api_client_id"])
    order = db.session.get(Order, payload["order_id"])
    event = payload["event"]
    if order is None or not callback_ready(client):
        logger.warning("callback %s dropped: the client is revoked, inactive or has no "
                       "callback any more", payload.get("key"))
        db.session.rollback()
        return
    payment = db.session.get(Payment, payload["payment_id"]) if payload.get(
        "payment_id") else None
    refund = db.session.get(Refund, payload["refund_id"]) if payload.get("refund_id") else None
    if refund is not None:
        payment = refund.payment
    if event == "paid" and payment is not None:
        sale_receipt_or_wait(payment)
    fields = callback_fields(order, event, payment=payment, refund=refund)
    target, order_id, attempt = Target.of(client), order.id, _attempt(payload.get("key"))
    db.session.rollback()
    outcome = deliver(target, event, fields, order_id=order_id, attempt=attempt)
    db.session.add_all(outcome.deliveries)
    db.session.commit()
    if outcome.retry:
        raise CallbackFailed(f"callback {payload.get('key')}: {outcome.error}")
    if outcome.refused:
        raise GiveUpJob(f"callback {payload.get('key')}: {outcome.error}")
    if not outcome.ok:
        logger.warning("callback %s given up: %s", payload.get("key"), outcome.error)


def _attempt(key: str | None) -> int:
    """This run's attempt of the job (the worker counts it when it claims the job)."""
    attempts = db.session.scalar(sa.select(Job.attempts).where(Job.key == key)) if key else None
    return max(int(attempts or 1), 1)


def deliver(client: Target, event: str, fields: dict[str, Any], *,
            order_id: int | None, attempt: int) -> Outcome:
    """Build the client's requests for `fields` and send them in order, stopping at the first
    that fails. Uses no database: the caller adds the outcome's delivery rows and commits."""
    callback = Callback(event=event, fields=fields, settings=client.settings,
                        callback_url=client.callback_url, base_urls=_base_urls())
    log = _Log(client.id, order_id, event, attempt, presets.secrets_of(client.settings))
    try:
        token = outbound.bothelp_token(callback, log) if client.preset == "bothelp" else None
        calls = presets.build(client.preset, callback, access_token=token)
    except PresetError as exc:
        if not log.rows:  # a refused token request is logged already
            log.refused(client.callback_url or client.preset, str(exc))
        return Outcome(ok=False, retry=False, deliveries=log.rows, error=str(exc))
    except CallbackFailed as exc:
        return Outcome(ok=False, retry=True, deliveries=log.rows, error=str(exc))
    operator_urls = [callback.base(name) for name in presets.DEFAULT_BASE_URLS]
    for call in calls:
        answer = outbound.send(call, check_address=not _operator_url(call.url, operator_urls))
        log.write(call, answer)
        if not answer.ok:
            if answer.status == 401 and client.preset == "bothelp":
                outbound.forget_token(callback)  # expired early: a fresh one on the next attempt
                return Outcome(ok=False, retry=True, deliveries=log.rows, error=answer.error)
            return Outcome(ok=False, retry=answer.retry, deliveries=log.rows,
                           error=answer.error, refused=answer.refused)
    return Outcome(ok=True, retry=False, deliveries=log.rows)


def _operator_url(url: str, bases: list[str]) -> bool:
    """The URL is under one of the constructors' API base URLs (the operator's settings, or
    the real services): not checked for SSRF. Any other URL came from an admin or an API
    client and is."""
    return any(url == base or url.startswith((f"{base}/", f"{base}?")) for base in bases)


def _base_urls() -> dict[str, str]:
    config = current_app.config
    return {name: config[setting] for name, setting in BASE_URL_SETTINGS.items()
            if config.get(setting)}


class _Log:
    """One callback's attempts as `CallbackDelivery` rows, secrets masked."""

    def __init__(self, client_id: int, order_id: int | None, event: str, attempt: int,
                 secrets: list[str]):
        self.base = {"api_client_id": client_id, "order_id": order_id, "event": event,
                     "attempt": attempt}
        self.secrets = secrets
        self.rows: list[CallbackDelivery] = []

    def _add(self, **values) -> CallbackDelivery:
        row = CallbackDelivery(**self.base, at=utcnow(), **values)
        self.rows.append(row)
        return row

    def write(self, call: OutboundRequest, answer: outbound.Answer, *, body: str | None = None
              ) -> None:
        text = body if body is not None else (
            call.body.decode(errors="replace") if call.body else None)
        self._add(method=call.method, url=presets.mask_url(call.url, self.secrets)[:1024],
                  request_body=presets.mask(text, self.secrets)[:BODY_CHARS] if text else None,
                  status_code=answer.status,
                  response_excerpt=presets.mask(answer.text, self.secrets)[:EXCERPT_CHARS]
                  or None,
                  error=answer.error[:512] if answer.error else None, ok=answer.ok,
                  duration_ms=answer.duration_ms)

    def refused(self, where: str, error: str) -> None:
        """A callback that could not even be built (settings missing): nothing was sent."""
        self._add(method="-", url=presets.mask_url(where, self.secrets)[:1024],
                  error=error[:512], ok=False)


# -- the panel's test button -------------------------------------------------------------------

def sample_fields(client_ref: str | None) -> dict[str, Any]:
    """What a test callback carries: a paid payment of 1 ₽ that does not exist."""
    fields = {"ok": True, "event": "test", "payment_id": "test", "order_id": "test",
              "client_id": client_ref, "status": "paid", "amount": "1.00",
              "paid_at": _iso(utcnow()),
              "message": _("Проверка связи с Kassa: это тестовый вызов, платежа нет")}
    return {name: value for name, value in fields.items() if value is not None}


def send_test(api_client_id: int, *, client_ref: str | None = None) -> CallbackDelivery:
    """Send the client a sample callback now (event "test"), log it and commit.

    :param client_ref: the end user to address (a constructor's user id); the settings'
        `test_client_id` when not given. The generic webhook needs none.
    :returns: the delivery that decided: the first failed request, else the last one.
    :raises NotFoundError: no such client.
    :raises InvalidStateError: the client is revoked or inactive.
    :raises ValidationError: the preset's settings are incomplete ("callback_not_configured").
    """
    client = db.session.get(ApiClient, api_client_id)
    if client is None:
        raise NotFoundError(_l("API-клиент не найден"))
    if not client.active or client.revoked_at is not None:
        db.session.rollback()
        raise InvalidStateError(_l("Ключ этого клиента отозван"), code="api_client_revoked")
    lacking = presets.missing(client.preset.value, client.settings, client.callback_url)
    if lacking:
        db.session.rollback()
        raise ValidationError(_l("Для обратного вызова не хватает настроек: %(names)s",
                                 names=", ".join(lacking)), code="callback_not_configured")
    ref = client_ref or (client.settings or {}).get("test_client_id")
    target = Target.of(client)
    db.session.rollback()
    outcome = deliver(target, "test", sample_fields(str(ref) if ref else None),
                      order_id=None, attempt=1)
    db.session.add_all(outcome.deliveries)
    decisive = next((row for row in outcome.deliveries if not row.ok), outcome.deliveries[-1])
    audit.record("api_client.test_callback", target_type="api_client", target_id=target.id,
                 ok=outcome.ok, status_code=decisive.status_code, error=decisive.error)
    db.session.commit()
    return decisive
