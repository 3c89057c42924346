"""Plain receipt types shared by the builder, the providers and the services.

Money is integer kopecks, quantities integer thousandths; providers turn them into the
decimal strings of their wire formats. Nothing here knows Flask or the database. What a
line may say (VAT rates, measures, payment objects, limits) is app/receipt_lines.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.receipt_lines import FULL_PAYMENT

SELL = "sell"                # чек прихода (tag 1054 = 1)
SELL_REFUND = "sell_refund"  # чек возврата прихода (tag 1054 = 2)

ELECTRONIC = 1  # payments[].type: безналичные (SBP is 1)


@dataclass(frozen=True)
class Company:
    inn: str
    email: str
    sno: str
    payment_address: str


@dataclass(frozen=True)
class ReceiptLine:
    """One receipt line. amount_kopecks == round_half_up(price_kopecks * quantity_milli / 1000)."""

    name: str
    price_kopecks: int
    quantity_milli: int
    amount_kopecks: int
    vat: str = "none"
    payment_object: str = "commodity"
    measure: str = "piece"
    payment_method: str = FULL_PAYMENT


@dataclass(frozen=True)
class ReceiptDraft:
    """Everything a register needs for one receipt; Σ line amounts == total_kopecks."""

    operation: str  # SELL or SELL_REFUND
    lines: tuple[ReceiptLine, ...]
    total_kopecks: int
    company: Company
    customer_email: str | None = None
    customer_phone: str | None = None
    payment_type: int = ELECTRONIC


@dataclass(frozen=True)
class FiscalData:
    """What the register returns once the receipt is fiscalized (ATOL report payload)."""

    fn_number: str                      # ФН (1041)
    fiscal_document_number: int         # ФД (1040)
    fiscal_document_attribute: int      # ФПД (1077)
    receipt_datetime: datetime          # 1012, aware
    total_kopecks: int                  # 1020
    shift_number: int | None = None     # 1038
    fiscal_receipt_number: int | None = None  # 1042
    ecr_registration_number: str | None = None  # РН ККТ (1037)
    fns_site: str | None = None         # 1060
    ofd_inn: str | None = None          # 1017
    ofd_receipt_url: str | None = None


WAIT, DONE, FAIL = "wait", "done", "fail"


@dataclass(frozen=True)
class AnsweredLine:
    """A receipt line as a register's answer states it; None where it could not be read."""

    name: str | None
    price_kopecks: int | None
    quantity_milli: int | None
    amount_kopecks: int | None
    vat: str | None


@dataclass(frozen=True)
class RegisterResult:
    """A register's answer about one document: still processing, done, or failed.

    ``total_kopecks`` and ``lines`` are what the answer says the document holds (None when
    the answer does not say): see :func:`answer_mismatch`.
    """

    status: str                 # WAIT, DONE or FAIL
    external_id: str            # our idempotency key (ATOL external_id / Raif receiptNumber)
    provider_id: str | None     # ATOL uuid; Raif receiptNumber
    fiscal: FiscalData | None = None
    error: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False)
    total_kopecks: int | None = None
    lines: tuple[AnsweredLine, ...] | None = None


def _answered(line: ReceiptLine) -> AnsweredLine:
    return AnsweredLine(line.name, line.price_kopecks, line.quantity_milli,
                        line.amount_kopecks, line.vat)


def answer_mismatch(lines: tuple[ReceiptLine, ...], total_kopecks: int,
                    result: RegisterResult) -> str | None:
    """Why the register's answer is not about the receipt we sent (its total, or the total
    fiscalized, or its lines differ), or None when everything it states matches.

    A register keys documents by our external id: an answer about another document with
    that id (a restored database, another shop on the same account) must never count."""
    totals = [("total", result.total_kopecks)]
    if result.fiscal is not None:
        totals.append(("fiscalized total", result.fiscal.total_kopecks))
    for what, theirs in totals:
        if theirs is not None and theirs != total_kopecks:
            return (f"the register's {what} {theirs} kopecks is not the receipt's "
                    f"{total_kopecks}")
    if result.lines is None:
        return None
    if len(result.lines) != len(lines):
        return f"the register holds {len(result.lines)} lines, the receipt {len(lines)}"
    for number, (theirs, ours) in enumerate(zip(result.lines, lines, strict=True), 1):
        if theirs != _answered(ours):
            return f"line {number}: the register holds {theirs}, the receipt {_answered(ours)}"
    return None
