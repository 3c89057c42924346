"""Rate limits (app/ratelimit): each limited endpoint answers 429 in its room's style with
Retry-After and changes nothing; the counts live in the database, so two web processes (two
apps on one database) share them; the storage counts, expires and purges on SQLite and
PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from app import create_app, jobs, ratelimit
from app.config import ConfigError
from app.extensions import db
from app.models import BankEvent, Job, LoginThrottle, Payment, RateLimitCounter
from app.ratelimit.storage import DatabaseStorage
from tests.admin.accounts_support import PASSWORD, is_logged_in, log_in
from tests.admin.conftest import make_admin
from tests.constructor.api_support import new_key
from tests.sbp.test_callback_scenarios import Shop

RUSSIAN_429 = "Слишком много запросов. Повторите через"


def _retry_after(response) -> int:
    seconds = int(response.headers["Retry-After"])
    assert 1 <= seconds <= 60, seconds
    return seconds


# -- the storage -----------------------------------------------------------------------------

class Clock:
    def __init__(self):
        self.now = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_the_database_storage_counts_a_window_and_starts_it_again_when_over(app):
    clock = Clock()
    storage = DatabaseStorage("kassa-db://", engine=db.engine, now=clock)
    assert [storage.incr("k", 60) for _ in range(3)] == [1, 2, 3]
    assert storage.incr("k", 60, amount=2) == 5
    assert storage.incr("other", 60) == 1  # keys count apart
    assert storage.get("k") == 5
    assert storage.get_expiry("k") == (clock.now + timedelta(seconds=60)).timestamp()

    clock.now += timedelta(seconds=59)
    assert storage.incr("k", 60) == 6  # the same window: its end does not move
    assert storage.get_expiry("k") == (clock.now + timedelta(seconds=1)).timestamp()
    clock.now += timedelta(seconds=1)
    assert storage.get("k") == 0  # over
    assert storage.incr("k", 60) == 1  # a new window from now
    assert storage.get_expiry("k") == (clock.now + timedelta(seconds=60)).timestamp()

    storage.clear("k")
    assert storage.get("k") == 0
    assert storage.check() is True


def test_expired_counters_are_purged_and_live_ones_kept(app):
    clock = Clock()
    storage = DatabaseStorage("kassa-db://", engine=db.engine, now=clock)
    storage.incr("short", 10)
    storage.incr("long", 3600)
    clock.now += timedelta(seconds=11)
    assert storage.purge_expired() == 1
    assert db.session.scalars(sa.select(RateLimitCounter.key)).all() == ["long"]
    db.session.rollback()
    assert ratelimit.PURGE_JOB in jobs.registry(app).periodic_jobs


def test_the_storage_never_commits_or_rolls_back_the_requests_session(app):
    storage = DatabaseStorage("kassa-db://", engine=db.engine)
    db.session.add(LoginThrottle(ip="192.0.2.1", window_started_at=datetime.now(UTC),
                                 failures=1))
    db.session.flush()
    if db.engine.dialect.name == "sqlite":
        # SQLite has one writer: the session's open write transaction would hold the
        # storage's up to the busy timeout. Requests are limited before the view opens one.
        db.session.rollback()
        assert storage.incr("hit", 60) == 1
        return
    assert storage.incr("hit", 60) == 1  # its own connection and transaction
    db.session.rollback()  # the request's work goes; the count stays
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LoginThrottle)) == 0
    assert db.session.scalar(sa.select(RateLimitCounter.count)) == 1


# -- two processes, one count ----------------------------------------------------------------

def test_two_web_processes_on_one_database_share_one_count(make_app):
    first, second = (make_app(RATELIMIT_API="3/minute") for _ in range(2))
    key, other_key = new_key(first), new_key(first, "another shop")
    headers = {"X-Api-Key": key}
    answers = [web.test_client().get("/api/v1/payments/nope", headers=headers).status_code
               for web in (first, second, first)]
    assert answers == [404, 404, 404]  # three calls, the limit: within it

    over = second.test_client().get("/api/v1/payments/nope", headers=headers)
    assert over.status_code == 429
    assert over.get_json() == {"ok": False, "error": "rate_limited",
                               "message": over.get_json()["message"]}
    assert over.get_json()["message"].startswith(RUSSIAN_429)
    _retry_after(over)
    assert first.test_client().get("/api/v1/payments/nope",
                                   headers=headers).status_code == 429
    # Per client: another key (from the same address) has its own count.
    assert second.test_client().get("/api/v1/payments/nope",
                                    headers={"X-Api-Key": other_key}).status_code == 404


def test_api_calls_without_a_known_key_count_per_address(make_app):
    app = make_app(RATELIMIT_API="2/minute")
    client = app.test_client()
    for _ in range(2):
        assert client.get("/api/v1/payments/x", headers={"X-Api-Key": "kassa_guess"},
                          environ_base={"REMOTE_ADDR": "198.51.100.1"}).status_code == 401
    refused = client.get("/api/v1/payments/x", headers={"X-Api-Key": "kassa_guess2"},
                         environ_base={"REMOTE_ADDR": "198.51.100.1"})
    assert refused.status_code == 429  # a new wrong key does not make a new count
    assert refused.get_json()["error"] == "rate_limited"
    assert client.get("/api/v1/payments/x", environ_base={"REMOTE_ADDR": "198.51.100.2"}
                      ).status_code == 401


def test_an_api_create_over_the_limit_makes_no_order(make_app):
    app = make_app(RATELIMIT_API="1/minute")
    key = new_key(app)
    client = app.test_client()
    assert client.get("/api/v1/payments/nope", headers={"X-Api-Key": key}).status_code == 404
    refused = client.post("/api/v1/payments", json={"amount": "10", "order_id": "o-1"},
                          headers={"X-Api-Key": key})
    assert refused.status_code == 429
    _retry_after(refused)
    with app.app_context():
        assert db.session.scalar(sa.text("SELECT count(*) FROM orders")) == 0
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Job)) == 0


# -- the bank's callback ---------------------------------------------------------------------

def test_a_callback_over_the_limit_records_nothing_and_its_resend_is_recorded(make_app):
    app = make_app(RATELIMIT_SBP_CALLBACK="1/minute")
    with app.app_context():
        shop = Shop.open()
        client = app.test_client()
        # Someone else's junk from the bank's address uses the window up.
        assert client.post("/sbp/callback", data=b"{}").status_code == 400
        response = client.post("/sbp/callback", data=b"{}")
        assert response.status_code == 429
        assert response.get_json()["error"] == "rate_limited"
        _retry_after(response)
        # The bank's real callback, the same minute: refused before it is read.
        assert shop.callback(client, "active", "125.50", answer=429) == "rate_limited"
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Payment)) == 0
        assert db.session.scalar(sa.select(sa.func.count()).select_from(BankEvent)) == 0
        db.session.rollback()

        ratelimit.limiter(app).storage.reset()  # the window is over; the bank resends
        assert shop.callback(client, "active", "125.50") == "paid"
        # QR images (GET /sbp/qr/...) are not limited.
        assert client.get("/sbp/qr/nothing.png").status_code == 404


def test_without_its_storage_the_limit_holds_in_memory_and_the_log_has_one_line(
        make_app, monkeypatch, capfd):
    app = make_app(RATELIMIT_SBP_CALLBACK="2/minute")
    storage = ratelimit.limiter(app).storage

    def broken(*_args, **_kwargs):
        raise sa.exc.OperationalError("UPSERT", {}, Exception("the database is away"))

    monkeypatch.setattr(storage, "incr", broken)
    monkeypatch.setattr(storage, "check", lambda: False)
    with app.app_context():
        shop = Shop.open()
        client = app.test_client()
        assert client.post("/sbp/callback", data=b"{}").status_code == 400
        assert shop.callback(client, "active", "125.50") == "paid"  # not refused, not lost
        assert client.post("/sbp/callback", data=b"{}").status_code == 429  # still limited
    log = capfd.readouterr().err
    assert log.count("Rate limit storage unreachable - falling back to in-memory storage") == 1
    assert "Traceback" not in log


# -- the admin login -------------------------------------------------------------------------

def test_admin_logins_over_the_limit_get_the_page_with_a_russian_429(make_app):
    app = make_app(RATELIMIT_ADMIN_LOGIN="2/minute")
    with app.app_context():
        make_admin()
        client = app.test_client()
        for _ in range(2):
            assert log_in(client, password="wrong password").status_code == 401
        refused = log_in(client, password=PASSWORD)  # even the right password
        assert refused.status_code == 429
        page = refused.get_data(as_text=True)
        assert RUSSIAN_429 in page and 'name="password"' in page  # the login form again
        _retry_after(refused)
        assert not is_logged_in(client)
        # The refused attempt never reached the password check: two failures counted.
        assert db.session.scalar(sa.select(LoginThrottle.failures)) == 2
        db.session.rollback()
        assert client.get("/admin/login").status_code == 200  # the page itself is free
        # Per address: another one logs in.
        assert log_in(client, ip="203.0.113.8").status_code == 302


# -- the Telegram webhook and the Mini Apps ---------------------------------------------------

def test_a_webhook_update_over_the_limit_is_not_stored(make_app):
    app = make_app(TELEGRAM_BOT_TOKEN="123:T", TELEGRAM_WEBHOOK_SECRET="s",
                   RATELIMIT_TELEGRAM_WEBHOOK="1/minute")
    client = app.test_client()
    headers = {"X-Telegram-Bot-Api-Secret-Token": "s"}
    assert client.post("/telegram/webhook", json={"update_id": 1},
                       headers=headers).status_code == 200
    refused = client.post("/telegram/webhook", json={"update_id": 2}, headers=headers)
    assert refused.status_code == 429
    assert refused.get_json()["error"] == "rate_limited"
    _retry_after(refused)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Job)
                                 .where(Job.name == "telegram.update")) == 1


@pytest.mark.parametrize("path", ["/miniapp/cart", "/shop/cart"])
def test_mini_app_posts_over_the_limit_get_a_russian_screen(make_app, path):
    app = make_app(RATELIMIT_MINIAPP="1/minute")
    client = app.test_client()
    assert client.post(path).status_code != 429
    refused = client.post(path)
    assert refused.status_code == 429
    assert RUSSIAN_429 in refused.get_data(as_text=True)
    _retry_after(refused)
    assert client.get(path.rsplit("/", 1)[0] + "/").status_code == 200  # reads are free


# -- settings --------------------------------------------------------------------------------

@pytest.mark.parametrize(("setting", "value", "line"), [
    ("RATELIMIT_API", "lots", "RATELIMIT_API must be a limit such as 600/minute"),
    ("RATELIMIT_STORAGE_URI", "nosuch://x", "RATELIMIT_STORAGE_URI cannot be used"),
])
def test_a_bad_setting_is_one_clear_line(setting, value, line):
    with pytest.raises(ConfigError) as refused:
        create_app({"APP_ENV": "testing", "SQLALCHEMY_DATABASE_URI": "sqlite://",
                    setting: value})
    assert any(problem.startswith(line) for problem in refused.value.problems), \
        refused.value.problems
