"""The receipt-line vocabulary: what one line of a sale may say, and what it adds up to.

A ground-floor module, like app/money.py: it imports nothing of the application, so the
models, checkout (app/orders), the catalog and the receipt builder (app/fiscal) all take
their names and limits from here. A new VAT rate or measure is a change of this file, not
a migration: the database keeps our names as plain strings.

Money is integer kopecks, quantities integer thousandths ("milli": 1,5 kg is 1500).
"""

from __future__ import annotations

# VAT rates (tag 1199) in ATOL's naming. The 2025-2026 rates (5, 7, 22 and their
# calculated variants) are here so a shop can switch without a code change.
VAT_RATES = (
    "none", "vat0", "vat5", "vat7", "vat10", "vat20", "vat22",
    "vat105", "vat107", "vat110", "vat120", "vat122",
)
# Measure units (ФФД 1.2 tag 2108): our names -> ATOL v5 codes. The longest name,
# "square_centimeter", has 17 letters: the models' measure columns hold 24.
MEASURES = {
    "piece": 0, "gram": 10, "kilogram": 11, "ton": 12, "centimeter": 20, "decimeter": 21,
    "meter": 22, "square_centimeter": 30, "square_decimeter": 31, "square_meter": 32,
    "milliliter": 40, "liter": 41, "cubic_meter": 42, "kilowatt_hour": 50, "gigacalorie": 51,
    "day": 70, "hour": 71, "minute": 72, "second": 73, "kilobyte": 80, "megabyte": 81,
    "gigabyte": 82, "terabyte": 83, "other": 255,
}
# Payment object (tag 1212): our names -> ATOL v5 integer codes.
PAYMENT_OBJECTS = {
    "commodity": 1, "excise": 2, "job": 3, "service": 4, "payment": 10, "another": 13,
}
# Payment method (tag 1214). Kassa sells for money paid at once: full_payment.
PAYMENT_METHODS = (
    "full_prepayment", "prepayment", "advance", "full_payment", "partial_payment",
    "credit", "credit_payment",
)
FULL_PAYMENT = "full_payment"

MAX_NAME = 128
# ATOL's JSON schema (v4.6 `number_price`, kept in v5): price <= 42 949 673 ₽. The PDF's
# prose says 42 949 672,95; the schema is what the service validates against. A line's sum
# is held to the same ceiling (the schema allows 100 000 000 ₽), which the refund
# arithmetic of app/fiscal/builder.py relies on.
MAX_PRICE_KOPECKS = 4_294_967_300     # 42 949 673,00 ₽ (tag 1079)
MAX_QUANTITY_MILLI = 99_999_999       # 99 999,999 (tag 1023; schema <= 100 000)
MAX_LINES = 100
UNIT = 1000                           # one unit in thousandths


def line_amount(price_kopecks: int, quantity_milli: int) -> int:
    """price × quantity in kopecks, rounded half-up as a register rounds (tag 1043).

    For non-negative integers: ``round_half_up(price × quantity / 1000)``, exactly, without
    Decimal or floats.
    """
    return (2 * price_kopecks * quantity_milli + UNIT) // (2 * UNIT)
