"""Job handlers of the fiscal room (see app/jobs)."""

from __future__ import annotations

from app.extensions import db
from app.fiscal import services
from app.jobs import RetryJob
from app.models import Receipt, utcnow


def sell(payload: dict) -> None:
    services.create_sale_receipt(int(payload["payment_id"]))


def refund(payload: dict) -> None:
    services.create_refund_receipt(int(payload["refund_id"]))


def submit(payload: dict) -> None:
    services.submit(int(payload["receipt_id"]))


def poll(payload: dict) -> None:
    receipt_id = int(payload["receipt_id"])
    if services.poll(receipt_id) == "wait":
        receipt = db.session.get(Receipt, receipt_id)
        age = (utcnow() - receipt.created_at).total_seconds()
        db.session.rollback()
        # Poll fast while a receipt is young (registers take seconds), then back off.
        raise RetryJob(min(max(age / 5, services.POLL_FIRST_DELAY), services.POLL_MAX_DELAY),
                       f"receipt {receipt_id} still processing")


def reconcile(payload: dict) -> None:
    services.reconcile()


HANDLERS = {
    "fiscal.sell": sell,
    "fiscal.refund": refund,
    "fiscal.submit": submit,
    "fiscal.poll": poll,
    "fiscal.reconcile": reconcile,
}
