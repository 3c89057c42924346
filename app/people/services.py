"""People services: each public function commits once or rolls back.

Staff are Telegram users: a cashier sells from the bot, a manager decides who gets access
(and, with `can_edit_catalog`, may change the catalog). A person asks for access with
`request_access`; an active manager approves or refuses it with `decide_access` (an admin
of the panel with `decide_access_as_admin`). Every change made for the shop (not a
stranger's request) is written to the audit log in the same transaction.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from app import audit
from app.errors import InvalidStateError, NotFoundError, ValidationError
from app.extensions import db, unit_of_work
from app.models import AccessRequest, AccessStatus, QrCode, QrKind, QrStatus, StaffMember, utcnow

logger = logging.getLogger(__name__)

MAX_TELEGRAM_ID = 2**63 - 1   # BIGINT
MAX_NAME = 128
MAX_USERNAME = 64



def check_telegram_id(value) -> int:
    """A Telegram user id: a positive integer that fits BIGINT.

    :raises ValidationError: anything else.
    """
    if isinstance(value, bool) or not isinstance(value, int) \
            or not 0 < value <= MAX_TELEGRAM_ID:
        raise ValidationError(_l("Telegram ID должен быть целым положительным числом"),
                              code="invalid_telegram_id")
    return value


def _clean(value: str | None, limit: int, message) -> str | None:
    value = (value or "").strip()
    if len(value) > limit:
        raise ValidationError(message, code="invalid_name")
    return value or None


def _name(value: str | None) -> str | None:
    return _clean(value, MAX_NAME, _l("Имя: не больше 128 символов"))


def _staff(telegram_id: int) -> StaffMember | None:
    return db.session.scalars(
        sa.select(StaffMember).where(StaffMember.telegram_id == telegram_id)
    ).first()


def add_staff(telegram_id: int, *, name: str | None = None, cashier: bool = True,
              manager: bool = False, can_edit_catalog: bool = False) -> StaffMember:
    """Add a staff member, or update and re-activate the one with this Telegram id.

    A name left out keeps the one already saved.

    :raises ValidationError: a bad Telegram id or a name too long; nothing is saved.
    """
    check_telegram_id(telegram_id)
    name = _name(name)
    with unit_of_work():
        member = _staff(telegram_id)
        action = "staff.update"
        if member is None:
            member = StaffMember(telegram_id=telegram_id)
            db.session.add(member)
            action = "staff.add"
        if name is not None:
            member.name = name
        member.is_cashier = bool(cashier)
        member.is_manager = bool(manager)
        member.can_edit_catalog = bool(can_edit_catalog)
        member.active = True
        db.session.flush()
        audit.record(action, target_type="staff", target_id=member.id, telegram_id=telegram_id,
                     name=member.name, **_flags(member))
    logger.info("staff %s (tg %s) saved: cashier=%s manager=%s catalog=%s", member.id,
                telegram_id, member.is_cashier, member.is_manager, member.can_edit_catalog)
    return member


def _flags(member: StaffMember) -> dict[str, bool]:
    return {"cashier": member.is_cashier, "manager": member.is_manager,
            "can_edit_catalog": member.can_edit_catalog}


def _existing(telegram_id: int) -> StaffMember:
    member = _staff(telegram_id)
    if member is None:
        raise NotFoundError(_l("Сотрудник с Telegram ID %(id)s не найден", id=telegram_id),
                            code="unknown_staff")
    return member


def set_staff_flags(telegram_id: int, *, cashier: bool, manager: bool,
                    can_edit_catalog: bool) -> StaffMember:
    """Change what a staff member may do (sell, decide on access, edit the catalog),
    without switching them on or off.

    :raises ValidationError: a bad Telegram id.
    :raises NotFoundError: no staff member has this Telegram id.
    """
    check_telegram_id(telegram_id)
    with unit_of_work():
        member = _existing(telegram_id)
        before = _flags(member)
        member.is_cashier = bool(cashier)
        member.is_manager = bool(manager)
        member.can_edit_catalog = bool(can_edit_catalog)
        after = _flags(member)
        changed = {key: [before[key], after[key]] for key in after if before[key] != after[key]}
        if changed:
            audit.record("staff.flags", target_type="staff", target_id=member.id,
                         telegram_id=telegram_id, **changed)
    logger.info("staff %s (tg %s) flags: %s", member.id, telegram_id, after)
    return member


def _switch(telegram_id: int, active: bool) -> StaffMember:
    check_telegram_id(telegram_id)
    with unit_of_work():
        member = _existing(telegram_id)
        if member.active != active:
            member.active = active
            audit.record("staff.enable" if active else "staff.disable", target_type="staff",
                         target_id=member.id, telegram_id=telegram_id)
    logger.info("staff %s (tg %s) %s", member.id, telegram_id,
                "enabled" if active else "disabled")
    return member


def enable_staff(telegram_id: int) -> StaffMember:
    """Give a disabled staff member their access back (with the rights they had).

    :raises ValidationError: a bad Telegram id.
    :raises NotFoundError: no staff member has this Telegram id.
    """
    return _switch(telegram_id, True)


def disable_staff(telegram_id: int) -> StaffMember:
    """Take a staff member's access away (the record and their orders stay).

    :raises ValidationError: a bad Telegram id.
    :raises NotFoundError: no staff member has this Telegram id.
    """
    return _switch(telegram_id, False)


def active_cashier(telegram_id: int) -> StaffMember | None:
    """The active cashier with this Telegram id, or None (unknown, disabled, not a cashier)."""
    if isinstance(telegram_id, bool) or not isinstance(telegram_id, int):
        return None
    return db.session.scalars(sa.select(StaffMember).where(
        StaffMember.telegram_id == telegram_id, StaffMember.active.is_(True),
        StaffMember.is_cashier.is_(True),
    )).first()


def _active_manager(telegram_id: int) -> StaffMember | None:
    return db.session.scalars(sa.select(StaffMember).where(
        StaffMember.telegram_id == telegram_id, StaffMember.active.is_(True),
        StaffMember.is_manager.is_(True),
    )).first()


def active_manager(telegram_id: int) -> StaffMember | None:
    """The active manager with this Telegram id, or None."""
    if isinstance(telegram_id, bool) or not isinstance(telegram_id, int):
        return None
    return _active_manager(telegram_id)


def managers() -> list[StaffMember]:
    """The active managers (those who decide on requests for access), oldest first."""
    return list(db.session.scalars(sa.select(StaffMember).where(
        StaffMember.active.is_(True), StaffMember.is_manager.is_(True),
    ).order_by(StaffMember.id)))


def staff_list() -> list[StaffMember]:
    """Every staff member, active or not, in the order they were added."""
    return list(db.session.scalars(sa.select(StaffMember).order_by(StaffMember.id)))


def _pending_request(telegram_id: int) -> AccessRequest | None:
    return db.session.scalars(sa.select(AccessRequest).where(
        AccessRequest.telegram_id == telegram_id,
        AccessRequest.status == AccessStatus.PENDING,
    )).first()


def request_access(telegram_id: int, name: str | None = None, *,
                   username: str | None = None) -> AccessRequest:
    """Ask for access to the shop. One pending request per person: asking again returns it.

    :raises ValidationError: a bad Telegram id, name or username; nothing is saved.
    :raises InvalidStateError: the person already is an active staff member.
    """
    check_telegram_id(telegram_id)
    name = _name(name)
    username = _clean(username, MAX_USERNAME, _l("Имя пользователя: не больше 64 символов"))
    member = _staff(telegram_id)
    if member is not None and member.active:
        raise InvalidStateError(_l("У вас уже есть доступ"), code="already_staff")
    pending = _pending_request(telegram_id)
    if pending is not None:
        return pending
    access = AccessRequest(telegram_id=telegram_id, name=name, username=username,
                           status=AccessStatus.PENDING)
    try:
        with unit_of_work():
            db.session.add(access)
    except sa.exc.IntegrityError:
        # The same person asked twice at once: the other request won, and it is the one.
        pending = _pending_request(telegram_id)
        if pending is None:
            raise
        return pending
    logger.info("access request %s from tg %s", access.id, telegram_id)
    return access


def decide_access(request_id: int, *, approve: bool,
                  manager_telegram_id: int) -> AccessRequest:
    """Approve or refuse a request for access; approval makes the person an active cashier.

    Deciding the same way again changes nothing.

    :raises NotFoundError: no such request.
    :raises InvalidStateError: the decider is not an active manager, or the request was
        already decided the other way; nothing is saved.
    """
    with unit_of_work():
        manager = _active_manager(manager_telegram_id)
        if manager is None:
            raise InvalidStateError(_l("Решать о доступе может только менеджер"),
                                    code="not_a_manager", status=403)
        access = _decide(request_id, approve, manager.id)
    logger.info("access request %s %s by staff %s", access.id, access.status.value, manager.id)
    return access


def decide_access_as_admin(request_id: int, *, approve: bool) -> AccessRequest:
    """Approve or refuse a request for access from the admin panel (who decided is in the
    audit log; `decided_by` names a staff member, so it stays empty).

    :raises NotFoundError: no such request.
    :raises InvalidStateError: the request was already decided the other way.
    """
    with unit_of_work():
        access = _decide(request_id, approve, None)
    logger.info("access request %s %s in the admin panel", access.id, access.status.value)
    return access


def _decide(request_id: int, approve: bool, manager_id: int | None) -> AccessRequest:
    access = db.session.get(AccessRequest, request_id)
    if access is None:
        raise NotFoundError(_l("Запрос доступа не найден"), code="unknown_request")
    to = AccessStatus.APPROVED if approve else AccessStatus.REFUSED
    if not access.set_status(to):
        return access
    access.decided_by = manager_id
    access.decided_at = utcnow()
    if approve:
        member = _staff(access.telegram_id)
        if member is None:
            member = StaffMember(telegram_id=access.telegram_id, name=access.name,
                                 is_manager=False, can_edit_catalog=False)
            db.session.add(member)
        member.is_cashier = True
        member.active = True
        db.session.flush()
    audit.record(f"access.{'approve' if approve else 'refuse'}", target_type="access_request",
                 target_id=access.id, telegram_id=access.telegram_id, name=access.name)
    return access


def assign_till(telegram_id: int, till_id: int | None) -> StaffMember:
    """Put a staff member at a till (its cash link), or take them off it with None.

    :raises ValidationError: a bad Telegram id.
    :raises NotFoundError: no such staff member, or no cash link with this id.
    :raises InvalidStateError: the cash link is switched off.
    """
    check_telegram_id(telegram_id)
    with unit_of_work():
        member = _existing(telegram_id)
        if till_id is not None:
            till = db.session.get(QrCode, till_id)
            if till is None or till.kind != QrKind.CASH_LINK:
                raise NotFoundError(_l("Кассовая ссылка %(id)s не найдена", id=till_id),
                                    code="unknown_till")
            if till.status == QrStatus.CANCELLED:
                raise InvalidStateError(_l("Кассовая ссылка отключена"),
                                        code="cash_link_disabled")
        if member.till_id != till_id:
            audit.record("staff.till", target_type="staff", target_id=member.id,
                         telegram_id=telegram_id, till=[member.till_id, till_id])
        member.till_id = till_id
    logger.info("staff %s (tg %s) at till %s", member.id, telegram_id, till_id)
    return member


# The demo cashier of a development install without a bot token (`flask demo seed`, the
# Mini App's demo mode). A negative id is never a Telegram user's (signed initData names a
# positive one), so no one can sign in as this cashier through Telegram.
DEMO_TELEGRAM_ID = -1
DEMO_CASHIER_NAME = "Демо-кассир"


def demo_cashier() -> StaffMember:
    """The demo cashier (may edit the catalog), created on first use."""
    member = _staff(DEMO_TELEGRAM_ID)
    if member is not None:
        return member
    try:
        with unit_of_work():
            member = StaffMember(telegram_id=DEMO_TELEGRAM_ID, name=DEMO_CASHIER_NAME,
                                 is_cashier=True, is_manager=False, can_edit_catalog=True,
                                 active=True)
            db.session.add(member)
    except sa.exc.IntegrityError:
        # Two first requests at once: the other one created it.
        member = _staff(DEMO_TELEGRAM_ID)
        if member is None:
            raise
    logger.info("demo cashier %s ready", member.id)
    return member
