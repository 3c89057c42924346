"""Accounts of the admin panel: login (with the code step of two-factor authentication),
logout, registration (the first admin, then by invite), the page of admins and invites, and
an admin's own page (password change, two-factor authentication, log out everywhere). The
rules live in app/admin/services.py."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import (
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from app import audit, ratelimit
from app.admin import credentials, services
from app.admin.accounts_forms import (
    ActionForm,
    CodeForm,
    InviteForm,
    LoginForm,
    PasswordChangeForm,
    RegisterForm,
    RoleForm,
)
from app.admin.auth import (
    admin_required,
    keep_session_version,
    require_two_factor,
    start_login_clock,
    viewer_required,
)
from app.admin.blueprint import bp
from app.errors import KassaError
from app.models import AdminRole, AdminUser, utcnow
from app.qrimage import inline_svg
from app.ratelimit import RateLimitExceeded

# The invite link just made, kept in the session until the admins page has shown it once.
INVITE_LINK_KEY = "admin_invite_link"
#: A login whose password was right and whose two-factor code is still to come: the
#: account's id, when the password was checked, and where to go after. Not a login for
#: Flask-Login (no `_user_id`) until the code is right.
PENDING_LOGIN_KEY = "pending_2fa"
#: How long the code step waits after the password.
PENDING_LOGIN_SECONDS = 300

# ADMIN_REQUIRE_2FA: an admin without two-factor authentication enrolls first.
bp.before_request(require_two_factor)


def _client_ip() -> str:
    # Behind the proxy, gunicorn's --forwarded-allow-ips puts the client's address here.
    return request.remote_addr or "unknown"


def _as_visitor() -> None:
    """Someone not logged in (yet): audit entries name their address."""
    audit.act_as(audit.Actor("anonymous", source=_client_ip()))


def safe_next(target: str | None) -> str | None:
    """`next` only as a path on this site: never another host (//evil, https://evil, /\\evil)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return None
    if any(ord(char) < 32 for char in target):
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else None


def _start_session(user: AdminUser) -> None:
    """A new session for the account: nothing of the visitor's session carries over."""
    session.clear()
    login_user(user)
    start_login_clock(user)
    session.permanent = True  # ends after SESSION_LIFETIME (auth.py), however active


@bp.route("/login", methods=["GET", "POST"])
def login():
    next_url = safe_next(request.args.get("next"))
    if current_user.is_authenticated:
        return redirect(next_url or url_for("admin.index"))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        _as_visitor()
        try:
            user = services.authenticate(form.email.data, form.password.data, _client_ip())
        except services.LoginRefused as refused:
            form.form_errors.append(refused.message)
            status = refused.status
        else:
            if user.has_2fa:
                session.clear()
                session[PENDING_LOGIN_KEY] = {"user": user.id, "next": next_url,
                                              "at": int(utcnow().timestamp())}
                return redirect(url_for("admin.login_code"))
            _start_session(user)
            return redirect(next_url or url_for("admin.index"))
    elif request.method == "POST":
        status = 400
    return render_template("admin/accounts/login.html", form=form, next_url=next_url,
                           registration_open=services.registration_open()), status


def _pending_login() -> dict | None:
    pending = session.get(PENDING_LOGIN_KEY)
    if not isinstance(pending, dict) or not isinstance(pending.get("at"), int):
        return None
    if not 0 <= utcnow().timestamp() - pending["at"] < PENDING_LOGIN_SECONDS:
        return None
    return pending


@bp.route("/login/code", methods=["GET", "POST"])
def login_code():
    """The second step of a login with two-factor authentication: the app's code."""
    pending = _pending_login()
    if pending is None:
        session.pop(PENDING_LOGIN_KEY, None)
        flash(_("Войдите снова: время на ввод кода истекло."), "info")
        return redirect(url_for("admin.login"))
    form = CodeForm()
    status = 200
    if form.validate_on_submit():
        _as_visitor()
        try:
            user = credentials.check_login_code(pending["user"], form.code.data, _client_ip())
        except services.LoginRefused as refused:
            form.form_errors.append(refused.message)
            status = refused.status
        else:
            _start_session(user)
            return redirect(safe_next(pending.get("next")) or url_for("admin.index"))
    elif request.method == "POST":
        status = 400
    return render_template("admin/accounts/login_code.html", form=form), status


@bp.errorhandler(RateLimitExceeded)
def too_many_logins(_exc: RateLimitExceeded):
    """Over RATELIMIT_ADMIN_LOGIN (app/ratelimit; checked before the view): the login page
    again with the wait, 429 and Retry-After. Nothing was checked or counted."""
    seconds = ratelimit.retry_after()
    form = LoginForm()
    form.form_errors.append(ratelimit.rate_limited_message(seconds))
    response = make_response(render_template(
        "admin/accounts/login.html", form=form, next_url=safe_next(request.args.get("next")),
        registration_open=services.registration_open()), 429)
    response.headers["Retry-After"] = str(seconds)
    return response


@bp.post("/logout")
def logout():
    """Log out. The account's session version goes up, so every copy of this session (and
    the account's other sessions: the version is per account) stops being a login."""
    if current_user.is_authenticated:
        credentials.end_sessions(current_user.id)
    logout_user()
    session.clear()
    flash(_("Вы вышли из панели."), "info")
    return redirect(url_for("admin.login"))


def _register(form: RegisterForm, create) -> AdminUser | None:
    """Validate the form, create the account with `create(email, password)`, and log in.

    :returns: the new account, or None with the refusal on the form.
    """
    if not form.validate_on_submit():
        return None
    _as_visitor()
    try:
        user = create(form.email.data, form.password.data)
    except KassaError as refused:
        form.form_errors.append(refused.message)
        return None
    _start_session(user)
    flash(_("Учётная запись создана. Добро пожаловать!"), "success")
    return user


def _register_page(form: RegisterForm, **context):
    status = 400 if request.method == "POST" else 200
    return render_template("admin/accounts/register.html", form=form,
                           min_password=services.PASSWORD_MIN, **context), status


@bp.route("/register", methods=["GET", "POST"])
def register():
    """The first admin registers here while there is no account; afterwards it is closed."""
    if not services.registration_open():
        return render_template("admin/accounts/register_closed.html"), 403
    form = RegisterForm()
    if _register(form, services.register_first_admin):
        return redirect(url_for("admin.index"))
    return _register_page(form, first=True)


@bp.route("/register/<token>", methods=["GET", "POST"])
def register_invite(token: str):
    invite = services.valid_invite(token)
    if invite is None:
        return render_template("admin/accounts/register_closed.html", invalid_invite=True), 404
    form = RegisterForm()
    if request.method == "GET" and invite.email:
        form.email.data = invite.email
    role, fixed_email = invite.role, invite.email
    if _register(form, lambda email, password: services.register_with_invite(
            token, email, password)):
        return redirect(url_for("admin.index"))
    return _register_page(form, role=role, fixed_email=fixed_email)


def _invite_link(token: str) -> str:
    path = url_for("admin.register_invite", token=token)
    public = current_app.config.get("PUBLIC_URL")
    return f"{public}{path}" if public else url_for("admin.register_invite", token=token,
                                                     _external=True)


@bp.get("/admins")
@viewer_required
def admins():
    users = services.admins_list()
    role_forms = {user.id: RoleForm(role=user.role.value, prefix=f"u{user.id}")
                  for user in users}
    return render_template(
        "admin/accounts/admins.html",
        users=users, emails={user.id: user.email for user in users},
        invites=services.invites_list(),
        invite_form=InviteForm(), role_forms=role_forms,
        invite_link=session.pop(INVITE_LINK_KEY, None), now=utcnow(),
    )


def _done(message: str):
    flash(message, "success")
    return redirect(url_for("admin.admins"))


def _refused(error: KassaError | str):
    flash(error.message if isinstance(error, KassaError) else error, "error")
    return redirect(url_for("admin.admins"))


def _form_error(form) -> str:
    for errors in form.errors.values():
        return str(errors[0])
    return _("Форма заполнена неверно")


@bp.post("/admins/invites")
@admin_required
def invite_create():
    form = InviteForm()
    if not form.validate_on_submit():
        return _refused(_form_error(form))
    try:
        _invite, token = services.create_invite(AdminRole(form.role.data), form.email.data,
                                          created_by=current_user.id)
    except KassaError as refused:
        return _refused(refused)
    session[INVITE_LINK_KEY] = _invite_link(token)
    return _done(_("Приглашение создано. Ссылка показана один раз: скопируйте её сейчас."))


def _act(form, action, message: str):
    """Run a service `action()` behind a CSRF-checked form and say how it went."""
    if not form.validate_on_submit():
        return _refused(_form_error(form))
    try:
        action()
    except KassaError as refused:
        return _refused(refused)
    return _done(message)


@bp.post("/admins/invites/<int:invite_id>/revoke")
@admin_required
def invite_revoke(invite_id: int):
    return _act(ActionForm(), lambda: services.revoke_invite(invite_id),
                _("Приглашение отозвано."))


@bp.post("/admins/<int:user_id>/role")
@admin_required
def admin_role(user_id: int):
    form = RoleForm(prefix=f"u{user_id}")
    return _act(form, lambda: services.change_role(user_id, AdminRole(form.role.data)),
                _("Роль изменена."))


@bp.post("/admins/<int:user_id>/disable")
@admin_required
def admin_disable(user_id: int):
    return _act(ActionForm(), lambda: services.disable_admin(user_id),
                _("Учётная запись отключена."))


@bp.post("/admins/<int:user_id>/enable")
@admin_required
def admin_enable(user_id: int):
    return _act(ActionForm(), lambda: services.enable_admin(user_id),
                _("Учётная запись включена."))


# --- the admin's own page ----------------------------------------------------------------

@bp.get("/account")
@viewer_required
def account():
    return render_template("admin/accounts/account.html", action_form=ActionForm(),
                           require_2fa=current_app.config.get("ADMIN_REQUIRE_2FA", False))


@bp.post("/account/logout-everywhere")
@viewer_required
def logout_everywhere():
    if not ActionForm().validate_on_submit():
        return _refused_here(_("Форма устарела: обновите страницу."), "admin.account")
    credentials.end_sessions(current_user.id, everywhere=True)
    logout_user()
    session.clear()
    flash(_("Вы вышли на всех устройствах."), "info")
    return redirect(url_for("admin.login"))


def _refused_here(message: str, endpoint: str):
    flash(message, "error")
    return redirect(url_for(endpoint))


@bp.route("/account/password", methods=["GET", "POST"])
@viewer_required
def password_change():
    form = PasswordChangeForm()
    status = 200
    if form.validate_on_submit():
        try:
            version = credentials.change_password(current_user.id, form.current.data,
                                               form.password.data, _client_ip())
        except KassaError as refused:
            form.form_errors.append(refused.message)
            status = refused.status
        else:
            keep_session_version(version)  # this session stays; the others end
            flash(_("Пароль изменён. Другие сеансы завершены."), "success")
            return redirect(url_for("admin.account"))
    elif request.method == "POST":
        status = 400
    return render_template("admin/accounts/password.html", form=form,
                           min_password=services.PASSWORD_MIN), status


@bp.get("/account/2fa")
@viewer_required
def two_factor():
    """Enrolling: the secret as a QR (an otpauth:// URI) and in text, and the code that
    confirms it. Also where ADMIN_REQUIRE_2FA sends an admin without it."""
    secret = None if current_user.has_2fa else current_user.totp_pending_secret
    uri = credentials.totp_uri(current_user, secret) if secret else None
    return render_template(
        "admin/accounts/two_factor.html", secret=secret, qr=inline_svg(uri) if uri else None,
        action_form=ActionForm(), code_form=CodeForm(),
        require_2fa=current_app.config.get("ADMIN_REQUIRE_2FA", False))


@bp.post("/account/2fa/start")
@viewer_required
def two_factor_start():
    if not ActionForm().validate_on_submit():
        return _refused_here(_("Форма устарела: обновите страницу."), "admin.two_factor")
    try:
        credentials.start_2fa(current_user.id)
    except KassaError as refused:
        return _refused_here(refused.message, "admin.account")
    return redirect(url_for("admin.two_factor"))


@bp.post("/account/2fa/confirm")
@viewer_required
def two_factor_confirm():
    form = CodeForm()
    if not form.validate_on_submit():
        return _refused_here(_form_error(form), "admin.two_factor")
    try:
        credentials.confirm_2fa(current_user.id, form.code.data)
    except KassaError as refused:
        return _refused_here(refused.message, "admin.two_factor")
    flash(_("Двухфакторная аутентификация включена: при входе понадобится код из "
            "приложения."), "success")
    return redirect(url_for("admin.account"))


@bp.post("/account/2fa/disable")
@viewer_required
def two_factor_disable():
    if current_app.config.get("ADMIN_REQUIRE_2FA"):
        return _refused_here(_("Двухфакторная аутентификация обязательна в этой панели."),
                             "admin.account")
    form = CodeForm()
    if not form.validate_on_submit():
        return _refused_here(_form_error(form), "admin.account")
    try:
        credentials.disable_2fa(current_user.id, form.code.data, _client_ip())
    except KassaError as refused:
        return _refused_here(refused.message, "admin.account")
    flash(_("Двухфакторная аутентификация выключена."), "success")
    return redirect(url_for("admin.account"))
