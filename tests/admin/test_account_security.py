"""An admin's own security: logout and "log out everywhere" end every copy of the session,
the password change (current password needed, other sessions end), and two-factor TOTP
(enrollment, the code step of the login, replay, ADMIN_REQUIRE_2FA)."""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
import sqlalchemy as sa

from app.admin import accounts, services
from app.extensions import db
from app.models import AdminUser, AuditEntry
from tests.admin.accounts_support import Clock, is_logged_in, log_in
from tests.admin.conftest import PASSWORD, make_admin

NEW_PASSWORD = "another long passphrase"


def _copy_of(app, client):
    """A second browser holding a copy of `client`'s session cookie (as a thief would)."""
    thief = app.test_client()
    thief.set_cookie("session", client.get_cookie("session").value)
    return thief


def _actions() -> list[str]:
    return list(db.session.scalars(sa.select(AuditEntry.action).order_by(AuditEntry.id)))


def _user() -> AdminUser:
    db.session.expire_all()
    return db.session.scalar(sa.select(AdminUser))


def test_a_session_cookie_copied_before_logout_is_refused_after_it(app):
    make_admin()
    client = app.test_client()
    assert log_in(client).status_code == 302
    thief = _copy_of(app, client)
    assert is_logged_in(thief)  # the copy works while the login lasts...
    assert client.post("/admin/logout").status_code == 302
    assert not is_logged_in(client)
    response = thief.get("/admin/")  # ...and not after the logout
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/admin/login")


def test_log_out_everywhere_ends_every_session_of_the_admin_only(app):
    make_admin()
    make_admin("other@example.com")
    laptop, phone, colleague = app.test_client(), app.test_client(), app.test_client()
    for client in (laptop, phone):
        assert log_in(client).status_code == 302
    assert log_in(colleague, "other@example.com").status_code == 302
    page = laptop.get("/admin/account").get_data(as_text=True)
    assert "Выйти на всех устройствах" in page
    response = laptop.post("/admin/account/logout-everywhere", follow_redirects=True)
    assert "Вы вышли на всех устройствах." in response.get_data(as_text=True)
    assert not is_logged_in(laptop) and not is_logged_in(phone)
    assert is_logged_in(colleague)
    assert "admin.logout_everywhere" in _actions()


def test_a_password_change_keeps_this_session_and_ends_the_others(app):
    make_admin()
    here, elsewhere = app.test_client(), app.test_client()
    assert log_in(here).status_code == 302 and log_in(elsewhere).status_code == 302
    response = here.post("/admin/account/password", data={
        "current": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 302
    assert "Пароль изменён" in here.get("/admin/account").get_data(as_text=True)
    assert is_logged_in(here)
    assert not is_logged_in(elsewhere)
    assert log_in(app.test_client()).status_code == 401  # the old password is gone
    assert log_in(app.test_client(), password=NEW_PASSWORD).status_code == 302
    assert "admin.password_change" in _actions()
    entry = db.session.scalar(sa.select(AuditEntry)
                              .where(AuditEntry.action == "admin.password_change"))
    assert PASSWORD not in str(entry.details) and NEW_PASSWORD not in str(entry.details)


@pytest.mark.parametrize(("form", "message"), [
    ({"current": "not my password", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
     "Текущий пароль неверен."),
    ({"current": PASSWORD, "password": "short one", "confirm": "short one"},
     "Пароль: не меньше 12 символов"),
    ({"current": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD + "!"},
     "Пароли не совпадают"),
])
def test_a_refused_password_change_says_why_and_changes_nothing(app, form, message):
    make_admin()
    client = app.test_client()
    assert log_in(client).status_code == 302
    before = _user().password_hash
    response = client.post("/admin/account/password", data=form)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert _user().password_hash == before
    assert is_logged_in(client)
    assert "admin.password_change" not in _actions()


def test_disabling_an_account_ends_a_copied_session_too(app, admin_client):
    make_admin("other@example.com")
    victim = app.test_client()
    assert log_in(victim, "other@example.com").status_code == 302
    thief = _copy_of(app, victim)
    other = db.session.scalar(sa.select(AdminUser).where(AdminUser.email == "other@example.com"))
    admin_client.post(f"/admin/admins/{other.id}/disable")
    admin_client.post(f"/admin/admins/{other.id}/enable")  # back on: the old sessions stay dead
    assert not is_logged_in(victim) and not is_logged_in(thief)


# --- two-factor TOTP -------------------------------------------------------------------

@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(services, "utcnow", clock)
    return clock


def _code(secret: str, clock: Clock, steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(clock.now + timedelta(seconds=30 * steps))


def _with_2fa(email: str = "owner@example.com") -> str:
    user = make_admin(email)
    user.totp_secret = pyotp.random_base32()
    db.session.commit()
    return user.totp_secret


def test_enrollment_shows_the_secret_and_turns_on_only_with_a_right_code(app, clock):
    make_admin()
    client = app.test_client()
    assert log_in(client).status_code == 302
    assert client.post("/admin/account/2fa/start").status_code == 302
    page = client.get("/admin/account/2fa").get_data(as_text=True)
    secret = _user().totp_pending_secret
    assert secret and secret in page and "<svg" in page  # the key in text and as a QR
    assert _user().has_2fa is False
    response = client.post("/admin/account/2fa/confirm", data={"code": "000000"},
                           follow_redirects=True)
    assert "Код не подошёл" in response.get_data(as_text=True)
    assert _user().has_2fa is False
    response = client.post("/admin/account/2fa/confirm", data={"code": _code(secret, clock)},
                           follow_redirects=True)
    assert "Двухфакторная аутентификация включена" in response.get_data(as_text=True)
    assert _user().totp_secret == secret
    assert "admin.2fa_on" in _actions()


def test_a_login_with_two_factor_needs_the_code_and_takes_each_code_once(app, clock):
    secret = _with_2fa()
    client = app.test_client()
    response = log_in(client, next_url="/admin/journal")
    assert response.headers["Location"] == "/admin/login/code"
    assert not is_logged_in(client)  # the password alone is no login
    response = client.post("/admin/login/code", data={"code": "123456"})
    assert response.status_code == 400 and "Неверный код." in response.get_data(as_text=True)
    assert not is_logged_in(client)
    code = _code(secret, clock)
    response = client.post("/admin/login/code", data={"code": code})
    assert response.headers["Location"] == "/admin/journal"
    assert is_logged_in(client)

    again = app.test_client()  # someone who saw the code and knows the password
    log_in(again)
    response = again.post("/admin/login/code", data={"code": code})
    assert response.status_code == 400 and not is_logged_in(again)
    earlier = _code(secret, clock, steps=-1)  # an older code (within the drift) too
    assert again.post("/admin/login/code", data={"code": earlier}).status_code == 400
    clock.advance(seconds=30)
    assert again.post("/admin/login/code", data={"code": _code(secret, clock)}).status_code == 302
    assert is_logged_in(again)


def test_wrong_codes_lock_the_account_like_wrong_passwords(app, clock):
    secret = _with_2fa()
    client = app.test_client()
    for _attempt in range(services.ACCOUNT_FAILURES):
        log_in(client)  # a right password does not forgive the wrong codes
        response = client.post("/admin/login/code", data={"code": "000000"})
    assert response.status_code == 429
    assert "заблокирована до" in response.get_data(as_text=True)
    log_in(client)
    assert client.post("/admin/login/code", data={"code": _code(secret, clock)}).status_code == 429
    assert not is_logged_in(client)


def test_the_code_step_waits_five_minutes(app, clock, monkeypatch):
    secret = _with_2fa()
    monkeypatch.setattr(accounts, "utcnow", clock)
    client = app.test_client()
    log_in(client)
    clock.advance(seconds=accounts.PENDING_LOGIN_SECONDS + 1)
    response = client.post("/admin/login/code", data={"code": _code(secret, clock)})
    assert response.headers["Location"] == "/admin/login"
    assert not is_logged_in(client)


def test_turning_two_factor_off_needs_a_current_code(app, clock):
    secret = _with_2fa()
    client = app.test_client()
    log_in(client)
    client.post("/admin/login/code", data={"code": _code(secret, clock)})
    response = client.post("/admin/account/2fa/disable", data={"code": "000000"},
                           follow_redirects=True)
    assert "Код не подошёл." in response.get_data(as_text=True)
    assert _user().has_2fa
    client.post("/admin/account/2fa/disable", data={"code": _code(secret, clock, steps=1)})
    assert not _user().has_2fa
    assert "admin.2fa_off" in _actions()


def test_admin_require_2fa_sends_an_admin_without_it_to_enroll_first(make_app, clock):
    app = make_app(ADMIN_REQUIRE_2FA=True)
    with app.app_context():
        make_admin()
        client = app.test_client()
        assert log_in(client).status_code == 302
        for path in ("/admin/", "/admin/journal", "/admin/admins", "/admin/account"):
            response = client.get(path)
            assert response.status_code == 302, path
            assert response.headers["Location"] == "/admin/account/2fa"
        page = client.get("/admin/account/2fa").get_data(as_text=True)
        assert "обязательна" in page
        client.post("/admin/account/2fa/start")
        secret = _user().totp_pending_secret
        client.post("/admin/account/2fa/confirm", data={"code": _code(secret, clock)})
        assert client.get("/admin/").status_code == 200
        # Obligatory: it cannot be turned off.
        client.post("/admin/account/2fa/disable", data={"code": _code(secret, clock, 1)})
        assert _user().has_2fa


def test_admin_require_2fa_is_read_from_the_environment_and_a_bad_value_is_one_line(
        monkeypatch):
    from app.config import ConfigError, load_config

    monkeypatch.setenv("ADMIN_REQUIRE_2FA", "on")
    assert load_config("testing")["ADMIN_REQUIRE_2FA"] is True
    monkeypatch.setenv("ADMIN_REQUIRE_2FA", "maybe")
    with pytest.raises(ConfigError) as refused:
        load_config("testing")
    assert str(refused.value).splitlines()[1] == (
        "  - ADMIN_REQUIRE_2FA must be 1 or 0 (true/false, on/off), got 'maybe'")
