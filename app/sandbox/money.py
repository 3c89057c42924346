"""Money handling: rubles arrive as Decimal/str/int, live as int kopecks, never float."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_KOPECK = Decimal("0.01")
_RUBLES_TEXT = re.compile(r"\d+(\.\d+)?")


class AmountError(ValueError):
    """The value is not a positive ruble amount with at most 2 decimals."""


def parse_amount(value: object) -> int:
    """Convert a ruble amount from a JSON body (number parsed as Decimal, or string) to kopecks.

    The check on decimals is by value: ``1.500`` is accepted as 1.50, ``1.505`` is refused.
    """
    if isinstance(value, bool) or value is None:
        raise AmountError("amount must be a number of rubles")
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, Decimal):
        amount = value
    elif isinstance(value, str):
        text = value.strip()
        if not _RUBLES_TEXT.fullmatch(text):
            raise AmountError("amount must be a number of rubles like 100 or 100.50")
        amount = Decimal(text)
    else:  # floats included: callers parse JSON with parse_float=Decimal
        raise AmountError("amount must be a number of rubles")
    if not amount.is_finite():
        raise AmountError("amount must be finite")
    if amount <= 0:
        raise AmountError("amount must be greater than zero")
    try:
        rounded = amount.quantize(_KOPECK)
    except InvalidOperation:
        raise AmountError("amount is too large") from None
    if rounded != amount:
        raise AmountError("amount must have at most 2 decimal places")
    return int(rounded * 100)


def format_amount(kopecks: int) -> str:
    """Kopecks as the bank's ruble text with exactly two decimals: ``10101`` -> ``"101.01"``."""
    sign = "-" if kopecks < 0 else ""
    rubles, kop = divmod(abs(kopecks), 100)
    return f"{sign}{rubles}.{kop:02d}"


def to_decimal(kopecks: int) -> Decimal:
    """Kopecks as Decimal rubles with two decimals."""
    return Decimal(format_amount(kopecks))


def format_rub(kopecks: int) -> str:
    """Russian display form: ``125000`` -> ``"1 250,00 ₽"`` (plain spaces)."""
    rubles, kop = divmod(abs(kopecks), 100)
    grouped = f"{rubles:,}".replace(",", " ")
    sign = "-" if kopecks < 0 else ""
    return f"{sign}{grouped},{kop:02d} ₽"
