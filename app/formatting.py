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

# Measures: the label of the select and the short unit of prices ("220,00 ₽ / кг").
MEASURE_LABELS = {
    "piece": (_l("Штука"), _l("шт")), "gram": (_l("Грамм"), _l("г")),
    "kilogram": (_l("Килограмм"), _l("кг")), "ton": (_l("Тонна"), _l("т")),
    "centimeter": (_l("Сантиметр"), _l("см")), "decimeter": (_l("Дециметр"), _l("дм")),
    "meter": (_l("Метр"), _l("м")),
    "square_centimeter": (_l("Квадратный сантиметр"), _l("см²")),
    "square_decimeter": (_l("Квадратный дециметр"), _l("дм²")),
    "square_meter": (_l("Квадратный метр"), _l("м²")),
    "milliliter": (_l("Миллилитр"), _l("мл")), "liter": (_l("Литр"), _l("л")),
    "cubic_meter": (_l("Кубический метр"), _l("м³")),
    "kilowatt_hour": (_l("Киловатт-час"), _l("кВт·ч")),
    "gigacalorie": (_l("Гигакалория"), _l("Гкал")), "day": (_l("Сутки"), _l("сут")),
    "hour": (_l("Час"), _l("ч")), "minute": (_l("Минута"), _l("мин")),
    "second": (_l("Секунда"), _l("с")), "kilobyte": (_l("Килобайт"), _l("КБ")),
    "megabyte": (_l("Мегабайт"), _l("МБ")), "gigabyte": (_l("Гигабайт"), _l("ГБ")),
    "terabyte": (_l("Терабайт"), _l("ТБ")), "other": (_l("Другая единица"), _l("ед.")),
}

__all__ = ["format_moscow", "format_quantity", "format_rubles", "unit_label", "vat_label"]


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


def unit_label(measure: str) -> str:
    return str(MEASURE_LABELS.get(measure, (measure, measure))[1])


def search_key(text: str) -> str:
    """A name as searches compare it: any case (Cyrillic too: SQLite's lower() knows only
    ASCII, so this is done in Python), е and ё alike, no outer spaces."""
    return text.casefold().replace("ё", "е").strip()
