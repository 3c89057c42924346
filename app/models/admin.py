"""People of the admin panel: admins and viewers who log in with an email and a password, and
the invitations that let a new one register."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import TimestampMixin, UTCDateTime, str_enum


class AdminRole(enum.Enum):
    ADMIN = "admin"     # everything
    VIEWER = "viewer"   # reads, never acts


class AdminUser(UserMixin, TimestampMixin, db.Model):
    """Someone who logs in to the admin panel."""

    __tablename__ = "admin_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)  # stored lower-case
    name: Mapped[str | None] = mapped_column(sa.String(128))
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    role: Mapped[AdminRole] = mapped_column(str_enum(AdminRole, "admin_role"),
                                            default=AdminRole.VIEWER)
    active: Mapped[bool] = mapped_column(default=True)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Login throttling of this account: failures in a row, and until when it is locked.
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The staff member (a manager) this admin's Telegram account is, for the managers' alerts.
    staff_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff.id", ondelete="SET NULL"),
                                                 index=True)
    # Copied into the session at login and compared on every request (app/admin/auth.py):
    # logout, "log out everywhere", a password change and disabling add one, and every
    # session made before (a copied cookie too) is no longer a login.
    session_version: Mapped[int] = mapped_column(default=0, server_default="0")
    # Two-factor TOTP (RFC 6238, pyotp): the base32 secret once confirmed (2FA is on), the
    # one shown while enrolling, and the last time step a code was accepted for (a code is
    # accepted once). Stored plain: whoever reads the database reads the password hashes
    # too. Never logged, never in the audit log.
    totp_secret: Mapped[str | None] = mapped_column(sa.String(64))
    totp_pending_secret: Mapped[str | None] = mapped_column(sa.String(64))
    totp_last_step: Mapped[int | None] = mapped_column(sa.BigInteger)

    @property
    def is_active(self) -> bool:  # Flask-Login: a disabled account is logged out
        return self.active

    @property
    def has_2fa(self) -> bool:
        return self.totp_secret is not None

    @property
    def can_act(self) -> bool:
        """May change things (refund, cancel, edit); a viewer only reads."""
        return self.role == AdminRole.ADMIN

    def __repr__(self) -> str:
        return f"<AdminUser {self.id} {self.email} {self.role.value}>"


class AdminInvite(TimestampMixin, db.Model):
    """An invitation to register, made by an admin: a secret token (only its hash is kept),
    a role, an expiry, used once."""

    __tablename__ = "admin_invites"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    email: Mapped[str | None] = mapped_column(sa.String(254))
    role: Mapped[AdminRole] = mapped_column(str_enum(AdminRole, "admin_role"),
                                            default=AdminRole.VIEWER)
    created_by: Mapped[int | None] = mapped_column(sa.ForeignKey("admin_users.id"), index=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    used_by: Mapped[int | None] = mapped_column(sa.ForeignKey("admin_users.id"))
