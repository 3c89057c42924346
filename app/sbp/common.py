"""What the payment use cases share: order states, row locks, the bank's failures.

The payment modules (qrcodes, cancelling, bank_events, reconciliation, refunds) follow one
rule: each public function commits once or rolls back. No transaction is held open across
a call to the bank: read what is needed, call the bank, then lock, re-check and write.
Locks are always taken in the same order (QR code, activation, order, payment) so two
requests never wait on each other in a circle.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from app.errors import BankError, NotFoundError
from app.extensions import db
from app.httpclient import ProviderError
from app.models import (
    ActivationStatus,
    CashLinkActivation,
    OrderStatus,
    QrCode,
    QrKind,
    QrStatus,
    utcnow,
)

# An order in these may still be paid: a QR or a cash-link sale may be put up for it.
PAYABLE_ORDER = (OrderStatus.NEW, OrderStatus.PENDING, OrderStatus.EXPIRED)
# Money that arrives for these is the order's payment (late money for a cancelled order
# too: the bank's word wins); for a paid or refunded order it is money to review.
SETTLEABLE_ORDER = (*PAYABLE_ORDER, OrderStatus.CANCELLED)


def bank_failure(exc: ProviderError, unanswered=None) -> BankError:
    """The person's error for a bank call that failed; `unanswered` says what stays when
    the bank did not answer (by default: nothing changed, try again)."""
    if exc.retryable:
        message = unanswered or _l("Банк не отвечает, ничего не изменено. Попробуйте ещё раз.")
    else:
        message = _l("Банк отказал: %(code)s %(text)s", code=exc.code, text=exc.message)
    return BankError(str(message), bank_code=exc.code, retryable=exc.retryable)


def lock(model, ident: int):
    """The row `ident` of `model`, locked until the transaction ends.

    :raises NotFoundError: there is no such row.
    """
    obj = db.session.scalars(
        sa.select(model).where(model.id == ident).with_for_update()
    ).one_or_none()
    if obj is None:
        raise NotFoundError(_l("Не найдено"))
    return obj


def open_payable(order_id: int) -> QrCode | CashLinkActivation | None:
    """The dynamic QR or cash-link sale that waits for the order's payment now, if any."""
    now = utcnow()
    qr = db.session.scalars(
        sa.select(QrCode).where(
            QrCode.order_id == order_id, QrCode.status == QrStatus.ACTIVE,
            QrCode.kind == QrKind.DYNAMIC,
        ).order_by(QrCode.id.desc())
    ).first()
    if qr is not None and not qr.is_expired(now):
        return qr
    activation = db.session.scalars(
        sa.select(CashLinkActivation).where(
            CashLinkActivation.order_id == order_id,
            CashLinkActivation.status == ActivationStatus.ACTIVE,
        )
    ).first()
    if activation is not None and activation.expires_at > now:
        return activation
    return None


def current_activation(link_id: int) -> CashLinkActivation | None:
    """The sale that waits for payment on the cash link now, if any."""
    activation = db.session.scalars(
        sa.select(CashLinkActivation).where(
            CashLinkActivation.qr_code_id == link_id,
            CashLinkActivation.status == ActivationStatus.ACTIVE,
        )
    ).first()
    if activation is not None and activation.expires_at > utcnow():
        return activation
    return None


def close_activation(activation: CashLinkActivation, to: ActivationStatus) -> None:
    """End a cash-link sale; its link goes idle when no other sale waits on it."""
    if activation.status == ActivationStatus.ACTIVE:
        activation.set_status(to)
    db.session.flush()  # the query below must see this activation closed
    link = activation.qr_code
    if link.status == QrStatus.ACTIVE and current_activation(link.id) is None:
        link.set_status(QrStatus.INACTIVE)
