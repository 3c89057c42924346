"""The cashier's Mini App: the till inside Telegram (bp "miniapp", /miniapp/)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the Mini App's blueprint (filled in by the Mini App work)."""
