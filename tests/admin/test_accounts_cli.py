"""`flask admin create`: an account from the command line, and refusals in one line."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import AdminUser, AuditEntry
from tests.admin.accounts_support import log_in
from tests.admin.conftest import make_admin

PASSWORD = "a long enough password"


def create(app, *args: str, given: str | None = None):
    return app.test_cli_runner().invoke(args=["admin", "create", *args], input=given)


def accounts() -> list[tuple[str, str]]:
    db.session.expire_all()
    return [(user.email, user.role.value) for user in db.session.scalars(sa.select(AdminUser))]


def test_create_an_admin_who_can_then_log_in(app):
    result = create(app, "Owner@Example.com", "--password", PASSWORD)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "admin owner@example.com created; log in at /admin/login"
    assert accounts() == [("owner@example.com", "admin")]
    assert db.session.scalar(sa.select(AuditEntry.action)) == "admin.create"
    assert log_in(app.test_client(), password=PASSWORD).status_code == 302


def test_create_a_viewer_with_the_password_asked_twice_hidden(app):
    result = create(app, "viewer@example.com", "--viewer", given=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output  # hidden input is not echoed
    assert result.output.count("Password") == 1
    assert "Repeat for confirmation" in result.output
    assert accounts() == [("viewer@example.com", "viewer")]


def test_the_two_passwords_must_match(app):
    result = create(app, "owner@example.com", given=f"{PASSWORD}\nsomething else\n")
    assert result.exit_code != 0
    assert "do not match" in result.output
    assert accounts() == []


@pytest.mark.parametrize(("args", "message"), [
    (["not-an-email", "--password", PASSWORD],
     "Error: invalid_email: Укажите email вида name@example.ru"),
    (["owner@example.com", "--password", "short"],
     "Error: weak_password: Пароль: не меньше 12 символов"),
    (["taken@example.com", "--password", PASSWORD],
     "Error: email_taken: Этот email уже зарегистрирован"),
])
def test_refusals_are_one_line(app, args, message):
    make_admin("taken@example.com")
    result = create(app, *args)
    assert result.exit_code == 1
    assert result.output.strip() == message
    assert len(accounts()) == 1


def test_a_bad_email_is_refused_before_the_password_is_asked(app):
    result = create(app, "not-an-email", given="")
    assert result.exit_code == 1
    assert "Password" not in result.output
    assert result.output.strip().startswith("Error: invalid_email")
