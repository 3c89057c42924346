"""Wire helpers both register clients share (app/fiscal/atol.py, app/fiscal/raiffeisen.py).

Plain functions over plain values: quantities and money as the registers write them, ATOL's
timestamps, and the fiscal requisites ("payload") in ATOL's names, which the sandbox also
adds to the Raiffeisen receipts API's DONE answer. Nothing here knows Flask or the database.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from app.fiscal.receipt import FiscalData
from app.httpclient import HttpResponse, ProviderError
from app.money import MoneyError, parse_rubles

MOSCOW = timezone(timedelta(hours=3))
ATOL_TIME = "%d.%m.%Y %H:%M:%S"


def atol_time(moment: datetime) -> str:
    """``dd.mm.yyyy HH:MM:SS`` in Moscow time, ATOL's timestamp format."""
    return moment.astimezone(MOSCOW).strftime(ATOL_TIME)


def parse_atol_time(value: Any) -> datetime:
    """``dd.mm.yyyy HH:MM:SS`` (Moscow) -> aware datetime; ISO-8601 is accepted too."""
    text = str(value or "").strip()
    for fmt in (ATOL_TIME, "%d.%m.%Y %H:%M"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=MOSCOW)
        except ValueError:
            continue
    parsed = datetime.fromisoformat(text)  # raises ValueError for anything else
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=MOSCOW)


def quantity(milli: int) -> Decimal:
    """Thousandths -> Decimal with at most 3 places and no exponent: 1000 -> 1, 1500 -> 1.5."""
    value = Decimal(milli).scaleb(-3)
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value.normalize()


def json_object(response: HttpResponse) -> dict[str, Any] | None:
    """The answer's JSON body when it is an object, else None."""
    try:
        data = response.json()
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def parse_payload(payload: dict[str, Any], *, provider: str) -> FiscalData:
    """ATOL's report ``payload`` (fiscal requisites) -> FiscalData.

    :raises ProviderError: ``bad_response`` (naming ``provider``) if it is unusable.
    """
    def text(name: str, required: bool = False) -> str | None:
        value = payload.get(name)
        if value in (None, ""):
            if required:
                raise ProviderError("bad_response", f"payload.{name} is missing",
                                    provider=provider)
            return None
        return str(value)

    def number(name: str, required: bool = False) -> int | None:
        value = text(name, required)
        if value is None:
            return None
        try:
            return int(Decimal(value))
        except (InvalidOperation, ValueError) as exc:
            raise ProviderError("bad_response", f"payload.{name} is not a number",
                                provider=provider) from exc

    try:
        moment = parse_atol_time(payload.get("receipt_datetime"))
    except ValueError as exc:
        raise ProviderError("bad_response", "payload.receipt_datetime is not a time",
                            provider=provider) from exc
    try:
        total = parse_rubles(Decimal(str(payload.get("total"))))
    except (InvalidOperation, MoneyError) as exc:
        raise ProviderError("bad_response", "payload.total is not an amount",
                            provider=provider) from exc
    return FiscalData(
        fn_number=text("fn_number", True) or "",
        fiscal_document_number=number("fiscal_document_number", True) or 0,
        fiscal_document_attribute=number("fiscal_document_attribute", True) or 0,
        receipt_datetime=moment,
        total_kopecks=total,
        shift_number=number("shift_number"),
        fiscal_receipt_number=number("fiscal_receipt_number"),
        ecr_registration_number=text("ecr_registration_number"),
        fns_site=text("fns_site"),
        ofd_inn=text("ofd_inn"),
        ofd_receipt_url=text("ofd_receipt_url"),
    )
