"""Every state change goes through one transition table per aggregate.

The expected tables are written out here on purpose, as a second statement of the rules:
a change to the code's table must be a deliberate change to this one too.
"""

import itertools

import pytest

from app.models import (
    ActivationStatus,
    CashLinkActivation,
    InvalidTransition,
    Order,
    OrderStatus,
    Payment,
    PaymentStatus,
    QrCode,
    QrKind,
    QrStatus,
    Receipt,
    ReceiptStatus,
    Refund,
    RefundStatus,
)

O, Q, A, P, R = OrderStatus, QrStatus, ActivationStatus, PaymentStatus, RefundStatus
F = ReceiptStatus

ALLOWED = {
    "order": {
        (O.NEW, O.PENDING), (O.NEW, O.CANCELLED),
        (O.PENDING, O.PAID), (O.PENDING, O.EXPIRED), (O.PENDING, O.CANCELLED),
        (O.EXPIRED, O.PENDING), (O.EXPIRED, O.PAID), (O.EXPIRED, O.CANCELLED),
        (O.CANCELLED, O.PAID),
        (O.PAID, O.PARTIALLY_REFUNDED), (O.PAID, O.REFUNDED),
        (O.PARTIALLY_REFUNDED, O.REFUNDED),
    },
    "dynamic": {
        (Q.ACTIVE, Q.PAID), (Q.ACTIVE, Q.EXPIRED), (Q.ACTIVE, Q.CANCELLED),
        (Q.EXPIRED, Q.PAID), (Q.CANCELLED, Q.PAID),
    },
    "static": {(Q.ACTIVE, Q.CANCELLED)},
    "cash_link": {(Q.INACTIVE, Q.ACTIVE), (Q.INACTIVE, Q.CANCELLED), (Q.ACTIVE, Q.INACTIVE)},
    "activation": {
        (A.ACTIVE, A.PAID), (A.ACTIVE, A.EXPIRED), (A.ACTIVE, A.CANCELLED),
        (A.EXPIRED, A.PAID), (A.CANCELLED, A.PAID),
    },
    "payment": {
        (P.REVIEW, P.PAID), (P.REVIEW, P.REFUNDED),
        (P.PAID, P.PARTIALLY_REFUNDED), (P.PAID, P.REFUNDED),
        (P.PARTIALLY_REFUNDED, P.REFUNDED),
    },
    "refund": {
        (R.PENDING, R.IN_PROGRESS), (R.PENDING, R.COMPLETED), (R.PENDING, R.DECLINED),
        (R.IN_PROGRESS, R.COMPLETED), (R.IN_PROGRESS, R.DECLINED),
    },
    "receipt": {
        (F.PENDING, F.WAIT), (F.PENDING, F.DONE), (F.PENDING, F.FAILED),
        (F.WAIT, F.DONE), (F.WAIT, F.FAILED), (F.WAIT, F.PENDING),
        (F.FAILED, F.PENDING),
    },
}

FACTORIES = {
    "order": (OrderStatus, lambda s: Order(status=s)),
    "dynamic": (QrStatus, lambda s: QrCode(kind=QrKind.DYNAMIC, status=s)),
    "static": (QrStatus, lambda s: QrCode(kind=QrKind.STATIC, status=s)),
    "cash_link": (QrStatus, lambda s: QrCode(kind=QrKind.CASH_LINK, status=s)),
    "activation": (ActivationStatus, lambda s: CashLinkActivation(status=s)),
    "payment": (PaymentStatus, lambda s: Payment(status=s)),
    "refund": (RefundStatus, lambda s: Refund(status=s)),
    "receipt": (ReceiptStatus, lambda s: Receipt(status=s)),
}


def _cases():
    for aggregate, (enum, _) in FACTORIES.items():
        for current, target in itertools.product(enum, enum):
            if current != target:
                yield pytest.param(aggregate, current, target,
                                   id=f"{aggregate}:{current.value}->{target.value}")


@pytest.mark.parametrize(("aggregate", "current", "target"), list(_cases()))
def test_transition_table(aggregate, current, target):
    _enum, make = FACTORIES[aggregate]
    obj = make(current)
    if (current, target) in ALLOWED[aggregate]:
        assert obj.set_status(target) is True
        assert obj.status == target
    else:
        with pytest.raises(InvalidTransition):
            obj.set_status(target)
        assert obj.status == current, "a refused transition must change nothing"


@pytest.mark.parametrize("aggregate", list(FACTORIES))
def test_repeating_the_current_status_is_a_no_op(aggregate):
    enum, make = FACTORIES[aggregate]
    for status in enum:
        obj = make(status)
        assert obj.set_status(status) is False
        assert obj.status == status
