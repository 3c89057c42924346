"""The SBP banks whose apps the pay page offers on a phone, and the links that open them.

The list ships with Kassa (sbp_banks.json, taken from NSPK's c2bmembers.json): the page must
not depend on NSPK's site being up. A bank app opens a payment link when the link's `https`
is replaced by the bank's scheme (`bank100000000111://qr.nspk.ru/...`), as NSPK tells app
makers to do; the plain `https://qr.nspk.ru/...` link lets the phone pick a bank app itself
(Android) or opens NSPK's page with the bank list (iOS).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

BANKS_FILE = Path(__file__).with_name("sbp_banks.json")
SCHEMA = re.compile(r"bank\d{12}")


@dataclass(frozen=True)
class Bank:
    name: str
    schema: str

    def link(self, payload: str) -> str:
        """The payment link `payload` (https://qr.nspk.ru/...) opened in this bank's app."""
        return self.schema + payload.removeprefix("https")


@cache
def sbp_banks() -> tuple[Bank, ...]:
    data = json.loads(BANKS_FILE.read_text(encoding="utf-8"))
    banks = tuple(Bank(entry["name"], entry["schema"]) for entry in data["banks"])
    bad = [bank.schema for bank in banks if not SCHEMA.fullmatch(bank.schema)]
    if bad:
        raise ValueError(f"{BANKS_FILE.name}: not an NSPK scheme: {bad}")
    return banks
