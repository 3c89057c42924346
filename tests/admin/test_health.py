"""Provider health: one read-only call to the bank, the register and the bot, the outcome
kept per service and shown on the dashboard."""

from __future__ import annotations

from app import jobs
from app.extensions import begin_read_only, db
from app.models import ProviderHealth
from app.provider_health import JOB, check_providers
from tests.admin.conftest import logged_in, make_admin
from tests.admin.page import page
from tests.helpers import wait_for
from tests.telegram.conftest import TOKEN, fakebot  # noqa: F401 - a fixture

NOWHERE = "http://127.0.0.1:9"  # nothing listens there


def _health_rows(client) -> dict:
    table = page(client.get("/admin/")).one("table", id="health")
    return {row.attrs["data-service"]: row.text for row in table.all("tr", data_service=True)}


def test_against_the_sandbox_the_bank_and_the_register_answer(stack):
    with stack.app.app_context():
        outcomes = check_providers()
        assert {o.service: o.error for o in outcomes} == {"bank": None, "register": None}
        rows = _health_rows(logged_in(stack.app, make_admin()))
    assert "отвечает" in rows["bank"] and "raiffeisen" in rows["bank"]
    assert "отвечает" in rows["register"] and "atol" in rows["register"]
    assert "не используется" in rows["bot"]  # no bot token


def test_the_raiffeisen_register_answers_through_the_sandbox(make_stack):
    stack = make_stack(FISCAL_PROVIDER="raiffeisen")
    with stack.app.app_context():
        assert {o.service: o.error for o in check_providers()}["register"] is None


def test_an_unreachable_provider_is_shown_with_its_error_then_recovers(
        make_app, fakebot):  # noqa: F811 - the fixture imported above
    app = make_app(ATOL_API_URL=f"{NOWHERE}/possystem/v5", TELEGRAM_BOT_TOKEN=TOKEN,
                   TELEGRAM_API_URL=fakebot.url)
    fakebot.fail("getMe", 401, "Unauthorized")
    with app.app_context():
        check_providers()
        client = logged_in(app, make_admin())
        rows = _health_rows(client)
        for service in ("bank", "register", "bot"):
            assert "ошибка" in rows[service], rows[service]
        assert "network" in rows["bank"] or "timeout" in rows["bank"]
        assert "Unauthorized" in rows["bot"] and TOKEN not in rows["bot"]
        assert "ещё" not in rows["bank"]

        # Telegram answers again: the bot is fine, its last error is still shown.
        check_providers()
        rows = _health_rows(client)
        assert "отвечает" in rows["bot"] and "Unauthorized" in rows["bot"]
        assert "ошибка" in rows["bank"]


def test_before_any_check_the_dashboard_says_so(admin_client):
    rows = _health_rows(admin_client)
    assert "ещё не проверялся" in rows["bank"] and "ещё не проверялся" in rows["register"]


def test_the_worker_checks_by_itself_every_interval(make_stack):
    stack = make_stack(HEALTH_CHECK_INTERVAL_SECONDS=60)
    assert jobs.registry(stack.app).periodic_jobs[JOB] == 60
    stack.start_worker()
    with stack.app.app_context():
        def checked():  # reads without taking SQLite's write lock from the worker
            db.session.rollback()
            begin_read_only()
            return db.session.get(ProviderHealth, "register")

        row = wait_for(checked)
        assert row.ok and row.provider == "atol"


def test_the_check_is_off_at_zero(make_app):
    app = make_app(HEALTH_CHECK_INTERVAL_SECONDS=0)
    assert JOB not in jobs.registry(app).periodic_jobs

