"""Who is using the panel: Flask-Login's session, the two roles, and the audit actor."""

from __future__ import annotations

import functools

from flask import Flask, abort, request
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from app.audit import Actor, act_as
from app.extensions import db, login_manager
from app.models import AdminUser


def init_login(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "admin.login"
    login_manager.login_message = _l("Войдите, чтобы открыть панель.")
    login_manager.login_message_category = "info"
    if app.config["APP_ENV"] == "production":
        app.config.setdefault("SESSION_COOKIE_SECURE", True)
    app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")


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
