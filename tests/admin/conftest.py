"""Fixtures of the admin panel's tests: a logged-in admin or viewer on the test client."""

from __future__ import annotations

import pytest
from werkzeug.security import generate_password_hash

from app.admin.auth import LOGIN_AT_KEY, SESSION_VERSION_KEY
from app.extensions import db
from app.models import AdminRole, AdminUser, utcnow

PASSWORD = "correct horse battery staple"


def make_admin(email: str = "owner@example.com", role: AdminRole = AdminRole.ADMIN) -> AdminUser:
    user = AdminUser(email=email, password_hash=generate_password_hash(PASSWORD), role=role)
    db.session.add(user)
    db.session.commit()
    return user


def logged_in(app, user: AdminUser):
    """A test client whose session is `user`'s, as after a login (Flask-Login's keys)."""
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = str(user.id)
        session["_fresh"] = True
        session[LOGIN_AT_KEY] = int(utcnow().timestamp())
        session[SESSION_VERSION_KEY] = user.session_version
    return client


@pytest.fixture
def admin_client(app):
    return logged_in(app, make_admin())


@pytest.fixture
def viewer_client(app):
    return logged_in(app, make_admin("viewer@example.com", AdminRole.VIEWER))
