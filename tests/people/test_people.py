"""Staff and requests for access: the services and `flask cashier`."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from app.errors import InvalidStateError, NotFoundError, ValidationError
from app.extensions import db
from app.models import AccessRequest, AccessStatus, Order, OrderChannel, StaffMember
from app.people import services

CASHIER = 111_222_333
MANAGER = 5_000_000_001  # beyond 32 bits, as real Telegram ids are


def _count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_add_update_and_disable_staff(app):
    member = services.add_staff(CASHIER, name="  Ольга ")
    assert (member.name, member.is_cashier, member.is_manager, member.active) == (
        "Ольга", True, False, True)

    services.disable_staff(CASHIER)
    again = services.add_staff(CASHIER, manager=True, can_edit_catalog=True)
    db.session.expire_all()
    assert _count(StaffMember) == 1
    assert again.id == member.id
    assert (again.name, again.is_manager, again.can_edit_catalog, again.active) == (
        "Ольга", True, True, True)
    assert [m.telegram_id for m in services.managers()] == [CASHIER]

    services.disable_staff(CASHIER)
    db.session.expire_all()
    assert db.session.get(StaffMember, member.id).active is False
    assert services.managers() == []


def test_active_cashier_ignores_disabled_and_unknown(app):
    services.add_staff(CASHIER)
    assert services.active_cashier(CASHIER).telegram_id == CASHIER
    services.disable_staff(CASHIER)
    assert services.active_cashier(CASHIER) is None
    assert services.active_cashier(999) is None
    services.add_staff(MANAGER, cashier=False, manager=True)
    assert services.active_cashier(MANAGER) is None


@pytest.mark.parametrize("bad", [0, -5, True, "123", 2**63])
def test_bad_telegram_id_is_refused_and_saves_nothing(app, bad):
    with pytest.raises(ValidationError):
        services.add_staff(bad)
    with pytest.raises(ValidationError):
        services.request_access(bad, "Кто-то")
    assert _count(StaffMember) == 0
    assert _count(AccessRequest) == 0


def test_disable_unknown_staff_is_not_found(app):
    with pytest.raises(NotFoundError):
        services.disable_staff(CASHIER)


def test_one_pending_request_per_person(app):
    first = services.request_access(CASHIER, "Ольга")
    second = services.request_access(CASHIER, "Ольга снова")
    assert second.id == first.id
    assert _count(AccessRequest) == 1
    assert first.status is AccessStatus.PENDING


def test_pending_requests_are_one_per_person_in_the_database(app):
    db.session.add_all([AccessRequest(telegram_id=CASHIER), AccessRequest(telegram_id=CASHIER)])
    with pytest.raises(sa.exc.IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_active_staff_cannot_request_access(app):
    services.add_staff(CASHIER)
    with pytest.raises(InvalidStateError):
        services.request_access(CASHIER, "Ольга")
    assert _count(AccessRequest) == 0


def test_only_an_active_manager_decides(app):
    access = services.request_access(CASHIER, "Ольга")
    services.add_staff(222)  # a cashier, not a manager
    services.add_staff(MANAGER, manager=True)
    services.disable_staff(MANAGER)
    for who in (222, MANAGER, 404):
        with pytest.raises(InvalidStateError) as refused:
            services.decide_access(access.id, approve=True, manager_telegram_id=who)
        assert refused.value.code == "not_a_manager"
    db.session.expire_all()
    assert db.session.get(AccessRequest, access.id).status is AccessStatus.PENDING
    assert services.active_cashier(CASHIER) is None


def test_approval_makes_an_active_cashier(app):
    services.add_staff(MANAGER, cashier=False, manager=True)
    access = services.request_access(CASHIER, "Ольга", username="olga")
    decided = services.decide_access(access.id, approve=True, manager_telegram_id=MANAGER)
    assert decided.status is AccessStatus.APPROVED
    assert decided.decided_at is not None
    manager = services.managers()[0]
    assert decided.decided_by == manager.id
    cashier = services.active_cashier(CASHIER)
    assert cashier is not None and cashier.name == "Ольга" and not cashier.is_manager
    # Approved: it cannot be refused afterwards, and a new request is not needed.
    with pytest.raises(InvalidStateError):
        services.decide_access(access.id, approve=False, manager_telegram_id=MANAGER)
    assert services.active_cashier(CASHIER) is not None


def test_refusal_adds_no_one_and_a_new_request_may_follow(app):
    services.add_staff(MANAGER, manager=True)
    access = services.request_access(CASHIER, "Ольга")
    services.decide_access(access.id, approve=False, manager_telegram_id=MANAGER)
    assert services.active_cashier(CASHIER) is None
    assert _count(StaffMember) == 1
    assert services.request_access(CASHIER, "Ольга").id != access.id


def test_deciding_an_unknown_request_is_not_found(app):
    services.add_staff(MANAGER, manager=True)
    with pytest.raises(NotFoundError):
        services.decide_access(404, approve=True, manager_telegram_id=MANAGER)


def test_an_order_records_its_cashier(app):
    member = services.add_staff(CASHIER)
    order = Order(channel=OrderChannel.MINIAPP, total_kopecks=100, cashier_id=member.id)
    db.session.add(order)
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Order, order.id).cashier_id == member.id


def _cli(app, *args):
    return app.test_cli_runner().invoke(args=["cashier", *args])


def test_cli_add_disable_and_list(app):
    added = _cli(app, "add", str(MANAGER), "--name", "Анна", "--manager", "--catalog")
    assert added.exit_code == 0, added.output
    assert json.loads(added.output)["manager"] is True
    assert _cli(app, "add", str(CASHIER)).exit_code == 0

    disabled = _cli(app, "disable", str(CASHIER))
    assert disabled.exit_code == 0, disabled.output
    assert json.loads(disabled.output)["active"] is False

    listed = _cli(app, "list")
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.output) == [
        {"telegram_id": MANAGER, "name": "Анна", "active": True, "cashier": True,
         "manager": True, "can_edit_catalog": True, "till_id": None},
        {"telegram_id": CASHIER, "name": None, "active": False, "cashier": True,
         "manager": False, "can_edit_catalog": False, "till_id": None},
    ]


@pytest.mark.parametrize("args", [
    ["add", "abc"], ["add", "0"], ["add", "-5"], ["add", "1.5"], ["disable", "x"],
    ["disable", str(CASHIER)],  # nobody has this id
])
def test_cli_bad_input_is_one_line_and_changes_nothing(app, args):
    result = _cli(app, *args)
    assert result.exit_code == 1, result.output
    assert result.output.count("\n") == 1, result.output
    assert "Traceback" not in result.output
    assert _count(StaffMember) == 0


def _cash_link(status=None) -> int:
    from app.models import QrCode, QrKind, QrStatus

    link = QrCode(kind=QrKind.CASH_LINK, status=status or QrStatus.INACTIVE,
                  qr_id="AS-TILL-1", bank_order="till-1",
                  payload="https://qr.nspk.ru/AS-TILL-1?type=01")
    db.session.add(link)
    db.session.commit()
    return link.id


def test_a_cashier_is_put_at_a_till_and_taken_off_it(app):
    till = _cash_link()
    services.add_staff(CASHIER)
    put = _cli(app, "till", str(CASHIER), str(till))
    assert put.exit_code == 0, put.output
    assert json.loads(put.output)["till_id"] == till
    off = _cli(app, "till", str(CASHIER), "--none")
    assert off.exit_code == 0, off.output
    assert json.loads(off.output)["till_id"] is None


def test_a_till_must_be_a_working_cash_link(app):
    from app.models import QrStatus

    services.add_staff(CASHIER)
    with pytest.raises(NotFoundError):
        services.assign_till(CASHIER, 999)
    with pytest.raises(InvalidStateError):
        services.assign_till(CASHIER, _cash_link(QrStatus.CANCELLED))
    assert _cli(app, "till", str(CASHIER)).exit_code == 2  # neither a till nor --none
    assert db.session.scalars(sa.select(StaffMember.till_id)).one() is None
