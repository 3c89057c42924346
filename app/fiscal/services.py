"""Receipt services: a receipt for every sale and every refund, exactly once, never lost.

The receipt row (with its external id, the register's idempotency key) is committed
before the register is called, so a crash at any point leaves work that the worker or the
reconciler picks up and finishes. Each public function commits once or rolls back.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import IntegrityError

from app.errors import InvalidStateError, NotFoundError
from app.extensions import db
from app.fiscal import builder, get_register
from app.fiscal.builder import ReceiptError
from app.fiscal.provider import undocumented
from app.fiscal.receipt import (
    DONE,
    FAIL,
    SELL,
    SELL_REFUND,
    WAIT,
    Company,
    ReceiptDraft,
    ReceiptLine,
    RegisterResult,
    answer_mismatch,
)
from app.jobs import enqueue, publish
from app.models import (
    Job,
    JobStatus,
    Payment,
    PaymentStatus,
    QrKind,
    Receipt,
    ReceiptKind,
    ReceiptStatus,
    Refund,
    RefundStatus,
    install_id,
    utcnow,
)

logger = logging.getLogger(__name__)

# After this many confirmed failures a receipt waits for an admin instead of resubmitting.
AUTOMATIC_ATTEMPTS = 2
POLL_FIRST_DELAY = 1.0
POLL_MAX_DELAY = 60.0


def company() -> Company:
    config = current_app.config
    return Company(
        inn=config["COMPANY_INN"], email=config["COMPANY_EMAIL"], sno=config["COMPANY_SNO"],
        payment_address=config["COMPANY_PAYMENT_ADDRESS"],
    )


def _lines_json(lines: tuple[ReceiptLine, ...]) -> list[dict]:
    return [asdict(line) for line in lines]


def _lines(receipt: Receipt) -> tuple[ReceiptLine, ...]:
    return tuple(ReceiptLine(**line) for line in receipt.lines)


def _draft(receipt: Receipt) -> ReceiptDraft:
    return ReceiptDraft(
        operation=SELL if receipt.kind == ReceiptKind.SELL else SELL_REFUND,
        lines=_lines(receipt), total_kopecks=receipt.total_kopecks, company=company(),
        customer_email=receipt.customer_email, customer_phone=receipt.customer_phone,
    )


def _external_id(receipt: Receipt) -> str:
    """sell-<install id>-<payment id> or refund-<install id>-<refund id>, -r<attempt> after
    a confirmed failure. The install id keeps another database on the same register account
    (a restored backup, a second shop) from ever asking for this one's documents."""
    base = (f"sell-{install_id()}-{receipt.payment_id}" if receipt.kind == ReceiptKind.SELL
            else f"refund-{install_id()}-{receipt.refund_id}")
    return base if receipt.attempt == 1 else f"{base}-r{receipt.attempt}"


def _sale_draft(payment: Payment) -> ReceiptDraft:
    order = payment.order
    if order is None or payment.amount_kopecks != order.total_kopecks:
        # A static-QR payment has no order, and a sum an admin accepted after review is
        # not the order's: one configurable line for what was paid.
        qr = payment.qr_code
        name = (qr.description if qr.kind == QrKind.STATIC and qr.description
                else order.description if order is not None and order.description
                else current_app.config["STATIC_QR_ITEM_NAME"])
        return builder.single_line_receipt(
            payment.amount_kopecks, name=name, company=company(),
            vat=current_app.config["STATIC_QR_VAT"],
            payment_object=current_app.config["STATIC_QR_PAYMENT_OBJECT"],
        )
    lines = [
        ReceiptLine(
            name=item.name, price_kopecks=item.price_kopecks,
            quantity_milli=item.quantity_milli, amount_kopecks=item.amount_kopecks,
            vat=item.vat, payment_object=item.payment_object, measure=item.measure,
        )
        for item in order.items
    ]
    return builder.sale_receipt(lines, company=company(), customer_email=order.customer_email,
                                customer_phone=order.customer_phone)


def _add_receipt(payment: Payment, draft: ReceiptDraft, *, refund_id: int = 0) -> Receipt:
    register = get_register()
    receipt = Receipt(
        kind=ReceiptKind.SELL if draft.operation == SELL else ReceiptKind.SELL_REFUND,
        payment_id=payment.id, refund_id=refund_id, provider=register.name,
        total_kopecks=draft.total_kopecks, lines=_lines_json(draft.lines),
        customer_email=draft.customer_email, customer_phone=draft.customer_phone,
        external_id="", attempt=1,
    )
    receipt.external_id = _external_id(receipt)
    db.session.add(receipt)
    db.session.flush()
    enqueue("fiscal.submit", {"receipt_id": receipt.id},
            key=f"fiscal.submit:{receipt.id}:{receipt.attempt}")
    return receipt


def _add_unbuildable(payment: Payment, kind: ReceiptKind, total_kopecks: int,
                     error: ReceiptError, *, refund_id: int = 0) -> Receipt:
    """A receipt that cannot be built: written as failed at once with the builder's reason
    (an admin fixes the cause), instead of a job retrying what can never succeed."""
    receipt = Receipt(
        kind=kind, payment_id=payment.id, refund_id=refund_id, provider=get_register().name,
        total_kopecks=total_kopecks, lines=[], external_id="", attempt=1,
        status=ReceiptStatus.FAILED, error=f"cannot build the receipt ({error.code}): "
                                           f"{error}"[:500],
    )
    receipt.external_id = _external_id(receipt)
    db.session.add(receipt)
    db.session.flush()
    logger.error("receipt %s failed: %s", receipt.external_id, receipt.error)
    publish("receipt.failed", {"receipt_id": receipt.id},
            key=f"receipt-{receipt.id}-{receipt.attempt}")
    return receipt


def create_sale_receipt(payment_id: int) -> Receipt | None:
    """Write the sale receipt of a paid payment and queue its registration (job `fiscal.sell`).

    Safe to repeat: a payment has one sale receipt. Returns None when fiscalization is off.
    """
    if get_register() is None:
        return None
    payment = db.session.get(Payment, payment_id)
    if payment is None:
        raise NotFoundError(_l("Платёж не найден"))
    existing = _find(payment_id, ReceiptKind.SELL, 0)
    if existing is not None:
        db.session.rollback()
        return existing
    if payment.status == PaymentStatus.REVIEW:
        # The sum is not what was asked: a person decides (accept, or refund) first.
        db.session.rollback()
        raise InvalidStateError(_l("Платёж на проверке: чек будет после решения"),
                                code="payment_in_review")
    try:
        receipt = _add_receipt(payment, _sale_draft(payment))
    except ReceiptError as exc:
        receipt = _add_unbuildable(payment, ReceiptKind.SELL, payment.amount_kopecks, exc)
    return _commit_new(receipt, payment_id, ReceiptKind.SELL, 0)


def create_refund_receipt(refund_id: int) -> Receipt | None:
    """Write the refund receipt of a completed refund, mirroring the sale's lines."""
    if get_register() is None:
        return None
    refund = db.session.get(Refund, refund_id)
    if refund is None:
        raise NotFoundError(_l("Возврат не найден"))
    if refund.status != RefundStatus.COMPLETED:
        db.session.rollback()
        raise InvalidStateError(_l("Возврат ещё не проведён банком"), code="refund_not_done")
    existing = _find(refund.payment_id, ReceiptKind.SELL_REFUND, refund.id)
    if existing is not None:
        db.session.rollback()
        return existing
    payment = refund.payment
    sale = _find(payment.id, ReceiptKind.SELL, 0)
    if sale is None:
        db.session.rollback()
        if payment.review_reason:
            # Money with a wrong sum was never fiscalized as a sale: nothing to mirror.
            logger.warning("refund %s of payment %s in review: no receipt", refund_id,
                           payment.id)
            return None
        # The sale receipt's own job has not run yet: this job retries after it.
        raise InvalidStateError(_l("Чек продажи ещё не создан"), code="sale_receipt_pending")
    sale_lines = _lines(sale)
    earlier = db.session.scalars(
        sa.select(Receipt).where(Receipt.payment_id == payment.id,
                                 Receipt.kind == ReceiptKind.SELL_REFUND,
                                 Receipt.refund_id < refund.id)
    ).all()
    already = [line for r in earlier for line in _lines(r)]
    contact = {"customer_email": sale.customer_email, "customer_phone": sale.customer_phone}
    try:
        if refund.lines:
            draft = builder.refund_by_lines(
                sale_lines, [tuple(pair) for pair in refund.lines], company=company(),
                already_refunded=already, **contact,
            )
        else:
            draft = builder.refund_by_amount(sale_lines, refund.amount_kopecks,
                                             company=company(), already_refunded=already,
                                             **contact)
        receipt = _add_receipt(payment, draft, refund_id=refund.id)
    except ReceiptError as exc:
        receipt = _add_unbuildable(payment, ReceiptKind.SELL_REFUND, refund.amount_kopecks,
                                   exc, refund_id=refund.id)
    return _commit_new(receipt, payment.id, ReceiptKind.SELL_REFUND, refund.id)


def _find(payment_id: int, kind: ReceiptKind, refund_id: int) -> Receipt | None:
    return db.session.scalars(sa.select(Receipt).where(
        Receipt.payment_id == payment_id, Receipt.kind == kind, Receipt.refund_id == refund_id,
    )).one_or_none()


def _commit_new(receipt: Receipt, payment_id: int, kind: ReceiptKind, refund_id: int
                ) -> Receipt:
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()  # another worker wrote it a moment ago
        return _find(payment_id, kind, refund_id)
    logger.info("receipt %s (%s) written for payment %s", receipt.external_id, kind.value,
                payment_id)
    return receipt


def submit(receipt_id: int) -> str:
    """Send a pending receipt to the register (job `fiscal.submit`). Safe to repeat: the
    register knows it by its external id and answers a repeat with the first document.

    :raises ProviderError: the register is unreachable; the job retries with backoff.
    """
    receipt = db.session.get(Receipt, receipt_id)
    if receipt is None or receipt.status != ReceiptStatus.PENDING:
        db.session.rollback()
        return "skipped"
    draft, external_id = _draft(receipt), receipt.external_id
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
        receipt.external_id, receipt.provider_id, _draft(receipt).operation)
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
    mismatch = (answer_mismatch(_lines(receipt), receipt.total_kopecks, result)
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
    receipt.external_id = _external_id(receipt)
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
    _resubmit(receipt)
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

