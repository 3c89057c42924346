"""An admin's Telegram account: the panel gives a one-time deep link
`https://t.me/<bot>?start=link-<token>`; the bot's `/start link-<token>` makes that Telegram
user a manager staff member tied to the admin (AdminUser.staff_id), who then gets the
managers' alerts. Only the token's hash is kept; it works once, within LINK_TTL.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import timedelta

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from app import audit
from app.errors import InvalidStateError, NotFoundError
from app.extensions import db
from app.models import AdminUser, StaffMember, TelegramLinkToken, utcnow
from app.people.services import check_telegram_id

logger = logging.getLogger(__name__)

LINK_TTL = timedelta(minutes=15)
#: What the bot's /start argument begins with (Telegram allows A-Z a-z 0-9 _ - there, 64 max).
START_PREFIX = "link-"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_link_token(admin_id: int) -> str:
    """A new one-time token for this admin (the start parameter without its prefix); commit.

    :raises NotFoundError: no such admin.
    """
    admin = db.session.get(AdminUser, admin_id)
    if admin is None:
        raise NotFoundError(_l("Администратор не найден"))
    token = secrets.token_urlsafe(24)  # 32 characters of A-Z a-z 0-9 _ -
    db.session.add(TelegramLinkToken(token_hash=_hash(token), admin_user_id=admin.id,
                                     expires_at=utcnow() + LINK_TTL))
    db.session.commit()
    logger.info("telegram link made for admin %s", admin.id)
    return token


def link_telegram(token: str, telegram_id: int, name: str | None = None) -> AdminUser:
    """Tie the Telegram user to the admin who made the token: the user becomes an active
    manager (kept a cashier if they were one); the token is spent. Commit.

    :raises InvalidStateError: the token is unknown, spent or expired, or its admin disabled.
    """
    check_telegram_id(telegram_id)
    now = utcnow()
    refused = InvalidStateError(_l("Ссылка недействительна или устарела. Получите новую "
                                   "в панели администратора."), code="invalid_link")
    try:
        # Spent in one statement: of two uses at once, only one finds it unused.
        spent = db.session.execute(
            sa.update(TelegramLinkToken)
            .where(TelegramLinkToken.token_hash == _hash(token or ""),
                   TelegramLinkToken.used_at.is_(None), TelegramLinkToken.expires_at > now)
            .values(used_at=now, used_by_telegram_id=telegram_id)
            .returning(TelegramLinkToken.admin_user_id)
        ).scalar()
        admin = db.session.get(AdminUser, spent) if spent is not None else None
        if admin is None or not admin.active:
            raise refused
        member = db.session.scalars(
            sa.select(StaffMember).where(StaffMember.telegram_id == telegram_id)).first()
        if member is None:
            member = StaffMember(telegram_id=telegram_id, name=(name or "")[:128] or None,
                                 is_cashier=False, can_edit_catalog=False)
            db.session.add(member)
        member.is_manager = True
        member.active = True
        db.session.flush()
        audit.record("admin.telegram_link", target_type="admin", target_id=admin.id,
                     email=admin.email, telegram_id=telegram_id, staff=[admin.staff_id, member.id])
        admin.staff_id = member.id
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    logger.info("admin %s linked to telegram %s (staff %s)", admin.id, telegram_id, member.id)
    return admin
