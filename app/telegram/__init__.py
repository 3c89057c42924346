"""Telegram room: the bot (webhook, commands, access requests) and the staff's notifications.

The cashier's Mini App is its own room, `app/miniapp`.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the webhook blueprint and the notification jobs (filled in by the bot work)."""
