"""Who is using the panel: Flask-Login's session, the two roles, and the audit actor."""

from __future__ import annotations

import functools
from datetime import timedelta

from flask import Flask, abort, current_app, g, redirect, request, session, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from app.audit import Actor, act_as
from app.extensions import db, login_manager
from app.models import AdminUser, utcnow

SESSION_LIFETIME = timedelta(hours=12)
#: A refund needs a password typed this recently (the login, or again on the refund form).
REAUTH_WINDOW = timedelta(minutes=15)
#: When the password was last typed again in this session (a UTC Unix timestamp).
REAUTH_AT_KEY = "reauth_at"
#: When the session's login happened (a UTC Unix timestamp), set by the login itself.
LOGIN_AT_KEY = "login_at"
#: The account's `session_version` when the session logged in; another one is no login.
SESSION_VERSION_KEY = "session_version"
#: Endpoints an admin without two-factor authentication may reach while ADMIN_REQUIRE_2FA
#: is on: the enrollment itself and logout.
ENROLLMENT_ENDPOINTS = frozenset({"admin.two_factor", "admin.two_factor_start",
                                  "admin.two_factor_confirm", "admin.logout"})
#: Behind https the cookie takes the __Host- prefix: the browser then accepts it only if it
#: is Secure, for the whole site and for this host alone (no Domain), so no sibling
#: subdomain can plant or overwrite it.
HTTPS_SESSION_COOKIE = "__Host-session"


def init_login(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "admin.login"
    login_manager.login_message = _l("Войдите, чтобы открыть панель.")
    login_manager.login_message_category = "info"
    # Flask has defaults for these keys (not secure, SameSite unset, 31 days), so they are
    # set outright, not with setdefault. The panel's session is its only cookie (the login
    # never asks Flask-Login to remember; its remember cookie gets the same flags anyway).
    # Secure behind https (production requires it); development runs on http://127.0.0.1.
    https = (app.config["APP_ENV"] == "production"
             or app.config.get("PUBLIC_URL", "").startswith("https://"))
    app.config.update(
        SESSION_COOKIE_SECURE=https,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_PATH="/",
        SESSION_COOKIE_DOMAIN=None,
        REMEMBER_COOKIE_SECURE=https,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        # The cookie's own expiry; each request renews it, so the login's age is also
        # checked (`_load`): a login lasts this long however active it is.
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
    )
    if https:
        app.config["SESSION_COOKIE_NAME"] = HTTPS_SESSION_COOKIE
    app.before_request(_forget_last_request)


def _forget_last_request() -> None:
    """Each request finds its user from its own session. `g` belongs to the app context,
    which a server makes per request, but which tests (and any caller that pushes one
    context around several requests) share: Flask-Login's cached user and the audit actor
    of one request must not carry into the next."""
    g.pop("_login_user", None)
    g.pop("audit_actor", None)


def start_login_clock(user: AdminUser) -> None:
    """Note in the session that its login happens now, and the account's session version
    (the login calls this)."""
    session[LOGIN_AT_KEY] = int(utcnow().timestamp())
    keep_session_version(user.session_version)


def keep_session_version(version: int) -> None:
    """This session stays a login at `version` (after a password change raised it)."""
    session[SESSION_VERSION_KEY] = version


def recently_authenticated() -> bool:
    """The password was typed in this session (at the login or again) within REAUTH_WINDOW."""
    times = [value for value in (session.get(LOGIN_AT_KEY), session.get(REAUTH_AT_KEY))
             if isinstance(value, int)]
    if not times:
        return False
    age = utcnow().timestamp() - max(times)
    return 0 <= age < REAUTH_WINDOW.total_seconds()


def note_reauthentication() -> None:
    """The admin has just typed the password again."""
    session[REAUTH_AT_KEY] = int(utcnow().timestamp())


def _login_is_current() -> bool:
    """The session's login is younger than SESSION_LIFETIME. Flask renews a permanent
    session's cookie on every request, so an active panel would otherwise stay logged in
    for ever; a session without the time (made before it was kept) counts as expired."""
    started = session.get(LOGIN_AT_KEY)
    if not isinstance(started, int):
        return False
    age = utcnow().timestamp() - started
    return 0 <= age < SESSION_LIFETIME.total_seconds()


@login_manager.user_loader
def _load(user_id: str) -> AdminUser | None:
    """The session's admin, while its login is younger than SESSION_LIFETIME and the
    account's sessions have not been ended since (logout, a password change, disabling).
    The session is a signed cookie: this version check is what makes a copy of it taken
    before the logout worthless. Flask-Login's remember cookie (never set by the login)
    would bring no login time and no version, so it logs nobody in either."""
    if not _login_is_current():
        return None  # the panel asks for the password again
    user = db.session.get(AdminUser, int(user_id)) if user_id.isdigit() else None
    if user is None or session.get(SESSION_VERSION_KEY) != user.session_version:
        return None
    return user


def require_two_factor() -> object | None:
    """With ADMIN_REQUIRE_2FA on, an admin without two-factor authentication is sent to
    enroll before reaching any page of the panel (a before-request of the blueprint)."""
    if not current_app.config.get("ADMIN_REQUIRE_2FA"):
        return None
    if request.endpoint in ENROLLMENT_ENDPOINTS or not current_user.is_authenticated:
        return None
    if current_user.has_2fa:
        return None
    return redirect(url_for("admin.two_factor"))


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
