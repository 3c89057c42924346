"""Integrations: the API clients that bots built in constructors use, their orders'
callbacks, and the log of every callback delivery."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import TimestampMixin, UTCDateTime, str_enum


class CallbackPreset(enum.Enum):
    """How an API client is called back: the constructor's own inbound API, or a generic
    JSON webhook signed with HMAC-SHA256."""

    SALEBOT = "salebot"
    PUZZLEBOT = "puzzlebot"
    LEADTEH = "leadteh"
    SMARTBOT = "smartbot"
    BOTMOTHER = "botmother"
    BOTHELP = "bothelp"
    WEBHOOK = "webhook"


class ApiClient(TimestampMixin, db.Model):
    """A bot (or any program) allowed to create payments through /api/v1."""

    __tablename__ = "api_clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(128))
    # sha256 hex of the key; the key itself is shown once, when the client is created.
    key_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    # The key's first characters, to tell keys apart in the panel and the logs.
    key_prefix: Mapped[str] = mapped_column(sa.String(12))
    preset: Mapped[CallbackPreset] = mapped_column(str_enum(CallbackPreset, "callback_preset"),
                                                   default=CallbackPreset.WEBHOOK)
    callback_url: Mapped[str | None] = mapped_column(sa.String(512))
    # Preset settings (a constructor's API token, a scenario id, BotHelp's OAuth client...);
    # the generic webhook's signing secret is here too.
    settings: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    active: Mapped[bool] = mapped_column(default=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<ApiClient {self.id} {self.name!r} {self.preset.value}>"


class CallbackDelivery(db.Model):
    """One attempt to call an API client back: what was sent and what came back."""

    __tablename__ = "callback_deliveries"
    __table_args__ = (sa.Index("ix_callback_deliveries_client_at", "api_client_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    api_client_id: Mapped[int] = mapped_column(sa.ForeignKey("api_clients.id"))
    order_id: Mapped[int | None] = mapped_column(sa.ForeignKey("orders.id"), index=True)
    event: Mapped[str] = mapped_column(sa.String(32))       # "paid", "expired", "refunded", "test"
    attempt: Mapped[int] = mapped_column(default=1)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    method: Mapped[str] = mapped_column(sa.String(8))
    url: Mapped[str] = mapped_column(sa.String(1024))      # secrets in the URL are masked
    request_body: Mapped[str | None] = mapped_column(sa.Text)
    status_code: Mapped[int | None] = mapped_column()       # None: no answer
    response_excerpt: Mapped[str | None] = mapped_column(sa.String(1024))
    error: Mapped[str | None] = mapped_column(sa.String(512))
    ok: Mapped[bool] = mapped_column(default=False)
    duration_ms: Mapped[int | None] = mapped_column()
