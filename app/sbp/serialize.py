"""Plain-dict views of payment objects, for the CLI and JSON APIs."""

from __future__ import annotations

from flask import current_app

from app.fiscal.views import receipt_to_dict, receipts_of
from app.models import CashLinkActivation, Payment, QrCode, Refund
from app.money import to_string


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def qr_image_url(qr: QrCode) -> str:
    return f"{current_app.config['PUBLIC_URL']}/sbp/qr/{qr.qr_id}.png"


def qr_to_dict(qr: QrCode, *, details: bool = False) -> dict:
    amount = qr.amount_kopecks
    expires_at = qr.expires_at
    activation = _current_activation(qr)
    if activation is not None:
        amount, expires_at = activation.amount_kopecks, activation.expires_at
    data = {
        "id": qr.id,
        "qr_id": qr.qr_id,
        "type": qr.kind.value.replace("_", "-"),
        "status": qr.status.value,
        "amount": None if amount is None else to_string(amount),
        "payload": qr.payload,
        "image_url": qr_image_url(qr),
        "expires_at": _iso(expires_at),
        "order_id": qr.order_id if activation is None else activation.order_id,
        "needs_review": qr.needs_review,
    }
    if qr.needs_review:
        data["review_reason"] = qr.review_reason
    if details:
        data["payments"] = [payment_to_dict(p) for p in qr.payments]
        data["activations"] = [activation_to_dict(a) for a in qr.activations]
        data["receipts"] = [
            receipt_to_dict(r) for p in qr.payments for r in receipts_of(p.id)
        ]
        data["fiscalization"] = current_app.config["FISCAL_PROVIDER"]
    return data


def _current_activation(qr: QrCode) -> CashLinkActivation | None:
    for activation in reversed(qr.activations):
        if activation.status.value == "active":
            return activation
    return None


def activation_to_dict(activation: CashLinkActivation) -> dict:
    return {
        "id": activation.id,
        "order_id": activation.order_id,
        "bank_order_id": activation.bank_order_id,
        "status": activation.status.value,
        "amount": to_string(activation.amount_kopecks),
        "expires_at": _iso(activation.expires_at),
    }


def payment_to_dict(payment: Payment) -> dict:
    return {
        "id": payment.id,
        "transaction_id": payment.transaction_id,
        "status": payment.status.value,
        "amount": to_string(payment.amount_kopecks),
        "refunded": to_string(payment.refunded_kopecks),
        "paid_at": _iso(payment.paid_at),
        "order_id": payment.order_id,
        "review_reason": payment.review_reason,
        "refunds": [refund_to_dict(r) for r in payment.refunds],
    }


def refund_to_dict(refund: Refund) -> dict:
    return {
        "id": refund.id,
        "refund_id": refund.refund_id,
        "status": refund.status.value,
        "amount": to_string(refund.amount_kopecks),
        "error": refund.error,
    }
