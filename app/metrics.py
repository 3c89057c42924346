"""GET /metrics for Prometheus.

Two kinds of numbers, so that they are right however many processes there are:

- State (payments, QR codes, jobs, receipts, the providers' health) is read from the
  database at scrape time by `DatabaseCollector`: every gunicorn worker answers the same,
  and the job worker's work shows without the worker serving HTTP. Each question is a
  count or a min over an index.
- The bank's, the register's and Telegram's callbacks are timed where they are answered
  (`CALLBACK_SECONDS`, a histogram). With PROMETHEUS_MULTIPROC_DIR set, prometheus_client
  keeps each process's counts in a file there and a scrape adds them up, so any gunicorn
  worker answers for all of them (gunicorn.conf.py empties the folder when gunicorn starts and
  tells the library when a worker exits). Without it the numbers are this process's only:
  right for one process (`flask run`), not for several gunicorn workers.

Who may scrape: with METRICS_TOKEN set, whoever sends `Authorization: Bearer <token>`;
without it, only a direct request from a loopback or private address (a request that came
through a proxy, with X-Forwarded-For or Forwarded, is refused).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
from datetime import timedelta

import sqlalchemy as sa
from flask import Blueprint, Flask, Response, current_app, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from app.extensions import begin_read_only, csrf, db
from app.logs import request_seconds
from app.models import (
    Job,
    JobStatus,
    Payment,
    PaymentStatus,
    ProviderHealth,
    QrCode,
    QrStatus,
    Receipt,
    ReceiptKind,
    ReceiptStatus,
    utcnow,
)

logger = logging.getLogger(__name__)

# The callbacks timed, by endpoint.
CALLBACK_ENDPOINTS = {"sbp.callback": "sbp", "fiscal.atol_callback": "atol",
                      "telegram.webhook": "telegram"}
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# A paid payment is looked at for a missing receipt this long; older ones are the
# operator's (the failed receipts and dead jobs show them).
RECEIPT_LAG_WINDOW = timedelta(days=7)

# Created without a registry: each scrape builds its own (see `metrics`).
CALLBACK_SECONDS = Histogram(
    "kassa_callback_duration_seconds",
    "Time to answer a provider's callback (bank, register, Telegram), by callback and HTTP status",
    ["callback", "status"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=None,
)

bp = Blueprint("metrics", __name__)
csrf.exempt(bp)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.after_request(observe_callback)


def observe_callback(response: Response) -> Response:
    """After every request: time it if it is a provider's callback. A failure here (an
    unwritable PROMETHEUS_MULTIPROC_DIR) is logged, never the caller's."""
    callback = CALLBACK_ENDPOINTS.get(request.endpoint or "")
    seconds = request_seconds() if callback else None
    if seconds is not None:
        try:
            CALLBACK_SECONDS.labels(callback, str(response.status_code)).observe(seconds)
        except Exception as exc:
            logger.warning("callback latency not recorded (%s): %s", MULTIPROC_ENV, exc)
    return response


# -- who may scrape ----------------------------------------------------------------------------

PROXY_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")
# Loopback and the private ranges (RFC 1918, IPv6 unique local); not ipaddress's broader
# is_private, which also counts the documentation and reserved ranges.
PRIVATE_NETWORKS = tuple(ipaddress.ip_network(net) for net in (
    "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "::1/128", "fc00::/7"))


def _refusal() -> Response | None:
    token = current_app.config.get("METRICS_TOKEN")
    if token:
        given = request.headers.get("Authorization", "")
        scheme, _, credentials = given.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
                credentials.strip().encode(), token.encode()):
            return None
        response = jsonify(ok=False, error="unauthorized",
                           message="send Authorization: Bearer <METRICS_TOKEN>")
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if _private(request.remote_addr) and not any(h in request.headers for h in PROXY_HEADERS):
        return None
    response = jsonify(ok=False, error="forbidden",
                       message="set METRICS_TOKEN to scrape from a public address")
    response.status_code = 403
    return response


def _private(address: str | None) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    ip = getattr(ip, "ipv4_mapped", None) or ip
    return any(ip in network for network in PRIVATE_NETWORKS)


# -- the scrape ----------------------------------------------------------------------------

@bp.get("/metrics")
def metrics():
    refused = _refusal()
    if refused is not None:
        return refused
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector())
    _register_callbacks(registry)
    response = Response(generate_latest(registry), mimetype=None)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    response.headers["Cache-Control"] = "no-store"
    return response


def _register_callbacks(registry: CollectorRegistry) -> None:
    path = os.environ.get(MULTIPROC_ENV)
    if not path:
        registry.register(CALLBACK_SECONDS)
        return
    from prometheus_client import multiprocess

    try:
        multiprocess.MultiProcessCollector(registry, path=path)
    except ValueError as exc:  # the folder is missing
        logger.error("callback latency not shown: %s", exc)


def _gauge(name: str, documentation: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=labels)


def _by_status(name: str, documentation: str, column, statuses) -> GaugeMetricFamily:
    """A gauge per status of an aggregate, zero for the statuses no row has."""
    counts = dict(db.session.execute(sa.select(column, sa.func.count()).group_by(column)).all())
    family = _gauge(name, documentation, ["status"])
    for status in statuses:
        family.add_metric([status.value], counts.get(status, 0))
    return family


def _age(now, since) -> float:
    return max((now - since).total_seconds(), 0.0) if since is not None else 0.0


class DatabaseCollector:
    """The numbers every process must agree on, read from the database at scrape time."""

    def collect(self):
        up = _gauge("kassa_database_up", "1 when the database answered the scrape's questions")
        try:
            begin_read_only()
            families = list(self._families())
        except Exception as exc:
            db.session.rollback()
            logger.error("metrics: the database did not answer: %s: %s",
                         type(exc).__name__, exc)
            up.add_metric([], 0)
            yield up
            return
        db.session.rollback()  # read only: end the transaction at once
        up.add_metric([], 1)
        yield up
        yield from families

    def _families(self):
        now = utcnow()
        yield _by_status("kassa_payments", "Payments by status", Payment.status, PaymentStatus)
        yield _by_status("kassa_qr_codes", "QR codes by status", QrCode.status, QrStatus)
        yield _by_status("kassa_receipts", "Receipts by status", Receipt.status, ReceiptStatus)
        yield from self._jobs(now)
        yield from self._receipt_lag(now)
        yield from self._providers()

    @staticmethod
    def _jobs(now):
        # One count per status that has a partial index (queued, running, dead); done jobs
        # are history, not queue.
        jobs = _gauge("kassa_jobs", "Jobs queued, running (leased by a worker) and dead "
                      "(out of attempts: an admin must look)", ["status"])
        for status in (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.DEAD):
            count = db.session.scalar(sa.select(sa.func.count()).select_from(Job)
                                      .where(Job.status == status))
            jobs.add_metric([status.value], count)
        yield jobs
        due = (Job.status == JobStatus.QUEUED, Job.run_at <= now)
        count, oldest = db.session.execute(
            sa.select(sa.func.count(), sa.func.min(Job.run_at)).where(*due)).one()
        family = _gauge("kassa_jobs_due", "Queued jobs whose time has come")
        family.add_metric([], count)
        yield family
        family = _gauge("kassa_job_oldest_due_seconds",
                        "How long the oldest due job has waited for a worker (0: none)")
        family.add_metric([], _age(now, oldest))
        yield family

    @staticmethod
    def _receipt_lag(now):
        unfinished = db.session.scalar(
            sa.select(sa.func.min(Receipt.created_at))
            .where(Receipt.status.in_([ReceiptStatus.PENDING, ReceiptStatus.WAIT])))
        family = _gauge("kassa_receipt_oldest_pending_seconds",
                        "Age of the oldest receipt not yet fiscalized (pending or waiting for "
                        "the register; 0: none)")
        family.add_metric([], _age(now, unfinished))
        yield family
        if current_app.config.get("FISCAL_PROVIDER") == "none":
            return
        done = sa.exists().where(Receipt.payment_id == Payment.id,
                                 Receipt.kind == ReceiptKind.SELL,
                                 Receipt.status == ReceiptStatus.DONE)
        oldest = db.session.scalar(
            sa.select(Payment.created_at)
            .where(Payment.created_at >= now - RECEIPT_LAG_WINDOW,
                   Payment.status.in_([PaymentStatus.PAID, PaymentStatus.PARTIALLY_REFUNDED]),
                   ~done)
            .order_by(Payment.created_at, Payment.id).limit(1))
        family = _gauge("kassa_receipt_lag_seconds",
                        "Age of the oldest paid payment (last 7 days) without a fiscalized "
                        "sale receipt (0: none)")
        family.add_metric([], _age(now, oldest))
        yield family

    @staticmethod
    def _providers():
        rows = db.session.scalars(sa.select(ProviderHealth).order_by(ProviderHealth.service)
                                  ).all()
        up = _gauge("kassa_provider_up", "1 when the last health check of an outside service "
                    "succeeded (app/provider_health.py)", ["service", "provider"])
        stamps = {
            "checked_at": _gauge("kassa_provider_last_check_timestamp_seconds",
                                 "When the service was last checked", ["service", "provider"]),
            "last_ok_at": _gauge("kassa_provider_last_ok_timestamp_seconds",
                                 "When the service last answered well", ["service", "provider"]),
            "last_error_at": _gauge("kassa_provider_last_error_timestamp_seconds",
                                    "When the service last gave an error",
                                    ["service", "provider"]),
        }
        for row in rows:
            labels = [row.service, row.provider]
            up.add_metric(labels, 1 if row.ok else 0)
            for attribute, family in stamps.items():
                when = getattr(row, attribute)
                if when is not None:
                    family.add_metric(labels, when.timestamp())
        yield up
        yield from stamps.values()
