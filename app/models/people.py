"""People of the Telegram room: the shop's staff and requests for access to it."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import TimestampMixin, UTCDateTime, move, str_enum


class StaffMember(TimestampMixin, db.Model):
    """A Telegram user who works in the shop: a cashier, a manager, or both."""

    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(primary_key=True)
    telegram_id: Mapped[int] = mapped_column(sa.BigInteger, unique=True)
    name: Mapped[str | None] = mapped_column(sa.String(128))
    is_cashier: Mapped[bool] = mapped_column(default=True)
    is_manager: Mapped[bool] = mapped_column(default=False)
    can_edit_catalog: Mapped[bool] = mapped_column(default=False)
    active: Mapped[bool] = mapped_column(default=True)
    # The cash link of this cashier's till. Added after both tables exist (use_alter):
    # qr_codes -> orders -> staff would otherwise be a cycle.
    till_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("qr_codes.id", use_alter=True, ondelete="SET NULL"), index=True
    )

    def __repr__(self) -> str:
        return f"<StaffMember {self.id} tg={self.telegram_id} active={self.active}>"


class AccessStatus(enum.Enum):
    PENDING = "pending"
    APPROVED = "approved"
    REFUSED = "refused"


ACCESS_TRANSITIONS = {
    AccessStatus.PENDING: frozenset({AccessStatus.APPROVED, AccessStatus.REFUSED}),
    AccessStatus.APPROVED: frozenset(),
    AccessStatus.REFUSED: frozenset(),
}


class AccessRequest(TimestampMixin, db.Model):
    """A Telegram user asks to work in the shop; an active manager decides."""

    __tablename__ = "access_requests"
    __table_args__ = (
        # One pending request per person.
        sa.Index("ux_access_requests_pending", "telegram_id", unique=True,
                 postgresql_where=sa.text("status = 'pending'"),
                 sqlite_where=sa.text("status = 'pending'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    telegram_id: Mapped[int] = mapped_column(sa.BigInteger, index=True)
    name: Mapped[str | None] = mapped_column(sa.String(128))
    username: Mapped[str | None] = mapped_column(sa.String(64))
    status: Mapped[AccessStatus] = mapped_column(
        str_enum(AccessStatus, "access_status"), default=AccessStatus.PENDING
    )
    decided_by: Mapped[int | None] = mapped_column(sa.ForeignKey("staff.id"), index=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def set_status(self, to: AccessStatus) -> bool:
        """The only way a request's status changes (see ACCESS_TRANSITIONS)."""
        return move(self, to, ACCESS_TRANSITIONS, "access request")

    def __repr__(self) -> str:
        return f"<AccessRequest {self.id} tg={self.telegram_id} {self.status.value}>"
