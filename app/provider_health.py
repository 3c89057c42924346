"""Provider health: the periodic `health.check` job makes one read-only call to each outside
service and writes down when it last answered and the last error it gave (ProviderHealth);
the admin dashboard shows the table.

The calls, one per service:
- the bank: GET the newest QR code Kassa knows (or one that does not exist when there is
  none yet: the bank's JSON "not found" still proves the address and the key);
- the cash register: ATOL's getToken; the Raiffeisen receipts API: GET a receipt that does
  not exist (a JSON "not found" proves the address and the key);
- the bot: Telegram's getMe.
A service that is switched off (FISCAL_PROVIDER=none, no bot token) is not called.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from flask import Flask, current_app
from flask_babel import lazy_gettext as _l

from app import jobs
from app.extensions import begin_read_only, db
from app.fiscal import get_register
from app.fiscal.receipt import SELL
from app.httpclient import ProviderError
from app.models import ProviderHealth, QrCode, utcnow
from app.sbp import get_bank

logger = logging.getLogger(__name__)

JOB = "health.check"
BANK, REGISTER, BOT = "bank", "register", "bot"
SERVICES = {BANK: _l("Банк (СБП)"), REGISTER: _l("Касса (54-ФЗ)"), BOT: _l("Telegram-бот")}
# A QR id / receipt number nobody has: asked for when Kassa has nothing of its own to ask.
PROBE_ID = "kassa-health-check"
ERROR_MAX = 500


class ServiceOff(Exception):
    """The service is not configured: nothing to call."""


def init_app(app: Flask) -> None:
    registry = jobs.registry(app)
    registry.handler(JOB, check_providers)
    every = app.config["HEALTH_CHECK_INTERVAL_SECONDS"]
    if every and every > 0:
        registry.periodic(JOB, every)


# -- the calls -------------------------------------------------------------------------------

def _answered_not_found(exc: ProviderError) -> bool:
    """A 404 with the provider's own JSON error code: it answered, authenticated, that the
    thing asked about is unknown (a bare 404 page from a wrong address has no code)."""
    return exc.status == 404 and not exc.code.startswith("http_")


def probe_bank() -> str:
    bank = get_bank()
    begin_read_only()
    qr_id = db.session.scalar(sa.select(QrCode.qr_id).order_by(QrCode.id.desc()).limit(1))
    db.session.rollback()  # no transaction stays open while the bank is asked
    try:
        bank.get_qr(qr_id or PROBE_ID)
    except ProviderError as exc:
        if not _answered_not_found(exc):
            raise
    return bank.name


def probe_register() -> str:
    register = get_register()
    if register is None:
        raise ServiceOff
    check_login = getattr(register, "check_login", None)
    if check_login is not None:  # ATOL and its clones: a new token
        check_login()
        return register.name
    try:
        register.status(external_id=PROBE_ID, provider_id=None, operation=SELL)
    except ProviderError as exc:
        if not _answered_not_found(exc):
            raise
    return register.name


def probe_bot() -> str:
    from app.telegram.bot import BotOff, get_bot, telegram_errors

    try:
        bot = get_bot()
    except BotOff:
        raise ServiceOff from None
    with telegram_errors("getMe"):
        bot.get_me()
    return "telegram"


PROBES: dict[str, Callable[[], str]] = {BANK: probe_bank, REGISTER: probe_register,
                                        BOT: probe_bot}
PROVIDER_NAMES = {BANK: "SBP_PROVIDER", REGISTER: "FISCAL_PROVIDER"}


def _error_text(exc: Exception) -> str:
    from app.logs import scrub

    text = str(exc) if isinstance(exc, ProviderError) else f"{type(exc).__name__}: {exc}"
    return scrub(text)[:ERROR_MAX]


# -- the job ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    service: str
    provider: str
    error: str | None  # None: it answered


def probe_all() -> list[Outcome]:
    """Call each service that is on, once; nothing is written."""
    outcomes = []
    for service, probe in PROBES.items():
        provider = current_app.config.get(PROVIDER_NAMES.get(service, ""), "telegram")
        try:
            provider = probe()
        except ServiceOff:
            continue
        except Exception as exc:  # whatever it is, the dashboard shows it
            logger.warning("health check of the %s failed: %s", service, _error_text(exc))
            outcomes.append(Outcome(service, provider, _error_text(exc)))
            continue
        outcomes.append(Outcome(service, provider, None))
    return outcomes


def check_providers(payload: dict | None = None) -> list[Outcome]:
    """Job `health.check`: probe every service, record the outcomes, commit."""
    outcomes = probe_all()
    now = utcnow()
    for outcome in outcomes:
        row = db.session.get(ProviderHealth, outcome.service)
        if row is None:
            row = ProviderHealth(service=outcome.service)
            db.session.add(row)
        row.provider, row.checked_at = outcome.provider, now
        if outcome.error is None:
            row.last_ok_at = now
        else:
            row.last_error_at, row.last_error = now, outcome.error
    db.session.commit()
    return outcomes


# -- what the dashboard shows ----------------------------------------------------------------

@dataclass(frozen=True)
class ServiceHealth:
    service: str
    title: str
    on: bool
    row: ProviderHealth | None


def health_table() -> list[ServiceHealth]:
    """One line per service: whether it is on, and its last check (None: never checked)."""
    rows = {row.service: row for row in db.session.scalars(sa.select(ProviderHealth))}
    config = current_app.config
    on = {BANK: True, REGISTER: config["FISCAL_PROVIDER"] != "none",
          BOT: bool(config.get("TELEGRAM_BOT_TOKEN"))}
    return [ServiceHealth(service, str(title), on[service], rows.get(service))
            for service, title in SERVICES.items()]
