"""The SBP banks whose apps the pay page offers on a phone, and the links that open them.

The list ships with Kassa (sbp_banks.json, taken from NSPK's c2bmembers.json): the page must
not depend on NSPK's site being up. A periodic job (app/storefront/banks.py) refreshes it from
NSPK into the bank directory; sbp_banks() returns the directory's list when there is one (read
at most every few minutes per process), else the shipped one. A bank app opens a payment link
when the link's `https` is replaced by the bank's scheme (`bank100000000111://qr.nspk.ru/...`),
as NSPK tells app makers to do; the plain `https://qr.nspk.ru/...` link lets the phone pick a
bank app itself (Android) or opens NSPK's page with the bank list (iOS).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import sqlalchemy as sa
from flask import current_app, has_app_context

BANKS_FILE = Path(__file__).with_name("sbp_banks.json")
SCHEMA = re.compile(r"bank\d{12}")
# How long a process keeps the directory's list before it reads it again.
CACHE_SECONDS = 300
_CACHE = "kassa.sbp_banks"


@dataclass(frozen=True)
class Bank:
    name: str
    schema: str

    def link(self, payload: str) -> str:
        """The payment link `payload` (https://qr.nspk.ru/...) opened in this bank's app."""
        return self.schema + payload.removeprefix("https")


@cache
def shipped_banks() -> tuple[Bank, ...]:
    """The list shipped with Kassa."""
    data = json.loads(BANKS_FILE.read_text(encoding="utf-8"))
    banks = tuple(Bank(entry["name"], entry["schema"]) for entry in data["banks"])
    bad = [bank.schema for bank in banks if not SCHEMA.fullmatch(bank.schema)]
    if bad:
        raise ValueError(f"{BANKS_FILE.name}: not an NSPK scheme: {bad}")
    return banks


def _directory_banks() -> tuple[Bank, ...]:
    from app.extensions import db
    from app.models import BankDirectory
    from app.models.storefront import SINGLETON

    stored = db.session.scalar(sa.select(BankDirectory.banks)
                               .where(BankDirectory.id == SINGLETON))
    return tuple(Bank(entry["name"], entry["schema"]) for entry in stored or ()
                 if isinstance(entry, dict) and SCHEMA.fullmatch(str(entry.get("schema"))))


def sbp_banks() -> tuple[Bank, ...]:
    """The banks to offer: the directory's list, else the shipped one (outside an app
    context, the shipped one)."""
    if not has_app_context():
        return shipped_banks()
    cached = current_app.extensions.get(_CACHE)
    now = time.monotonic()
    if cached is not None and now - cached[0] < CACHE_SECONDS:
        return cached[1]
    banks = _directory_banks() or shipped_banks()
    current_app.extensions[_CACHE] = (now, banks)
    return banks


def forget_cached_banks() -> None:
    """Read the directory again on the next sbp_banks() (after a refresh in this process)."""
    if has_app_context():
        current_app.extensions.pop(_CACHE, None)
