"""Accounts of the admin panel: admins and viewers, invitations, login and its throttling
(what a signed-in admin proves and changes, and two-factor codes, are in credentials.py).
Each public function that writes commits once or rolls back.

Passwords are hashed with werkzeug's scrypt (n=2**15, r=8, p=1: memory-hard, in the standard
library, no extra dependency). Throttling, kept in the database so that every web process
sees the same counts:
- an account: ACCOUNT_FAILURES failed logins in a row lock it for ACCOUNT_LOCK (a success
  resets the count);
- a client address: IP_FAILURES failures within IP_WINDOW refuse it for IP_BLOCK, whatever
  the email.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.dialects import postgresql, sqlite
from werkzeug.security import check_password_hash, generate_password_hash

from app import audit
from app.errors import InvalidStateError, KassaError, NotFoundError, ValidationError
from app.extensions import begin_read_only, db, unit_of_work
from app.formatting import format_moscow
from app.models import AdminInvite, AdminRole, AdminUser, LoginThrottle, utcnow

logger = logging.getLogger(__name__)

HASH_METHOD = "scrypt"
PASSWORD_MIN = 12
PASSWORD_MAX = 256          # a longer one is refused, not hashed: no megabyte passwords
EMAIL_MAX = 254
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
ACCOUNT_FAILURES = 5
ACCOUNT_LOCK = timedelta(minutes=15)
IP_FAILURES = 20
IP_WINDOW = timedelta(minutes=15)
IP_BLOCK = timedelta(minutes=15)
INVITE_LIFETIME = timedelta(days=7)


class LoginRefused(KassaError):
    """A login that did not happen; `until` is when a lock or a block ends."""

    code = "invalid_credentials"
    status = 401

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 until: datetime | None = None):
        super().__init__(message, code=code, status=status)
        self.until = until



# --- checks shared by the panel and `flask admin create` ------------------------------------

def clean_email(value: str | None) -> str:
    """An email as stored: trimmed, lower-case.

    :raises ValidationError: empty, too long or not shaped like name@domain.tld.
    """
    email = (value or "").strip().lower()
    if not email or len(email) > EMAIL_MAX or not EMAIL_PATTERN.match(email):
        raise ValidationError(_l("Укажите email вида name@example.ru"), code="invalid_email")
    return email


def check_password(password: str | None) -> str:
    """:raises ValidationError: shorter than PASSWORD_MIN or longer than PASSWORD_MAX."""
    password = password or ""
    if len(password) < PASSWORD_MIN:
        raise ValidationError(_("Пароль: не меньше %(n)d символов", n=PASSWORD_MIN),
                              code="weak_password")
    if len(password) > PASSWORD_MAX:
        raise ValidationError(_("Пароль: не больше %(n)d символов", n=PASSWORD_MAX),
                              code="weak_password")
    return password


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=HASH_METHOD)


@functools.cache
def dummy_hash() -> str:
    """A hash to check an unknown email's password against, so that it takes as long."""
    return hash_password(secrets.token_hex(16))


def _new_user(email: str, password: str, role: AdminRole) -> AdminUser:
    """Add (and flush) an account; the caller's unit commits it.

    :raises ValidationError: a bad email or password, or the email is taken.
    """
    email = clean_email(email)
    check_password(password)
    taken = db.session.scalar(sa.select(AdminUser.id).where(AdminUser.email == email))
    if taken is not None:
        raise ValidationError(_l("Этот email уже зарегистрирован"), code="email_taken")
    user = AdminUser(email=email, password_hash=hash_password(password), role=role,
                     active=True, failed_logins=0)
    db.session.add(user)
    try:
        with db.session.begin_nested():
            db.session.flush()
    except sa.exc.IntegrityError as exc:  # registered at the same moment by someone else
        raise ValidationError(_l("Этот email уже зарегистрирован"), code="email_taken") from exc
    return user


# --- accounts ----------------------------------------------------------------------------

def create_admin(email: str, password: str, role: AdminRole = AdminRole.ADMIN) -> AdminUser:
    """An account made from the command line (no invite needed).

    :raises ValidationError: a bad email or password, or the email is taken.
    """
    with unit_of_work():
        user = _new_user(email, password, role)
        audit.record("admin.create", target_type="admin", target_id=user.id,
                     email=user.email, role=role.value)
    return user


def registration_open() -> bool:
    """The first admin may register only while there is no account at all."""
    return db.session.scalar(sa.select(sa.func.count()).select_from(AdminUser)) == 0


def register_first_admin(email: str, password: str) -> AdminUser:
    """The shop's first admin registers without an invite.

    :raises InvalidStateError: an account exists already (registration is closed).
    :raises ValidationError: a bad email or password.
    """
    with unit_of_work():
        if db.session.get_bind().dialect.name == "postgresql":
            # Two first registrations at once: the second waits here and finds the first.
            db.session.execute(sa.text("LOCK TABLE admin_users IN SHARE ROW EXCLUSIVE MODE"))
        if not registration_open():
            raise InvalidStateError(_l("Регистрация закрыта: попросите приглашение у "
                                       "администратора"), code="registration_closed")
        user = _new_user(email, password, AdminRole.ADMIN)
        audit.record("admin.register", target_type="admin", target_id=user.id,
                     email=user.email, role=user.role.value, first=True)
    return user


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def valid_invite(token: str) -> AdminInvite | None:
    """The invite behind a link, while it is unused and unexpired."""
    invite = db.session.scalar(sa.select(AdminInvite)
                               .where(AdminInvite.token_hash == _token_hash(token)))
    if invite is None or invite.used_at is not None or invite.expires_at <= utcnow():
        return None
    return invite


def register_with_invite(token: str, email: str, password: str) -> AdminUser:
    """Register through an invite link: the account gets the invite's role, and the invite
    is used up (once, even with two registrations at the same moment).

    :raises InvalidStateError: the invite is unknown, used, revoked or expired.
    :raises ValidationError: a bad email or password, the email is taken, or it is not the
        email the invite was made for.
    """
    used_up = InvalidStateError(_l("Приглашение недействительно: оно уже использовано, "
                                   "отозвано или истекло"), code="invalid_invite")
    with unit_of_work():
        invite = valid_invite(token)
        if invite is None:
            raise used_up
        if invite.email and clean_email(email) != invite.email:
            raise ValidationError(_l("Приглашение выписано на другой email"),
                                  code="invite_email_mismatch")
        user = _new_user(email, password, invite.role)
        now = utcnow()
        claimed = db.session.execute(
            sa.update(AdminInvite)
            .where(AdminInvite.id == invite.id, AdminInvite.used_at.is_(None),
                   AdminInvite.expires_at > now)
            .values(used_at=now, used_by=user.id, updated_at=now)
        ).rowcount
        if claimed != 1:
            raise used_up
        audit.record("admin.register", target_type="admin", target_id=user.id,
                     email=user.email, role=user.role.value, invite_id=invite.id)
    return user


def create_invite(role: AdminRole, email: str | None, created_by: int) -> tuple[AdminInvite, str]:
    """An invitation valid for INVITE_LIFETIME, for anyone with the link or only for `email`.

    :returns: the invite and its token (only its hash is kept: show the link once).
    :raises ValidationError: a bad email, or one that already has an account.
    """
    token = secrets.token_urlsafe(32)
    with unit_of_work():
        email = clean_email(email) if (email or "").strip() else None
        if email and db.session.scalar(sa.select(AdminUser.id).where(AdminUser.email == email)):
            raise ValidationError(_l("Этот email уже зарегистрирован"), code="email_taken")
        invite = AdminInvite(token_hash=_token_hash(token), email=email, role=role,
                             created_by=created_by, expires_at=utcnow() + INVITE_LIFETIME)
        db.session.add(invite)
        db.session.flush()
        audit.record("invite.create", target_type="invite", target_id=invite.id,
                     email=email, role=role.value, expires_at=invite.expires_at.isoformat())
    return invite, token


def revoke_invite(invite_id: int) -> None:
    """Delete an unused invite: its link stops working (the audit log keeps the fact).

    :raises NotFoundError: no such invite.
    :raises InvalidStateError: it has been used already.
    """
    with unit_of_work():
        invite = db.session.get(AdminInvite, invite_id)
        if invite is None:
            raise NotFoundError(_l("Приглашение не найдено"), code="invite_not_found")
        if invite.used_at is not None:
            raise InvalidStateError(_l("Приглашение уже использовано"), code="invite_used")
        audit.record("invite.revoke", target_type="invite", target_id=invite.id,
                     email=invite.email, role=invite.role.value)
        db.session.delete(invite)


def get_account(user_id: int) -> AdminUser:
    user = db.session.get(AdminUser, user_id, with_for_update=True, populate_existing=True)
    if user is None:
        raise NotFoundError(_l("Учётная запись не найдена"), code="admin_not_found")
    return user


def _keep_an_admin(user: AdminUser) -> None:
    """Refuse to take the last active admin away (then nobody could act any more).

    The active admins' rows are locked (PostgreSQL), so two admins taking each other away
    at the same moment cannot both succeed; SQLite's write lock does the same.
    """
    if user.role != AdminRole.ADMIN or not user.active:
        return
    admins = db.session.scalars(
        sa.select(AdminUser.id)
        .where(AdminUser.role == AdminRole.ADMIN, AdminUser.active.is_(True))
        .with_for_update()
    ).all()
    if list(admins) == [user.id]:
        raise InvalidStateError(_l("Это последний администратор: сначала назначьте другого"),
                                code="last_admin")


def change_role(user_id: int, role: AdminRole) -> AdminUser:
    """:raises InvalidStateError: it would leave no active admin."""
    with unit_of_work():
        user = get_account(user_id)
        if user.role == role:
            return user
        if role != AdminRole.ADMIN:
            _keep_an_admin(user)
        audit.record("admin.role", target_type="admin", target_id=user.id, email=user.email,
                     old=user.role.value, new=role.value)
        user.role = role
    return user


def disable_admin(user_id: int) -> AdminUser:
    """Disable an account: it cannot log in, and its open sessions end at their next request.

    :raises InvalidStateError: it is the last active admin.
    """
    with unit_of_work():
        user = get_account(user_id)
        if not user.active:
            return user
        _keep_an_admin(user)
        user.active = False
        user.session_version += 1  # its sessions end at once, copied cookies too
        audit.record("admin.disable", target_type="admin", target_id=user.id, email=user.email)
    return user


def enable_admin(user_id: int) -> AdminUser:
    with unit_of_work():
        user = get_account(user_id)
        if user.active:
            return user
        user.active = True
        user.failed_logins = 0
        user.locked_until = None
        audit.record("admin.enable", target_type="admin", target_id=user.id, email=user.email)
    return user


def admins_list() -> list[AdminUser]:
    return list(db.session.scalars(sa.select(AdminUser).order_by(AdminUser.id)))


def invites_list() -> list[AdminInvite]:
    return list(db.session.scalars(sa.select(AdminInvite).order_by(AdminInvite.id.desc())))


# --- login and its throttling --------------------------------------------------------------

def ip_blocked_refusal(until: datetime) -> LoginRefused:
    return LoginRefused(_("Слишком много неудачных попыток входа с вашего адреса. Вход с него "
                          "закрыт до %(until)s (МСК).", until=format_moscow(until)),
                        code="ip_blocked", status=429, until=until)


def locked_refusal(until: datetime) -> LoginRefused:
    return LoginRefused(_("Слишком много неудачных попыток входа. Учётная запись "
                          "заблокирована до %(until)s (МСК).", until=format_moscow(until)),
                        code="account_locked", status=429, until=until)


def authenticate(email: str | None, password: str | None, ip: str) -> AdminUser:
    """Check a login and count it: a success resets the account's failures; a failure counts
    against the account (if the email is known) and against the client address.

    The password is checked outside any transaction (scrypt takes ~0.1 s and SQLite's write
    lock must not wait for it); the counts are then written in one transaction.

    An account with two-factor authentication is returned without its failures reset:
    the caller asks for the code next (`check_login_code`), which resets them.

    :raises LoginRefused: a wrong email or password (401), a locked account or a refused
        address (429, with `until`), a disabled account (403).
    """
    now = utcnow()
    email = (email or "").strip().lower()
    password = password or ""
    begin_read_only()
    blocked_until = db.session.scalar(sa.select(LoginThrottle.blocked_until)
                                      .where(LoginThrottle.ip == ip))
    user = db.session.scalar(sa.select(AdminUser).where(AdminUser.email == email))
    known = None if user is None else (user.id, user.password_hash, user.active,
                                       user.locked_until, user.totp_secret is not None)
    db.session.rollback()  # end the read; nothing is held while the password is hashed

    if blocked_until is not None and blocked_until > now:
        raise ip_blocked_refusal(blocked_until)
    if known is not None and known[3] is not None and known[3] > now:
        with unit_of_work():
            _count_ip_failure(ip, now)
        raise locked_refusal(known[3])

    correct = check_password_hash(known[1] if known else dummy_hash(),
                                  password[:PASSWORD_MAX])
    if correct and known is not None:
        if not known[2]:  # the right password of a disabled account: no failure to count
            raise LoginRefused(_l("Учётная запись отключена. Обратитесь к администратору."),
                               code="account_disabled", status=403)
        if known[4]:
            # The password step of a 2FA account: the failures in a row are not forgiven
            # (nor the login noted) until the code is right, so that the account's lock
            # also counts wrong codes (`check_login_code`).
            return db.session.get(AdminUser, known[0])
        with unit_of_work():
            user = get_account(known[0])
            user.failed_logins = 0
            user.locked_until = None
            user.last_login_at = now
        return user

    with unit_of_work():
        ip_blocked = _count_ip_failure(ip, now)
        locked = _count_account_failure(known[0], ip, now) if known else None
    if locked is not None:
        raise locked_refusal(locked)
    if ip_blocked is not None:
        raise ip_blocked_refusal(ip_blocked)
    raise LoginRefused(_l("Неверный email или пароль."))


def _count_account_failure(user_id: int, ip: str, now: datetime) -> datetime | None:
    """:returns: until when the account is now locked, if this failure locked it."""
    user = get_account(user_id)
    user.failed_logins += 1
    if user.failed_logins < ACCOUNT_FAILURES:
        return None
    user.failed_logins = 0  # after the lock, another ACCOUNT_FAILURES tries
    user.locked_until = now + ACCOUNT_LOCK
    audit.record("login.locked", target_type="admin", target_id=user.id, email=user.email,
                 ip=ip, until=user.locked_until.isoformat())
    logger.warning("admin account %s locked until %s after failed logins", user.id,
                   user.locked_until.isoformat())
    return user.locked_until


def _count_ip_failure(ip: str, now: datetime) -> datetime | None:
    """Count a failure of `ip` in its window (one atomic upsert, so that processes counting
    at the same moment all count), and forget addresses whose window and block are over.

    :returns: until when the address is now refused, if this failure made it so.
    """
    table = LoginThrottle.__table__
    cutoff = now - IP_WINDOW
    db.session.execute(sa.delete(table).where(
        table.c.ip != ip, table.c.window_started_at < cutoff,
        sa.or_(table.c.blocked_until.is_(None), table.c.blocked_until < now)))
    dialect = postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite
    insert = dialect.insert(table).values(ip=ip, window_started_at=now, failures=1)
    window_over = table.c.window_started_at < cutoff
    db.session.execute(insert.on_conflict_do_update(index_elements=["ip"], set_={
        "failures": sa.case((window_over, 1), else_=table.c.failures + 1),
        "window_started_at": sa.case((window_over, insert.excluded.window_started_at),
                                     else_=table.c.window_started_at),
    }))
    failures = db.session.scalar(sa.select(table.c.failures).where(table.c.ip == ip))
    if failures < IP_FAILURES:
        return None
    until = now + IP_BLOCK
    db.session.execute(sa.update(table).where(table.c.ip == ip)
                       .values(blocked_until=until, failures=0, window_started_at=now))
    logger.warning("logins from %s refused until %s after %d failures", ip, until.isoformat(),
                   IP_FAILURES)
    return until


def wrong_secret(user_id: int, ip: str, message) -> LoginRefused:
    """Count a wrong password or code of a logged-in (or half-logged-in) admin like a failed
    login: against the account and the address. :returns: the refusal to raise."""
    now = utcnow()
    with unit_of_work():
        ip_blocked = _count_ip_failure(ip, now)
        locked = _count_account_failure(user_id, ip, now)
    if locked is not None:
        return locked_refusal(locked)
    if ip_blocked is not None:
        return ip_blocked_refusal(ip_blocked)
    return LoginRefused(message, code="invalid_credentials", status=400)
