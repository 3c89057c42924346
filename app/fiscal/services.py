"""Registering receipts: send each written receipt to the register, follow it until the
register returns its fiscal data, and resubmit or fail it on the register's word.

Receipts are written by app/fiscal/writing.py. Each public function commits once or rolls
back.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _l

from app import audit
from app.errors import InvalidStateError, NotFoundError
from app.extensions import db
from app.fiscal import builder, get_register
from app.fiscal.builder import ReceiptError
from app.fiscal.provider import undocumented
from app.fiscal.receipt import (
    DONE,
    FAIL,
    WAIT,
    ReceiptDraft,
    RegisterResult,
    answer_mismatch,
)
from app.fiscal.writing import draft_of, external_id_of, lines_of
from app.jobs import enqueue, publish
from app.models import (
    Job,
    JobStatus,
    Receipt,
    ReceiptStatus,
    utcnow,
)

logger = logging.getLogger(__name__)

# After this many confirmed failures a receipt waits for an admin instead of resubmitting.
AUTOMATIC_ATTEMPTS = 2
POLL_FIRST_DELAY = 1.0
POLL_MAX_DELAY = 60.0



def submit(receipt_id: int) -> str:
    """Send a pending receipt to the register (job `fiscal.submit`). Safe to repeat: the
    register knows it by its external id and answers a repeat with the first document.

    :raises ProviderError: the register is unreachable; the job retries with backoff.
    """
    receipt = db.session.get(Receipt, receipt_id)
    if receipt is None or receipt.status != ReceiptStatus.PENDING:
        db.session.rollback()
        return "skipped"
    draft, external_id = draft_of(receipt), receipt.external_id
    register = get_register()
    problem = _unsendable(draft, register)
    if problem is not None:
        # Sending it again and again would not change it: it fails now, with the reason.
        receipt = _locked(receipt_id)
        if receipt.status == ReceiptStatus.PENDING:
            _reject(receipt, problem)
        status = receipt.status.value
        db.session.commit()
        return status
    db.session.rollback()
    callback_url = None
    if receipt.provider == "atol":
        callback_url = current_app.config["PUBLIC_URL"] + "/fiscal/atol/callback"
    result = register.register(draft, external_id=external_id, callback_url=callback_url)
    return _apply(receipt_id, result)


def _unsendable(draft: ReceiptDraft, register) -> str | None:
    """Why a stored receipt cannot be sent to this register, or None."""
    try:
        builder.check(draft)
    except ReceiptError as exc:
        return f"cannot build the receipt ({exc.code}): {exc}"
    for number, line in enumerate(draft.lines, 1):
        problem = undocumented(register, vat=line.vat, payment_object=line.payment_object,
                               measure=line.measure)
        if problem is not None:
            return f"line {number}: {register.name} does not document {problem[0]} {problem[1]!r}"
    return None


def _locked(receipt_id: int) -> Receipt:
    return db.session.scalars(
        sa.select(Receipt).where(Receipt.id == receipt_id).with_for_update()
    ).one()


def poll(receipt_id: int) -> str:
    """Ask the register how a receipt is going (job `fiscal.poll`) and record the answer."""
    receipt = db.session.get(Receipt, receipt_id)
    if receipt is None or receipt.status != ReceiptStatus.WAIT:
        db.session.rollback()
        return "skipped"
    external_id, provider_id, operation = (
        receipt.external_id, receipt.provider_id, draft_of(receipt).operation)
    db.session.rollback()
    result = get_register().status(external_id=external_id, provider_id=provider_id,
                                   operation=operation)
    return _apply(receipt_id, result)


def _apply(receipt_id: int, result: RegisterResult) -> str:
    receipt = _locked(receipt_id)
    if result.external_id and result.external_id != receipt.external_id:
        # An answer about an earlier attempt (resubmitted since): not this document.
        logger.warning("receipt %s: answer for %s ignored", receipt.id, result.external_id)
        db.session.rollback()
        return receipt.status.value
    receipt.last_checked_at = utcnow()
    if receipt.status == ReceiptStatus.DONE:
        db.session.rollback()
        return "done"
    if result.provider_id:
        receipt.provider_id = result.provider_id
    mismatch = (answer_mismatch(lines_of(receipt), receipt.total_kopecks, result)
                if result.status in (WAIT, DONE) else None)
    if mismatch is not None:
        # Not our document (or not as we sent it): never done; a person looks at it.
        _reject(receipt, f"the register's answer does not match the receipt: {mismatch}")
    elif result.status == WAIT:
        if receipt.status == ReceiptStatus.PENDING:
            receipt.set_status(ReceiptStatus.WAIT)
            receipt.submitted_at = utcnow()
        _schedule_poll(receipt)
    elif result.status == DONE:
        _store_fiscal_data(receipt, result)
    elif result.status == FAIL:
        _fail(receipt, result.error or "failed at the register")
    else:
        logger.warning("receipt %s: unknown register status %r", receipt.id, result.status)
        _schedule_poll(receipt)
    status = receipt.status.value
    db.session.commit()
    return status


def _schedule_poll(receipt: Receipt) -> None:
    enqueue("fiscal.poll", {"receipt_id": receipt.id},
            key=f"fiscal.poll:{receipt.id}:{receipt.attempt}",
            run_at=utcnow() + timedelta(seconds=POLL_FIRST_DELAY))


def _store_fiscal_data(receipt: Receipt, result: RegisterResult) -> None:
    receipt.set_status(ReceiptStatus.DONE)
    receipt.done_at = utcnow()
    receipt.error = None
    fiscal = result.fiscal
    if fiscal is not None:
        for name in ("fn_number", "fiscal_document_number", "fiscal_document_attribute",
                     "receipt_datetime", "shift_number", "fiscal_receipt_number",
                     "ecr_registration_number", "fns_site", "ofd_inn", "ofd_receipt_url"):
            setattr(receipt, name, getattr(fiscal, name))
    publish("receipt.done", {"receipt_id": receipt.id}, key=f"receipt-{receipt.id}")
    logger.info("receipt %s done: ФН %s ФД %s", receipt.external_id, receipt.fn_number,
                receipt.fiscal_document_number)


def _fail(receipt: Receipt, error: str) -> None:
    """The register confirmed a failure: resubmit once under a new external id, then stop
    and wait for an admin (the old id would only ever return the failed document)."""
    receipt.error = error[:500]
    logger.warning("receipt %s failed at the register: %s", receipt.external_id, error)
    if receipt.attempt < AUTOMATIC_ATTEMPTS:
        _resubmit(receipt)
        return
    receipt.set_status(ReceiptStatus.FAILED)
    publish("receipt.failed", {"receipt_id": receipt.id},
            key=f"receipt-{receipt.id}-{receipt.attempt}")


def _reject(receipt: Receipt, reason: str) -> None:
    """Fail a receipt at once, without the automatic resubmission: resending it as it is
    cannot succeed, or the register holds another document under its external id."""
    receipt.error = reason[:500]
    logger.error("receipt %s failed: %s", receipt.external_id, reason)
    receipt.set_status(ReceiptStatus.FAILED)
    publish("receipt.failed", {"receipt_id": receipt.id},
            key=f"receipt-{receipt.id}-{receipt.attempt}")


def _resubmit(receipt: Receipt) -> None:
    receipt.attempt += 1
    receipt.external_id = external_id_of(receipt)
    receipt.provider_id = None
    receipt.submitted_at = None
    receipt.set_status(ReceiptStatus.PENDING)
    enqueue("fiscal.submit", {"receipt_id": receipt.id},
            key=f"fiscal.submit:{receipt.id}:{receipt.attempt}")
    logger.info("receipt %s resubmitted as %s", receipt.id, receipt.external_id)


def retry_failed(receipt_id: int) -> Receipt:
    """An admin's retry of a failed receipt, under a new external id."""
    receipt = db.session.scalars(
        sa.select(Receipt).where(Receipt.id == receipt_id).with_for_update()
    ).one_or_none()
    if receipt is None:
        raise NotFoundError(_l("Чек не найден"))
    if receipt.status != ReceiptStatus.FAILED:
        raise InvalidStateError(_l("Повторить можно только чек с ошибкой"), code="not_failed")
    error = receipt.error
    _resubmit(receipt)
    audit.record("receipt.retry", target_type="receipt", target_id=receipt.id,
                 payment_id=receipt.payment_id, attempt=receipt.attempt, error=error)
    db.session.commit()
    return receipt


def handle_atol_callback(raw_body: bytes) -> str:
    """ATOL's callback is a hint, never trusted: find the receipt by our own records and
    ask the register for the report now instead of waiting for the next poll.

    :raises ProviderError: the body is not an ATOL report.
    :raises NotFoundError: no receipt of ours has that external id / uuid.
    """
    hint = get_register().parse_callback(raw_body)
    # The uuid alone is enough (a callback may come without external_id); both are only
    # used to find which of our receipts to ask about.
    keys = [Receipt.provider_id == hint.provider_id] if hint.provider_id else []
    if hint.external_id:
        keys.append(Receipt.external_id == hint.external_id)
    receipt = db.session.scalars(sa.select(Receipt).where(sa.or_(*keys))).first() \
        if keys else None
    if receipt is None:
        db.session.rollback()
        raise NotFoundError(_l("Чек не найден"))
    if receipt.status != ReceiptStatus.WAIT:
        status = receipt.status.value
        db.session.rollback()
        return status
    key = f"fiscal.poll:{receipt.id}:{receipt.attempt}"
    now = utcnow()
    moved = db.session.execute(
        sa.update(Job).where(Job.key == key, Job.status == JobStatus.QUEUED)
        # Sooner, never later: a poll already overdue keeps its place in the queue.
        .values(run_at=sa.case((Job.run_at > now, now), else_=Job.run_at))
    ).rowcount
    if not moved:
        enqueue("fiscal.poll", {"receipt_id": receipt.id},
                key=f"fiscal.poll:{receipt.id}:{receipt.attempt}:cb")
    db.session.commit()
    return "poll_scheduled"


def reconcile(*, limit: int = 100) -> dict[str, int]:
    """Re-queue receipts whose job is gone (dead, or lost with a crashed worker's database):
    pending ones are submitted again, waiting ones polled again."""
    stale = utcnow() - timedelta(minutes=5)
    receipts = db.session.scalars(
        sa.select(Receipt).where(
            Receipt.status.in_([ReceiptStatus.PENDING, ReceiptStatus.WAIT]),
            Receipt.updated_at <= stale,
        ).order_by(Receipt.id).limit(limit)
    ).all()
    requeued = 0
    for receipt in receipts:
        prefix = "fiscal.submit" if receipt.status == ReceiptStatus.PENDING else "fiscal.poll"
        live = db.session.scalar(sa.select(sa.func.count()).select_from(Job).where(
            Job.key.like(f"{prefix}:{receipt.id}:%"),
            Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]),
        ))
        if live:
            continue
        enqueue(prefix, {"receipt_id": receipt.id},
                key=f"{prefix}:{receipt.id}:{receipt.attempt}:{int(utcnow().timestamp())}")
        receipt.updated_at = utcnow()
        requeued += 1
    db.session.commit()
    return {"requeued": requeued}

