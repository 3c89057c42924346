"""The bank interface: what Kassa needs from any SBP provider, in plain dataclasses.

Providers know nothing of Flask or the database: they take plain values in their
constructor, return these dataclasses, and raise ProviderError (app.httpclient).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from app.httpclient import ProviderError


class SignatureError(ProviderError):
    """A callback whose signature is missing or wrong: reject it and change nothing."""

    def __init__(self, message: str, *, provider: str = ""):
        super().__init__("bad_signature", message, provider=provider)


# Normalized statuses (the bank's own words where they exist).
QR_NEW, QR_PAID, QR_EXPIRED, QR_CANCELLED, QR_INACTIVE, QR_IN_PROGRESS = (
    "NEW", "PAID", "EXPIRED", "CANCELLED", "INACTIVE", "IN_PROGRESS",
)
PAY_SUCCESS, PAY_DECLINED, PAY_IN_PROGRESS, PAY_NO_INFO = (
    "SUCCESS", "DECLINED", "IN_PROGRESS", "NO_INFO",
)
REFUND_IN_PROGRESS, REFUND_COMPLETED, REFUND_DECLINED = "IN_PROGRESS", "COMPLETED", "DECLINED"


@dataclass(frozen=True)
class QrRegistration:
    qr_id: str
    payload: str
    image_url: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class QrInfo:
    qr_id: str
    status: str
    expires_at: datetime | None
    raw: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class PaymentInfo:
    """The bank's view of a payment: from a callback or from a poll."""

    qr_id: str
    order: str
    status: str
    amount_kopecks: int | None
    transaction_id: str | None
    transaction_date: datetime | None
    raw: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class RefundInfo:
    refund_id: str
    status: str
    amount_kopecks: int | None
    raw: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class CashLinkOrder:
    order_id: str
    status: str  # NEW, PAID, CANCELLED, EXPIRED
    amount_kopecks: int
    expires_at: datetime | None
    raw: dict[str, Any] = field(default_factory=dict, compare=False)


class SbpProvider(Protocol):
    """What the payment core calls. Every method may raise ProviderError."""

    name: str

    def register_dynamic_qr(
        self, *, order: str, amount_kopecks: int, expires_at: datetime, purpose: str | None
    ) -> QrRegistration: ...

    def register_static_qr(
        self, *, order: str, amount_kopecks: int | None, purpose: str | None
    ) -> QrRegistration: ...

    def register_cash_link(self, *, order: str, description: str | None) -> QrRegistration: ...

    def get_qr(self, qr_id: str) -> QrInfo: ...

    def cancel_qr(self, qr_id: str) -> None: ...

    def get_payment(self, qr_id: str) -> PaymentInfo: ...

    def refund(
        self,
        *,
        refund_id: str,
        order: str,
        amount_kopecks: int,
        transaction_id: str | None = None,
        purpose: str | None = None,
    ) -> RefundInfo: ...

    def get_refund(self, refund_id: str) -> RefundInfo: ...

    def activate_cash_link(
        self,
        *,
        qr_id: str,
        order_id: str,
        amount_kopecks: int,
        expires_at: datetime,
        comment: str | None,
    ) -> CashLinkOrder: ...

    def get_cash_link_order(self, order_id: str) -> CashLinkOrder: ...

    def deactivate_cash_link(self, order_id: str) -> None: ...

    def get_cash_link_payment(self, order_id: str) -> PaymentInfo:
        """The payment of ONE cash-link order, found at the bank by that order's own id.

        status PAY_SUCCESS when paid, PAY_NO_INFO when the bank has no payment for it.
        """
        ...

    def refund_cash_link_order(
        self, *, order_id: str, refund_id: str, amount_kopecks: int, purpose: str | None = None
    ) -> RefundInfo:
        """Refund a cash-link order's payment by the order's id (not through the QR)."""
        ...

    def get_cash_link_refund(self, order_id: str, refund_id: str) -> RefundInfo: ...

    def set_callback_url(self, url: str) -> None: ...

    def probe_notification(self, order: str) -> tuple[dict[str, str], bytes]:
        """A notification signed as the bank signs them, for an order nobody has: what
        `flask doctor` sends to PUBLIC_URL/sbp/callback to see that the bank's callbacks
        reach this installation. Returns (headers, body)."""
        ...

    def parse_request(self, headers: Mapping[str, str], raw_body: bytes) -> PaymentInfo:
        """Verify a callback request (the signature in the header the provider uses, over
        the raw bytes of the body), then parse it. `headers` look names up in any case, as
        Flask's request.headers do.

        :raises SignatureError: missing or wrong signature.
        :raises ProviderError: code "bad_payload" when the body is not a notification.
        """
        ...
