"""`flask doctor`: what an operator runs after setting Kassa up. One line per check, each
either fine or a fix in plain words:

- settings: the environment and the public URL (https where Telegram and the bank need it);
- database: it answers, and its migrations are at the newest;
- bank: one read-only call with the configured credentials;
- register: the cash register's token (or that receipts are off);
- bot: Telegram's getMe, and the webhook: where it points and the last error Telegram had
  delivering updates to it;
- callback: a notification signed like the bank's, for an order nobody has, sent to
  PUBLIC_URL/sbp/callback from this process, that is from outside the web process, through
  whatever proxy and TLS stand in front of it. Kassa answers such news "unknown order" only
  after checking its signature, so that answer proves the bank's callbacks reach this
  installation with this secret key; anything else says where they get lost.

Nothing is written to the database; the probe notification is refused as unknown and the
bank is asked nothing that changes anything.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import click
import requests
import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import current_app

from app.cli import KassaCommand
from app.extensions import DATABASE_UNAVAILABLE, database_failure, db
from app.httpclient import ProviderError
from app.provider_health import ServiceOff, probe_bank, probe_register

OK, FIX, OFF = "ok", "fix", "off"
CALLBACK_PATH = "/sbp/callback"
WEBHOOK_PATH = "/telegram/webhook"
TIMEOUT = (5, 15)


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # OK, FIX, or OFF (not configured, nothing to check)
    detail: str  # what was found, or what to do

    def line(self) -> str:
        return f"{self.status:<4} {self.name:<9} {self.detail}"


def _fix(name: str, detail: str) -> Check:
    return Check(name, FIX, detail)


def _short(exc: Exception) -> str:
    from app.logs import scrub

    text = str(exc) if isinstance(exc, ProviderError) else f"{type(exc).__name__}: {exc}"
    return scrub(text)[:300]


# -- the checks ------------------------------------------------------------------------------

def check_settings() -> Check:
    """Production settings are checked when the app starts (https, no loopback, no sandbox
    keys): a process that got this far has them; elsewhere an http URL is said."""
    config = current_app.config
    env, url = config["APP_ENV"], config.get("PUBLIC_URL") or ""
    if not url:
        return _fix("settings", "PUBLIC_URL is not set: the address where the bank, Telegram "
                                "and customers reach Kassa, e.g. https://kassa.example.ru")
    note = ""
    if urlsplit(url).scheme != "https":
        note = (" (http: enough to try Kassa here; Telegram and the bank need an https "
                "PUBLIC_URL behind a TLS proxy)")
    return Check("settings", OK, f"APP_ENV={env}, PUBLIC_URL={url}{note}")


def check_database() -> Check:
    url = current_app.config["SQLALCHEMY_DATABASE_URI"]
    try:
        with db.engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
            current = MigrationContext.configure(connection).get_current_heads()
    except DATABASE_UNAVAILABLE as exc:
        return _fix("database", f"cannot be used: {database_failure(exc, url)}; check "
                                "DATABASE_URL and that the database server is running")
    scripts = ScriptDirectory(current_app.extensions["migrate"].directory)
    heads = set(scripts.get_heads())
    name = db.engine.url.render_as_string(hide_password=True)
    if set(current) != heads:
        found = ", ".join(current) or "no migration"
        return _fix("database", f"{name} is at {found}, the code needs "
                                f"{', '.join(sorted(heads))}: run `flask db upgrade`")
    return Check("database", OK, f"{name}, migrations at {', '.join(current)}")


def check_bank() -> Check:
    try:
        name = probe_bank()
    except Exception as exc:  # whatever it is, the operator reads it
        return _fix("bank", f"the bank did not answer a read-only call: {_short(exc)}; check "
                            "RAIFFEISEN_API_URL, RAIFFEISEN_SBP_MERCHANT_ID and "
                            "RAIFFEISEN_SECRET_KEY")
    return Check("bank", OK, f"{name} answered with these credentials")


def check_register() -> Check:
    try:
        name = probe_register()
    except ServiceOff:
        return Check("register", OFF, "FISCAL_PROVIDER=none: Kassa writes no receipts")
    except Exception as exc:
        return _fix("register", f"the cash register refused: {_short(exc)}; check "
                                "FISCAL_PROVIDER and its login, password or token")
    return Check("register", OK, f"{name} gave a token with these credentials")


def check_bot() -> Check:
    from app.telegram.bot import BotOff, get_bot

    try:
        bot = get_bot()
    except BotOff:
        return Check("bot", OFF, "TELEGRAM_BOT_TOKEN is not set: no bot, no Mini Apps")
    try:
        me = bot.get_me()
        info = bot.get_webhook_info()
    except Exception as exc:
        return _fix("bot", f"Telegram refused the token or did not answer: {_short(exc)}; "
                           "check TELEGRAM_BOT_TOKEN (from @BotFather) and TELEGRAM_API_URL")
    wanted = current_app.config["PUBLIC_URL"] + WEBHOOK_PATH
    if not info.url:
        return _fix("bot", f"@{me.username}: no webhook is set: run `flask bot set-webhook` "
                           "(or `flask bot poll` while developing)")
    if info.url != wanted:
        return _fix("bot", f"@{me.username}: the webhook points at {info.url}, not {wanted}: "
                           "run `flask bot set-webhook`")
    if info.last_error_message:
        return _fix("bot", f"@{me.username}: Telegram's last error delivering updates: "
                           f"{info.last_error_message} ({info.pending_update_count} waiting); "
                           "check that the proxy passes POST /telegram/webhook with a valid "
                           "certificate")
    return Check("bot", OK, f"@{me.username}, webhook {info.url}, "
                            f"{info.pending_update_count} update(s) waiting")


def check_callback() -> Check:
    from app.sbp import get_bank

    url = current_app.config["PUBLIC_URL"] + CALLBACK_PATH
    headers, body = get_bank().probe_notification(f"kassa-doctor-{secrets.token_hex(6)}")
    try:
        response = requests.post(url, data=body, headers=headers, timeout=TIMEOUT,
                                 allow_redirects=False)
    except requests.exceptions.SSLError:
        return _fix("callback", f"{url}: the TLS certificate is not accepted; the bank will "
                                "not call an address whose certificate fails: install a valid "
                                "one on the proxy")
    except requests.RequestException as exc:
        return _fix("callback", f"{url} cannot be reached from here ({type(exc).__name__}); "
                                "check DNS, the firewall and that the proxy forwards to Kassa")
    try:
        answer = response.json()
    except ValueError:
        answer = {}
    error = answer.get("error") if isinstance(answer, dict) else None
    if response.status_code == 404 and error == "unknown_order":
        return Check("callback", OK, f"a signed test callback reached Kassa at {url}")
    if response.status_code == 400 and error == "bad_signature":
        return _fix("callback", f"{url} is a Kassa with another RAIFFEISEN_SECRET_KEY: the "
                                "bank's callbacks would be refused; give web and this command "
                                "the same settings")
    if 300 <= response.status_code < 400:
        return _fix("callback", f"{url} redirects (HTTP {response.status_code}) to "
                                f"{response.headers.get('Location')}: the bank does not follow "
                                "redirects; set PUBLIC_URL to the final address")
    return _fix("callback", f"{url} answered HTTP {response.status_code}, not Kassa: check "
                            "that the proxy passes POST /sbp/callback (with its body and "
                            "headers) to Kassa")


CHECKS: tuple[Callable[[], Check], ...] = (
    check_settings, check_database, check_bank, check_register, check_bot, check_callback)


def run_checks() -> list[Check]:
    """Every check in order; the ones that need the database are skipped when it is not
    usable (their lines say so)."""
    results = []
    for check in CHECKS:
        results.append(check())
        if results[-1].name == "database" and results[-1].status == FIX:
            results.append(Check("...", FIX, "the other checks need the database: fix it first"))
            break
    return results


@click.command("doctor", cls=KassaCommand)
def doctor_command():
    """Check the set-up: settings, database, bank, register, bot, and that a signed callback
    sent to PUBLIC_URL/sbp/callback reaches Kassa. One line per check; exit 1 if any needs
    fixing."""
    logging.disable(logging.WARNING)  # the lines below say it all; no retry warnings
    try:
        results = run_checks()
    finally:
        logging.disable(logging.NOTSET)
    for check in results:
        click.echo(check.line())
    if any(check.status == FIX for check in results):
        raise SystemExit(1)
