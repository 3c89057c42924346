"""What a signed-in admin proves and changes: the password typed again, a new password, the
end of every session, and two-factor TOTP codes (enrolling, turning off, and the code step of
a login). Each public function that writes commits once or rolls back. A wrong password or
code counts like a failed login (`services.wrong_secret`: the same account lock and address
block).
"""

from __future__ import annotations

import secrets

import pyotp
import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from werkzeug.security import check_password_hash

from app import audit
from app.admin import services
from app.errors import InvalidStateError, NotFoundError, ValidationError
from app.extensions import begin_read_only, db, unit_of_work
from app.models import AdminUser, LoginThrottle, utcnow

# --- sessions, password change ---------------------------------------------------------

def end_sessions(user_id: int, *, everywhere: bool = False) -> int:
    """End every session of the account (cookies copied before included): its session
    version goes up by one. Logout and "log out everywhere" (`everywhere`, audited).

    :returns: the new version.
    """
    with unit_of_work():
        user = services.get_account(user_id)
        user.session_version += 1
        if everywhere:
            audit.record("admin.logout_everywhere", target_type="admin", target_id=user.id,
                         email=user.email)
    return user.session_version


def confirm_password(user_id: int, password: str | None, ip: str, wrong_message=None) -> None:
    """A logged-in admin types their password again (a password change, a refund long after
    the login). A wrong one counts as a failed login (account and address).

    :raises LoginRefused: it is wrong (400), or the account or the address is now locked.
    """
    begin_read_only()
    user = db.session.get(AdminUser, user_id)
    stored = user.password_hash if user is not None else services.dummy_hash()
    db.session.rollback()
    if user is None:
        raise NotFoundError(_l("Учётная запись не найдена"), code="admin_not_found")
    if not check_password_hash(stored, (password or "")[:services.PASSWORD_MAX]):
        raise services.wrong_secret(user_id, ip, wrong_message or _l("Неверный пароль."))


def change_password(user_id: int, current: str | None, new: str | None, ip: str) -> int:
    """Change an admin's own password: the current one is needed, the new one follows the
    registration's rule. Every session of the account ends (the caller keeps its own by
    storing the returned version). A wrong current password counts as a failed login.

    :returns: the new session version.
    :raises ValidationError: the new password is too short or too long.
    :raises LoginRefused: the current password is wrong (400), or the account or the
        address is now locked (429).
    """
    services.check_password(new)
    confirm_password(user_id, current, ip, _l("Текущий пароль неверен."))
    new_hash = services.hash_password(new)
    with unit_of_work():
        user = services.get_account(user_id)
        user.password_hash = new_hash
        user.session_version += 1
        audit.record("admin.password_change", target_type="admin", target_id=user.id,
                     email=user.email, ip=ip)
    return user.session_version


# --- two-factor TOTP -------------------------------------------------------------------

TOTP_ISSUER = "Kassa"
#: Codes of the time step before and after the current one are accepted too (clock drift).
TOTP_DRIFT_STEPS = 1


def totp_uri(user: AdminUser, secret: str) -> str:
    """The otpauth:// URI an authenticator app reads from the QR."""
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=TOTP_ISSUER)


def matching_step(secret: str, code: str | None, last_step: int | None) -> int | None:
    """The time step `code` is right for (now, or one step either side), if it is later than
    `last_step`: a code is accepted once."""
    code = (code or "").strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    now_step = totp.timecode(utcnow())
    for step in range(now_step - TOTP_DRIFT_STEPS, now_step + TOTP_DRIFT_STEPS + 1):
        if secrets.compare_digest(totp.generate_otp(step), code):
            return step if last_step is None or step > last_step else None
    return None


def start_2fa(user_id: int) -> str:
    """Begin enrolling: a new secret to show (not in force until `confirm_2fa`).

    :returns: the secret (base32).
    :raises InvalidStateError: two-factor authentication is on already.
    """
    with unit_of_work():
        user = services.get_account(user_id)
        if user.totp_secret is not None:
            raise InvalidStateError(_l("Двухфакторная аутентификация уже включена"),
                                    code="2fa_on")
        if user.totp_pending_secret is None:
            user.totp_pending_secret = pyotp.random_base32()
        secret = user.totp_pending_secret
    return secret


def confirm_2fa(user_id: int, code: str | None) -> None:
    """Turn two-factor authentication on with the first right code of the enrolled secret.

    :raises ValidationError: the code is wrong (or no enrollment was started).
    """
    with unit_of_work():
        user = services.get_account(user_id)
        step = (None if user.totp_pending_secret is None
                else matching_step(user.totp_pending_secret, code, None))
        if step is None:
            raise ValidationError(_l("Код не подошёл. Проверьте время на телефоне и введите "
                                     "новый код."), code="invalid_code")
        user.totp_secret, user.totp_pending_secret = user.totp_pending_secret, None
        user.totp_last_step = step
        audit.record("admin.2fa_on", target_type="admin", target_id=user.id, email=user.email)


def disable_2fa(user_id: int, code: str | None, ip: str) -> None:
    """Turn two-factor authentication off; a current code is needed (counted like a login).

    :raises LoginRefused: the code is wrong (400), or the account or address got locked.
    """
    with unit_of_work():
        user = services.get_account(user_id)
        if user.totp_secret is None:
            return
        step = matching_step(user.totp_secret, code, user.totp_last_step)
        if step is not None:
            user.totp_secret = None
            user.totp_last_step = None
            audit.record("admin.2fa_off", target_type="admin", target_id=user.id,
                         email=user.email)
            return
    raise services.wrong_secret(user_id, ip, _l("Код не подошёл."))


def check_login_code(user_id: int, code: str | None, ip: str) -> AdminUser:
    """The code step of a login with two-factor authentication (the password was right).
    A right code (not used before) completes the login; a wrong one counts as a failed login
    of the account and the address (the same lock and block as passwords).

    :raises LoginRefused: a wrong or used code (400), a locked account or a refused address
        (429), a disabled account (403).
    """
    now = utcnow()
    with unit_of_work():
        blocked_until = db.session.scalar(sa.select(LoginThrottle.blocked_until)
                                          .where(LoginThrottle.ip == ip))
        user = services.get_account(user_id)
        if blocked_until is not None and blocked_until > now:
            raise services.ip_blocked_refusal(blocked_until)
        if user.locked_until is not None and user.locked_until > now:
            raise services.locked_refusal(user.locked_until)
        if not user.active:
            raise services.LoginRefused(
                _l("Учётная запись отключена. Обратитесь к администратору."),
                code="account_disabled", status=403)
        step = (None if user.totp_secret is None
                else matching_step(user.totp_secret, code, user.totp_last_step))
        if step is not None:
            user.totp_last_step = step
            user.failed_logins = 0
            user.locked_until = None
            user.last_login_at = now
            return user
    raise services.wrong_secret(user_id, ip, _l("Неверный код."))
