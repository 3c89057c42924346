"""Who is at the till: the cashier Telegram vouches for, or the demo cashier in demo mode."""

from __future__ import annotations

import functools

from flask import current_app, g, request

from app.audit import Actor, act_as
from app.miniapp.screens import refused_screen
from app.people.services import demo_cashier
from app.telegram.signin import SignInRefused, cashier_from_header


def demo_mode() -> bool:
    """A development app without a bot token: the Mini App opens in a plain browser as the
    demo cashier. Never in testing or production, whatever else is configured."""
    config = current_app.config
    return config["APP_ENV"] == "development" and not config.get("TELEGRAM_BOT_TOKEN")


def current_cashier():
    """The caller's StaffMember.

    :raises SignInRefused: no, bad or stale initData, or not an active cashier.
    """
    if demo_mode():
        return demo_cashier()
    return cashier_from_header(request.headers.get("Authorization"))


def cashier_required(view):
    """Let the view run for an active cashier (`g.cashier`, also the audit actor); anyone
    else gets the 403 refusal screen with its code and Russian message."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        try:
            g.cashier = current_cashier()
        except SignInRefused as refused:
            return refused_screen(refused)
        act_as(Actor("cashier", g.cashier.id, g.cashier.name, request.remote_addr))
        return view(*args, **kwargs)

    return wrapper
