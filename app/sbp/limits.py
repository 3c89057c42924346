"""What the bank and our columns take for a QR code.

Checked before anything is written or sent to the bank, so that a refusal changes nothing:
app.sbp.qrcodes calls these before the bank, and `flask qr create` calls them before it creates
the order or registers a cash link.
"""

from __future__ import annotations

from datetime import timedelta

from flask import current_app
from flask_babel import lazy_gettext as _l

from app.errors import ValidationError
from app.money import format_rubles
from app.receipt_lines import MAX_PRICE_KOPECKS

MAX_TTL_MINUTES = 60 * 24 * 3  # the bank's own default lifetime of a dynamic QR
# One sum is one receipt line for the register (tag 1079), whatever took the payment.
MAX_AMOUNT_KOPECKS = MAX_PRICE_KOPECKS
# A QR's payment purpose is kept in a 140-character column (QR code, order); the bank's
# paymentDetails would take 185.
MAX_PURPOSE = 140
MAX_CASH_LINK_DESCRIPTION = 32  # the bank's qrDescription of a cash link


def ttl(minutes: int | None) -> timedelta:
    """How long a dynamic QR or a cash-link sale stays payable (QR_TTL_MINUTES if None).

    :raises ValidationError: outside 1 minute .. 3 days; 0 is an error, not the default.
    """
    if minutes is None:
        minutes = current_app.config["QR_TTL_MINUTES"]
    if not 1 <= minutes <= MAX_TTL_MINUTES:
        raise ValidationError(
            _l("Срок действия QR-кода — от 1 до %(max)s минут (3 суток), а не %(ttl)s",
               max=MAX_TTL_MINUTES, ttl=minutes),
            code="invalid_ttl",
        )
    return timedelta(minutes=minutes)


def check_amount(kopecks: int) -> None:
    """:raises ValidationError: not above zero, or above what one receipt line holds."""
    if kopecks <= 0:
        raise ValidationError(_l("Сумма должна быть больше нуля"), code="invalid_amount")
    if kopecks > MAX_AMOUNT_KOPECKS:
        raise ValidationError(
            _l("Сумма — не больше %(max)s, а не %(amount)s",
               max=format_rubles(MAX_AMOUNT_KOPECKS), amount=format_rubles(kopecks)),
            code="invalid_amount",
        )


def check_purpose(text: str | None) -> None:
    """:raises ValidationError: a payment purpose longer than MAX_PURPOSE characters."""
    _check_length(text, MAX_PURPOSE)


def check_cash_link_description(text: str | None) -> None:
    """:raises ValidationError: longer than the bank's qrDescription takes."""
    _check_length(text, MAX_CASH_LINK_DESCRIPTION)


def _check_length(text: str | None, limit: int) -> None:
    if text is not None and len(text) > limit:
        raise ValidationError(
            _l("Описание — не больше %(limit)s символов, а в этом %(length)s",
               limit=limit, length=len(text)),
            code="text_too_long",
        )
