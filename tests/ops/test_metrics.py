"""GET /metrics: what a scrape shows is what the database holds, and only the allowed may
scrape."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app import jobs
from app.config import ROOT
from app.extensions import db
from app.models import (
    Job,
    JobStatus,
    Payment,
    PaymentStatus,
    ProviderHealth,
    QrCode,
    QrKind,
    QrStatus,
    Receipt,
    ReceiptKind,
    ReceiptStatus,
    utcnow,
)
from tests.ops.helpers import bank_callback, open_qr

TOKEN = "scrape-me-0123456789"


def scrape(client, **headers) -> dict[tuple[str, tuple], float]:
    """The scrape's samples as {(name, sorted labels): value}."""
    answer = client.get("/metrics", headers=headers)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.content_type.startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(answer.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def _qr(index: int, status: QrStatus) -> QrCode:
    qr = QrCode(kind=QrKind.DYNAMIC, status=status, qr_id=f"AD{index:030d}",
                bank_order=f"order-{index}", amount_kopecks=1000, payload=f"p{index}")
    db.session.add(qr)
    db.session.flush()
    return qr


def _payment(qr: QrCode, status: PaymentStatus, created_ago: timedelta) -> Payment:
    created = utcnow() - created_ago
    payment = Payment(qr_code_id=qr.id, bank_key=f"key-{qr.id}", amount_kopecks=1000,
                      status=status, paid_at=created, created_at=created, updated_at=created)
    db.session.add(payment)
    db.session.flush()
    return payment


def _receipt(payment: Payment, status: ReceiptStatus, created_ago: timedelta) -> Receipt:
    created = utcnow() - created_ago
    receipt = Receipt(kind=ReceiptKind.SELL, status=status, payment_id=payment.id,
                      provider="atol", external_id=f"sell-test-{payment.id}",
                      total_kopecks=1000, lines=[], created_at=created, updated_at=created)
    db.session.add(receipt)
    return receipt


@pytest.fixture
def shop(app):
    """Payments, QR codes, receipts, jobs and health rows in known numbers."""
    minutes = timedelta(minutes=1)
    paid_done = _payment(_qr(1, QrStatus.PAID), PaymentStatus.PAID, 50 * minutes)
    _receipt(paid_done, ReceiptStatus.DONE, 49 * minutes)
    paid_waiting = _payment(_qr(2, QrStatus.PAID), PaymentStatus.PAID, 30 * minutes)
    _receipt(paid_waiting, ReceiptStatus.WAIT, 20 * minutes)
    _payment(_qr(3, QrStatus.PAID), PaymentStatus.PARTIALLY_REFUNDED, 10 * minutes)
    _payment(_qr(4, QrStatus.PAID), PaymentStatus.REVIEW, 90 * minutes)  # needs no receipt
    _qr(5, QrStatus.ACTIVE)
    _qr(6, QrStatus.EXPIRED)
    # Two jobs due (the oldest 5 minutes late), one not yet.
    jobs.enqueue("test.late", {}, run_at=utcnow() - 5 * minutes)
    jobs.enqueue("test.due", {}, run_at=utcnow() - 1 * minutes)
    jobs.enqueue("test.later", {}, run_at=utcnow() + 60 * minutes)
    checked = utcnow() - 2 * minutes
    db.session.add(ProviderHealth(service="bank", provider="raiffeisen", checked_at=checked,
                                  last_ok_at=checked))
    db.session.add(ProviderHealth(service="register", provider="atol", checked_at=checked,
                                  last_ok_at=checked - 60 * minutes, last_error_at=checked,
                                  last_error="boom"))
    db.session.commit()
    return app


def test_a_scrape_shows_what_the_database_holds(shop) -> None:
    samples = scrape(shop.test_client())
    assert value(samples, "kassa_database_up") == 1
    assert value(samples, "kassa_payments", status="paid") == 2
    assert value(samples, "kassa_payments", status="partially_refunded") == 1
    assert value(samples, "kassa_payments", status="review") == 1
    assert value(samples, "kassa_payments", status="refunded") == 0
    assert value(samples, "kassa_qr_codes", status="paid") == 4
    assert value(samples, "kassa_qr_codes", status="active") == 1
    assert value(samples, "kassa_qr_codes", status="expired") == 1
    assert value(samples, "kassa_receipts", status="done") == 1
    assert value(samples, "kassa_receipts", status="wait") == 1
    assert value(samples, "kassa_receipts", status="failed") == 0
    assert value(samples, "kassa_jobs", status="queued") == 3
    assert value(samples, "kassa_jobs", status="dead") == 0
    assert value(samples, "kassa_jobs_due") == 2
    assert 295 <= value(samples, "kassa_job_oldest_due_seconds") <= 330
    # The waiting receipt is 20 minutes old; the oldest paid payment without a done receipt
    # is 30 minutes old (the review one is not owed a receipt yet).
    assert 1195 <= value(samples, "kassa_receipt_oldest_pending_seconds") <= 1230
    assert 1795 <= value(samples, "kassa_receipt_lag_seconds") <= 1830
    assert value(samples, "kassa_provider_up", service="bank", provider="raiffeisen") == 1
    assert value(samples, "kassa_provider_up", service="register", provider="atol") == 0


def test_dead_jobs_and_a_caught_up_queue_show(app) -> None:
    jobs.enqueue("test.dead", {})
    db.session.commit()
    job = db.session.query(Job).one()
    job.status, job.finished_at = JobStatus.DEAD, utcnow()
    db.session.commit()
    samples = scrape(app.test_client())
    assert value(samples, "kassa_jobs", status="dead") == 1
    assert value(samples, "kassa_jobs", status="queued") == 0
    assert value(samples, "kassa_job_oldest_due_seconds") == 0
    assert value(samples, "kassa_receipt_lag_seconds") == 0


def test_callbacks_are_timed(app) -> None:
    client = app.test_client()
    key = ("kassa_callback_duration_seconds_count", (("callback", "sbp"), ("status", "200")))
    before = scrape(client).get(key, 0)
    qr_id, bank_order = open_qr()
    assert bank_callback(client, qr_id, bank_order, "125.50").status_code == 200
    assert bank_callback(client, qr_id, bank_order, "125.50").status_code == 200  # a repeat
    assert scrape(client)[key] == before + 2


def test_with_a_token_only_its_bearer_may_scrape(make_app) -> None:
    client = make_app(METRICS_TOKEN=TOKEN).test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": TOKEN}).status_code == 401
    refused = client.get("/metrics", headers={"Authorization": "Bearer wrong"})
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert TOKEN not in refused.get_data(as_text=True)
    # From any address, with the token.
    public = {"REMOTE_ADDR": "203.0.113.7"}
    answer = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"},
                        environ_base=public)
    assert answer.status_code == 200
    assert "kassa_payments" in answer.get_data(as_text=True)


@pytest.mark.parametrize(("address", "headers", "status"), [
    ("127.0.0.1", {}, 200),
    ("::1", {}, 200),
    ("10.1.2.3", {}, 200),
    ("192.168.0.5", {}, 200),
    ("172.18.0.4", {}, 200),
    ("203.0.113.7", {}, 403),
    ("8.8.8.8", {}, 403),
    # Through a proxy on this machine: the request really came from elsewhere.
    ("127.0.0.1", {"X-Forwarded-For": "203.0.113.7"}, 403),
    ("127.0.0.1", {"Forwarded": "for=203.0.113.7"}, 403),
])
def test_without_a_token_only_private_addresses_may_scrape(app, address, headers,
                                                           status) -> None:
    answer = app.test_client().get("/metrics", headers=headers,
                                   environ_base={"REMOTE_ADDR": address})
    assert answer.status_code == status


def test_metrics_and_health_need_no_login_or_csrf(make_app) -> None:
    client = make_app(WTF_CSRF_ENABLED=True).test_client()
    assert client.get("/metrics").status_code == 200
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200


SCRAPE_IN_A_PROCESS = """
import os
from app import create_app
app = create_app({"APP_ENV": "testing", "SQLALCHEMY_DATABASE_URI": "sqlite://",
                  "LOG_LEVEL": "CRITICAL"})
client = app.test_client()
child = os.fork()  # a second worker of the same web app
# No webhook secret: refused, and still a callback answered and timed, in each process.
client.post("/telegram/webhook", json={"update_id": 1})
if child == 0:
    os._exit(0)
os.waitpid(child, 0)
print(client.get("/metrics").get_data(as_text=True))
"""


def _telegram_callbacks(exposition: str) -> float:
    return sum(sample.value
               for family in text_string_to_metric_families(exposition)
               for sample in family.samples
               if sample.name == "kassa_callback_duration_seconds_count"
               and sample.labels.get("callback") == "telegram")


def test_callback_latency_adds_up_across_processes_in_multiprocess_mode(tmp_path) -> None:
    """Like two gunicorn workers: each answers a callback, either one's scrape counts both."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "APP_ENV": "testing"}
    env.pop("TEST_DATABASE_URL", None)
    done = subprocess.run([sys.executable, "-c", SCRAPE_IN_A_PROCESS], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=True)
    assert _telegram_callbacks(done.stdout) == 2
    assert len(list(tmp_path.glob("histogram_*.db"))) == 2  # one file per process


def test_gunicorn_starts_multiprocess_mode_with_an_empty_folder(tmp_path, monkeypatch) -> None:
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "histogram_123.db").write_bytes(b"old counts")
    (folder / "keep.txt").write_text("not ours")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
    hooks = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    hooks["on_starting"](None)
    assert sorted(p.name for p in folder.iterdir()) == ["keep.txt"]
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "new"))
    hooks["on_starting"](None)
    assert (tmp_path / "new").is_dir()
