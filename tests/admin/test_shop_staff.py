"""The staff page: requests for access decided, people added by Telegram ID, switched off
and on, their rights and their till; a viewer sees it all and changes nothing."""

from __future__ import annotations

import re

import sqlalchemy as sa

from app.extensions import db
from app.models import (
    AccessRequest,
    AccessStatus,
    AuditEntry,
    Job,
    QrCode,
    QrKind,
    QrStatus,
    StaffMember,
)
from app.people.services import active_cashier, add_staff, request_access


def _member(telegram_id: int) -> StaffMember | None:
    db.session.expire_all()
    return db.session.scalars(
        sa.select(StaffMember).where(StaffMember.telegram_id == telegram_id)).first()


def _actions() -> list[str]:
    return list(db.session.scalars(sa.select(AuditEntry.action).order_by(AuditEntry.id)))


def _till(description: str) -> QrCode:
    till = QrCode(kind=QrKind.CASH_LINK, status=QrStatus.INACTIVE, qr_id=f"AS{description}",
                  bank_order=f"cl-{description}", payload=f"https://qr.nspk.ru/AS{description}",
                  description=description)
    db.session.add(till)
    db.session.commit()
    return till


def test_approving_a_request_makes_an_active_cashier_who_is_told(admin_client):
    access = request_access(4242, "Вера", username="vera")
    page = admin_client.get("/admin/staff").get_data(as_text=True)
    assert "Вера" in page and "@vera" in page and "ID 4242" in page

    page = admin_client.post(f"/admin/staff/requests/{access.id}/approve",
                             follow_redirects=True).get_data(as_text=True)
    assert "Вера теперь кассир" in page
    assert "Новых запросов нет" in page
    assert active_cashier(4242) is not None
    told = db.session.scalars(sa.select(Job).where(Job.name == "telegram.send")).one()
    assert told.payload["chat_id"] == 4242
    assert _actions() == ["access.approve"]

    again = admin_client.post(f"/admin/staff/requests/{access.id}/refuse",
                              follow_redirects=True).get_data(as_text=True)
    assert "Запрос уже решён" in again
    assert db.session.get(AccessRequest, access.id).status == AccessStatus.APPROVED


def test_a_refused_request_gives_no_access(admin_client):
    access = request_access(4343, "Глеб")
    admin_client.post(f"/admin/staff/requests/{access.id}/refuse")
    db.session.expire_all()
    assert db.session.get(AccessRequest, access.id).status == AccessStatus.REFUSED
    assert _member(4343) is None
    assert _actions() == ["access.refuse"]


def test_an_admin_adds_a_person_by_telegram_id(admin_client):
    response = admin_client.post("/admin/staff", data={"telegram_id": "анна", "cashier": "y"})
    assert response.status_code == 422
    assert "Telegram ID — целое положительное число" in response.get_data(as_text=True)
    response = admin_client.post("/admin/staff", data={"telegram_id": "5555", "name": "Я" * 200})
    assert response.status_code == 422
    assert "Имя: не больше 128 символов" in response.get_data(as_text=True)
    assert _member(5555) is None

    page = admin_client.post("/admin/staff", data={"telegram_id": "5555", "name": "Анна",
                                                   "manager": "y"},
                             follow_redirects=True).get_data(as_text=True)
    assert "Сотрудник Анна сохранён" in page
    member = _member(5555)
    assert (member.is_cashier, member.is_manager, member.active) == (False, True, True)
    assert _actions() == ["staff.add"]


def test_disable_and_enable(admin_client):
    member = add_staff(6001, name="Ольга")
    page = admin_client.post(f"/admin/staff/{member.id}/disable",
                             follow_redirects=True).get_data(as_text=True)
    assert "Доступ Ольга отключён" in page
    assert active_cashier(6001) is None
    admin_client.post(f"/admin/staff/{member.id}/enable")
    assert active_cashier(6001) is not None
    assert _actions()[-2:] == ["staff.disable", "staff.enable"]


def test_allowing_catalog_editing_and_making_a_manager(admin_client):
    member = add_staff(6002, name="Пётр")
    prefix = f"s{member.id}-"
    admin_client.post(f"/admin/staff/{member.id}/flags",
                      data={prefix + "cashier": "y", prefix + "can_edit_catalog": "y",
                            prefix + "manager": "y"})
    member = _member(6002)
    assert (member.is_cashier, member.is_manager, member.can_edit_catalog) == (True, True, True)
    entry = db.session.scalars(sa.select(AuditEntry).where(
        AuditEntry.action == "staff.flags")).one()
    assert entry.details["can_edit_catalog"] == [False, True]


def test_assigning_a_till(admin_client):
    member = add_staff(6003, name="Инна")
    till = _till("Вход")
    admin_client.post(f"/admin/staff/{member.id}/till", data={f"t{member.id}-till": str(till.id)})
    assert _member(6003).till_id == till.id
    tills = admin_client.get("/admin/tills").get_data(as_text=True)
    row = re.search(rf'<tr data-qr-id="{till.id}">.*?</tr>', tills, re.S).group(0)
    assert "Вход" in row and "Инна" in row

    other = _till("Окно")
    till.status = other.status = QrStatus.CANCELLED
    db.session.commit()
    page = admin_client.post(f"/admin/staff/{member.id}/till",
                             data={f"t{member.id}-till": str(other.id)},
                             follow_redirects=True).get_data(as_text=True)
    assert "Кассовая ссылка отключена" in page
    assert _member(6003).till_id == till.id

    admin_client.post(f"/admin/staff/{member.id}/till", data={f"t{member.id}-till": ""})
    assert _member(6003).till_id is None
    assert _actions().count("staff.till") == 2


def test_a_viewer_sees_the_staff_but_changes_nothing(viewer_client):
    access = request_access(7001, "Зоя")
    member = add_staff(7002, name="Лев")
    page = viewer_client.get("/admin/staff").get_data(as_text=True)
    assert "Зоя" in page and "Лев" in page
    assert "Разрешить" not in page and "Добавить по Telegram ID" not in page
    for path, data in [(f"/admin/staff/requests/{access.id}/approve", {}),
                       ("/admin/staff", {"telegram_id": "7003"}),
                       (f"/admin/staff/{member.id}/disable", {}),
                       (f"/admin/staff/{member.id}/flags", {f"s{member.id}-manager": "y"}),
                       (f"/admin/staff/{member.id}/till", {}),
                       ("/admin/staff/telegram-link", {})]:
        assert viewer_client.post(path, data=data).status_code == 403, path
    db.session.expire_all()
    assert db.session.get(AccessRequest, access.id).status == AccessStatus.PENDING
    assert _member(7002).active is True and _member(7002).is_manager is False
    assert _member(7003) is None
    assert _actions() == ["staff.add"]  # the fixture's add_staff, nothing from the viewer
