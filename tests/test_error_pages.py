"""In production an unexpected error shows the visitor a Russian error screen (or, to a
program, a JSON error) and nothing of the internals: no traceback, no exception message,
no settings, no SQL. And production never starts with the debugger on."""

from __future__ import annotations

import pytest

import app.miniapp.views as miniapp_views
import app.sbp.routes as sbp_routes
from app.config import ConfigError, load_config
from app.constructor import clients
from tests.miniapp.conftest import ANNA, TOKEN, Phone, seed_till
from tests.test_config import PRODUCTION

#: What the failing code "knows": a secret setting and a statement with a password in it.
SECRET = "sk-live-4b1f9c2e77d0a3"
LEAK = f"connect failed: password={SECRET} SELECT * FROM admin_users WHERE id=1"  # noqa: S608
INTERNALS = (SECRET, "Traceback", "SELECT", "admin_users", "RuntimeError",
             PRODUCTION["SECRET_KEY"], PRODUCTION["RAIFFEISEN_SECRET_KEY"], 'File "')


def _boom():
    raise RuntimeError(LEAK)


@pytest.fixture
def production_app(make_app):
    """The app as production builds it (TESTING off, DEBUG off), on the test database, with
    a test-only page that fails."""
    settings = {k: v for k, v in PRODUCTION.items() if k != "DATABASE_URL"}
    app = make_app(APP_ENV="production", TELEGRAM_BOT_TOKEN=TOKEN, **settings)
    assert not app.debug and not app.testing
    app.add_url_rule("/admin/test-boom", "test_boom_page", _boom)
    return app


def _leaks(body: str) -> list[str]:
    return [text for text in INTERNALS if text in body]


def test_a_failing_page_shows_the_russian_error_screen_and_nothing_else(production_app):
    response = production_app.test_client().get("/admin/test-boom",
                                                headers={"Accept": "text/html"})
    body = response.get_data(as_text=True)
    assert response.status_code == 500
    assert response.mimetype == "text/html"
    assert "Что-то пошло не так" in body
    assert _leaks(body) == []


def test_a_failing_api_call_answers_a_json_error_without_internals(production_app,
                                                                  monkeypatch):
    monkeypatch.setattr(clients, "authenticate", lambda key: _boom())
    response = production_app.test_client().get(
        "/api/v1/payments/42", headers={"Authorization": "Bearer some-key"})
    assert response.status_code == 500
    assert response.get_json() == {"ok": False, "error": "internal_error",
                                   "message": "Internal error; it has been logged."}
    assert _leaks(response.get_data(as_text=True)) == []


def test_a_failing_bank_callback_answers_json_without_internals(production_app, monkeypatch):
    monkeypatch.setattr(sbp_routes, "handle_callback", lambda raw, headers: _boom())
    response = production_app.test_client().post(
        "/sbp/callback", data=b'{"event": "payment"}', content_type="application/json")
    assert response.status_code == 500
    assert response.get_json()["error"] == "internal_error"
    assert _leaks(response.get_data(as_text=True)) == []


def test_a_failing_till_screen_shows_the_cashier_a_russian_message(production_app,
                                                                     monkeypatch):
    seed_till(production_app)
    monkeypatch.setattr(miniapp_views, "_search", lambda q: _boom())
    screen = Phone(production_app, ANNA).get("/miniapp/catalog")
    assert screen.status == 500
    assert "Что-то пошло не так" in screen.html
    assert _leaks(screen.html) == []


def test_an_unknown_page_in_production_is_the_russian_404(production_app):
    response = production_app.test_client().get("/admin/no-such-page",
                                                headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert "Traceback" not in response.get_data(as_text=True)


@pytest.mark.parametrize("value", ["1", "true"])
def test_production_refuses_the_debugger(monkeypatch, value):
    for name, setting in PRODUCTION.items():
        monkeypatch.setenv(name, setting)
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("FLASK_DEBUG", value)
    with pytest.raises(ConfigError) as refused:
        load_config()
    assert refused.value.problems == [
        "FLASK_DEBUG is on: the debugger must never run in production "
        "(unset FLASK_DEBUG, drop --debug)"]


def test_production_refuses_debug_set_in_code(monkeypatch):
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    settings = {k: v for k, v in PRODUCTION.items() if k != "DATABASE_URL"}
    with pytest.raises(ConfigError, match="FLASK_DEBUG is on"):
        load_config("production", overrides={**settings, "DEBUG": True})


def test_development_may_use_the_debugger(monkeypatch):
    monkeypatch.setenv("FLASK_DEBUG", "1")
    assert load_config("development")["DEBUG"] is True
