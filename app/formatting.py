"""Jinja filters: money, quantities, Moscow time, VAT labels, as Russian receipts write them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from flask_babel import lazy_gettext as _l

from app.money import format_rubles

MOSCOW = timezone(timedelta(hours=3))

VAT_LABELS = {
    "none": _l("Без НДС"), "vat0": _l("НДС 0%"), "vat5": _l("НДС 5%"), "vat7": _l("НДС 7%"),
    "vat10": _l("НДС 10%"), "vat20": _l("НДС 20%"), "vat22": _l("НДС 22%"),
    "vat105": _l("НДС 5/105"), "vat107": _l("НДС 7/107"), "vat110": _l("НДС 10/110"),
    "vat120": _l("НДС 20/120"), "vat122": _l("НДС 22/122"),
}

__all__ = ["format_moscow", "format_quantity", "format_rubles", "vat_label"]


def format_quantity(quantity_milli: int) -> str:
    """1500 -> "1,5"; 2000 -> "2"."""
    whole, frac = divmod(quantity_milli, 1000)
    return f"{whole},{frac:03d}".rstrip("0").rstrip(",") if frac else str(whole)


def format_moscow(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.astimezone(MOSCOW).strftime("%d.%m.%Y %H:%M")


def vat_label(vat: str) -> str:
    return str(VAT_LABELS.get(vat, vat))
