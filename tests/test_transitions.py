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


def _moves(status: type, text: str) -> set[tuple]:
    """"new>pending new>cancelled" -> {(Status.NEW, Status.PENDING), ...}"""
    return {tuple(status(side) for side in move.split(">")) for move in text.split()}


ALLOWED = {
    "order": _moves(OrderStatus, """
        new>pending new>cancelled
        pending>paid pending>expired pending>cancelled
        expired>pending expired>paid expired>cancelled
        cancelled>paid
        paid>partially_refunded paid>refunded
        partially_refunded>refunded"""),
    "dynamic": _moves(QrStatus, """
        active>paid active>expired active>cancelled
        expired>paid cancelled>paid"""),
    "static": _moves(QrStatus, "active>cancelled"),
    "cash_link": _moves(QrStatus, "inactive>active inactive>cancelled active>inactive"),
    "activation": _moves(ActivationStatus, """
        active>paid active>expired active>cancelled
        expired>paid cancelled>paid"""),
    "payment": _moves(PaymentStatus, """
        review>paid review>refunded
        paid>partially_refunded paid>refunded
        partially_refunded>refunded"""),
    "refund": _moves(RefundStatus, """
        pending>in_progress pending>completed pending>declined
        in_progress>completed in_progress>declined"""),
    "receipt": _moves(ReceiptStatus, """
        pending>wait pending>done pending>failed
        wait>done wait>failed wait>pending
        failed>pending"""),
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
