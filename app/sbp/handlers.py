"""Job handlers of the payment core (see app/jobs)."""

from __future__ import annotations

import logging

from app.jobs import RetryJob
from app.sbp import reconciliation, refunds

logger = logging.getLogger(__name__)


def send_refund(payload: dict) -> None:
    refunds.send_refund(int(payload["refund_id"]))


def poll_refund(payload: dict) -> None:
    status = refunds.poll_refund(int(payload["refund_id"]))
    if status in ("pending", "in_progress"):
        raise RetryJob(2.0, f"refund {payload['refund_id']} still {status}")


def reconcile(payload: dict) -> None:
    counts = reconciliation.reconcile()
    if any(counts.values()):
        logger.info("reconcile: %s", counts)


HANDLERS = {
    "sbp.send_refund": send_refund,
    "sbp.poll_refund": poll_refund,
    "sbp.reconcile": reconcile,
}
