"""Logs an operator can follow: JSON lines, one request id from the request through the
jobs it causes, and no secret in any line."""

from __future__ import annotations

import logging
import re

import pytest
import sqlalchemy as sa

from app import jobs
from app.config import ConfigError, load_config
from app.extensions import db
from app.jobs.worker import Worker
from app.logs import redact, secret_values
from app.models import Job
from tests.ops.helpers import LogLines, bank_callback, open_qr
from tests.test_config import PRODUCTION

BOT_TOKEN = "7012345678:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0"  # a made-up token
SECRETS = {
    "SECRET_KEY": "k3y-" + "0123456789abcdef" * 4,
    "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
    "RAIFFEISEN_SECRET_KEY": "raif-secret-value-42",
    "ATOL_PASSWORD": "atol-pa55word",
    "TELEGRAM_WEBHOOK_SECRET": "webhook-secret-9876",
    "METRICS_TOKEN": "metrics-token-5555",
}


@pytest.fixture
def json_app(make_app):
    """An app logging JSON at INFO, with the callbacks' providers on a closed port."""
    app = make_app(LOG_FORMAT="json", LOG_LEVEL="INFO", FISCAL_PROVIDER="atol",
                   ATOL_API_URL="http://127.0.0.1:9/possystem/v5", **SECRETS)
    with app.app_context():
        yield app


@pytest.fixture
def lines(json_app) -> LogLines:
    return LogLines()


def test_every_line_is_json_with_the_promised_fields(json_app, lines) -> None:
    logging.getLogger("app.test").warning("stock low: %s left", 3, extra={"product_id": 7})
    (record,) = lines.records()
    assert record["message"] == "stock low: 3 left"
    assert record["level"] == "WARNING"
    assert record["logger"] == "app.test"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", record["ts"])
    assert isinstance(record["process"], int)
    assert record["request_id"] is None
    assert record["product_id"] == 7


def test_a_request_gets_an_id_in_its_answer_and_its_log_line(json_app, lines) -> None:
    client = json_app.test_client()
    answer = client.get("/sbp/qr/nothing-here.png?token=abc")
    request_id = answer.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    (line,) = [r for r in lines.records() if r["logger"] == "kassa.request"]
    assert line["request_id"] == request_id
    assert line["method"] == "GET"
    assert line["path"] == "/sbp/qr/nothing-here.png"  # no query string
    assert line["status"] == 404
    assert line["duration_ms"] >= 0
    # Another request, another id.
    assert client.get("/healthz").headers["X-Request-ID"] != request_id


def test_a_sane_incoming_request_id_is_kept_and_a_bad_one_replaced(json_app, lines) -> None:
    client = json_app.test_client()
    kept = client.get("/healthz", headers={"X-Request-ID": "lb-42.a_B-c"})
    assert kept.headers["X-Request-ID"] == "lb-42.a_B-c"
    for bad in ("x" * 65, "a b", "id\"}{", "тест"):
        answer = client.get("/healthz", headers={"X-Request-ID": bad})
        replaced = answer.headers["X-Request-ID"]
        assert replaced != bad
        assert re.fullmatch(r"[0-9a-f]{32}", replaced)


def test_a_job_enqueued_in_a_request_logs_that_request_id_in_the_worker(json_app, lines) -> None:
    """And a job that job enqueues inherits it."""
    seen = []

    def parent(payload):
        logging.getLogger("app.test").info("parent runs")
        jobs.enqueue("test.child", {})
        db.session.commit()

    def child(payload):
        logging.getLogger("app.test").info("child runs")
        seen.append("child")

    registry = jobs.registry(json_app)
    registry.periodic_jobs.clear()
    registry.handler("test.parent", parent)
    registry.handler("test.child", child)

    def enqueue_view():
        jobs.enqueue("test.parent", {})
        db.session.commit()
        return "queued"

    json_app.add_url_rule("/test/enqueue", "test_enqueue", enqueue_view, methods=["POST"])
    answer = json_app.test_client().post("/test/enqueue", headers={"X-Request-ID": "req-77"})
    assert answer.headers["X-Request-ID"] == "req-77"

    Worker(json_app).run(burst=True)

    assert seen == ["child"]
    assert db.session.scalars(sa.select(Job.request_id).order_by(Job.id)).all() == [
        "req-77", "req-77"]
    job_lines = [r for r in lines.records() if r.get("job")]
    messages = [(r["job"], r["message"]) for r in job_lines]
    assert ("test.parent", "parent runs") in messages
    assert ("test.child", "child runs") in messages
    assert any(m.startswith("job ") and "started" in m for _, m in messages)
    assert any(m.startswith("job ") and " done in " in m for _, m in messages)
    assert {r["request_id"] for r in job_lines} == {"req-77"}
    assert all(isinstance(r["job_id"], int) for r in job_lines)


def test_a_bank_callbacks_request_id_follows_it_into_the_receipt_jobs(json_app, lines) -> None:
    jobs.registry(json_app).periodic_jobs.clear()  # only what the callback causes
    qr_id, bank_order = open_qr()
    answer = bank_callback(json_app.test_client(), qr_id, bank_order, "125.50",
                           headers={"X-Request-ID": "bank-cb-1"},
                           secret_key=SECRETS["RAIFFEISEN_SECRET_KEY"])
    assert answer.get_json()["outcome"] == "paid"

    Worker(json_app).run(burst=True)

    rows = db.session.execute(sa.select(Job.name, Job.request_id)).all()
    names = {name for name, _ in rows}
    # payment.paid -> fiscal.sell (enqueued by the callback) -> fiscal.submit (by that job).
    assert {"fiscal.sell", "fiscal.submit"} <= names
    assert {request_id for _, request_id in rows} == {"bank-cb-1"}
    worker_lines = [r for r in lines.records() if r.get("job")]
    assert {r["job"] for r in worker_lines} >= {"fiscal.sell", "fiscal.submit"}
    assert {r["request_id"] for r in worker_lines} == {"bank-cb-1"}


@pytest.mark.parametrize("name", sorted(SECRETS))
def test_a_secret_setting_never_reaches_the_log(json_app, lines, name) -> None:
    value = SECRETS[name]
    logging.getLogger("app.test").error("calling with %s and again %s", value,
                                        {"nested": value}, extra={"detail": f"x{value}x"})
    text = lines.text()
    assert value not in text
    (record,) = lines.records()
    assert record["message"].count("***") == 2
    assert record["detail"] == "x***x"


@pytest.mark.parametrize(("line", "secret"), [
    ("Authorization: Bearer eyJhbGciOi.payload.sig", "eyJhbGciOi.payload.sig"),
    ("headers={'Authorization': 'tma query_id=AAE&hash=abc123'}", "query_id=AAE"),
    ("sent Bearer abc.DEF-123_x", "abc.DEF-123_x"),
    (f"POST https://api.telegram.org/bot{BOT_TOKEN[:-3]}zzz/sendMessage", BOT_TOKEN[:-3]),
    ("GET /register?token=Zm9vYmFy&x=1", "Zm9vYmFy"),
    ("login=shop password=hunter22;", "hunter22"),
    ("the key kassa_q0Ww9E-5v8RY1Zo_TJRUu5bsHhFVxG2j2w9nW7yPwPk was made", "q0Ww9E-5v8RY1"),
    ("secret whsec_0123456789abcdef0123456789abcdef01234567", "0123456789abcdef"),
])
def test_credentials_by_their_shape_are_masked(json_app, lines, line, secret) -> None:
    logging.getLogger("app.test").warning(line)
    (record,) = lines.records()
    assert secret not in record["message"]
    assert "***" in record["message"]


def test_an_exception_quoting_the_bot_url_is_logged_without_the_token(json_app, lines) -> None:
    try:
        raise ConnectionError(f"HTTPSConnectionPool(host='api.telegram.org'): "
                              f"/bot{BOT_TOKEN}/getMe failed")
    except ConnectionError:
        logging.getLogger("app.test").exception("Telegram unreachable")
    (record,) = lines.records()
    assert BOT_TOKEN not in lines.text()
    assert "/bot***/getMe" in record["exc_info"]
    assert "ConnectionError" in record["exc_info"]


def test_plain_lines_carry_the_request_id(make_app) -> None:
    app = make_app(LOG_FORMAT="plain", LOG_LEVEL="INFO")
    lines = LogLines()

    def shout():
        logging.getLogger("app.test").warning("inside")
        return "ok"

    app.add_url_rule("/test/shout", "test_shout", shout)
    app.test_client().get("/test/shout", headers={"X-Request-ID": "plain-1"})
    (line,) = lines.text().splitlines()
    assert re.search(r"WARNING app\.test \[\d+ plain-1\] inside$", line)


def test_log_format_defaults_by_environment_and_refuses_nonsense(monkeypatch) -> None:
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    for name, value in PRODUCTION.items():
        monkeypatch.setenv(name, value)
    assert load_config(env="production")["LOG_FORMAT"] == "json"
    assert load_config(overrides={"APP_ENV": "testing"})["LOG_FORMAT"] == "plain"
    assert load_config(overrides={"APP_ENV": "development"})["LOG_FORMAT"] == "plain"
    monkeypatch.setenv("LOG_FORMAT", "JSON")
    assert load_config(overrides={"APP_ENV": "testing"})["LOG_FORMAT"] == "json"
    monkeypatch.setenv("LOG_FORMAT", "xml")
    with pytest.raises(ConfigError, match="LOG_FORMAT must be json or plain"):
        load_config(overrides={"APP_ENV": "testing"})


def test_the_database_password_never_reaches_the_log() -> None:
    config = {"SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://kassa:s3cr%40t-pw@db/kassa"}
    line = redact("could not connect as kassa with s3cr@t-pw to "
                  "postgresql://kassa:other-pw@db:5432/kassa", secret_values(config))
    assert "s3cr@t-pw" not in line
    assert "other-pw" not in line
    assert "postgresql://kassa:***@db:5432/kassa" in line


def test_a_failed_jobs_error_is_kept_without_the_bot_token(json_app, lines) -> None:
    def call_telegram(payload):
        raise ConnectionError(f"Max retries exceeded with url: /bot{BOT_TOKEN}/sendMessage")

    registry = jobs.registry(json_app)
    registry.periodic_jobs.clear()
    registry.handler("test.telegram", call_telegram)
    jobs.enqueue("test.telegram", {})
    db.session.commit()

    Worker(json_app).run(burst=True)

    error = db.session.scalar(sa.select(Job.last_error))
    assert "ConnectionError" in error
    assert "/bot***/sendMessage" in error
    assert BOT_TOKEN not in error
    assert BOT_TOKEN not in lines.text()
