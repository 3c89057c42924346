"""Failed logins to the admin panel per client address, kept in the database so that every
web process counts the same failures (see app/admin/services.py for the rules)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import UTCDateTime


class LoginThrottle(db.Model):
    """One row per client address that failed to log in lately: how many failures since
    `window_started_at`, and until when the address is refused."""

    __tablename__ = "login_throttle"

    ip: Mapped[str] = mapped_column(sa.String(45), primary_key=True)  # IPv6 at most
    window_started_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    failures: Mapped[int] = mapped_column(default=0)
    blocked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<LoginThrottle {self.ip} {self.failures} until={self.blocked_until}>"
