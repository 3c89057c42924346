"""Money: integer kopecks in code and in the database; Decimal rubles only at the edges."""

from __future__ import annotations

import re
from decimal import Decimal

KOPECKS = Decimal(100)
MAX_KOPECKS = 10**12  # ten billion rubles: far beyond any shop, far below int64

_RUBLES = re.compile(r"^\s*(\d{1,40})(?:[.,](\d{1,2}))?\s*$")


class MoneyError(ValueError):
    """A sum that is not a valid amount of money."""


def parse_rubles(value: str | int | Decimal) -> int:
    """Turn a rubles amount ("1250", "1250.5", "1 250,50", Decimal("12.30")) into kopecks.

    Floats are refused: they cannot say 0.1 exactly. More than two decimals is an error,
    never a silent rounding.

    :raises MoneyError: the value is not a non-negative amount with at most 2 decimals.
    """
    if isinstance(value, bool | float):
        raise MoneyError("amount must be a string or Decimal, not a float")
    if isinstance(value, int):
        kopecks = value * 100
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise MoneyError(f"{value} is not a finite amount")
        if value.copy_abs() > MAX_KOPECKS:  # 1e999999 would overflow the multiplication below
            raise MoneyError(f"amount is too large: at most {format_rubles(MAX_KOPECKS)}")
        scaled = value * KOPECKS
        if scaled != scaled.to_integral_value():
            raise MoneyError(f"{value} has more than two decimals")
        kopecks = int(scaled)
    elif isinstance(value, str):
        match = _RUBLES.match(value.replace("\u00a0", "").replace(" ", ""))
        if not match:
            raise MoneyError(f"{value!r} is not an amount in rubles")
        rubles, frac = match.group(1), (match.group(2) or "").ljust(2, "0")
        kopecks = int(rubles) * 100 + int(frac)
    else:
        raise MoneyError(f"unsupported amount type {type(value).__name__}")
    if kopecks < 0:
        raise MoneyError("amount must not be negative")
    if kopecks > MAX_KOPECKS:
        raise MoneyError(f"amount is too large: at most {format_rubles(MAX_KOPECKS)}")
    return kopecks


def to_decimal(kopecks: int) -> Decimal:
    """Kopecks -> Decimal rubles with exactly two places (what provider APIs want)."""
    if not isinstance(kopecks, int) or isinstance(kopecks, bool):
        raise MoneyError("kopecks must be an int")
    return (Decimal(kopecks) / KOPECKS).quantize(Decimal("0.01"))


def to_string(kopecks: int) -> str:
    """Kopecks -> "1250.50": the plain decimal string used in JSON APIs."""
    return str(to_decimal(kopecks))


def format_rubles(kopecks: int | None) -> str:
    """Kopecks -> "1 250,00 ₽" as Russian receipts and screens write it."""
    if kopecks is None:
        return "—"
    sign = "-" if kopecks < 0 else ""
    rubles, kop = divmod(abs(kopecks), 100)
    grouped = f"{rubles:,}".replace(",", "\u00a0")
    return f"{sign}{grouped},{kop:02d}\u00a0₽"
