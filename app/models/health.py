"""Provider health: when each outside service (the bank, the cash register, the bot) last
answered, and the last error it gave. One row per service, written by the `health.check`
job (app/provider_health.py) and shown on the admin dashboard."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import UTCDateTime


class ProviderHealth(db.Model):
    __tablename__ = "provider_health"

    # "bank", "register" or "bot".
    service: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    # The configured provider: "raiffeisen", "atol", "telegram".
    provider: Mapped[str] = mapped_column(sa.String(32))
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_ok_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(sa.String(500))

    @property
    def ok(self) -> bool:
        """The last check succeeded."""
        return self.last_ok_at is not None and (
            self.last_error_at is None or self.last_ok_at >= self.last_error_at)

    def __repr__(self) -> str:
        return f"<ProviderHealth {self.service} {self.provider} ok={self.ok}>"
