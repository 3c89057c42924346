"""Job handlers of the fiscal room (see app/jobs)."""

from __future__ import annotations

from app.extensions import db
from app.fiscal import services, writing
from app.httpclient import ProviderError
from app.jobs import RetryJob
from app.models import Receipt, utcnow


def sell(payload: dict) -> None:
    writing.create_sale_receipt(int(payload["payment_id"]))


def refund(payload: dict) -> None:
    writing.create_refund_receipt(int(payload["refund_id"]))


def submit(payload: dict) -> None:
    services.submit(int(payload["receipt_id"]))


def poll(payload: dict) -> None:
    receipt_id = int(payload["receipt_id"])
    try:
        status = services.poll(receipt_id)
    except ProviderError as exc:
        if exc.retry_after is None:
            raise
        # Asked again too soon (ATOL: one report request a second per document).
        raise RetryJob(exc.retry_after, str(exc)) from exc
    if status == "wait":
        receipt = db.session.get(Receipt, receipt_id)
        since = receipt.submitted_at or receipt.created_at
        age = (utcnow() - since).total_seconds()
        db.session.rollback()
        # Poll about once a second while the register is likely still working on it (it
        # takes seconds), then back off: the time counts from submission, not from when
        # the receipt was written, so a backlog before submission doesn't slow the polls.
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
