"""Writing receipts: the 54-ФЗ receipt of a sale or a refund, once per payment or refund.

The receipt row (with its external id, the register's idempotency key) is committed before
the register is called (app/fiscal/services.py sends it), so a crash at any point leaves
work that the worker or the reconciler picks up and finishes. Each public function commits
once or rolls back.
"""

from __future__ import annotations

import logging
from dataclasses import asdict

import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import IntegrityError

from app.errors import InvalidStateError, NotFoundError
from app.extensions import db
from app.fiscal import builder, get_register, refund_builder
from app.fiscal.builder import ReceiptError
from app.fiscal.receipt import (
    SELL,
    SELL_REFUND,
    Company,
    ReceiptDraft,
    ReceiptLine,
)
from app.jobs import enqueue, publish
from app.models import (
    Payment,
    PaymentStatus,
    QrKind,
    Receipt,
    ReceiptKind,
    ReceiptStatus,
    Refund,
    RefundStatus,
    install_id,
)

logger = logging.getLogger(__name__)




def company() -> Company:
    config = current_app.config
    return Company(
        inn=config["COMPANY_INN"], email=config["COMPANY_EMAIL"], sno=config["COMPANY_SNO"],
        payment_address=config["COMPANY_PAYMENT_ADDRESS"],
    )


def _lines_json(lines: tuple[ReceiptLine, ...]) -> list[dict]:
    return [asdict(line) for line in lines]


def lines_of(receipt: Receipt) -> tuple[ReceiptLine, ...]:
    return tuple(ReceiptLine(**line) for line in receipt.lines)


def draft_of(receipt: Receipt) -> ReceiptDraft:
    return ReceiptDraft(
        operation=SELL if receipt.kind == ReceiptKind.SELL else SELL_REFUND,
        lines=lines_of(receipt), total_kopecks=receipt.total_kopecks, company=company(),
        customer_email=receipt.customer_email, customer_phone=receipt.customer_phone,
    )


def external_id_of(receipt: Receipt) -> str:
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
    receipt.external_id = external_id_of(receipt)
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
    receipt.external_id = external_id_of(receipt)
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
    sale_lines = lines_of(sale)
    earlier = db.session.scalars(
        sa.select(Receipt).where(Receipt.payment_id == payment.id,
                                 Receipt.kind == ReceiptKind.SELL_REFUND,
                                 Receipt.refund_id < refund.id)
    ).all()
    already = [line for r in earlier for line in lines_of(r)]
    contact = {"customer_email": sale.customer_email, "customer_phone": sale.customer_phone}
    try:
        if refund.lines:
            draft = refund_builder.refund_by_lines(
                sale_lines, [tuple(pair) for pair in refund.lines], company=company(),
                already_refunded=already, **contact,
            )
        else:
            draft = refund_builder.refund_by_amount(sale_lines, refund.amount_kopecks,
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
