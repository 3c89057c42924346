"""Logging in and out of the panel: sessions, `next`, and the throttling of failures."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.admin import services
from app.extensions import db
from app.formatting import format_moscow
from app.models import AdminRole, AdminUser, AuditEntry, LoginThrottle
from tests.admin.accounts_support import Clock, csrf_token, form_action, is_logged_in, log_in
from tests.admin.conftest import PASSWORD, logged_in, make_admin


@pytest.fixture
def clock(monkeypatch):
    moved = Clock()
    monkeypatch.setattr(services, "utcnow", moved)
    return moved


def test_the_right_password_opens_the_panel(app):
    make_admin()
    client = app.test_client()
    response = log_in(client, email="  Owner@Example.COM ")
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/"
    assert "owner@example.com" in client.get("/admin/").get_data(as_text=True)
    assert db.session.scalar(sa.select(AdminUser.last_login_at)) is not None


def test_a_wrong_password_is_refused_and_says_so(app):
    make_admin()
    client = app.test_client()
    response = log_in(client, password="not the password")
    assert response.status_code == 401
    assert "Неверный email или пароль" in response.get_data(as_text=True)
    assert not is_logged_in(client)
    unknown = log_in(client, email="nobody@example.com")
    assert unknown.status_code == 401
    assert "Неверный email или пароль" in unknown.get_data(as_text=True)


def test_an_empty_form_is_refused_with_field_messages(app):
    response = app.test_client().post("/admin/login", data={"email": "", "password": ""})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Укажите email" in page
    assert "Введите пароль" in page


@pytest.mark.parametrize(("target", "landing"), [
    ("/admin/admins?x=1", "/admin/admins?x=1"),
    ("https://evil.example/", "/admin/"),
    ("//evil.example/admin", "/admin/"),
    ("/\\evil.example", "/admin/"),
    ("javascript:alert(1)", "/admin/"),
])
def test_next_leads_only_to_a_local_path(app, target, landing):
    make_admin()
    response = log_in(app.test_client(), next_url=target)
    assert response.headers["Location"] == landing


def test_the_login_page_sends_a_stranger_back_where_they_were_going(app):
    make_admin()
    client = app.test_client()
    asked = client.get("/admin/admins")
    login_page = client.get(asked.headers["Location"]).get_data(as_text=True)
    response = client.post(form_action(login_page, "/admin/login"),
                           data={"email": "owner@example.com", "password": PASSWORD})
    assert response.headers["Location"] == "/admin/admins"


def test_login_starts_a_new_session(app):
    make_admin()
    client = app.test_client()
    with client.session_transaction() as session:
        session["planted"] = "by someone else"
    log_in(client)
    with client.session_transaction() as session:
        assert "planted" not in session
        assert session["_user_id"]
        assert session.permanent


def test_logout_is_a_post_and_ends_the_session(admin_client):
    assert admin_client.get("/admin/logout").status_code == 405
    assert is_logged_in(admin_client)
    response = admin_client.post("/admin/logout")
    assert response.headers["Location"] == "/admin/login"
    assert "Вы вышли" in admin_client.get("/admin/login").get_data(as_text=True)
    assert not is_logged_in(admin_client)


def test_a_disabled_account_cannot_log_in_and_its_session_ends(app):
    user = make_admin()
    client = logged_in(app, user)
    assert is_logged_in(client)
    user.active = False
    db.session.commit()
    assert not is_logged_in(client)
    response = log_in(app.test_client())
    assert response.status_code == 403
    assert "Учётная запись отключена" in response.get_data(as_text=True)


def test_five_failures_lock_the_account_until_a_time_the_page_names(app, clock):
    make_admin()
    client = app.test_client()
    for _attempt in range(4):
        assert log_in(client, password="wrong password").status_code == 401
    fifth = log_in(client, password="wrong password")
    assert fifth.status_code == 429
    until = clock.now + services.ACCOUNT_LOCK
    assert f"заблокирована до {format_moscow(until)} (МСК)" in fifth.get_data(as_text=True)

    clock.advance(minutes=14)
    refused = log_in(client)  # the right password, still locked
    assert refused.status_code == 429
    assert format_moscow(until) in refused.get_data(as_text=True)
    assert not is_logged_in(client)
    entry = db.session.scalars(sa.select(AuditEntry)).one()
    assert (entry.action, entry.target_type, entry.details["ip"]) == (
        "login.locked", "admin", "203.0.113.7")

    clock.advance(minutes=1, seconds=1)  # the lock is over
    assert log_in(client).status_code == 302
    assert is_logged_in(client)


def test_a_success_resets_the_accounts_count(app):
    make_admin()
    client = app.test_client()
    for _attempt in range(4):
        log_in(client, password="wrong password")
    assert log_in(client).status_code == 302
    client.post("/admin/logout")
    for _attempt in range(4):
        assert log_in(client, password="wrong password").status_code == 401
    assert log_in(client).status_code == 302


def test_an_address_with_twenty_failures_is_refused_in_every_process(make_app, clock):
    first, second = make_app(), make_app()  # two web processes, one database
    with first.app_context():
        make_admin()
    ip = "198.51.100.9"
    for number in range(services.IP_FAILURES - 1):
        web = first if number % 2 else second
        with web.app_context():
            response = log_in(web.test_client(), email=f"guess{number}@example.com", ip=ip)
            assert response.status_code == 401
    with first.app_context():
        last = log_in(first.test_client(), email="guess@example.com", ip=ip)
        assert last.status_code == 429
        until = format_moscow(clock.now + services.IP_BLOCK)
        assert f"с вашего адреса. Вход с него закрыт до {until}" in last.get_data(as_text=True)
    with second.app_context():
        client = second.test_client()
        refused = log_in(client, ip=ip)  # even the right password
        assert refused.status_code == 429
        assert "с вашего адреса" in refused.get_data(as_text=True)
        assert log_in(client, ip="198.51.100.10").status_code == 302  # another address
        clock.advance(minutes=15, seconds=1)
        assert log_in(second.test_client(), ip=ip).status_code == 302


def test_failures_spread_over_more_than_the_window_do_not_block(app, clock):
    make_admin()
    client = app.test_client()
    for number in range(services.IP_FAILURES - 1):
        log_in(client, email=f"guess{number}@example.com")
    clock.advance(minutes=15, seconds=1)
    assert log_in(client, email="guess@example.com").status_code == 401
    assert log_in(client).status_code == 302
    # The old window's row was replaced, not kept beside it.
    assert db.session.scalar(sa.select(LoginThrottle.failures)) == 1


def test_a_viewer_logs_in_and_reads(app):
    make_admin("viewer@example.com", AdminRole.VIEWER)
    client = app.test_client()
    assert log_in(client, email="viewer@example.com").status_code == 302
    assert "только просмотр" in client.get("/admin/").get_data(as_text=True)


PRODUCTION = {
    "APP_ENV": "production",
    "SECRET_KEY": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "PUBLIC_URL": "https://kassa.shop.example.ru",
    "RAIFFEISEN_SBP_MERCHANT_ID": "MA0000123456",
    "RAIFFEISEN_SECRET_KEY": "real-bank-key",
    "RAIFFEISEN_API_URL": "https://pay.raif.ru",
    "TELEGRAM_API_URL": "https://api.telegram.org",
    "FISCAL_PROVIDER": "none",
}


def test_production_session_cookies_are_secure(make_app):
    app = make_app(**PRODUCTION)
    site = "https://kassa.shop.example.ru"
    with app.app_context():
        make_admin()
        client = app.test_client()
        page = client.get("/admin/login", base_url=site).get_data(as_text=True)
        response = client.post("/admin/login", base_url=site,
                               headers={"Referer": f"{site}/admin/login"},
                               data={"email": "owner@example.com", "password": PASSWORD,
                                     "csrf_token": csrf_token(page)})
    assert response.status_code == 302
    cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Expires=" in cookie  # the login lasts SESSION_LIFETIME, not until the browser
