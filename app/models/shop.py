"""The shop's settings kept by the admin panel: the one-time links that tie an admin's
Telegram account to the panel, so the admin gets the managers' alerts."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import TimestampMixin, UTCDateTime


class TelegramLinkToken(TimestampMixin, db.Model):
    """A deep link `t.me/<bot>?start=link-<token>` shown once to an admin: only the token's
    hash is kept; it expires after a few minutes and works once."""

    __tablename__ = "admin_telegram_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    admin_user_id: Mapped[int] = mapped_column(
        sa.ForeignKey("admin_users.id", ondelete="CASCADE"), index=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    used_by_telegram_id: Mapped[int | None] = mapped_column(sa.BigInteger)

    def __repr__(self) -> str:
        return f"<TelegramLinkToken {self.id} admin={self.admin_user_id}>"
