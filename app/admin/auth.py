"""Who is using the panel: Flask-Login's session, the two roles, and the audit actor."""

from __future__ import annotations

import functools
from datetime import timedelta

from flask import Flask, abort, g, request
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from app.audit import Actor, act_as
from app.extensions import db, login_manager
from app.models import AdminUser

SESSION_LIFETIME = timedelta(hours=12)


def init_login(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "admin.login"
    login_manager.login_message = _l("Войдите, чтобы открыть панель.")
    login_manager.login_message_category = "info"
    # Flask has defaults for these keys (not secure, SameSite unset, 31 days), so they are
    # set outright, not with setdefault. The panel's session is its only cookie.
    production = app.config["APP_ENV"] == "production"
    app.config.update(
        SESSION_COOKIE_SECURE=production,   # https only; development runs on http://127.0.0.1
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=production,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        # A login lasts this long, however active (the signed cookie is refused afterwards).
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
    )
    app.before_request(_forget_last_request)


def _forget_last_request() -> None:
    """Each request finds its user from its own session. `g` belongs to the app context,
    which a server makes per request, but which tests (and any caller that pushes one
    context around several requests) share: Flask-Login's cached user and the audit actor
    of one request must not carry into the next."""
    g.pop("_login_user", None)
    g.pop("audit_actor", None)


@login_manager.user_loader
def _load(user_id: str) -> AdminUser | None:
    return db.session.get(AdminUser, int(user_id)) if user_id.isdigit() else None


def _as_actor(user: AdminUser) -> None:
    act_as(Actor("admin", user.id, user.email, request.remote_addr))


def viewer_required(view):
    """Any logged-in, active admin or viewer: reading."""

    @functools.wraps(view)
    @login_required
    def wrapper(*args, **kwargs):
        _as_actor(current_user)
        return view(*args, **kwargs)

    return wrapper


def admin_required(view):
    """A logged-in admin: acting (a viewer gets 403)."""

    @functools.wraps(view)
    @login_required
    def wrapper(*args, **kwargs):
        if not current_user.can_act:
            abort(403)
        _as_actor(current_user)
        return view(*args, **kwargs)

    return wrapper
