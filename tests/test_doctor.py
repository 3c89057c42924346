"""`flask doctor`: one line per check, ok or a fix in plain words, exit 1 when something
needs fixing. Against the sandbox bank and register, Kassa over real HTTP (the test callback
goes through a socket, as it would through a proxy) and the fake Bot API."""

from __future__ import annotations

import flask_migrate
import pytest
import sqlalchemy as sa

from app import create_app
from app.doctor import FIX, OK, check_callback, check_settings
from app.extensions import db
from tests.helpers import LiveServer
from tests.telegram.conftest import BOT_CONFIG
from tests.telegram.fakebot import FakeBotApi

pytestmark = pytest.mark.slow


def doctor(app):
    result = app.test_cli_runner().invoke(args=["doctor"])
    lines = {line.split()[1]: line for line in result.output.splitlines()}
    return result.exit_code, lines


@pytest.fixture
def fakebot():
    api = FakeBotApi().start()
    yield api
    api.stop()


@pytest.fixture
def shop(make_stack, fakebot):
    """A shop set up right: the suite's tables are made without Alembic, so they are stamped
    at the newest migration here (and the stamp removed afterwards)."""
    stack = make_stack(TELEGRAM_API_URL=fakebot.url, **BOT_CONFIG)
    fakebot.webhook_url = stack.web.url + "/telegram/webhook"
    with stack.app.app_context():
        flask_migrate.stamp()
    yield stack
    with stack.app.app_context():
        db.session.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
        db.session.commit()


def test_a_shop_set_up_right_is_all_ok(shop):
    code, lines = doctor(shop.app)
    assert code == 0, lines
    assert list(lines) == ["settings", "database", "bank", "register", "bot", "callback"]
    assert all(line.startswith("ok ") for line in lines.values()), lines
    assert ", migrations at " in lines["database"]
    assert lines["bot"].endswith(f"@kassa_bot, webhook {shop.web.url}/telegram/webhook, "
                                 "0 update(s) waiting")
    assert lines["callback"].endswith(
        f"a signed test callback reached Kassa at {shop.web.url}/sbp/callback")


def test_a_webhook_that_is_missing_or_failing_is_named(shop, fakebot):
    fakebot.webhook_url = ""
    code, lines = doctor(shop.app)
    assert code == 1
    assert lines["bot"].startswith("fix  bot")
    assert "no webhook is set: run `flask bot set-webhook`" in lines["bot"]

    fakebot.webhook_url = shop.web.url + "/telegram/webhook"
    fakebot.pending_updates = 7
    fakebot.webhook_error = "SSL error {error:0A000086:SSL routines::certificate verify failed}"
    code, lines = doctor(shop.app)
    assert code == 1
    assert "Telegram's last error delivering updates: SSL error" in lines["bot"]
    assert "(7 waiting)" in lines["bot"]


def test_a_callback_that_does_not_reach_kassa_is_found(shop):
    # PUBLIC_URL pointing at something that is not Kassa (here: the bank's sandbox).
    shop.app.config["PUBLIC_URL"] = shop.sandbox.url
    with shop.app.app_context():
        check = check_callback()
    assert check.status == FIX
    assert "answered HTTP 404, not Kassa" in check.detail

    # Nothing listens there at all.
    gone = LiveServer(lambda environ, start_response: [])
    gone.stop()
    shop.app.config["PUBLIC_URL"] = gone.url
    with shop.app.app_context():
        check = check_callback()
    assert check.status == FIX and "cannot be reached from here" in check.detail


def test_a_kassa_with_another_secret_key_is_told_apart(shop, make_app):
    # This command's settings differ from the web process's: the bank's callbacks, signed
    # with the bank's key, would be refused by one of them.
    other = make_app(PUBLIC_URL=shop.web.url, RAIFFEISEN_SECRET_KEY="another-secret-key")
    with other.app_context():
        check = check_callback()
    assert check.status == FIX
    assert "is a Kassa with another RAIFFEISEN_SECRET_KEY" in check.detail


def test_a_database_not_migrated_says_run_db_upgrade(tmp_path):
    app = create_app({"APP_ENV": "testing", "SECRET_KEY": "test-secret",
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/empty.db"})
    code, lines = doctor(app)
    with app.app_context():
        db.engine.dispose()
    assert code == 1
    assert "is at no migration, the code needs" in lines["database"]
    assert "run `flask db upgrade`" in lines["database"]
    assert lines["..."].endswith("the other checks need the database: fix it first")


def test_public_url_is_needed_and_http_is_said(make_app):
    with make_app(PUBLIC_URL="").app_context():
        check = check_settings()
    assert check.status == FIX and check.detail.startswith("PUBLIC_URL is not set")
    with make_app(PUBLIC_URL="http://192.168.1.5:5000").app_context():
        check = check_settings()
    assert check.status == OK
    assert "Telegram and the bank need an https PUBLIC_URL" in check.detail
